"""What the Stripe stand-in remembers, in the database so the web and worker processes share it.

Stripe objects are stored as the JSON Stripe would answer (``StripeObject.data``) plus a little
state of our own that Stripe keeps internally (``private``: line items, the card last used).
"""

from __future__ import annotations

from django.db import models


class StripeObject(models.Model):
    """One API object: a Checkout Session, PaymentIntent, Charge, Refund, Coupon or shipping
    rate, by its Stripe id (``cs_test_...``, ``pi_...``, ``ch_...``, ``re_...``)."""

    id = models.CharField(primary_key=True, max_length=255)
    object = models.CharField(max_length=40, db_index=True)
    data = models.JSONField()
    private = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return self.id


class IdempotencyRecord(models.Model):
    """The first answer to a POST with an ``Idempotency-Key``; ``status`` None while it runs."""

    key = models.CharField(max_length=255, unique=True)
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    body = models.JSONField(null=True, blank=True)
    request_id = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.key


class Event(models.Model):
    """An ``evt_...`` as sent to the webhook endpoint (``payload`` is the whole event)."""

    id = models.CharField(primary_key=True, max_length=255)
    type = models.CharField(max_length=100, db_index=True)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.id} {self.type}"


class EventDelivery(models.Model):
    """One delivery of an event to the webhook endpoint, with every attempt in ``log``.

    An event has one delivery, two when the control asked for duplicates. A delivery is
    ``held`` while the control holds events, until released (in any order).
    """

    class State(models.TextChoices):
        PENDING = "pending"
        HELD = "held"
        DELIVERED = "delivered"
        FAILED = "failed"

    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="deliveries")
    copy = models.PositiveSmallIntegerField(default=1)
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    log = models.JSONField(default=list, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.event_id} #{self.copy} {self.state}"


class Control(models.Model):
    """The test controls (one row, ``pk=1``), set through ``/sandbox/stripe/_control/``."""

    duplicate = models.BooleanField(default=False)
    hold = models.BooleanField(default=False)
    fail_next = models.PositiveIntegerField(default=0)
    webhook_url = models.URLField(max_length=500, blank=True)
    #: New refunds are created ``succeeded`` (test-mode cards) or ``pending`` (as when the
    #: balance does not cover them), until settled through ``_control/refunds/<id>/``.
    refund_status = models.CharField(max_length=10, default="succeeded")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "Stripe sandbox controls"
