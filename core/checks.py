"""System checks for configuration the service cannot run well without.

Ids are stable (``core.E001``...) so deployment scripts can grep for them. Secrets are errors when
DEBUG is off and warnings in development, where the sandbox stands in for Meta and Stripe.
"""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

REQUIRED_SECRETS = {
    "core.E001": ("MESSENGER_APP_SECRET", "Messenger webhooks cannot be verified."),
    "core.E002": ("MESSENGER_VERIFY_TOKEN", "the Messenger webhook cannot be subscribed."),
    "core.E003": ("STRIPE_SECRET_KEY", "checkout sessions cannot be created."),
    "core.E004": ("STRIPE_WEBHOOK_SECRET", "Stripe webhooks cannot be verified."),
    "core.E005": ("FIELD_ENCRYPTION_KEY", "page access tokens cannot be encrypted."),
}


@register(Tags.security, deploy=False)
def check_required_secrets(app_configs=None, **kwargs):
    problems = []
    for check_id, (name, consequence) in REQUIRED_SECRETS.items():
        if getattr(settings, name, ""):
            continue
        level = Warning if settings.DEBUG else Error
        warning_id = check_id.replace(".E", ".W")
        problems.append(
            level(
                f"{name} is not set: {consequence}",
                hint=f"Set the {name} environment variable.",
                id=check_id if level is Error else warning_id,
            )
        )
    return problems
