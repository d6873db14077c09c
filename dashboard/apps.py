"""The operators dashboard (``/dashboard/``): live orders, payments, conversations and metrics."""

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Operators dashboard"
    default_auto_field = "django.db.models.BigAutoField"
