"""What the Messenger Platform stand-in remembers: pages, shoppers, what the service sent, what
the emulator posted to the service, and the faults a test asked for.

These rows are the "Meta side" of the sandbox. The service never reads them: it only sees the
Graph API answers and the webhook bodies built from them.
"""

from __future__ import annotations

from django.db import models


class SandboxPage(models.Model):
    """A Facebook Page as Meta knows it: its id, name, page access token and the Messenger
    Profile the service pushed (greeting, get_started, persistent_menu, ice_breakers,
    whitelisted_domains)."""

    page_id = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    access_token = models.CharField(max_length=255, unique=True)
    messenger_profile = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["page_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.page_id})"


class SandboxShopper(models.Model):
    """A Messenger user talking to one page, with the page-scoped id (PSID) Meta gives them."""

    page = models.ForeignKey(SandboxPage, on_delete=models.CASCADE, related_name="shoppers")
    psid = models.CharField(max_length=32)
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100, blank=True)
    locale = models.CharField(max_length=10, default="en_US")
    timezone = models.FloatField(default=0)
    email = models.CharField(max_length=254, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    profile_pic = models.URLField(max_length=500, blank=True)
    # False: the Send API answers 551 "This person isn't available right now".
    available = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The shopper's last message, postback or referral: opens the 24-hour window.
    last_message_at = models.DateTimeField(null=True, blank=True)
    # Handover protocol: the app that owns the thread; empty means the page's primary app.
    thread_owner_app_id = models.CharField(max_length=32, blank=True)
    # An m.me link or ad opened before the thread existed: carried by the Get Started postback.
    pending_referral = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["page", "psid"], name="sandbox_shopper_psid_per_page")
        ]

    def __str__(self) -> str:
        return f"{self.full_name} ({self.psid})"

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_rtl(self) -> bool:
        return self.locale.split("_")[0] in {"ar", "he", "fa", "ur"}


class GraphMessage(models.Model):
    """One Send API call the stand-in accepted (messages and sender actions)."""

    page = models.ForeignKey(SandboxPage, on_delete=models.CASCADE, related_name="graph_messages")
    shopper = models.ForeignKey(
        SandboxShopper,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="graph_messages",
    )
    recipient_psid = models.CharField(max_length=32)
    message_id = models.CharField(max_length=100, blank=True, db_index=True)  # "" for actions
    body = models.JSONField()  # the whole request body
    messaging_type = models.CharField(max_length=20, blank=True)
    tag = models.CharField(max_length=40, blank=True)
    # Set when the request arrives (bench/ measures turn latency from it).
    received_at = models.DateTimeField(db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.message_id or f"sender action to {self.recipient_psid}"

    @property
    def is_sender_action(self) -> bool:
        return "sender_action" in self.body and "message" not in self.body


class ShopperEvent(models.Model):
    """One signed webhook body the emulator posted to the service, and how it answered."""

    class Kind(models.TextChoices):
        MESSAGE = "message"
        POSTBACK = "postback"
        REFERRAL = "referral"
        RECEIPTS = "receipts"  # delivery + read

    page = models.ForeignKey(SandboxPage, on_delete=models.CASCADE, related_name="events")
    shopper = models.ForeignKey(
        SandboxShopper, on_delete=models.CASCADE, null=True, blank=True, related_name="events"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    mid = models.CharField(max_length=100, blank=True)
    text = models.TextField(blank=True)  # what the conversation shows for the shopper's tap
    body = models.TextField()  # the exact bytes posted (UTF-8), which the signature covers
    status_code = models.PositiveIntegerField(null=True, blank=True)  # None: no answer
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.mid or ''} -> {self.status_code}"

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class GraphFault(models.Model):
    """An error or a delay the Graph stand-in applies to matching requests (tests and demos).

    ``status`` None means latency only; ``remaining`` None means until cleared.
    """

    path = models.CharField(max_length=200, blank=True)  # substring of the request path
    status = models.PositiveSmallIntegerField(null=True, blank=True)
    code = models.IntegerField(null=True, blank=True)
    subcode = models.IntegerField(null=True, blank=True)
    message = models.CharField(max_length=500, blank=True)
    error_type = models.CharField(max_length=50, default="OAuthException")
    remaining = models.PositiveIntegerField(null=True, blank=True)
    delay_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.status or 'delay'} on {self.path or 'every path'}"
