from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from commerce.models import Merchant
from core.fields import EncryptedTextField
from core.models import ServiceOwnedColumns, TimeStampedModel

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


class MessengerPage(ServiceOwnedColumns, TimeStampedModel):
    """A Facebook Page connected to a merchant; webhook entries are routed by ``page_id``.

    What the Graph API last said about the page (``token_invalid_at``, ``profile_synced_at``,
    ``profile_sync_error``) is recorded by the outbox and the profile sync while staff may be
    editing the page: ``save()`` of an existing page never writes it (see
    ``messenger.services.pages``).
    """

    service_owned_fields = ("token_invalid_at", "profile_synced_at", "profile_sync_error")

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

    get_started_payload = models.CharField(max_length=100, default="GET_STARTED")
    persistent_menu = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Messenger persistent menu per locale; empty: the default shop menu."),
    )
    ice_breakers = models.JSONField(
        default=list,
        blank=True,
        help_text=_("Ice breaker questions per locale; empty: the default ones."),
    )
    profile_synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    profile_sync_error = models.CharField(max_length=300, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("Messenger page")

    def __str__(self) -> str:
        return f"{self.name} ({self.page_id})"


class InboundEvent(models.Model):
    """The Messenger webhook inbox: one row per ``entry[].messaging[]`` (or ``standby[]``) item.

    Stored before the webhook answers 200, processed by the worker, swept again when stuck.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        PROCESSED = "processed", _("Processed")
        IGNORED = "ignored", _("Ignored")
        FAILED = "failed", _("Failed")

    page_id = models.CharField(max_length=32)
    sender_psid = models.CharField(max_length=64, blank=True)
    # Unique through a constraint, not unique=True: on PostgreSQL the latter also builds a
    # varchar_pattern_ops index that nothing uses and that every webhook INSERT would maintain.
    dedupe_key = models.CharField(max_length=128)
    kind = models.CharField(max_length=32)
    payload = models.JSONField(help_text=_("The raw messaging item as received."))
    timestamp_ms = models.BigIntegerField(default=0)
    is_standby = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["timestamp_ms", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dedupe_key"], name="inbound_dedupe_key_uniq"),
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=models.Q(status="pending"),
                name="inbound_pending_idx",
            ),
            models.Index(fields=["page_id", "sender_psid", "timestamp_ms", "id"]),
            models.Index(fields=["status", "received_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.kind} from {self.sender_psid} ({self.status})"


class OutboundMessage(models.Model):
    """The outbox: one Send API call, written in the transaction that causes it.

    ``kind`` says why it is sent; the worker decides ``messaging_type`` and ``tag`` at send time
    from the 24-hour window (RESPONSE inside it; outside it only tagged post-purchase updates and
    human-agent replies go out, the rest is skipped).
    """

    class Kind(models.TextChoices):
        RESPONSE = "response", _("Reply in the conversation")
        UPDATE = "update", _("Post-purchase update (receipt, shipping)")
        HUMAN_AGENT = "human_agent", _("Reply from a person")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Skipped (outside the 24-hour window)")

    page = models.ForeignKey(MessengerPage, on_delete=models.CASCADE, related_name="outbox")
    customer = models.ForeignKey(
        "commerce.Customer", on_delete=models.CASCADE, related_name="outbound_messages"
    )
    order = models.ForeignKey(
        "commerce.Order",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="outbound_messages",
    )
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.RESPONSE)
    dedupe_key = models.CharField(max_length=128, unique=True, null=True, blank=True)
    message = models.JSONField(help_text=_("The Send API `message` object."))
    messaging_type = models.CharField(max_length=20, blank=True)
    tag = models.CharField(max_length=40, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    graph_message_id = models.CharField(max_length=128, blank=True, db_index=True)
    error_code = models.CharField(max_length=32, blank=True)
    error_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(fields=["customer", "status", "id"]),
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="outbound_pending_idx",
            ),
            models.Index(fields=["order", "created_at"]),
            # The dashboard's "failed sends" list: a few rows among millions of sent ones.
            models.Index(
                fields=["-id"],
                condition=models.Q(status="failed"),
                name="outbound_failed_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} to {self.customer_id} ({self.status})"
