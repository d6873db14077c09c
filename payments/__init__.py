"""Payments: gateway interface, Stripe gateway and webhook, payments and refunds."""
