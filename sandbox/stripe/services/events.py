"""Events: created with each outcome, signed and POSTed to the service's webhook endpoint.

Like Stripe: each event is delivered at least once to ``{PUBLIC_BASE_URL}/payments/stripe/
webhook/`` (or the control's ``webhook_url``) with ``Stripe-Signature: t=<unix>,v1=<hex>``
(HMAC-SHA256 of ``"<t>.<body>"`` with the first secret of ``STRIPE_WEBHOOK_SECRET``, signed
again at each attempt). A non-2xx answer or a connection error is retried with growing delays,
shortened for the sandbox (1 s, 2 s, 4 s ... 64 s: ``MAX_ATTEMPTS`` tries), every attempt logged
on its :class:`EventDelivery`. The controls can duplicate every event, hold events back until
they are released in any order, and make the next attempts fail.

Attempts run in the worker (``sandbox.stripe.tasks.deliver_event``), queued after the commit.
A queued task can be lost (Redis down or restarted): each delivery keeps the time of its next
attempt, and API calls and page views queue again, at most every few seconds per process,
deliveries overdue by ``OVERDUE_AFTER``. While the broker refuses connections, queueing is not
tried again for ``BROKER_BACKOFF_SECONDS`` (each try costs seconds), so requests stay quick.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from sandbox.stripe.models import Control, Event, EventDelivery
from sandbox.stripe.services.objects import API_VERSION, new_id, now

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
RETRY_BASE_SECONDS = 1
DELIVERY_TIMEOUT_SECONDS = 10
WEBHOOK_PATH = "/payments/stripe/webhook/"
RELEASE_ORDERS = ("fifo", "reverse", "shuffle")
OVERDUE_AFTER = timedelta(seconds=30)
SWEEP_EVERY_SECONDS = 10
BROKER_BACKOFF_SECONDS = 10
State = EventDelivery.State

_broker_down_until = 0.0  # time.monotonic() of this process
_next_sweep_at = 0.0


# -- controls -----------------------------------------------------------------------------------


def control_get() -> Control:
    control, _created = Control.objects.get_or_create(pk=1)
    return control


def control_update(*, changes: dict[str, Any]) -> Control:
    """Set some of the controls (already validated by the caller)."""
    control = control_get()
    for name, value in changes.items():
        setattr(control, name, value)
    control.save()
    return control


def control_reset() -> list[int]:
    """Every control back to normal; held deliveries are released in their order."""
    control_update(
        changes={
            "duplicate": False,
            "hold": False,
            "fail_next": 0,
            "webhook_url": "",
            "refund_status": "succeeded",
        }
    )
    return deliveries_release(order="fifo")


def webhook_url() -> str:
    override = control_get().webhook_url
    return override or settings.PUBLIC_BASE_URL.rstrip("/") + WEBHOOK_PATH


# -- creating events ----------------------------------------------------------------------------


def event_emit(
    *,
    type: str,
    obj: dict[str, Any],
    request_id: str | None = None,
    idempotency_key: str | None = None,
    previous_attributes: dict[str, Any] | None = None,
) -> Event:
    """Record an event about ``obj`` (a copy of its current state) and queue its deliveries
    after the commit: one, or two when duplicating; held ones wait for a release."""
    data: dict[str, Any] = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    payload = {
        "id": new_id("evt_1Q"),
        "object": "event",
        "api_version": API_VERSION,
        "created": now(),
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": type,
    }
    event = Event.objects.create(id=payload["id"], type=type, payload=payload)
    control = control_get()
    state = State.HELD if control.hold else State.PENDING
    copies = 2 if control.duplicate else 1
    for copy in range(1, copies + 1):
        delivery = EventDelivery.objects.create(
            event=event,
            copy=copy,
            state=state,
            next_attempt_at=timezone.now() if state == State.PENDING else None,
        )
        if state == State.PENDING:
            transaction.on_commit(partial(_enqueue, delivery.pk))
    return event


def _broker_usable() -> bool:
    return time.monotonic() >= _broker_down_until


def _broker_failed() -> None:
    global _broker_down_until
    _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS


def _enqueue(delivery_id: int, countdown: int = 0) -> None:
    """Queue a delivery; a broker that is down is logged, never raised (the overdue sweep
    queues it again later)."""
    from sandbox.stripe.tasks import deliver_event

    if not _broker_usable():
        return
    try:
        deliver_event.apply_async(args=[delivery_id], countdown=countdown, retry=False)
    except Exception:
        _broker_failed()
        logger.warning("Could not queue Stripe sandbox delivery %s.", delivery_id, exc_info=True)


def deliveries_requeue_overdue(*, limit: int = 100) -> list[int]:
    """Queue again the pending deliveries whose attempt is overdue by ``OVERDUE_AFTER`` (their
    task was lost); each is claimed first, so concurrent sweeps queue it once."""
    now = timezone.now()
    overdue = Q(state=State.PENDING, next_attempt_at__lt=now - OVERDUE_AFTER)
    claimed = []
    for delivery_id in EventDelivery.objects.filter(overdue).values_list("pk", flat=True)[:limit]:
        if EventDelivery.objects.filter(overdue, pk=delivery_id).update(next_attempt_at=now):
            claimed.append(delivery_id)
    for delivery_id in claimed:
        _enqueue(delivery_id)
    return claimed


def deliveries_sweep_lazily() -> None:
    """:func:`deliveries_requeue_overdue`, at most every ``SWEEP_EVERY_SECONDS`` per process
    and only while the broker answers (called from requests: cheap when nothing is due)."""
    global _next_sweep_at
    if time.monotonic() < _next_sweep_at or not _broker_usable():
        return
    _next_sweep_at = time.monotonic() + SWEEP_EVERY_SECONDS
    try:
        deliveries_requeue_overdue()
    except Exception:  # never fail the request that happened to sweep
        logger.exception("Sweeping overdue Stripe sandbox deliveries failed.")


# -- delivering ---------------------------------------------------------------------------------


def signature_header(*, body: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def _secret() -> str:
    secrets = [s.strip() for s in settings.STRIPE_WEBHOOK_SECRET.split(",") if s.strip()]
    return secrets[0] if secrets else ""


@dataclass(frozen=True)
class AttemptOutcome:
    """What one attempt did; ``retry_in`` seconds when another attempt is due."""

    state: str
    status: int | None = None
    retry_in: int | None = None


def _take_forced_failure() -> bool:
    return bool(Control.objects.filter(pk=1, fail_next__gt=0).update(fail_next=F("fail_next") - 1))


def _post(body: bytes) -> tuple[int | None, str]:
    if _take_forced_failure():
        return None, "Failed on purpose (control fail_next)."
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+sandbox)",
        "Stripe-Signature": signature_header(
            body=body, secret=_secret(), timestamp=int(time.time())
        ),
    }
    try:
        response = requests.post(
            webhook_url(), data=body, headers=headers, timeout=DELIVERY_TIMEOUT_SECONDS
        )
    except requests.RequestException as error:
        return None, f"{type(error).__name__}: {error}"[:500]
    return response.status_code, "" if response.ok else response.text[:500]


def delivery_attempt(*, delivery_id: int) -> AttemptOutcome:
    """Make one attempt at a pending delivery and record it; no lock is held while posting.

    A delivery already delivered, failed or held is left alone.
    """
    delivery = EventDelivery.objects.select_related("event").filter(pk=delivery_id).first()
    if delivery is None or delivery.state != State.PENDING:
        return AttemptOutcome(state=delivery.state if delivery else "missing")
    body = json.dumps(delivery.event.payload, separators=(",", ":")).encode()
    status, error = _post(body)
    with transaction.atomic():
        delivery = EventDelivery.objects.select_for_update().get(pk=delivery_id)
        if delivery.state != State.PENDING:
            return AttemptOutcome(state=delivery.state, status=status)
        delivery.attempts += 1
        delivery.last_status = status
        delivery.last_error = error
        delivery.log = [
            *delivery.log,
            {"at": timezone.now().isoformat(), "status": status, "error": error},
        ]
        retry_in = None
        if status is not None and 200 <= status < 300:
            delivery.state = State.DELIVERED
            delivery.delivered_at = timezone.now()
            delivery.next_attempt_at = None
        elif delivery.attempts >= MAX_ATTEMPTS:
            delivery.state = State.FAILED
            delivery.next_attempt_at = None
        else:
            retry_in = RETRY_BASE_SECONDS * 2 ** (delivery.attempts - 1)
            delivery.next_attempt_at = timezone.now() + timedelta(seconds=retry_in)
        delivery.save()
    if delivery.state == State.FAILED:
        logger.warning(
            "Stripe sandbox gave up on %s after %d attempts.", delivery.event_id, MAX_ATTEMPTS
        )
    return AttemptOutcome(state=delivery.state, status=status, retry_in=retry_in)


def deliveries_deliver_in_order(*, delivery_ids: list[int]) -> list[AttemptOutcome]:
    """One attempt at each delivery, in the order given (a released batch); the ones that fail
    continue on their own retry schedule."""
    outcomes = []
    for delivery_id in delivery_ids:
        outcome = delivery_attempt(delivery_id=delivery_id)
        if outcome.retry_in is not None:
            _enqueue(delivery_id, countdown=outcome.retry_in)
        outcomes.append(outcome)
    return outcomes


def deliveries_release(*, order: str = "fifo", seed: int | None = None) -> list[int]:
    """Release the held deliveries in ``order`` (``fifo``, ``reverse`` or ``shuffle``); they are
    delivered one after another in that order by one task queued after the commit."""
    if order not in RELEASE_ORDERS:
        raise ValueError(f"order must be one of {', '.join(RELEASE_ORDERS)}")
    with transaction.atomic():
        held = list(
            EventDelivery.objects.select_for_update()
            .filter(state=State.HELD)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        if order == "reverse":
            held.reverse()
        elif order == "shuffle":
            random.Random(seed).shuffle(held)
        EventDelivery.objects.filter(pk__in=held).update(
            state=State.PENDING, next_attempt_at=timezone.now()
        )
        if held:
            transaction.on_commit(partial(_enqueue_in_order, list(held)))
    return held


def _enqueue_in_order(delivery_ids: list[int]) -> None:
    from sandbox.stripe.tasks import deliver_in_order

    if not _broker_usable():
        return
    try:
        deliver_in_order.apply_async(args=[delivery_ids], retry=False)
    except Exception:
        _broker_failed()
        logger.warning("Could not queue released deliveries %s.", delivery_ids, exc_info=True)


def deliveries_pending() -> list[int]:
    """Ids of deliveries waiting for an attempt, oldest first (for tests and the control)."""
    return list(
        EventDelivery.objects.filter(state=State.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
