"""Payments, refunds and the payment webhook inbox. Amounts in minor units of ``currency``."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.currencies import CURRENCY_CHOICES
from core.models import TimeStampedModel
from core.money import Money


class Payment(TimeStampedModel):
    """One attempt to collect an order's total through a gateway (a Checkout Session, a charge)."""

    class Gateway(models.TextChoices):
        STRIPE_CHECKOUT = "stripe_checkout", _("Stripe Checkout")
        STRIPE_BUY_BUTTON = "stripe_buy_button", _("Messenger buy button (Stripe)")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        EXPIRED = "expired", _("Expired")
        MISMATCH = "mismatch", _("Amount or currency mismatch")

    order = models.ForeignKey("commerce.Order", on_delete=models.PROTECT, related_name="payments")
    gateway = models.CharField(max_length=24, choices=Gateway.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempt = models.PositiveSmallIntegerField(default=1)
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    idempotency_key = models.CharField(max_length=100, unique=True)
    checkout_session_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    checkout_url = models.URLField(max_length=2000, blank=True)
    payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    charge_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    card_brand = models.CharField(max_length=20, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    is_test = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "attempt"], name="uniq_payment_attempt"),
            models.CheckConstraint(condition=Q(amount_minor__gte=0), name="payment_amount_ok"),
        ]
        indexes = [models.Index(fields=["order", "status"])]

    def __str__(self) -> str:
        return f"{self.get_gateway_display()} {self.amount} ({self.status})"

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)


class Refund(TimeStampedModel):
    """A refund of (part of) a payment: pending until the provider's webhook confirms it.

    ``attempts`` counts the tries to send it to the provider (while it has no
    ``provider_refund_id``); ``next_attempt_at`` is when the refunds sweep looks at a pending
    refund next: sends it again, or, once sent, asks the provider for its status. A refund the
    provider never answered within the budget is ``abandoned``: it holds no money any more.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELED = "canceled", _("Canceled")
        ABANDONED = "abandoned", _("Not sent (gave up)")

    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    order = models.ForeignKey("commerce.Order", on_delete=models.PROTECT, related_name="refunds")
    amount_minor = models.BigIntegerField()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    reason = models.CharField(max_length=200, blank=True)
    provider_refund_id = models.CharField(max_length=255, null=True, blank=True, unique=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="refund_amount_positive"),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status="pending"),
                name="refund_pending_due_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Refund {self.amount} ({self.status})"

    @property
    def amount(self) -> Money:
        return Money(self.amount_minor, self.currency)

    @property
    def idempotency_key(self) -> str:
        """Derived from the row, so a retried request can never refund twice."""
        return f"refund:{self.pk}"


class ProviderEvent(models.Model):
    """The payment webhook inbox: stored verified, before answering; processed by the worker."""

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PROCESSED = "processed", _("Processed")
        IGNORED = "ignored", _("Ignored")
        FAILED = "failed", _("Failed")

    gateway = models.CharField(max_length=24, default="stripe")
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    livemode = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["received_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["gateway", "event_id"], name="uniq_provider_event"),
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(status="pending"),
                name="provider_event_pending_idx",
            ),
            models.Index(fields=["type", "received_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.gateway} {self.type} {self.event_id}"
