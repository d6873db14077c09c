from django.apps import AppConfig


class SandboxStripeConfig(AppConfig):
    name = "sandbox.stripe"
    label = "sandbox_stripe"
    verbose_name = "Sandbox: Stripe"
    default_auto_field = "django.db.models.BigAutoField"
