"""The operators dashboard (``/dashboard/``): live orders, payments, conversations and metrics."""

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "dashboard"
    verbose_name = "Operators dashboard"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The admin's login gets the same failed-attempt throttle as the dashboard's.
        from django.contrib import admin

        from dashboard.forms_login import ThrottledAdminLoginForm

        admin.site.login_form = ThrottledAdminLoginForm
