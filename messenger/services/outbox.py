"""The outbox: every message to a shopper is an ``OutboundMessage`` row, written in the
transaction that causes it and delivered afterwards by a worker, one customer at a time, in order.

Delivery (``outbox_deliver_customer``) takes a per-customer lock, then sends the customer's
pending rows oldest first through :class:`messenger.client.GraphClient`:

- sent: ``graph_message_id`` and ``sent_at`` recorded; the next row follows;
- transient Graph error (timeout, 5xx, 1200, rate limits): the row waits
  ``min(cap, base * 2**(attempts-1))`` seconds times a random factor in [0.5, 1) and the run
  stops, so later rows never overtake it; after ``OUTBOX_MAX_ATTEMPTS`` it fails;
- permanent Graph error (551, 100/2018001, 10/2018278, 190, ...): the row fails with the Graph
  error and the next row follows; 190 also flags the page (``token_invalid_at``);
- outside the 24-hour window: only post-purchase updates (``POST_PURCHASE_UPDATE`` tag) and
  human-agent replies within 7 days (``HUMAN_AGENT`` tag) go out; other rows are skipped.

Delivery is at least once: a worker that dies between Graph's answer and the row update sends
that message again on the next run.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from core.locks import try_lock
from messenger.client import GraphClient, json_normalize
from messenger.exceptions import GraphError
from messenger.identity import recipient_for
from messenger.models import MessengerPage, OutboundMessage

logger = logging.getLogger(__name__)

__all__ = [
    "messaging_for",
    "outbox_deliver_customer",
    "outbox_due_customer_ids",
    "outbox_enqueue",
    "outbox_mark_delivered",
    "outbox_mark_read",
    "outbox_record_unbuildable",
    "outbox_sweep",
    "retry_delay_seconds",
]

STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
RESPONSE = "RESPONSE"
MESSAGE_TAG = "MESSAGE_TAG"
TAG_POST_PURCHASE_UPDATE = "POST_PURCHASE_UPDATE"
TAG_HUMAN_AGENT = "HUMAN_AGENT"

DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_RETRY_BASE_SECONDS = 10.0
DEFAULT_RETRY_MAX_SECONDS = 1800.0
# A run stops starting sends after this many seconds and queues its continuation: one send may
# take connect + read timeout (13 s), and the task's soft time limit is 30 s.
RUN_SECONDS = 15.0
# The sweep leaves rows alone for this long after they are due: their own task is on its way.
SWEEP_GRACE = timedelta(seconds=10)
SWEEP_LIMIT = 500

Status = OutboundMessage.Status
Kind = OutboundMessage.Kind

_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


# --------------------------------------------------------------------------------------------
# Pure decisions
# --------------------------------------------------------------------------------------------


def messaging_for(
    *, kind: str, last_interaction_at: datetime | None, now: datetime
) -> tuple[str, str] | None:
    """``(messaging_type, tag)`` for a message of ``kind`` sent at ``now``, or None when the
    platform's policy forbids sending it (the row is skipped).

    Inside 24 hours of the customer's last message anything goes out as ``RESPONSE``. After
    that only post-purchase updates (tag ``POST_PURCHASE_UPDATE``) and, up to 7 days, replies
    typed by a person (tag ``HUMAN_AGENT``); nothing promotional.
    """
    since = now - last_interaction_at if last_interaction_at is not None else None
    if since is not None and since <= STANDARD_WINDOW:
        return RESPONSE, ""
    if kind == Kind.UPDATE:
        return MESSAGE_TAG, TAG_POST_PURCHASE_UPDATE
    if kind == Kind.HUMAN_AGENT and since is not None and since <= HUMAN_AGENT_WINDOW:
        return MESSAGE_TAG, TAG_HUMAN_AGENT
    return None


def retry_delay_seconds(
    attempts: int,
    *,
    base: float = DEFAULT_RETRY_BASE_SECONDS,
    cap: float = DEFAULT_RETRY_MAX_SECONDS,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds before the next try after ``attempts`` failed ones: exponential, capped, with
    jitter (a factor in [0.5, 1)) so that customers failed by one outage don't retry in step."""
    exponential = min(cap, base * 2 ** max(attempts - 1, 0))
    return exponential * (0.5 + rand() / 2)


# --------------------------------------------------------------------------------------------
# Enqueue
# --------------------------------------------------------------------------------------------


def outbox_enqueue(
    *,
    customer,
    page: MessengerPage,
    message: dict[str, Any],
    kind: str = Kind.RESPONSE,
    dedupe_key: str | None = None,
    order=None,
) -> OutboundMessage | None:
    """Write one message to the outbox in the caller's transaction; deliver it after commit.

    Call it inside the transaction whose change causes the message: when that transaction rolls
    back, no row remains and nothing is sent. ``message`` is a Send API ``message`` object (as
    the builders return; ``Decimal`` amounts are fine). ``dedupe_key`` (e.g.
    ``receipt:<order id>``) makes the call idempotent: when a row with that key exists, nothing
    is written and None is returned.

    :raises ValueError: the customer does not belong to the page.
    """
    if customer.merchant_id != page.merchant_id or customer.page_id != page.page_id:
        raise ValueError(f"customer {customer.pk} does not belong to page {page.page_id}")
    if not isinstance(message, dict):
        raise ValueError("message must be a Send API message object (a dict)")
    if dedupe_key is not None and OutboundMessage.objects.filter(dedupe_key=dedupe_key).exists():
        return None
    fields = {
        "customer": customer,
        "page": page,
        "kind": kind,
        "dedupe_key": dedupe_key,
        "order": order,
        "message": json_normalize(message),
    }
    try:
        # A savepoint: losing a race on the dedupe key must not break the caller's transaction.
        with transaction.atomic():
            row = OutboundMessage.objects.create(**fields)
    except IntegrityError:
        if (
            dedupe_key is not None
            and OutboundMessage.objects.filter(dedupe_key=dedupe_key).exists()
        ):
            return None
        raise
    _publish_after_commit(customer.pk)
    return row


def outbox_record_unbuildable(
    *,
    customer,
    page: MessengerPage,
    kind: str,
    dedupe_key: str | None,
    order=None,
    error_message: str,
) -> OutboundMessage | None:
    """Record, as a ``failed`` row, a message that could not even be built.

    For the order notices: formatting a message must never block the order change that causes
    it, but the shopper missing a message must not go unnoticed either. The row carries no
    Send API body (``{}``), is never sent, and shows in the dashboard's failed sends and on the
    order's timeline with ``error_code`` ``build_failed``. It takes the message's dedupe key, so
    the same notice handled again does not record a second failure (or send a late duplicate).
    Returns None when a row with that key exists already.
    """
    if dedupe_key is not None and OutboundMessage.objects.filter(dedupe_key=dedupe_key).exists():
        return None
    try:
        with transaction.atomic():
            return OutboundMessage.objects.create(
                customer=customer,
                page=page,
                kind=kind,
                dedupe_key=dedupe_key,
                order=order,
                message={},
                status=Status.FAILED,
                error_code="build_failed",
                error_message=error_message[:500],
            )
    except IntegrityError:
        if dedupe_key is not None:
            return None
        raise


# --------------------------------------------------------------------------------------------
# Deliver
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _RunEnd:
    sent: int
    retry_at: datetime | None = None  # the head row was deferred by this run
    out_of_time: bool = False


def outbox_deliver_customer(*, customer_id: int, run_seconds: float = RUN_SECONDS) -> int:
    """Send the customer's due pending messages, oldest first; return how many were sent.

    Only one caller sends for a customer at a time: the others return 0 at once (the holder
    looks for new rows after it lets go, so none is left behind). Call it outside a
    transaction: each row's outcome is committed as soon as Graph has answered.

    The lock is a PostgreSQL *session* advisory lock on the customer id, not a row lock. A row
    lock lives in a transaction, so holding one across the loop would mean either one long
    transaction around HTTP calls (outcomes committed only at the end: a crash re-sends
    everything) or row locks on ``Customer`` that block the conversation's own updates of that
    customer while a send waits for Graph. The advisory lock excludes only other senders, spans
    the per-row commits, and is released by PostgreSQL when the worker's connection dies. Other
    databases (SQLite, for development) use an exclusive ``flock`` per customer and database
    file, which also excludes worker processes on the machine.

    When a row is deferred after a transient error, or the run's time is up, this schedules
    the next run itself (``outbox_deliver`` with a countdown, after commit).
    """
    sent = 0
    while True:
        with _customer_send_lock(customer_id) as held:
            if not held:
                return sent
            end = _drain(customer_id, deadline=time.monotonic() + run_seconds)
        sent += end.sent
        if end.out_of_time:
            _publish_after_commit(customer_id)
            return sent
        if end.retry_at is not None:
            countdown = max((end.retry_at - timezone.now()).total_seconds(), 0.0)
            _publish_after_commit(customer_id, countdown=countdown)
            return sent
        # A row enqueued while we held the lock may have seen it taken and left: look again.
        head = _head(customer_id)
        if head is None or not _is_due(head, timezone.now()):
            return sent


def _head(customer_id: int) -> OutboundMessage | None:
    """The customer's oldest pending row: the only one that may be sent next."""
    return (
        OutboundMessage.objects.select_related("page", "customer")
        .filter(customer_id=customer_id, status=Status.PENDING)
        .order_by("id")
        .first()
    )


def _is_due(row: OutboundMessage, now: datetime) -> bool:
    return row.next_attempt_at is None or row.next_attempt_at <= now


def _drain(customer_id: int, *, deadline: float) -> _RunEnd:
    """Precondition: the caller holds the customer's send lock."""
    sent = 0
    while True:
        row = _head(customer_id)
        now = timezone.now()
        if row is None or not _is_due(row, now):
            return _RunEnd(sent)
        if time.monotonic() > deadline:
            return _RunEnd(sent, out_of_time=True)
        outcome = _deliver_row(row, now)
        if outcome == Status.SENT:
            sent += 1
        elif outcome == Status.PENDING:
            return _RunEnd(sent, retry_at=row.next_attempt_at)


def _deliver_row(row: OutboundMessage, now: datetime) -> str:
    """Try one row; return its new status (PENDING: deferred after a transient error)."""
    page = row.page
    refusal = _page_refusal(page)
    if refusal is not None:
        _finish(row, Status.FAILED, error_code=refusal[0], error_message=refusal[1])
        return Status.FAILED

    decision = messaging_for(
        kind=row.kind, last_interaction_at=row.customer.last_interaction_at, now=now
    )
    if decision is None:
        _finish(
            row,
            Status.SKIPPED,
            error_code="outside_window",
            error_message=(
                f"Not sent: a {row.kind} message outside the customer's 24-hour window "
                "cannot be tagged."
            ),
        )
        return Status.SKIPPED
    messaging_type, tag = decision
    body: dict[str, Any] = {
        "recipient": recipient_for(row.customer.psid),
        "messaging_type": messaging_type,
    }
    if tag:
        body["tag"] = tag
    body["message"] = row.message

    row.messaging_type, row.tag = messaging_type, tag
    row.attempts += 1
    try:
        message_id = GraphClient(page).send(body)
    except GraphError as error:
        return _record_failure(row, error)
    row.status = Status.SENT
    row.graph_message_id = message_id
    row.sent_at = timezone.now()
    row.next_attempt_at = None
    row.error_code = row.error_message = ""
    row.save(
        update_fields=[
            "status",
            "graph_message_id",
            "sent_at",
            "next_attempt_at",
            "error_code",
            "error_message",
            "messaging_type",
            "tag",
            "attempts",
        ]
    )
    return Status.SENT


def _page_refusal(page: MessengerPage) -> tuple[str, str] | None:
    if page.token_invalid_at is not None:
        return (
            "token_invalid",
            f"Page {page.page_id}: Facebook rejected its access token "
            f"({page.token_invalid_at:%Y-%m-%d %H:%M} UTC); connect the page again.",
        )
    if not page.access_token:
        return ("no_token", f"Page {page.page_id} has no access token.")
    if not page.is_active:
        return ("page_inactive", f"Page {page.page_id} is not active.")
    return None


def _record_failure(row: OutboundMessage, error: GraphError) -> str:
    now = timezone.now()
    if error.transient and row.attempts < _max_attempts():
        delay = retry_delay_seconds(
            row.attempts,
            base=float(getattr(settings, "OUTBOX_RETRY_BASE_SECONDS", DEFAULT_RETRY_BASE_SECONDS)),
            cap=float(getattr(settings, "OUTBOX_RETRY_MAX_SECONDS", DEFAULT_RETRY_MAX_SECONDS)),
        )
        row.next_attempt_at = now + timedelta(seconds=delay)
        row.error_code = error.error_code[:32]
        row.error_message = str(error)[:500]
        row.save(
            update_fields=[
                "next_attempt_at",
                "attempts",
                "error_code",
                "error_message",
                "messaging_type",
                "tag",
            ]
        )
        logger.info(
            "Outbox message %s deferred %.0f s after attempt %s: %s",
            row.pk,
            delay,
            row.attempts,
            error.error_code,
        )
        return Status.PENDING
    with transaction.atomic():
        if error.token_invalid:
            MessengerPage.objects.filter(pk=row.page_id).update(token_invalid_at=now)
            logger.error("Page %s: Graph rejected the access token (190)", row.page.page_id)
        _finish(row, Status.FAILED, error_code=error.error_code, error_message=str(error))
    return Status.FAILED


def _finish(row: OutboundMessage, status: str, *, error_code: str, error_message: str) -> None:
    row.status = status
    row.error_code = error_code[:32]
    row.error_message = error_message[:500]
    row.next_attempt_at = None
    row.save(
        update_fields=[
            "status",
            "error_code",
            "error_message",
            "next_attempt_at",
            "attempts",
            "messaging_type",
            "tag",
        ]
    )
    logger.info("Outbox message %s %s: %s", row.pk, status, error_code)


def _max_attempts() -> int:
    return int(getattr(settings, "OUTBOX_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS))


# --------------------------------------------------------------------------------------------
# The per-customer send lock
# --------------------------------------------------------------------------------------------


def _customer_send_lock(customer_id: int):
    """Yield whether this caller may send for the customer (``core.locks.try_lock``; never
    waits)."""
    return try_lock(f"outbox:{customer_id}")


# --------------------------------------------------------------------------------------------
# Scheduling (Celery publish after commit; the sweep catches what a Redis failure lost)
# --------------------------------------------------------------------------------------------


def _publish(customer_id: int, countdown: float | None = None) -> None:
    from messenger.tasks.outbox import outbox_deliver  # the tasks module imports this one

    try:
        outbox_deliver.apply_async(
            (customer_id,), countdown=countdown, retry=True, retry_policy=_PUBLISH_RETRY
        )
    except Exception:  # Redis down: the row is safe in the database; outbox_sweep re-publishes
        logger.warning(
            "Could not schedule outbox delivery for customer %s", customer_id, exc_info=True
        )


def _publish_after_commit(customer_id: int, countdown: float | None = None) -> None:
    transaction.on_commit(partial(_publish, customer_id, countdown))


def outbox_due_customer_ids(*, now: datetime | None = None, limit: int = SWEEP_LIMIT) -> list[int]:
    """Customers whose oldest pending row has been due for over ``SWEEP_GRACE`` (its delivery
    task was lost, or never published because Redis was down)."""
    cutoff = (now or timezone.now()) - SWEEP_GRACE
    earlier_pending = OutboundMessage.objects.filter(
        customer_id=OuterRef("customer_id"), status=Status.PENDING, id__lt=OuterRef("pk")
    )
    heads = (
        OutboundMessage.objects.filter(status=Status.PENDING)
        .filter(
            Q(next_attempt_at__lte=cutoff) | Q(next_attempt_at__isnull=True, created_at__lte=cutoff)
        )
        .filter(~Exists(earlier_pending))
        .order_by("id")
        .values_list("customer_id", flat=True)
    )
    return list(dict.fromkeys(heads[:limit]))


def outbox_sweep(*, now: datetime | None = None) -> int:
    """Publish a delivery for every customer with an overdue message; return how many."""
    customer_ids = outbox_due_customer_ids(now=now)
    for customer_id in customer_ids:
        _publish(customer_id)
    return len(customer_ids)


# --------------------------------------------------------------------------------------------
# Delivery and read receipts (webhook ``delivery`` / ``read`` events)
# --------------------------------------------------------------------------------------------


def _as_datetime(watermark: int | float | datetime | None) -> datetime | None:
    if watermark is None or isinstance(watermark, datetime):
        return watermark
    if not watermark:
        return None
    return datetime.fromtimestamp(watermark / 1000, tz=UTC)


def outbox_mark_delivered(
    *, page_id: str, psid: str, mids=(), watermark: int | float | datetime | None = None
) -> int:
    """Mark sent messages to (page, psid) delivered: those with one of ``mids`` and all sent at
    or before ``watermark`` (Messenger's epoch milliseconds). Never moves a row backwards
    (read stays read). Returns how many rows changed."""
    condition = Q(graph_message_id__in=[mid for mid in mids if mid])
    at = _as_datetime(watermark)
    if at is not None:
        condition |= Q(sent_at__lte=at)
    return OutboundMessage.objects.filter(
        condition,
        page__page_id=page_id,
        customer__page_id=page_id,
        customer__psid=psid,
        status=Status.SENT,
    ).update(status=Status.DELIVERED, delivered_at=timezone.now())


def outbox_mark_read(*, page_id: str, psid: str, watermark: int | float | datetime) -> int:
    """Mark messages to (page, psid) sent at or before ``watermark`` read (which implies
    delivered). Returns how many rows changed."""
    at = _as_datetime(watermark)
    if at is None:
        return 0
    now = timezone.now()
    return OutboundMessage.objects.filter(
        page__page_id=page_id,
        customer__page_id=page_id,
        customer__psid=psid,
        status__in=[Status.SENT, Status.DELIVERED],
        sent_at__lte=at,
    ).update(status=Status.READ, read_at=now, delivered_at=Coalesce("delivered_at", Value(now)))
