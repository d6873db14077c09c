"""The Stripe stand-in: the API subset the gateway calls, the hosted checkout page, and events."""
