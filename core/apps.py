from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        from django.contrib import admin

        from core import checks  # noqa: F401  (registers the system checks)
        from core.auth_forms import admin_site_lock

        # The admin's sign-in and password change share the login lockout with every other
        # password check (core.login_lockout).
        admin_site_lock(admin.site)
