"""Local stand-ins for the Messenger Platform and Stripe. Mounted only when SANDBOX_ENABLED=true.

The sandbox talks to the rest of the project only over HTTP, like the real platforms.
"""
