from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.currencies import CURRENCY_CHOICES
from core.models import ServiceOwnedColumns, TimeStampedModel


class Locale(models.TextChoices):
    ENGLISH = "en", _("English")
    ARABIC = "ar", _("Arabic")


class Merchant(ServiceOwnedColumns, TimeStampedModel):
    """A shop selling through one or more Messenger pages.

    ``order_sequence`` is handed out by ``order_number_assign``; ``save()`` never writes it.
    """

    service_owned_fields = ("order_sequence",)

    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=60, unique=True)
    default_currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES, default="USD")
    default_locale = models.CharField(max_length=5, choices=Locale.choices, default=Locale.ENGLISH)
    support_email = models.EmailField(blank=True)
    support_phone = models.CharField(max_length=32, blank=True)
    support_url = models.URLField(blank=True)
    is_active = models.BooleanField(default=True)
    order_number_prefix = models.CharField(
        max_length=6,
        blank=True,
        validators=[RegexValidator(r"^[A-Z0-9]*$", _("Use capital letters and digits only."))],
        help_text=_("Printed before order numbers, e.g. A1B2-1042. Empty: generated."),
    )
    max_line_quantity = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1), MaxValueValidator(999)],
        help_text=_("The most units of one variant a shopper may put in a cart."),
    )
    tax_rate_bp = models.PositiveIntegerField(
        _("tax rate (basis points)"),
        default=0,
        validators=[MaxValueValidator(10000)],
        help_text=_("500 is 5%. Zero: no tax line."),
    )
    prices_include_tax = models.BooleanField(
        default=False, help_text=_("Catalog prices already include the tax (VAT style).")
    )
    tax_label = models.CharField(max_length=20, default="Tax", blank=True)
    # Last order sequence number handed out; incremented with an F() update under the row lock.
    order_sequence = models.PositiveIntegerField(default=1000, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class MerchantMembership(TimeStampedModel):
    """Gives a staff user a role in a merchant. Operators need none: they see every merchant."""

    class Role(models.TextChoices):
        OWNER = "owner", _("Owner")
        MANAGER = "manager", _("Manager")
        SUPPORT = "support", _("Support (read-only catalog)")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MANAGER)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["user", "merchant"], name="uniq_membership_user_merchant"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.merchant} ({self.get_role_display()})"
