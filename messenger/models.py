from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from commerce.models import Merchant
from core.fields import EncryptedTextField
from core.models import TimeStampedModel

# Messenger's welcome screen greeting: at most 160 characters, with these personalization tags.
GREETING_MAX_LENGTH = 160
GREETING_PLACEHOLDERS = frozenset({"user_first_name", "user_last_name", "user_full_name"})
_PLACEHOLDER = re.compile(r"{{\s*([^{}]*?)\s*}}")


def validate_greeting(value: str) -> None:
    """Refuse ``{{...}}`` tags Messenger would not substitute (they would show as typed)."""
    unknown = sorted(set(_PLACEHOLDER.findall(value)) - GREETING_PLACEHOLDERS)
    if unknown:
        raise ValidationError(
            _("Unknown tag %(tags)s; Messenger supports %(known)s.")
            % {
                "tags": ", ".join(f"{{{{{tag}}}}}" for tag in unknown),
                "known": ", ".join(f"{{{{{tag}}}}}" for tag in sorted(GREETING_PLACEHOLDERS)),
            },
            code="greeting_placeholder",
        )


class MessengerPage(TimeStampedModel):
    """A Facebook Page connected to a merchant; webhook entries are routed by ``page_id``."""

    class Mode(models.TextChoices):
        CHECKOUT_PAGE = "checkout_page", _("Checkout page (webview)")
        BUY_BUTTON = "buy_button", _("Buy button (legacy v1.2 compatibility)")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="pages")
    page_id = models.CharField(
        _("page id"),
        max_length=32,
        unique=True,
        validators=[RegexValidator(r"^[0-9]+$", _("A page id has digits only."))],
        help_text=_("The numeric id of the Facebook Page (Page settings, About)."),
    )
    name = models.CharField(max_length=120)
    access_token = EncryptedTextField(
        _("page access token"),
        blank=True,
        help_text=_("Stored encrypted. Used for the Send and Messenger Profile APIs."),
    )
    mode = models.CharField(
        max_length=16,
        choices=Mode.choices,
        default=Mode.CHECKOUT_PAGE,
        help_text=_("How shoppers pay: our checkout page, or the legacy in-Messenger buy button."),
    )
    is_test_mode = models.BooleanField(
        _("test mode"),
        default=False,
        help_text=_("Payments started from this page are test payments: nothing is charged."),
    )
    greeting_en = models.CharField(
        _("greeting (English)"),
        max_length=GREETING_MAX_LENGTH,
        blank=True,
        validators=[validate_greeting],
        help_text=_("Welcome screen text; may use {{user_first_name}}."),
    )
    greeting_ar = models.CharField(
        _("greeting (Arabic)"),
        max_length=GREETING_MAX_LENGTH,
        blank=True,
        validators=[validate_greeting],
        help_text=_("Welcome screen text; may use {{user_first_name}}."),
    )
    is_active = models.BooleanField(default=True, help_text=_("Only active pages answer shoppers."))
    token_invalid_at = models.DateTimeField(
        _("token rejected at"),
        null=True,
        blank=True,
        editable=False,
        help_text=_(
            "When the Graph API last rejected the token (error 190). Cleared by a new one."
        ),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("Messenger page")

    def __str__(self) -> str:
        return f"{self.name} ({self.page_id})"
