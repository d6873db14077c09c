"""Reads behind "Needs attention": everything a person should look at, one bounded list each.

Each kind is one :class:`Problem`: at most :data:`LIST_LIMIT` rows (newest first) and a count
that stops at :data:`COUNT_CAP` (shown as "100+"), so a backlog of a million rows costs what a
backlog of a hundred does. Every query is narrowed to the merchants the user sees
(``DashboardScope.filter``); payment-provider events carry no merchant, so only operators see
them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from commerce.models import Customer, Order
from messenger.models import InboundEvent, MessengerPage, OutboundMessage
from payments.models import ProviderEvent

__all__ = [
    "COUNT_CAP",
    "LIST_LIMIT",
    "Problem",
    "attention_problems",
]

LIST_LIMIT = 20
COUNT_CAP = 100
# A receipt normally arrives within seconds; only older ones are worth a person's time.
RECEIPT_GRACE = timedelta(minutes=10)
# Paid orders older than this are not checked for their receipt any more.
RECEIPT_LOOKBACK = timedelta(days=3)
# Inbox rows pending longer than this are stuck (the sweep republishes after a minute).
INBOX_STUCK_AFTER = timedelta(minutes=5)

_RECEIPT_OK = (OutboundMessage.Status.DELIVERED, OutboundMessage.Status.READ)


@dataclass
class Problem:
    kind: str
    title: str
    help: str
    rows: list = field(default_factory=list)
    count: int = 0
    capped: bool = False


def _bounded(queryset: QuerySet) -> tuple[list, int, bool]:
    """(first LIST_LIMIT rows, count up to COUNT_CAP, capped): two queries that stop early,
    whatever the backlog (the page costs the same with one problem as with a million)."""
    rows = list(queryset[:LIST_LIMIT])
    count = queryset.order_by()[: COUNT_CAP + 1].count()
    return rows, min(count, COUNT_CAP), count > COUNT_CAP


def _orders(scope) -> QuerySet[Order]:
    return scope.filter(Order.objects.all()).select_related("merchant", "customer")


def flagged_orders(scope, now: datetime) -> QuerySet:
    """Payments a person must check: amount or currency mismatch, money for a closed order."""
    return _orders(scope).filter(needs_review=True).order_by("-created_at", "-id")


def receipts_missing(scope, now: datetime) -> QuerySet:
    """Orders paid (in the last days, over RECEIPT_GRACE ago) whose receipt is not delivered."""
    delivered = OutboundMessage.objects.filter(
        order_id=OuterRef("pk"),
        # "receipt:<order id>" (messenger.services.order_messages); not "receipt-note:...".
        dedupe_key__startswith="receipt:",
        status__in=_RECEIPT_OK,
    )
    return (
        _orders(scope)
        .filter(paid_at__gte=now - RECEIPT_LOOKBACK, paid_at__lte=now - RECEIPT_GRACE)
        .filter(~Exists(delivered))
        .order_by("-paid_at", "-id")
    )


def failed_sends(scope, now: datetime) -> QuerySet:
    """Outbox messages the Graph API refused for good, with its error."""
    return (
        scope.filter(OutboundMessage.objects.all(), merchant_path="page__merchant")
        .filter(status=OutboundMessage.Status.FAILED)
        .select_related("page", "customer", "order")
        .order_by("-id")
    )


def pages_token_invalid(scope, now: datetime) -> QuerySet:
    """Pages whose access token Graph rejected: nothing reaches their shoppers until renewed."""
    return (
        scope.filter(MessengerPage.objects.all())
        .filter(token_invalid_at__isnull=False)
        .select_related("merchant")
        .order_by("-token_invalid_at", "-id")
    )


def orders_overdue(scope, now: datetime) -> QuerySet:
    """Unpaid orders past their reservation that the expiry sweep has not closed yet."""
    return (
        _orders(scope)
        .filter(status=Order.Status.PENDING_PAYMENT, reserved_until__lt=now)
        .order_by("reserved_until", "id")
    )


def inbox_stuck(scope, now: datetime) -> QuerySet:
    """Messenger webhook rows that failed, or have waited too long to be processed."""
    failed = InboundEvent.objects.filter(status=InboundEvent.Status.FAILED)
    stuck = InboundEvent.objects.filter(
        status=InboundEvent.Status.PENDING, received_at__lt=now - INBOX_STUCK_AFTER
    )
    rows = failed | stuck
    if not scope.is_operator or scope.merchant is not None:
        pages = scope.filter(MessengerPage.objects.all()).values("page_id")
        rows = rows.filter(page_id__in=pages)
    return rows.order_by("-received_at", "-id").defer("payload")


def provider_events_stuck(scope, now: datetime) -> QuerySet:
    """Payment webhook rows that failed or wait too long; operators only (no merchant)."""
    if not scope.is_operator:
        return ProviderEvent.objects.none()
    failed = ProviderEvent.objects.filter(status=ProviderEvent.Status.FAILED)
    stuck = ProviderEvent.objects.filter(
        status=ProviderEvent.Status.PENDING, received_at__lt=now - INBOX_STUCK_AFTER
    )
    return (failed | stuck).order_by("-received_at", "-id").defer("payload")


def conversations_waiting(scope, now: datetime) -> QuerySet:
    """Customers whose bot is paused: a person has to answer them."""
    return (
        scope.filter(Customer.objects.all())
        .filter(bot_paused_at__isnull=False)
        .select_related("merchant")
        .order_by("-last_interaction_at", "-id")
    )


_KINDS: list[tuple[str, Callable, str, str]] = [
    (
        "review",
        flagged_orders,
        _("Payments flagged for review"),
        _(
            "The amount or currency paid did not match the order, or money came in for an order "
            "that was already closed. Check the payment before shipping or refunding."
        ),
    ),
    (
        "receipt",
        receipts_missing,
        _("Paid, but the receipt was not delivered"),
        _("Paid in the last three days; Messenger has not confirmed delivery of the receipt."),
    ),
    (
        "outbox",
        failed_sends,
        _("Messages that could not be sent"),
        _("The Graph API refused these messages; its error is shown with each."),
    ),
    (
        "token",
        pages_token_invalid,
        _("Pages with an invalid access token"),
        _("Shoppers of these pages hear nothing until a new page token is saved."),
    ),
    (
        "overdue",
        orders_overdue,
        _("Unpaid orders past their reservation"),
        _("Their stock is still held; the expiry task should release it within a minute."),
    ),
    (
        "inbox",
        inbox_stuck,
        _("Messenger webhook events stuck or failed"),
        _("Failed, or waiting over five minutes to be processed."),
    ),
    (
        "provider",
        provider_events_stuck,
        _("Payment webhook events stuck or failed"),
        _("Failed, or waiting over five minutes to be processed."),
    ),
    (
        "waiting",
        conversations_waiting,
        _("Conversations waiting for a person"),
        _("The bot is paused for these customers until someone answers and resumes it."),
    ),
]

KINDS = [kind for kind, *_rest in _KINDS]


def attention_problems(*, scope, now: datetime | None = None) -> list[Problem]:
    """Every kind of problem, in a fixed order, each bounded (at most two queries per kind)."""
    now = now or timezone.now()
    problems = []
    for kind, query, title, help_text in _KINDS:
        if kind == "provider" and not scope.is_operator:
            continue
        rows, count, capped = _bounded(query(scope, now))
        problems.append(
            Problem(kind=kind, title=title, help=help_text, rows=rows, count=count, capped=capped)
        )
    return problems
