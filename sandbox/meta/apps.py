from django.apps import AppConfig


class SandboxMetaConfig(AppConfig):
    name = "sandbox.meta"
    label = "sandbox_meta"
    verbose_name = "Sandbox: Messenger Platform"
    default_auto_field = "django.db.models.BigAutoField"
