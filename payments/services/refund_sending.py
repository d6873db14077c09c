"""Getting a pending refund to the provider, and its final word back, whatever gets lost.

A ``pending`` Refund row is in one of two situations, and ``next_attempt_at`` says when the
refunds sweep (``payments.tasks.sweep_refunds``, every minute) looks at it again:

* **not sent yet** (no ``provider_refund_id``): the provider did not answer. It is sent again
  with the same idempotency key (``refund:<id>``: the provider answers a repeated key with the
  first refund, so a request that did reach it is never made twice), ``RETRY_BASE`` seconds
  after the first failure, doubling, each wait capped below the broker's visibility timeout (a
  Redis broker hands a message whose countdown outlives it to a second worker). After
  ``MAX_ATTEMPTS`` tries, about an hour, well inside the 24 hours the provider keeps an
  idempotency key, the refund is ``abandoned``: it no longer holds money, the order is flagged
  and the operators alerted. Should the provider confirm it after all (its webhook finds the
  row by ``metadata.refund_id``), ``refund_complete`` records it then.
* **sent, not confirmed** (``provider_refund_id`` set): the webhook should finish it. If that
  never comes (the endpoint does not receive ``refund.*`` events, a delivery was lost), the
  sweep asks the provider for the refund by its id after ``FIRST_CHECK_AFTER``, then less and
  less often (up to every ``CHECK_MAX``) while the provider says pending.

Exactly one worker acts on a row at a time: it first *claims* the row (one conditional UPDATE
moving ``next_attempt_at`` ``CLAIM`` into the future, longer than the provider call can
take); whoever loses the claim does nothing. The provider call is made without any lock or
transaction; what it answered is applied under the order and refund row locks and only while
the row still waits (a webhook may have finished it meanwhile).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.exceptions import RefundError
from commerce.models import Order, OrderEvent
from payments.gateways import GatewayError, gateway_for
from payments.models import Refund
from payments.services.alerts import order_flag_and_alert
from payments.services.refunds import CLAIM, FIRST_CHECK_AFTER, refund_complete

__all__ = [
    "CHECK_MAX",
    "MAX_ATTEMPTS",
    "RETRY_BASE_SECONDS",
    "refund_advance",
    "refund_retry_delay",
    "refund_send_first",
    "refunds_check_soon",
    "refunds_due",
]

logger = logging.getLogger(__name__)

S = Refund.Status

#: Tries to send a refund before it is abandoned (the first one included).
MAX_ATTEMPTS = 8
#: Wait after the first failed try; doubles after each one (30 s, 1, 2, 4, 8, 16, 30 min).
RETRY_BASE_SECONDS = 30
RETRY_MAX_SECONDS = 1800
#: The longest wait between two questions to the provider about a refund it keeps pending.
CHECK_MAX = timedelta(hours=6)
#: Rows handed out per sweep run.
SWEEP_LIMIT = 200


def _visibility_timeout() -> int:
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    return int(options.get("visibility_timeout", 3600))  # kombu's Redis default


def refund_retry_delay(attempts: int) -> int:
    """Seconds to wait after the ``attempts``-th failed try: doubling from
    ``RETRY_BASE_SECONDS``, never more than ``RETRY_MAX_SECONDS`` nor half the broker's
    visibility timeout (a countdown must end well before the broker redelivers it)."""
    cap = min(RETRY_MAX_SECONDS, _visibility_timeout() // 2)
    return max(1, min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), cap))


def _claim(refund_id: int, *, now: datetime, sent: bool) -> bool:
    """Take the row for one try (see the module docstring); False: not due, or taken."""
    return bool(
        Refund.objects.filter(pk=refund_id, status=S.PENDING, provider_refund_id__isnull=not sent)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(next_attempt_at=now + CLAIM, updated_at=now)
    )


def _publish(refund_id: int, countdown: float | None = None) -> None:
    from payments.tasks import PUBLISH_RETRY_POLICY, submit_refund  # tasks import this module

    try:
        submit_refund.apply_async(
            args=[refund_id], countdown=countdown, retry=True, retry_policy=PUBLISH_RETRY_POLICY
        )
    except Exception:  # the broker is down: the sweep sends it when it is due
        logger.warning("Could not queue refund %s; the refunds sweep will.", refund_id)


def refund_send_first(*, refund: Refund) -> Refund:
    """The first try of a refund just requested (the caller is waiting for the answer).

    :raises RefundError: ``refund_refused``: the provider refused; the refund is now failed.
    """
    try:
        return _submit(refund.pk, now=timezone.now(), alert=False)
    except GatewayError as error:
        logger.warning("Refund %s not sent yet (%s); it is retried.", refund.pk, error.code)
        return Refund.objects.get(pk=refund.pk)


def _submit(refund_id: int, *, now: datetime, alert: bool) -> Refund:
    """Send a claimed refund; record the provider's id, or the failed try.

    :raises GatewayError: transient: the try is recorded and the next one scheduled.
    :raises RefundError: ``refund_refused``.
    """
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    gateway = gateway_for(refund.payment.gateway)
    try:
        result = gateway.refund_create(payment=refund.payment, refund=refund)
    except GatewayError as error:
        if error.transient:
            _try_failed(refund_id, error=error, now=timezone.now())
            raise
        message = error.extra.get("provider_message") or error.message
        refund_complete(
            refund=refund, status=S.FAILED, failure_reason=f"{error.code}: {message}", alert=alert
        )
        raise RefundError(
            _("The payment service refused the refund: %(reason)s") % {"reason": message},
            code="refund_refused",
            extra={"refund_id": refund.pk, "gateway_code": error.code},
        ) from error
    Refund.objects.filter(pk=refund_id, provider_refund_id__isnull=True).update(
        provider_refund_id=result.provider_id,
        attempts=refund.attempts + 1,
        next_attempt_at=timezone.now() + FIRST_CHECK_AFTER,
        updated_at=timezone.now(),
    )
    refund.refresh_from_db()
    if result.status in (S.FAILED, S.CANCELED):
        refund_complete(refund=refund, status=result.status, failure_reason=result.failure_reason)
        refund.refresh_from_db()
    # "succeeded" stays pending here: the webhook (or the sweep's question) completes it, once.
    return refund


def _try_failed(refund_id: int, *, error: GatewayError, now: datetime) -> None:
    """Count a try the provider did not answer: schedule the next one, or give up."""
    with transaction.atomic():
        order_id = Refund.objects.values_list("order_id", flat=True).get(pk=refund_id)
        order = Order.objects.select_for_update().get(pk=order_id)
        refund = Refund.objects.select_for_update().get(pk=refund_id)
        if refund.status != S.PENDING or refund.provider_refund_id:
            return  # finished meanwhile (the webhook found it by its metadata)
        refund.attempts += 1
        if refund.attempts < MAX_ATTEMPTS:
            delay = refund_retry_delay(refund.attempts)
            refund.next_attempt_at = now + timedelta(seconds=delay)
            refund.save(update_fields=["attempts", "next_attempt_at", "updated_at"])
            transaction.on_commit(lambda: _publish(refund_id, countdown=delay))
            return
        refund.status, refund.next_attempt_at, refund.completed_at = S.ABANDONED, None, now
        refund.failure_reason = (
            f"Not sent: the payment provider did not answer {refund.attempts} tries "
            f"(last: {error.code})."
        )
        refund.save(
            update_fields=[
                "attempts",
                "status",
                "next_attempt_at",
                "completed_at",
                "failure_reason",
                "updated_at",
            ]
        )
        amount = refund.amount.format("en")
        OrderEvent.objects.create(
            order=order,
            kind=OrderEvent.Kind.NOTE,
            actor=OrderEvent.Actor.SYSTEM,
            message=f"Refund of {amount} abandoned: {refund.failure_reason}"[:300],
            data={"refund_id": refund.pk, "status": refund.status, "from": S.PENDING},
        )
        order_flag_and_alert(
            order=order,
            reason=f"Refund of {amount} could not be sent; nothing was refunded.",
            subject=f"Refund on order {order.number} could not be sent",
            details=(
                f"The refund of {amount} for order {order.number} (refund id {refund.pk}) "
                f"was never accepted by the payment provider: {refund.failure_reason} It no "
                "longer counts as refunded. Refund again once the provider is reachable."
            ),
        )
    logger.error("Refund %s abandoned: %s", refund_id, refund.failure_reason)


def _check(refund_id: int, *, now: datetime) -> Refund:
    """Ask the provider about a claimed refund it accepted, and apply its answer."""
    refund = Refund.objects.select_related("payment").get(pk=refund_id)
    gateway = gateway_for(refund.payment.gateway)
    try:
        result = gateway.refund_retrieve(provider_id=refund.provider_refund_id)
    except GatewayError as error:
        logger.warning("Refund %s: status check failed (%s).", refund_id, error.code)
        status, failure = S.PENDING, ""
    else:
        status, failure = result.status, result.failure_reason
    if status != S.PENDING:
        refund_complete(refund=refund, status=status, failure_reason=failure)
        refund.refresh_from_db()
        return refund
    waited = now - refund.created_at
    wait = min(max(waited / 2, FIRST_CHECK_AFTER), CHECK_MAX)
    Refund.objects.filter(pk=refund_id, status=S.PENDING).update(
        next_attempt_at=now + wait, updated_at=now
    )
    refund.refresh_from_db()
    return refund


def refund_advance(*, refund_id: int, now: datetime | None = None) -> str:
    """Do what is due for a pending refund (send it again, or ask the provider about it);
    return its status afterwards. Does nothing for a refund not due or taken by another
    worker. Safe to run twice and side by side."""
    now = now or timezone.now()
    refund = Refund.objects.filter(pk=refund_id).first()
    if refund is None:
        return "missing"
    sent = bool(refund.provider_refund_id)
    if refund.status != S.PENDING or not _claim(refund_id, now=now, sent=sent):
        return refund.status
    try:
        refund = _check(refund_id, now=now) if sent else _submit(refund_id, now=now, alert=True)
    except (GatewayError, RefundError):  # recorded: retry scheduled, abandoned, or refused
        refund = Refund.objects.get(pk=refund_id)
    return refund.status


def refunds_due(*, now: datetime | None = None, limit: int = SWEEP_LIMIT) -> list[int]:
    """Ids of pending refunds whose next try or check is due (oldest first), for the sweep."""
    now = now or timezone.now()
    # No next_attempt_at: a row from before the sweep existed.
    unscheduled = Q(next_attempt_at__isnull=True, created_at__lte=now - CLAIM)
    return list(
        Refund.objects.filter(status=S.PENDING)
        .filter(Q(next_attempt_at__lte=now) | unscheduled)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )


def refunds_check_soon(*, payment_id: int, now: datetime | None = None) -> int:
    """The provider says a payment's refunds changed (``charge.refunded``) without naming
    them: ask it about each of the payment's sent, pending refunds at the next sweep."""
    now = now or timezone.now()
    return (
        Refund.objects.filter(
            payment_id=payment_id, status=S.PENDING, provider_refund_id__isnull=False
        )
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__gt=now))
        .update(next_attempt_at=now)
    )
