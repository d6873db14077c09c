from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from commerce.models.catalog import Variant
from commerce.models.customers import Customer
from commerce.models.merchants import Merchant
from commerce.models.shipping import ShippingMethod, Voucher
from core.currencies import CURRENCY_CHOICES
from core.models import TimeStampedModel
from core.money import Money


class OrderStatus(models.TextChoices):
    PENDING_PAYMENT = "pending_payment", _("Pending payment")
    PAID = "paid", _("Paid")
    FULFILLED = "fulfilled", _("Shipped")
    DELIVERED = "delivered", _("Delivered")
    EXPIRED = "expired", _("Expired")
    CANCELLED = "cancelled", _("Cancelled")
    PAYMENT_FAILED = "payment_failed", _("Payment failed")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partially refunded")
    REFUNDED = "refunded", _("Refunded")


class Order(TimeStampedModel):
    """An order placed from a cart. Amounts are snapshots in minor units of ``currency``.

    Status changes go through one service per transition (``commerce.services.orders``);
    never assign ``status`` directly.
    """

    Status = OrderStatus

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="orders")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    number = models.CharField(max_length=24, unique=True)
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.PENDING_PAYMENT
    )
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    locale = models.CharField(max_length=16, blank=True)
    subtotal_minor = models.BigIntegerField()
    discount_minor = models.BigIntegerField(default=0)
    shipping_minor = models.BigIntegerField(default=0)
    tax_minor = models.BigIntegerField(default=0)
    total_minor = models.BigIntegerField()
    #: How much of ``total_minor`` was given back (what the payments collected, net of their
    #: refunds, fell short of the total by); a duplicate payment refunded does not count.
    refunded_minor = models.BigIntegerField(default=0)
    tax_rate_bp = models.PositiveIntegerField(default=0)
    prices_include_tax = models.BooleanField(default=False)
    voucher = models.ForeignKey(Voucher, null=True, blank=True, on_delete=models.SET_NULL)
    voucher_code = models.CharField(max_length=32, blank=True)
    shipping_method = models.ForeignKey(
        ShippingMethod, null=True, blank=True, on_delete=models.SET_NULL
    )
    shipping_method_name = models.CharField(max_length=40, blank=True)
    shipping_name = models.CharField(max_length=120, blank=True)
    shipping_line1 = models.CharField(max_length=200, blank=True)
    shipping_line2 = models.CharField(max_length=200, blank=True)
    shipping_city = models.CharField(max_length=100, blank=True)
    shipping_region = models.CharField(max_length=100, blank=True)
    shipping_postal_code = models.CharField(max_length=20, blank=True)
    shipping_country = models.CharField(max_length=2, blank=True)
    contact_email = models.EmailField(blank=True)
    contact_phone = models.CharField(max_length=20, blank=True)
    referral_ref = models.CharField(max_length=250, blank=True)
    referral_source = models.CharField(max_length=40, blank=True)
    referral_ad_id = models.CharField(max_length=64, blank=True)
    reserved_until = models.DateTimeField(null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(
        null=True, blank=True, help_text=_("When it expired, was cancelled or failed payment.")
    )
    needs_review = models.BooleanField(default=False)
    review_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["merchant", "-created_at"]),
            models.Index(fields=["merchant", "status", "-created_at"]),
            models.Index(fields=["customer", "-created_at"]),
            models.Index(
                fields=["reserved_until"],
                condition=Q(status="pending_payment"),
                name="order_pending_expiry_idx",
            ),
            # The dashboard (operators see every merchant): newest first, by status, by
            # referral, paid recently (needs attention, figures rebuild), flagged for review.
            models.Index(fields=["-created_at", "-id"], name="order_created_idx"),
            models.Index(fields=["status", "-created_at"], name="order_status_created_idx"),
            models.Index(
                fields=["referral_source", "-created_at"], name="order_ref_source_created_idx"
            ),
            models.Index(fields=["referral_ad_id", "-created_at"], name="order_ref_ad_created_idx"),
            models.Index(
                fields=["paid_at"], condition=Q(paid_at__isnull=False), name="order_paid_at_idx"
            ),
            models.Index(
                fields=["-created_at"], condition=Q(needs_review=True), name="order_review_idx"
            ),
            models.Index(fields=["-total_minor", "-id"], name="order_total_idx"),
            models.Index(
                fields=["merchant", "-total_minor", "-id"], name="order_merchant_total_idx"
            ),
            # The dashboard's live updates: orders changed since a moment, newest change first.
            models.Index(fields=["-updated_at", "-id"], name="order_updated_idx"),
            models.Index(fields=["merchant", "-updated_at"], name="order_merchant_updated_idx"),
            models.Index(fields=["contact_email"], name="order_contact_email_idx"),
            models.Index(fields=["contact_phone"], name="order_contact_phone_idx"),
            # PostgreSQL only (migration 0005): a trigram index on number (``*-1042``) and
            # upper(name) prefix indexes on customers, for the dashboard's search.
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(total_minor__gte=0) & Q(subtotal_minor__gte=0),
                name="order_amounts_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(refunded_minor__gte=0) & Q(refunded_minor__lte=models.F("total_minor")),
                name="order_refund_within_total",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    def _money(self, amount: int) -> Money:
        return Money(amount, self.currency)

    @property
    def subtotal(self) -> Money:
        return self._money(self.subtotal_minor)

    @property
    def discount(self) -> Money:
        return self._money(self.discount_minor)

    @property
    def shipping(self) -> Money:
        return self._money(self.shipping_minor)

    @property
    def tax(self) -> Money:
        return self._money(self.tax_minor)

    @property
    def total(self) -> Money:
        return self._money(self.total_minor)

    @property
    def refunded(self) -> Money:
        return self._money(self.refunded_minor)


class OrderLine(models.Model):
    """A line as it was when ordered: the catalog may change afterwards, the order does not."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    variant = models.ForeignKey(
        Variant, null=True, blank=True, on_delete=models.SET_NULL, related_name="order_lines"
    )
    product_title = models.CharField(max_length=80)
    variant_name = models.CharField(max_length=40, blank=True)
    sku = models.CharField(max_length=64)
    image_url = models.CharField(max_length=500, blank=True)
    unit_price_minor = models.BigIntegerField()
    quantity = models.PositiveIntegerField()
    total_minor = models.BigIntegerField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.product_title} ({self.sku})"


class OrderEvent(models.Model):
    """The order's timeline: what happened, when, and who did it."""

    class Kind(models.TextChoices):
        CREATED = "created", _("Order placed")
        PAYMENT_STARTED = "payment_started", _("Payment started")
        PAID = "paid", _("Paid")
        PAYMENT_FAILED = "payment_failed", _("Payment failed")
        EXPIRED = "expired", _("Expired")
        CANCELLED = "cancelled", _("Cancelled")
        FULFILLED = "fulfilled", _("Shipped")
        DELIVERED = "delivered", _("Delivered")
        REFUND_REQUESTED = "refund_requested", _("Refund requested")
        REFUNDED = "refunded", _("Refunded")
        REFUND_FAILED = "refund_failed", _("Refund failed")
        STOCK_RESERVED = "stock_reserved", _("Stock reserved")
        STOCK_RELEASED = "stock_released", _("Stock released")
        STOCK_SOLD = "stock_sold", _("Stock sold")
        MESSAGE_SENT = "message_sent", _("Message sent")
        REVIEW_FLAGGED = "review_flagged", _("Flagged for review")
        NOTE = "note", _("Note")
        NOTICE_FAILED = "notice_failed", _("Customer notice failed")

    class Actor(models.TextChoices):
        SYSTEM = "system", _("System")
        STAFF = "staff", _("Staff")
        CUSTOMER = "customer", _("Customer")
        PROVIDER = "provider", _("Payment provider")

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    actor = models.CharField(max_length=12, choices=Actor.choices, default=Actor.SYSTEM)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    message = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["order", "created_at"])]

    def __str__(self) -> str:
        return f"{self.order} {self.get_kind_display()}"


class StockReservation(models.Model):
    """Units of a variant held for an unpaid order until ``expires_at``.

    Active reservations are counted in ``Variant.stock_reserved``. Exactly one of the stock
    services resolves each reservation: sold on payment, released on expiry or cancellation.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SOLD = "sold", _("Sold")
        RELEASED = "released", _("Released")

    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="reservations")
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="reservations")
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["order", "variant"], name="uniq_reservation_line"),
        ]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.variant_id} for {self.order_id} ({self.status})"


class Shipment(TimeStampedModel):
    """A parcel sent for an order. An order may have several (partial shipments)."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="shipments")
    carrier = models.CharField(max_length=60)
    tracking_number = models.CharField(max_length=80, blank=True)
    tracking_url = models.URLField(max_length=500, blank=True)
    shipped_at = models.DateTimeField()
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # The one-time token of the form (or the API's Idempotency-Key) that recorded it: the same
    # submission arriving twice finds this shipment instead of recording a second one.
    submission_key = models.CharField(max_length=100, blank=True, default="", editable=False)

    class Meta:
        ordering = ["shipped_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "submission_key"],
                condition=~Q(submission_key=""),
                name="shipment_submission_key_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.carrier} {self.tracking_number}".strip()
