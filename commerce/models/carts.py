from __future__ import annotations

from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from commerce.models.catalog import Variant
from commerce.models.customers import Customer
from commerce.models.merchants import Merchant
from core.models import TimeStampedModel


class Cart(TimeStampedModel):
    """A customer's basket. One open cart per customer; prices are always read from the catalog."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ORDERED = "ordered", _("Ordered")
        ABANDONED = "abandoned", _("Abandoned")

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="carts")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="carts")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    voucher_code = models.CharField(max_length=32, blank=True)
    reminder_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "merchant"],
                condition=Q(status="open"),
                name="uniq_open_cart_per_customer",
            ),
        ]
        indexes = [
            models.Index(fields=["merchant", "status", "updated_at"]),
            # Carts created per day, for the dashboard's funnel.
            models.Index(fields=["created_at"], name="cart_created_idx"),
        ]

    def __str__(self) -> str:
        return f"Cart {self.pk} of {self.customer}"


class CartLine(TimeStampedModel):
    cart = models.ForeignKey(Cart, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey(Variant, on_delete=models.CASCADE, related_name="cart_lines")
    quantity = models.PositiveIntegerField(validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["cart", "variant"], name="uniq_cart_line_variant"),
            models.CheckConstraint(
                condition=Q(quantity__gte=1), name="cart_line_quantity_positive"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.variant}"
