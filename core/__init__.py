"""Shared building blocks only: errors, Money, base models, the API error handler, health views."""
