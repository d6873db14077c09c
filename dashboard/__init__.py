"""The operators dashboard (``/dashboard/``): live orders, payments, conversations and metrics."""
