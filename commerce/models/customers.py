from __future__ import annotations

import phonenumbers
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from commerce.models.merchants import Merchant
from core.models import TimeStampedModel

# Countries we can ship to and validate phone numbers for: ISO 3166-1 alpha-2 codes that the
# phonenumbers metadata knows (it excludes non-geographic and reserved codes such as "001", "ZZ").
COUNTRY_CODES = frozenset(
    code for code in phonenumbers.SUPPORTED_REGIONS if len(code) == 2 and code.isalpha()
)


def validate_country(value: str) -> None:
    if value not in COUNTRY_CODES:
        raise ValidationError(
            _("%(value)s is not a country code we ship to (use ISO codes such as US, AE, KW)."),
            params={"value": value},
            code="invalid_country",
        )


class Customer(TimeStampedModel):
    """A shopper of one merchant, known by the Messenger page they talk to and their PSID.

    ``page_id`` is the Facebook Page id (the messenger app owns pages; commerce keeps only the id
    so it never depends on messenger).
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="customers")
    page_id = models.CharField(max_length=32)
    psid = models.CharField("PSID", max_length=64)
    first_name = models.CharField(max_length=80, blank=True)
    last_name = models.CharField(max_length=80, blank=True)
    locale = models.CharField(max_length=16, blank=True, help_text=_("e.g. en_US, ar_AR"))
    timezone_offset = models.SmallIntegerField(null=True, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=20, blank=True, help_text=_("E.164, e.g. +96550012345"))
    last_interaction_at = models.DateTimeField(null=True, blank=True)
    conversation_state = models.CharField(max_length=40, blank=True)
    conversation_context = models.JSONField(default=dict, blank=True)
    bot_paused_at = models.DateTimeField(
        null=True, blank=True, help_text=_("Set while a person handles the conversation.")
    )
    referral_ref = models.CharField(max_length=250, blank=True)
    referral_source = models.CharField(max_length=40, blank=True)
    referral_ad_id = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["page_id", "psid"], name="uniq_customer_page_psid"),
        ]
        indexes = [
            models.Index(fields=["merchant", "last_interaction_at"]),
            models.Index(fields=["merchant", "email"]),
            models.Index(fields=["merchant", "phone"]),
            # Conversations waiting for a person (dashboard).
            models.Index(
                fields=["-last_interaction_at"],
                condition=models.Q(bot_paused_at__isnull=False),
                name="customer_waiting_idx",
            ),
        ]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return name or f"PSID {self.psid}"

    @property
    def language(self) -> str:
        """``ar`` or ``en``: the language shopper-facing text is written in."""
        return "ar" if self.locale.lower().startswith("ar") else "en"


class Address(TimeStampedModel):
    """A shipping address saved for a customer and offered again at the next checkout."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="addresses")
    name = models.CharField(max_length=120)
    line1 = models.CharField(max_length=200)
    line2 = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100)
    region = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    country = models.CharField(max_length=2, validators=[validate_country])
    phone = models.CharField(max_length=20, blank=True)
    is_default = models.BooleanField(default=False)

    class Meta:
        ordering = ["-is_default", "-updated_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(is_default=True),
                name="uniq_default_address_per_customer",
            ),
        ]

    def __str__(self) -> str:
        return ", ".join(p for p in [self.name, self.line1, self.city, self.country] if p)
