"""Processing the webhook inbox (the worker's half of ``messenger.services.inbox``).

Pending rows are grouped by customer ``(page_id, sender_psid)``; each customer is handled under
a lock (``core.locks.try_lock``), its rows in ``(timestamp_ms, id)`` order, one at a time.

Each row in two steps, so that no network call is ever made while a transaction is open (a
PostgreSQL row lock held across a Graph call, or ``make run``'s SQLite write lock held while the
sandbox, served from the same file, is asked something; see docs/adr/0008):

1. **prepare**, outside any transaction: find the page, parse the event, and do what needs the
   network: the User Profile API for a conversation event, or the whole legacy v1.2 payment
   confirmation (it asks Stripe first, then writes in short transactions of its own, and uses a
   charge once, so running it again is harmless).
2. **apply**, in one short transaction: claim the row (``SELECT ... FOR UPDATE SKIP LOCKED`` and
   a status re-check), make the writes in a savepoint, record the outcome. A failure in either
   step rolls the writes back, counts an attempt and keeps the error; the row stays pending for
   a retry and is marked ``failed`` after :data:`MAX_ATTEMPTS`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from core.locks import try_lock
from messenger import events as ev
from messenger.models import InboundEvent, MessengerPage
from messenger.services.customers import (
    customer_profile_get,
    customer_record_referral,
    customer_touch,
    customer_upsert,
)

__all__ = [
    "DRAIN_MAX_EVENTS",
    "DRAIN_MAX_SECONDS",
    "MAX_ATTEMPTS",
    "DrainResult",
    "inbound_event_process",
    "inbound_events_drain",
    "inbound_events_stale_exist",
]

logger = logging.getLogger(__name__)

Status = InboundEvent.Status

MAX_ATTEMPTS = 5
DRAIN_MAX_EVENTS = 1000
DRAIN_MAX_SECONDS = 20.0  # below CELERY_TASK_SOFT_TIME_LIMIT (30 s)
_CUSTOMERS_PER_PASS = 50

Outcome = tuple[str, str]  # the row's final status and a note
Apply = Callable[[InboundEvent], Outcome]  # the writes, run in the row's transaction


@dataclass(frozen=True)
class DrainResult:
    processed: int  # rows that left `pending` (processed, ignored or failed for good)
    more: bool  # stopped at the per-run bound with rows still waiting


def inbound_events_drain(
    *,
    include_retries: bool = False,
    max_events: int = DRAIN_MAX_EVENTS,
    max_seconds: float = DRAIN_MAX_SECONDS,
) -> DrainResult:
    """Process pending inbox rows, customer by customer, until none is left (or a bound is hit).

    Safe to run in several workers at once: a customer locked by another drain is skipped (that
    drain finishes the customer's rows, and looks for pending rows again after letting go of
    the customer: the ``while`` loop below), and each row is
    claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and a status re-check. A customer whose
    oldest pending row failed before waits for a drain with ``include_retries`` (the sweep's),
    so a failing row is retried about once a minute rather than on every nudge, and the
    customer's later rows stay behind it.
    """
    deadline = time.monotonic() + max_seconds
    processed = 0
    skipped: set[tuple[str, str]] = set()
    while True:
        candidates = [
            (group["page_id"], group["sender_psid"])
            for group in InboundEvent.objects.filter(status=Status.PENDING)
            .values("page_id", "sender_psid")
            .annotate(first=Min("id"))
            .order_by("first")[: _CUSTOMERS_PER_PASS + len(skipped)]
        ]
        candidates = [key for key in candidates if key not in skipped]
        if not candidates:
            return DrainResult(processed=processed, more=False)
        for page_id, psid in candidates:
            if processed >= max_events or time.monotonic() >= deadline:
                return DrainResult(processed=processed, more=True)
            done, finished = _customer_drain(
                page_id=page_id,
                psid=psid,
                include_retries=include_retries,
                budget=max_events - processed,
                deadline=deadline,
            )
            processed += done
            if not finished:
                skipped.add((page_id, psid))
            if processed >= max_events or time.monotonic() >= deadline:
                return DrainResult(processed=processed, more=True)


def _customer_drain(
    *, page_id: str, psid: str, include_retries: bool, budget: int, deadline: float
) -> tuple[int, bool]:
    """Process one customer's pending rows in order. Returns (rows done, whether none is left
    that this drain could take).

    A row of this customer committed after the last look here and before the lock is let go
    has its own drain find the lock taken and leave; it is not lost: the caller
    (``inbound_events_drain``) looks for pending customers again after this returns, so the
    holder of the lock takes it (``tests/messenger/test_inbox_worker.py`` forces that moment).
    """
    done = 0
    with _customer_lock(page_id=page_id, psid=psid) as held:
        if not held:
            return 0, False
        while done < budget and time.monotonic() < deadline:
            head = _head(page_id=page_id, psid=psid)
            if head is None:
                return done, True
            event_id, attempts = head
            if attempts and not include_retries:
                return done, False
            try:
                row = inbound_event_process(event_id=event_id)
            except Exception:  # the database itself failed; leave the customer to the sweep
                logger.exception("inbox: could not process event %s", event_id)
                return done, False
            if row is None or row.status == Status.PENDING:
                return done, False  # claimed elsewhere, or failed and waiting for a retry
            done += 1
    return done, False


def _head(*, page_id: str, psid: str) -> tuple[int, int] | None:
    """``(id, attempts)`` of the customer's oldest pending row: the only one that may go next."""
    return (
        InboundEvent.objects.filter(page_id=page_id, sender_psid=psid, status=Status.PENDING)
        .order_by("timestamp_ms", "id")
        .values_list("id", "attempts")
        .first()
    )


def _customer_lock(*, page_id: str, psid: str):
    """The per-customer processing lock (``core.locks.try_lock``); yields whether it was held.

    A session-level PostgreSQL advisory lock rather than a Redis lock: it is released the
    moment a killed worker's connection ends, with no TTL that must outlast the slowest handler.
    """
    return try_lock(f"inbox:{page_id}:{psid}")


def inbound_event_process(*, event_id: int) -> InboundEvent | None:
    """Process one pending inbox row; return it, or None if it was not pending (done already,
    or being processed by someone else right now).

    Precondition: the caller holds the row's customer lock (``inbound_events_drain`` does), so
    the customer's rows are handled one at a time and in order.

    Call it outside a transaction: the network part of the work (see the module docstring)
    runs before the row's own short transaction.
    """
    row = InboundEvent.objects.filter(pk=event_id, status=Status.PENDING).first()
    if row is None:
        return None
    now = timezone.now()
    try:
        apply = _prepare(row, now=now)
    except Exception as error:
        logger.exception(
            "inbox: event %s (%s) failed, attempt %d", row.pk, row.kind, row.attempts + 1
        )
        return _record(event_id, now=now, error=error)
    return _record(event_id, now=now, apply=apply)


def _record(
    event_id: int, *, now: datetime, apply: Apply | None = None, error: Exception | None = None
) -> InboundEvent | None:
    """Claim the row, run ``apply`` in a savepoint (unless ``error`` already failed it) and
    record the outcome, in one transaction."""
    with transaction.atomic():
        row = (
            InboundEvent.objects.select_for_update(skip_locked=True)
            .filter(pk=event_id, status=Status.PENDING)
            .first()
        )
        if row is None:
            return None
        row.attempts += 1
        if error is None and apply is not None:
            try:
                with transaction.atomic():
                    status, note = apply(row)
            except Exception as exc:
                logger.exception(
                    "inbox: event %s (%s) failed, attempt %d", row.pk, row.kind, row.attempts
                )
                error = exc
        if error is not None:
            row.error = f"{type(error).__name__}: {error}"[:2000]
            if row.attempts >= MAX_ATTEMPTS:
                row.status, row.processed_at = Status.FAILED, now
        else:
            row.status, row.error, row.processed_at = status, note, now
        row.save(update_fields=["status", "error", "processed_at", "attempts"])
    return row


# --------------------------------------------------------------------------------------------
# Per kind: prepare (outside any transaction) returns the writes to apply
# --------------------------------------------------------------------------------------------


def _prepare(row: InboundEvent, *, now: datetime) -> Apply:
    page = MessengerPage.objects.select_related("merchant").filter(page_id=row.page_id).first()
    if page is None or not page.is_active:
        return _done(Status.IGNORED, "unknown or inactive page")
    event = ev.event_parse(row.payload, page_id=row.page_id)
    prepare = _PREPARE.get(type(event), _unknown)
    return prepare(row=row, page=page, event=event, now=now)


def _done(status: str, note: str) -> Apply:
    """Nothing to write: the row just ends with ``status``."""
    return lambda row: (status, note)


def _event_time(event: Any, *, row: InboundEvent) -> datetime:
    """When the customer acted: the event's timestamp (the 24-hour window counts from the
    message, not from when we got to it), but never after we received it (clocks differ)."""
    if not event.timestamp_ms:
        return row.received_at
    return min(datetime.fromtimestamp(event.timestamp_ms / 1000, tz=UTC), row.received_at)


def _conversation(*, row: InboundEvent, page: MessengerPage, event: Any, now: datetime) -> Apply:
    if isinstance(event, ev.MessageEvent) and event.is_echo:
        return _done(Status.PROCESSED, "")  # what the page itself sent
    # The customer's key as the ingest found it: a PSID, or a plugin user's user_ref.
    key = row.sender_psid
    if not key:
        return _done(Status.IGNORED, "no sender")
    profile = customer_profile_get(page=page, psid=key, now=now)  # may ask Graph

    def apply(row: InboundEvent) -> Outcome:
        customer = customer_upsert(page=page, psid=key, profile=profile)
        customer_touch(customer=customer, at=_event_time(event, row=row))
        referral = getattr(event, "referral", None)
        if referral is not None:
            customer_record_referral(customer=customer, referral=referral)
        if row.is_standby:
            # Another app (a person's inbox) has thread control: we keep the customer up to
            # date but do not answer.
            return Status.PROCESSED, "standby"
        from messenger.conversation.engine import conversation_handle  # imports the flows

        conversation_handle(customer=customer, page=page, event=event, inbound_event_id=row.pk)
        return Status.PROCESSED, ""

    return apply


def _delivery(*, row: InboundEvent, page: MessengerPage, event: Any, now: datetime) -> Apply:
    from messenger.services.outbox import outbox_mark_delivered

    def apply(row: InboundEvent) -> Outcome:
        outbox_mark_delivered(
            page_id=page.page_id, psid=event.sender_psid, mids=event.mids, watermark=event.watermark
        )
        return Status.PROCESSED, ""

    return apply


def _read(*, row: InboundEvent, page: MessengerPage, event: Any, now: datetime) -> Apply:
    from messenger.services.outbox import outbox_mark_read

    def apply(row: InboundEvent) -> Outcome:
        outbox_mark_read(page_id=page.page_id, psid=event.sender_psid, watermark=event.watermark)
        return Status.PROCESSED, ""

    return apply


def _legacy_payment(*, row: InboundEvent, page: MessengerPage, event: Any, now: datetime) -> Apply:
    """v1.2 buy button: ``payment`` is confirmed here, whole (Stripe first, then its own short
    transactions); ``pre_checkout`` / ``checkout_update`` were answered in the webhook response
    and are kept for the record. Ignored unless the page is in buy-button mode; a transient
    Stripe failure raises, so the row is retried."""
    from payments.services.buy_button import legacy_payment_process

    return _done(*legacy_payment_process(page=page, event=event))


def _unknown(*, row: InboundEvent, page: MessengerPage, event: Any, now: datetime) -> Apply:
    return _done(Status.IGNORED, f"unhandled event kind {row.kind!r}")


_PREPARE: dict[type, Callable[..., Apply]] = {
    ev.MessageEvent: _conversation,
    ev.PostbackEvent: _conversation,
    ev.ReferralEvent: _conversation,
    ev.OptinEvent: _conversation,
    ev.DeliveryEvent: _delivery,
    ev.ReadEvent: _read,
    ev.PreCheckoutEvent: _legacy_payment,
    ev.CheckoutUpdateEvent: _legacy_payment,
    ev.PaymentEvent: _legacy_payment,
}


# --------------------------------------------------------------------------------------------
# Sweep
# --------------------------------------------------------------------------------------------


def inbound_events_stale_exist(*, older_than: timedelta = timedelta(seconds=60)) -> bool:
    """Whether some row has been pending longer than ``older_than`` (its nudge was lost: Redis
    was down, a worker died, or it failed and waits for a retry). Uses the partial index on
    pending rows."""
    cutoff = timezone.now() - older_than
    return InboundEvent.objects.filter(status=Status.PENDING, received_at__lt=cutoff).exists()
