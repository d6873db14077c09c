"""The payment webhook inbox: store each verified Stripe event once, then process it in the worker.

The webhook view verifies the signature, calls :func:`provider_event_store` and answers 200; the
``payments.tasks.process_provider_event`` task calls :func:`provider_event_process`, which picks
the handler for the event's type from :data:`HANDLERS` (unknown types are marked ignored).

Safe to run twice and side by side. Processing takes, in this order and always in this order,
the ``ProviderEvent`` row lock (a second run of the same event waits, then finds it done), the
``Order`` row lock, then the ``Payment`` / ``Refund`` row lock; the commerce transition services
re-check the order's status under the same order lock. Network calls (card details of a paid
session) are made *before* the transaction, never while a lock is held.

``ProviderEvent.error`` holds the last failure of an event still pending or failed, and, for
one processed or ignored, a short note of what was done (for the operators' admin).

Retries: an event that refers to an order or a refund we cannot see yet (``_NotYet``), or whose
handler failed unexpectedly, is tried again with exponential backoff: the failure is recorded on
the row (``attempts``, ``error``) and :class:`ProviderEventRetry` tells the task when to run
again. The counter lives on the row, not in Celery, so a retry chain lost with Redis and picked up
again by the sweep still stops: after ``MAX_ATTEMPTS`` tries the event is marked ``failed`` and
stays visible in the admin (where an operator can re-process it). A payload that can never be
processed (no order id at all) fails at once.

What each handler does is in its docstring; the rules the issue insists on:

* a session is marked paid only when ``payment_status == "paid"`` and its amount and currency
  equal the order's; otherwise the payment is recorded as a mismatch, the order is flagged for
  review and the operators are alerted;
* money for an order that expired, was cancelled or failed payment is recorded, never turned into
  a paid order: the order is flagged for review with its stock situation re-checked;
* an expired or failed session closes the order only while the order is still pending payment
  and no newer session was opened for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from commerce.exceptions import InvalidTransition
from commerce.models import Order, OrderEvent
from commerce.services.orders import (
    order_expire,
    order_mark_paid_if_pending,
    order_payment_failed,
)
from core.jsonb import jsonb_storable
from core.money import Money
from payments.gateways import GatewayError, gateway_for
from payments.models import Payment, ProviderEvent, Refund
from payments.services.alerts import order_flag_and_alert
from payments.services.refund_sending import refunds_check_soon
from payments.services.refunds import refund_complete, refund_record_external

__all__ = [
    "HANDLERS",
    "MAX_ATTEMPTS",
    "ProviderEventInvalid",
    "ProviderEventRetry",
    "payment_settle",
    "provider_event_process",
    "provider_event_requeue",
    "provider_event_store",
    "provider_events_stale",
]

logger = logging.getLogger(__name__)

Status = ProviderEvent.Status
OrderStatus = Order.Status

#: Tries before an event is marked failed (the first one plus five retries).
MAX_ATTEMPTS = 6
#: Backoff of the n-th retry: 10 s, 20 s, 40 s, 80 s, 160 s (about five minutes in all).
RETRY_BASE_SECONDS = 10
RETRY_MAX_SECONDS = 600
#: The sweep re-enqueues events never tried after this long (their enqueue was lost) ...
STALE_AFTER = timedelta(minutes=1)
#: ... and events whose retry chain should have ended long ago (lost with Redis).
RETRY_CHAIN_LOST_AFTER = timedelta(minutes=15)

_PAID_STATUSES = frozenset(
    {
        OrderStatus.PAID,
        OrderStatus.FULFILLED,
        OrderStatus.DELIVERED,
        OrderStatus.PARTIALLY_REFUNDED,
        OrderStatus.REFUNDED,
    }
)
_MAX_ERROR_LENGTH = 2000
_AMOUNT_LIMIT = 2**63  # amounts are BigIntegerFields
_CLOSED_WORDS = {
    OrderStatus.EXPIRED: "the order expired",
    OrderStatus.CANCELLED: "the order was cancelled",
    OrderStatus.PAYMENT_FAILED: "the order's payment had failed",
}


class ProviderEventInvalid(ValueError):
    """A verified body that is not a usable event (no id or type): answer 400, store nothing."""


class ProviderEventRetry(Exception):
    """Processing failed for now; the task should run again in ``countdown`` seconds."""

    def __init__(self, message: str, *, countdown: int):
        super().__init__(message)
        self.countdown = countdown


class _NotYet(Exception):
    """Something the event refers to is not visible yet (an order, a refund id): retry later."""


class _Unusable(Exception):
    """The event can never be processed as it is (no order reference): fail it at once."""


@dataclass
class _Outcome:
    """What a handler did: the event's final status and a short note for the admin."""

    status: str = Status.PROCESSED
    note: str = ""


@dataclass(frozen=True)
class Handler:
    """How one event type is processed.

    ``prepare(obj)`` runs first, outside any transaction: lookups that may ask for a retry
    (``_NotYet``) and network calls. ``apply(event, obj, prepared)`` runs inside the
    transaction, with the event row locked and still pending.
    """

    apply: Callable[[ProviderEvent, dict[str, Any], Any], _Outcome]
    prepare: Callable[[dict[str, Any]], Any] = field(default=lambda obj: None)


# -- store --------------------------------------------------------------------------------------


def provider_event_store(*, gateway: str, event: Mapping[str, Any]) -> tuple[ProviderEvent, bool]:
    """Store a verified event; ``(row, created)``. A replayed event id changes nothing.

    The caller enqueues processing after commit when ``created`` (the sweep catches an enqueue
    that was lost). Concurrent deliveries of one id insert one row: the unique (gateway,
    event_id) constraint decides, and the losers get the winner's row.

    :raises ProviderEventInvalid: the event has no usable ``id`` or ``type``.
    """
    event_id, kind = event.get("id"), event.get("type")
    if not _is_name(event_id, max_length=255):
        raise ProviderEventInvalid("The event has no id.")
    if not _is_name(kind, max_length=100):
        raise ProviderEventInvalid("The event has no type.")
    existing = ProviderEvent.objects.filter(gateway=gateway, event_id=event_id).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            row = ProviderEvent.objects.create(
                gateway=gateway,
                event_id=event_id,
                type=kind,
                # NUL and lone surrogates (which jsonb refuses) replaced: a body that can never
                # be stored would answer 500 and be redelivered for days.
                payload=jsonb_storable(dict(event)),
                livemode=bool(event.get("livemode")),
            )
    except IntegrityError:
        # A concurrent delivery of the same event committed first.
        return ProviderEvent.objects.get(gateway=gateway, event_id=event_id), False
    return row, True


def _is_name(value: Any, *, max_length: int) -> bool:
    """Stripe ids and event types are short printable ASCII (``evt_...``, ``charge.refunded``):
    anything else (NUL, surrogates, control characters) is not an event of theirs."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= max_length
        and value.isascii()
        and value.isprintable()
    )


def provider_events_stale(*, now=None, limit: int = 200) -> list[int]:
    """Ids of pending events the worker should have processed by now (for the beat sweep).

    Events never tried after ``STALE_AFTER`` (the enqueue after commit was lost, e.g. Redis was
    down), and events in a retry chain older than ``RETRY_CHAIN_LOST_AFTER`` (the chain itself
    was lost). Events waiting for their next retry are left to it.
    """
    now = now or timezone.now()
    return list(
        ProviderEvent.objects.filter(status=Status.PENDING, received_at__lte=now - STALE_AFTER)
        .filter(Q(attempts=0) | Q(received_at__lte=now - RETRY_CHAIN_LOST_AFTER))
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def provider_event_requeue(*, event: ProviderEvent) -> bool:
    """Put a failed (or ignored) event back to pending with a fresh retry budget, for an
    operator's "re-process" action. Returns False for an event already processed or pending."""
    updated = ProviderEvent.objects.filter(
        pk=event.pk, status__in=[Status.FAILED, Status.IGNORED]
    ).update(status=Status.PENDING, attempts=0, error="", processed_at=None)
    if updated:
        event.refresh_from_db()
    return bool(updated)


# -- process ------------------------------------------------------------------------------------


def provider_event_process(*, event_id: int) -> str:
    """Process one stored event (by ``ProviderEvent`` id); return its status afterwards.

    Safe to call twice and concurrently: an event that is no longer pending is left as it is.

    :raises ProviderEventRetry: the event should be tried again later (recorded on the row).
    """
    event = ProviderEvent.objects.filter(pk=event_id).first()
    if event is None:
        logger.warning("Provider event %s does not exist; nothing to process.", event_id)
        return "missing"
    if event.status != Status.PENDING:
        return event.status
    handler = HANDLERS.get(event.type)
    if handler is None:
        return _finish_simple(event_id, _Outcome(Status.IGNORED, f"No handler for {event.type}."))
    obj = _data_object(event)
    try:
        prepared = handler.prepare(obj)
        with transaction.atomic():
            locked = ProviderEvent.objects.select_for_update().get(pk=event_id)
            if locked.status != Status.PENDING:
                return locked.status
            outcome = handler.apply(locked, obj, prepared)
            _finish(locked, outcome)
        return outcome.status
    except _Unusable as error:
        logger.error(
            "Stripe event %s (%s) cannot be processed: %s", event.event_id, event.type, error
        )
        return _record_failure(event_id, str(error), final=True)
    except _NotYet as error:
        logger.info("Stripe event %s (%s) must wait: %s", event.event_id, event.type, error)
        return _record_failure(event_id, str(error))
    except Exception as error:
        logger.exception("Stripe event %s (%s) failed.", event.event_id, event.type)
        return _record_failure(event_id, f"{type(error).__name__}: {error}")


def _finish(event: ProviderEvent, outcome: _Outcome) -> None:
    event.status = outcome.status
    event.processed_at = timezone.now()
    event.attempts += 1
    event.error = outcome.note[:_MAX_ERROR_LENGTH]
    event.save(update_fields=["status", "processed_at", "attempts", "error"])


def _finish_simple(event_id: int, outcome: _Outcome) -> str:
    ProviderEvent.objects.filter(pk=event_id, status=Status.PENDING).update(
        status=outcome.status, processed_at=timezone.now(), error=outcome.note
    )
    return outcome.status


def _record_failure(event_id: int, error: str, *, final: bool = False) -> str:
    """Count the try and keep the error; fail the event after its last try, else ask for a retry.

    :raises ProviderEventRetry: when another try is due.
    """
    with transaction.atomic():
        event = ProviderEvent.objects.select_for_update().get(pk=event_id)
        if event.status != Status.PENDING:
            return event.status
        event.attempts += 1
        event.error = error[:_MAX_ERROR_LENGTH]
        fields = ["attempts", "error"]
        if final or event.attempts >= MAX_ATTEMPTS:
            event.status = Status.FAILED
            event.processed_at = timezone.now()
            fields += ["status", "processed_at"]
        event.save(update_fields=fields)
    if event.status == Status.FAILED:
        logger.error(
            "Stripe event %s (%s) failed after %d tries: %s",
            event.event_id,
            event.type,
            event.attempts,
            error,
        )
        return Status.FAILED
    countdown = min(RETRY_BASE_SECONDS * 2 ** (event.attempts - 1), RETRY_MAX_SECONDS)
    raise ProviderEventRetry(error, countdown=countdown)


# -- reading the event ---------------------------------------------------------------------------


def _data_object(event: ProviderEvent) -> dict[str, Any]:
    data = event.payload.get("data") if isinstance(event.payload, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    return obj if isinstance(obj, dict) else {}


def _as_id(value: Any) -> str:
    """An expandable Stripe field (``"pi_..."`` or ``{"id": "pi_..."}``) -> its id or ``""``."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) else ""


def _order_id(obj: Mapping[str, Any]) -> int:
    """The order an object names (``client_reference_id``, else ``metadata.order_id``).

    :raises _Unusable: it names none, or not as a positive integer.
    """
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    for value in (obj.get("client_reference_id"), metadata.get("order_id")):
        if value in (None, ""):
            continue
        text = str(value)
        if text.isascii() and text.isdigit() and 0 < int(text) < 2**63:
            return int(text)
        raise _Unusable(f"The order reference {text[:40]!r} is not an order id.")
    raise _Unusable("The event names no order (client_reference_id / metadata.order_id).")


def _amount(obj: Mapping[str, Any], key: str, currency: str) -> int | None:
    """Stripe's amount ``obj[key]`` in our minor units, or None when absent or not exact."""
    from payments.gateways.stripe import from_stripe_amount  # the Stripe adapter's own rule

    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not currency:
        return None
    try:
        minor = from_stripe_amount(value, currency)
    except (GatewayError, ValueError, LookupError):
        return None
    # Negative, or beyond our BigIntegerField (recording it would fail the event for good).
    return minor if 0 <= minor < _AMOUNT_LIMIT else None


def _money(amount_minor: int | None, currency: str) -> str:
    if amount_minor is None:
        return "?"
    try:
        return Money(amount_minor, currency).format("en")
    except Exception:  # an unknown currency code from the payload
        return f"{amount_minor} {currency} (minor units)"


def _flag(order: Order, *, reason: str, subject: str, details: str) -> None:
    order_flag_and_alert(order=order, reason=reason, subject=subject, details=details)


# -- checkout sessions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Card:
    charge_id: str = ""
    brand: str = ""
    last4: str = ""


@dataclass(frozen=True)
class _SessionPrepared:
    order_id: int
    card: _Card


def _session_prepare(session: dict[str, Any]) -> _SessionPrepared:
    """Find the order (or ask for a retry) and, for a paid session, its card details."""
    order_id = _order_id(session)
    if not Order.objects.filter(pk=order_id).exists():
        raise _NotYet(f"Order {order_id} is not there (yet).")
    card = _Card()
    session_id = _as_id(session.get("id"))
    if session.get("payment_status") == "paid" and session_id:
        done = Payment.objects.filter(
            checkout_session_id=session_id, status=Payment.Status.SUCCEEDED
        ).exists()
        if not done:
            card = _card_details(session_id)
    return _SessionPrepared(order_id=order_id, card=card)


def _card_details(session_id: str) -> _Card:
    """Charge id, card brand and last 4 digits of a paid session; empty when the provider
    does not answer (marking the order paid never waits for these)."""
    try:
        session = gateway_for("stripe").session_retrieve(session_id=session_id)
    except Exception as error:  # GatewayError, or anything unexpected from the adapter
        logger.warning("No card details for session %s: %s", session_id, error)
        return _Card()
    intent = session.get("payment_intent")
    charge = intent.get("latest_charge") if isinstance(intent, dict) else None
    if not isinstance(charge, dict):
        return _Card(charge_id=_as_id(charge))
    details = charge.get("payment_method_details") or {}
    card = details.get("card") if isinstance(details, dict) else None
    card = card if isinstance(card, dict) else {}
    return _Card(
        charge_id=_as_id(charge),
        brand=str(card.get("brand") or "")[:20],
        last4=str(card.get("last4") or "")[:4],
    )


def _lock_order(order_id: int) -> Order:
    order = Order.objects.select_for_update().filter(pk=order_id).first()
    if order is None:  # deleted between prepare and apply: treat like "not there yet"
        raise _NotYet(f"Order {order_id} is not there (yet).")
    return order


def _session_payment(order: Order, session: Mapping[str, Any], event: ProviderEvent) -> Payment:
    """The locked Payment row of this session, created when none exists yet.

    Found by session id, else by the ``metadata.payment_id`` the checkout put on the session
    (a row whose session id was not saved). A session we never recorded (opened elsewhere, or
    its row was lost) gets a new row, so the money is never unaccounted for.
    """
    session_id = _as_id(session.get("id"))
    payments = Payment.objects.select_for_update()
    payment = payments.filter(checkout_session_id=session_id).first() if session_id else None
    metadata = session.get("metadata") if isinstance(session.get("metadata"), dict) else {}
    payment_id = str(metadata.get("payment_id") or "")
    if payment is None and payment_id.isdigit():
        payment = payments.filter(pk=int(payment_id), order=order).first()
        if payment is not None and not payment.checkout_session_id and session_id:
            payment.checkout_session_id = session_id
            payment.save(update_fields=["checkout_session_id", "updated_at"])
    if payment is not None:
        if payment.order_id != order.pk:
            raise _Unusable(
                f"Session {session_id} belongs to order {payment.order_id}, "
                f"the event names order {order.pk}."
            )
        return payment
    currency = str(session.get("currency") or order.currency).upper()[:3]
    amount = _amount(session, "amount_total", currency)
    last_attempt = order.payments.aggregate(last=Max("attempt"))["last"] or 0
    logger.warning("Stripe session %s of order %s had no payment row.", session_id, order.pk)
    return Payment.objects.create(
        order=order,
        gateway=Payment.Gateway.STRIPE_CHECKOUT,
        attempt=last_attempt + 1,
        amount_minor=max(amount or 0, 0),
        currency=currency,
        idempotency_key=f"stripe-session:{session_id or event.event_id}"[:100],
        checkout_session_id=session_id or None,
        is_test=not event.livemode,
    )


def _record_session_ids(payment: Payment, session: Mapping[str, Any], card: _Card) -> list[str]:
    """Copy the provider ids onto ``payment`` (not saved); return the changed field names."""
    changed = []
    intent = _as_id(session.get("payment_intent"))
    if intent and payment.payment_intent_id != intent:
        payment.payment_intent_id = intent
        changed.append("payment_intent_id")
    # charge_id is unique: another row claiming it would mean the data is already wrong.
    if (
        card.charge_id
        and not payment.charge_id
        and not Payment.objects.filter(charge_id=card.charge_id).exclude(pk=payment.pk).exists()
    ):
        payment.charge_id = card.charge_id
        changed.append("charge_id")
    if card.brand and not payment.card_brand:
        payment.card_brand = card.brand
        changed.append("card_brand")
    if card.last4 and not payment.card_last4:
        payment.card_last4 = card.last4
        changed.append("card_last4")
    return changed


def _close_other_sessions(order: Order, *, paid: Payment) -> None:
    """After commit, expire the order's other open sessions so nobody can pay it twice.

    Their ``checkout.session.expired`` events then close those payments; the order, paid,
    is left alone. A failure is logged: a session paid anyway is caught as a double payment.
    """
    open_sessions = list(
        order.payments.filter(status=Payment.Status.PENDING, checkout_session_id__isnull=False)
        .exclude(pk=paid.pk)
        .values_list("checkout_session_id", flat=True)
    )
    if not open_sessions:
        return

    def expire() -> None:
        gateway = gateway_for("stripe")
        for session_id in open_sessions:
            try:
                gateway.checkout_expire(session_id=session_id)
            except Exception:
                logger.exception(
                    "Could not expire session %s of paid order %s.", session_id, order.pk
                )

    transaction.on_commit(expire)


def _stock_situation(order: Order) -> str:
    """Can the order's lines still be served from stock? Its reservation was released."""
    short = []
    for line in order.lines.select_related("variant").order_by("pk"):
        variant = line.variant
        available = variant.stock_available if variant is not None else 0
        if variant is None or not variant.is_active or available < line.quantity:
            short.append(f"{line.sku} ({line.quantity} ordered, {available} available)")
    if not short:
        return "stock is still available for every line"
    return "stock is short: " + ", ".join(short)


def _session_paid(event: ProviderEvent, session: dict[str, Any], prepared: _SessionPrepared):
    """``checkout.session.completed`` / ``async_payment_succeeded``.

    Under the order and payment locks: a payment already recorded is left alone; an unpaid
    session (a delayed method still processing) only records its ids; amount and currency are
    compared with the order (a mismatch is recorded, flagged and alerted, never paid); the order
    is marked paid when it is pending payment; money for an order that is closed, or already paid
    through another session, is recorded and flagged for review.
    """
    order = _lock_order(prepared.order_id)
    payment = _session_payment(order, session, event)
    session_id = _as_id(session.get("id"))
    changed = _record_session_ids(payment, session, prepared.card)

    if payment.status == Payment.Status.SUCCEEDED:
        if changed:
            payment.save(update_fields=[*changed, "updated_at"])
        return _Outcome(note="The payment was already recorded.")

    payment_status = session.get("payment_status")
    if payment_status != "paid":
        if changed:
            payment.save(update_fields=[*changed, "updated_at"])
        return _Outcome(note=f"Session {session_id} is not paid yet ({payment_status}).")

    currency = str(session.get("currency") or "").upper()
    amount = _amount(session, "amount_total", currency)
    return payment_settle(
        order=order,
        payment=payment,
        changed=changed,
        amount_minor=amount,
        currency=currency,
        received=None if amount is not None else str(session.get("amount_total")),
        source=f"Stripe session {session_id}",
        data={
            "payment_id": payment.pk,
            "session_id": session_id,
            "payment_intent_id": payment.payment_intent_id,
            "event_id": event.event_id,
        },
    )


def payment_settle(
    *,
    order: Order,
    payment: Payment,
    changed: Sequence[str] = (),
    amount_minor: int | None,
    currency: str,
    received: str | None = None,
    source: str,
    data: dict[str, Any],
) -> _Outcome:
    """Settle a payment the provider reports as paid (``amount_minor`` of ``currency``) against
    its order: the confirmation path every gateway event shares.

    Call inside a transaction holding the order's row lock (and the payment's), with the provider
    ids already copied onto ``payment`` (``changed`` names those unsaved fields; they are saved
    here). Amount or currency different from the order's: the payment is recorded as a mismatch,
    the order flagged for review and the operators alerted, never paid (``amount_minor`` None
    when the provider's amount could not be read; ``received`` then says what it was). Equal:
    the payment succeeds and the order is marked paid while it is pending payment; money for an
    order that is closed, or already paid through another payment, is recorded and flagged.
    ``source`` names the payment in notes and alerts ("Stripe session cs_...").
    """
    received = received if amount_minor is None else _money(amount_minor, currency)
    if amount_minor != order.total_minor or currency != order.currency:
        expected = _money(order.total_minor, order.currency)
        details = (
            f"{source} was paid {received} ({currency or '?'}), "
            f"the order totals {expected}; it was not marked paid."
        )
        payment.status = Payment.Status.MISMATCH
        payment.failure_reason = details[:300]
        payment.save(update_fields=[*changed, "status", "failure_reason", "updated_at"])
        _flag(
            order,
            reason=f"Payment mismatch: paid {received}, order total {expected}.",
            subject=f"Payment mismatch on order {order.number}",
            details=details,
        )
        return _Outcome(note="Amount or currency mismatch: flagged for review.")

    payment.status = Payment.Status.SUCCEEDED
    payment.succeeded_at = timezone.now()
    payment.failure_reason = ""
    payment.save(update_fields=[*changed, "status", "succeeded_at", "failure_reason", "updated_at"])
    if order.status == OrderStatus.PENDING_PAYMENT:
        order_mark_paid_if_pending(order=order, actor=OrderEvent.Actor.PROVIDER, data=data)
        _close_other_sessions(order, paid=payment)
        return _Outcome(note=f"Order {order.number} marked paid.")

    paid = _money(order.total_minor, order.currency)
    if order.status in _PAID_STATUSES:
        other = order.payments.filter(status=Payment.Status.SUCCEEDED).exclude(pk=payment.pk)
        if not other.exists():
            return _Outcome(note=f"Order {order.number} was already paid.")
        _flag(
            order,
            reason=f"Paid twice: {source} also paid {paid}; refund one payment.",
            subject=f"Order {order.number} was paid twice",
            details=(
                f"{source} paid {paid} for order {order.number}, which was "
                "already paid through another payment. Refund one of them."
            ),
        )
        return _Outcome(note="Second payment for a paid order: flagged for review.")

    stock = _stock_situation(order)
    state = order.get_status_display().lower()
    _flag(
        order,
        reason=f"Paid {paid} after {_CLOSED_WORDS.get(order.status, state)}; {stock}."[:200],
        subject=f"Payment received for closed order {order.number} ({state})",
        details=(
            f"{source} paid {paid} for order {order.number}, whose status "
            f"is {state}: it was not marked paid and its stock reservation was released; "
            f"{stock}. Refund the payment or arrange the order with the customer."
        ),
    )
    return _Outcome(note=f"Payment for a {state} order: flagged for review.")


def _session_closed(*, payment_status: str, order_service: str):
    """``checkout.session.expired`` / ``async_payment_failed``: close the payment, and the order
    while it is pending payment and this is its newest session."""

    def apply(event: ProviderEvent, session: dict[str, Any], prepared: _SessionPrepared):
        order = _lock_order(prepared.order_id)
        payment = _session_payment(order, session, event)
        session_id = _as_id(session.get("id"))
        changed = _record_session_ids(payment, session, _Card())
        if payment.status != Payment.Status.PENDING:
            if changed:
                payment.save(update_fields=[*changed, "updated_at"])
            return _Outcome(note=f"The payment is already {payment.status}.")
        payment.status = payment_status
        if payment_status == Payment.Status.FAILED:
            payment.failure_reason = "The delayed payment failed."
        payment.save(update_fields=[*changed, "status", "failure_reason", "updated_at"])

        if order.status != OrderStatus.PENDING_PAYMENT:
            return _Outcome(note=f"Order {order.number} is {order.status}; left as it is.")
        newer = order.payments.filter(
            status=Payment.Status.PENDING,
            attempt__gt=payment.attempt,
            checkout_session_id__isnull=False,
        )
        if newer.exists():
            return _Outcome(note=f"Order {order.number} has a newer open session; left pending.")
        data = {"payment_id": payment.pk, "session_id": session_id, "event_id": event.event_id}
        if order_service == "expire":
            try:
                order_expire(order=order)
            except InvalidTransition as error:
                if error.code != "not_expired_yet":
                    raise
                # The shopper may still open a new session; the expiry sweep closes the order
                # when its reservation runs out.
                return _Outcome(note="Session expired; the order's reservation is still running.")
            return _Outcome(note=f"Order {order.number} expired.")
        # No ``reason`` text: it travels with the PAYMENT_FAILED notice to the shopper's
        # thread, where the messenger words it in their language.
        order_payment_failed(
            order=order,
            actor=OrderEvent.Actor.PROVIDER,
            data={**data, "provider_status": "async_payment_failed"},
        )
        return _Outcome(note=f"Order {order.number} payment failed.")

    return apply


# -- refunds -------------------------------------------------------------------------------------


def _payment_for_charge(obj: Mapping[str, Any]) -> Payment | None:
    """The payment a charge or refund object belongs to (by charge id, else payment intent)."""
    charge_id = (
        _as_id(obj.get("charge")) if obj.get("object") != "charge" else _as_id(obj.get("id"))
    )
    intent = _as_id(obj.get("payment_intent"))
    if charge_id:
        payment = Payment.objects.filter(charge_id=charge_id).first()
        if payment is not None:
            return payment
    if intent:
        return Payment.objects.filter(payment_intent_id=intent).order_by("-pk").first()
    return None


@dataclass(frozen=True)
class _RefundPrepared:
    refund_id: int | None
    payment_id: int | None


def _refund_prepare(obj: dict[str, Any]) -> _RefundPrepared:
    """Find our Refund row for a Stripe refund object (provider id, else ``metadata.refund_id``).

    Our refunds carry ``metadata.refund_id`` (the gateway sets it), so one whose row is not
    visible yet is retried, and one whose provider id we have not recorded yet is still found.
    A refund of one of our payments without that metadata was made outside our admin (in the
    Stripe Dashboard) and is recorded as such; anything else is not ours.
    """
    provider_id = _as_id(obj.get("id"))
    refund = Refund.objects.filter(provider_refund_id=provider_id).first() if provider_id else None
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    ours = str(metadata.get("refund_id") or "")
    if refund is None and ours.isdigit():
        refund = Refund.objects.select_related("payment").filter(pk=int(ours)).first()
        if refund is None:
            raise _NotYet(f"Refund {ours} is not there (yet).")
        # The metadata names a row: it is this refund only if it refunds that row's payment
        # and the row is not another provider refund's.
        charge, intent = _as_id(obj.get("charge")), _as_id(obj.get("payment_intent"))
        same_payment = (charge and charge == refund.payment.charge_id) or (
            intent and intent == refund.payment.payment_intent_id
        )
        if not same_payment or refund.provider_refund_id not in (None, provider_id):
            refund = None
    if refund is not None:
        return _RefundPrepared(refund_id=refund.pk, payment_id=refund.payment_id)
    payment = _payment_for_charge(obj)
    return _RefundPrepared(refund_id=None, payment_id=payment.pk if payment else None)


def _refund_updated(event: ProviderEvent, obj: dict[str, Any], prepared: _RefundPrepared):
    """``refund.created`` / ``refund.updated`` / ``refund.failed`` / ``charge.refund.updated``:
    finish our refund row (exactly once), or record a refund made outside our admin."""
    status = str(obj.get("status") or "")
    provider_id = _as_id(obj.get("id"))
    failure = str(obj.get("failure_reason") or "")
    if prepared.refund_id is not None:
        refund = Refund.objects.get(pk=prepared.refund_id)
        done = refund_complete(
            refund=refund, status=status, provider_refund_id=provider_id, failure_reason=failure
        )
        note = f"Refund {refund.pk} {status}." if done else f"Refund {refund.pk}: nothing to do."
        return _Outcome(note=note)
    if prepared.payment_id is None:
        return _Outcome(Status.IGNORED, "The refund is not of one of our payments.")
    payment = Payment.objects.get(pk=prepared.payment_id)
    currency = str(obj.get("currency") or payment.currency).upper()
    amount = _amount(obj, "amount", currency)
    if amount is None or amount <= 0 or currency != payment.currency:
        raise _Unusable(f"Refund {provider_id} has no usable amount ({obj.get('amount')}).")
    refund = refund_record_external(
        payment=payment,
        provider_refund_id=provider_id,
        amount_minor=amount,
        status=status,
        failure_reason=failure,
    )
    return _Outcome(note=f"Refund {provider_id} made outside the admin recorded as {refund.pk}.")


def _charge_refunded(event: ProviderEvent, charge: dict[str, Any], prepared: None):
    """``charge.refunded``: finish our refunds the charge names, by their provider ids.

    Never by amounts: the charge's ``amount_refunded`` cannot say which refund succeeded (two
    pending refunds of one amount, one of them failing later). Stripe no longer includes the
    charge's ``refunds`` list; without it, the payment's sent, pending refunds are asked about
    by id at the next refunds sweep, and the ``refund.*`` events finish them anyway.
    """
    payment = _payment_for_charge(charge)
    if payment is None:
        return _Outcome(Status.IGNORED, "The charge is not one of our payments.")
    order = _lock_order(payment.order_id)
    listed = charge.get("refunds")
    if isinstance(listed, dict) and isinstance(listed.get("data"), list):
        by_provider = {
            r.provider_refund_id: r
            for r in Refund.objects.filter(payment=payment, provider_refund_id__isnull=False)
        }
        done = 0
        for item in listed["data"]:
            refund = by_provider.get(_as_id(item))
            if refund is not None and isinstance(item, dict):
                done += refund_complete(
                    refund=refund,
                    status=str(item.get("status") or ""),
                    provider_refund_id=refund.provider_refund_id,
                    failure_reason=str(item.get("failure_reason") or ""),
                )
        return _Outcome(note=f"{done} refund(s) completed from the charge's list.")
    due = refunds_check_soon(payment_id=payment.pk)
    return _Outcome(note=f"{due} pending refund(s) of order {order.number} to be checked by id.")


# -- the table -----------------------------------------------------------------------------------

_SESSION_PAID = Handler(prepare=_session_prepare, apply=_session_paid)
_REFUND = Handler(prepare=_refund_prepare, apply=_refund_updated)

#: Event type -> handler. Types not listed are stored and marked ignored.
HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _SESSION_PAID,
    "checkout.session.async_payment_succeeded": _SESSION_PAID,
    "checkout.session.async_payment_failed": Handler(
        prepare=_session_prepare,
        apply=_session_closed(payment_status=Payment.Status.FAILED, order_service="fail"),
    ),
    "checkout.session.expired": Handler(
        prepare=_session_prepare,
        apply=_session_closed(payment_status=Payment.Status.EXPIRED, order_service="expire"),
    ),
    "charge.refunded": Handler(apply=_charge_refunded),
    "refund.created": _REFUND,
    "refund.updated": _REFUND,
    "refund.failed": _REFUND,
    "charge.refund.updated": _REFUND,
}
