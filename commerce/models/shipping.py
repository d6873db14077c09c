from __future__ import annotations

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from commerce.models.merchants import Merchant
from core.currencies import CURRENCY_CHOICES
from core.models import ServiceOwnedColumns, TimeStampedModel
from core.money import Money


class ShippingMethod(TimeStampedModel):
    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="shipping_methods"
    )
    name = models.CharField(max_length=40)
    name_ar = models.CharField(_("name (Arabic)"), max_length=40, blank=True)
    price_minor = models.BigIntegerField(validators=[MinValueValidator(0)])
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    free_over_minor = models.BigIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text=_("Free when the discounted subtotal reaches this amount (minor units)."),
    )
    countries = models.JSONField(
        default=list, blank=True, help_text=_('ISO country codes, e.g. ["KW", "AE"]; empty: all.')
    )
    delivery_estimate = models.CharField(max_length=40, blank=True)
    delivery_estimate_ar = models.CharField(max_length=40, blank=True)
    is_active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "price_minor"]
        constraints = [
            models.CheckConstraint(
                condition=Q(price_minor__gte=0), name="shipping_price_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def price(self) -> Money:
        return Money(self.price_minor, self.currency)

    def ships_to(self, country: str) -> bool:
        return not self.countries or country.upper() in {c.upper() for c in self.countries}


class Voucher(ServiceOwnedColumns, TimeStampedModel):
    """A discount code: a percentage or a fixed amount, within dates, limits and a minimum spend.

    ``times_used`` is counted by the order services (one conditional ``UPDATE`` per placement,
    given back on expiry or cancellation); ``save()`` of an existing voucher never writes it.
    """

    service_owned_fields = ("times_used",)

    class Kind(models.TextChoices):
        PERCENTAGE = "percentage", _("Percentage")
        FIXED = "fixed", _("Fixed amount")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="vouchers")
    code = models.CharField(max_length=32, help_text=_("Case-insensitive; stored in capitals."))
    kind = models.CharField(max_length=12, choices=Kind.choices)
    percent_bp = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(10000)],
        help_text=_("Percentage in basis points: 1000 is 10%."),
    )
    amount_minor = models.BigIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text=_("Fixed discount.")
    )
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, blank=True)
    min_spend_minor = models.BigIntegerField(
        null=True, blank=True, validators=[MinValueValidator(0)]
    )
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    usage_limit = models.PositiveIntegerField(null=True, blank=True)
    times_used = models.PositiveIntegerField(default=0, editable=False)
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "code"], name="uniq_voucher_code"),
            models.CheckConstraint(
                condition=(
                    Q(kind="percentage", percent_bp__isnull=False)
                    | Q(kind="fixed", amount_minor__isnull=False)
                ),
                name="voucher_value_matches_kind",
            ),
            models.CheckConstraint(
                condition=Q(kind="percentage") | ~Q(currency=""),
                name="voucher_fixed_has_currency",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def save(self, *args, **kwargs) -> None:
        self.code = self.code.strip().upper()
        super().save(*args, **kwargs)
