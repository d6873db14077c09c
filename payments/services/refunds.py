"""Refunds: requested by staff (admin, REST API), sent to the provider, finished by its webhook.

1. :func:`refund_request` locks the order, checks the amount against what was paid and not yet
   refunded (pending refunds count: two staff members refunding at once cannot give back more
   than was paid), and commits a ``pending`` Refund row and a ``refund_requested`` timeline
   event naming the staff member. The row exists before the provider hears of it, so its
   idempotency key (``refund:<id>``) is stable: a retried call can never refund twice.
2. :func:`refund_submit` asks the gateway for the refund (outside the order lock) and records
   the provider's refund id. A provider that does not answer leaves the refund pending and the
   ``payments.tasks.submit_refund`` task tries again with the same key; a refusal fails it.
3. The provider's webhook (``refund.*``, ``charge.refunded``) calls :func:`refund_complete`:
   ``succeeded`` records the money on the order (``order_record_refund``: partially_refunded /
   refunded) exactly once, however often the events arrive, because the refund's status is
   checked and changed under its row lock; ``failed`` / ``canceled`` frees the amount again.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.exceptions import RefundError
from commerce.models import Order, OrderEvent
from commerce.notifications import OrderNotice, order_announce
from commerce.services.orders import TRANSITIONS, order_record_refund
from commerce.services.submissions import submission_key_clean, submission_reused
from core.exceptions import ApplicationError
from core.money import Money
from payments.gateways import GatewayError, gateway_for
from payments.models import Payment, Refund
from payments.services.alerts import order_flag_and_alert

__all__ = [
    "refund_complete",
    "refund_record_external",
    "refund_remaining_minor",
    "refund_request",
    "refund_submit",
]

logger = logging.getLogger(__name__)

Actor = OrderEvent.Actor
Kind = OrderEvent.Kind

#: Refund statuses that hold money: they count against what is left to refund.
_HOLDING = (Refund.Status.PENDING, Refund.Status.SUCCEEDED)
#: Provider statuses -> ours. ``requires_action`` waits like ``pending``.
_STATUSES = {
    "pending": Refund.Status.PENDING,
    "requires_action": Refund.Status.PENDING,
    "succeeded": Refund.Status.SUCCEEDED,
    "failed": Refund.Status.FAILED,
    "canceled": Refund.Status.CANCELED,
    "cancelled": Refund.Status.CANCELED,
}


def _payment_remaining(payment: Payment) -> int:
    held = payment.refunds.filter(status__in=_HOLDING).aggregate(total=Sum("amount_minor"))
    return payment.amount_minor - (held["total"] or 0)


def refund_remaining_minor(*, order: Order) -> int:
    """What can still be refunded: succeeded payments minus pending and succeeded refunds."""
    payments = order.payments.filter(status=Payment.Status.SUCCEEDED)
    return sum(max(_payment_remaining(payment), 0) for payment in payments)


def _money(amount_minor: int, currency: str) -> Money:
    return Money(amount_minor, currency)


def refund_request(
    *,
    order: Order,
    amount_minor: int,
    user,
    reason: str = "",
    payment: Payment | None = None,
    submission_key: str | None = None,
) -> Refund:
    """Refund ``amount_minor`` of what was paid for ``order`` (of ``payment`` when given).

    Returns the Refund, ``pending`` until the provider's webhook confirms it (its
    ``provider_refund_id`` is empty while the provider could not be reached; a task retries).

    Idempotent per submission (ADR 0007): a ``submission_key`` (the refund form's one-time
    token, the API's ``Idempotency-Key``) that already requested a refund of this order returns
    that refund (``refund.replayed``) without asking for the money again; the check runs under
    the order lock, so a double click refunds once.

    :raises RefundError: ``refund_amount_invalid`` (not a positive integer),
        ``refund_nothing_paid`` (no collected payment), ``refund_exceeds_paid`` (more than is
        left to refund; ``extra``: ``amount_minor``, ``remaining_minor``),
        ``refund_needs_split`` (no single payment covers it), ``refund_refused`` (the provider
        refused it; the row is kept as failed).
    :raises SubmissionReusedError: the key already requested another amount.
    :raises ApplicationError: ``submission_key_invalid``.
    """
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise RefundError(
            _("The refund amount must be more than zero."),
            code="refund_amount_invalid",
            extra={"amount_minor": amount_minor},
        )
    reason = (reason or "").strip()[: Refund._meta.get_field("reason").max_length]
    submission_key = submission_key_clean(submission_key)
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if submission_key:
            replayed = _refund_of_submission(locked, submission_key, amount_minor, payment)
            if replayed is not None:
                return replayed
        payments = list(
            Payment.objects.select_for_update()
            .filter(order=locked, status=Payment.Status.SUCCEEDED)
            .order_by("pk")
        )
        if payment is not None:
            payments = [p for p in payments if p.pk == payment.pk]
        if not payments:
            raise RefundError(
                _("Nothing was paid for order %(number)s, so nothing can be refunded.")
                % {"number": locked.number},
                code="refund_nothing_paid",
            )
        remaining = {p.pk: max(_payment_remaining(p), 0) for p in payments}
        total = sum(remaining.values())
        currency = payments[0].currency
        if amount_minor > total:
            raise RefundError(
                _("At most %(remaining)s of order %(number)s can still be refunded.")
                % {"remaining": _money(total, currency), "number": locked.number},
                code="refund_exceeds_paid",
                extra={"amount_minor": amount_minor, "remaining_minor": total},
            )
        target = next((p for p in payments if remaining[p.pk] >= amount_minor), None)
        if target is None:
            raise RefundError(
                _("No single payment of this order covers that amount; refund it in parts."),
                code="refund_needs_split",
                extra={"amount_minor": amount_minor, "remaining_minor": total},
            )
        refund = Refund.objects.create(
            payment=target,
            order=locked,
            amount_minor=amount_minor,
            currency=target.currency,
            reason=reason,
            requested_by=user if user is not None and user.is_authenticated else None,
        )
        OrderEvent.objects.create(
            order=locked,
            kind=Kind.REFUND_REQUESTED,
            actor=Actor.STAFF if refund.requested_by_id else Actor.SYSTEM,
            actor_user=refund.requested_by,
            message=reason,
            data={
                "refund_id": refund.pk,
                "payment_id": target.pk,
                "amount_minor": amount_minor,
                "currency": refund.currency,
                **({"submission_key": submission_key} if submission_key else {}),
            },
        )
    try:
        submitted = refund_submit(refund=refund)
    except GatewayError as error:  # transient: refund_submit fails the refund otherwise
        logger.warning("Refund %s not sent yet (%s); a task retries it.", refund.pk, error.code)
        _submit_later(refund.pk)
        submitted = refund
    submitted.replayed = False
    return submitted


def _refund_of_submission(
    order: Order, submission_key: str, amount_minor: int, payment: Payment | None
) -> Refund | None:
    """The refund this submission key already requested for ``order`` (call under the order
    lock), or None.

    :raises SubmissionReusedError: the key requested another amount or payment.
    """
    requested = order.events.filter(
        kind=Kind.REFUND_REQUESTED, data__submission_key=submission_key
    ).first()
    if requested is None:
        return None
    refund = Refund.objects.get(pk=requested.data["refund_id"])
    if refund.amount_minor != amount_minor or (
        payment is not None and refund.payment_id != payment.pk
    ):
        raise submission_reused()
    refund.replayed = True
    return refund


def _submit_later(refund_id: int, countdown: int = 30) -> None:
    from payments.tasks import PUBLISH_RETRY_POLICY, submit_refund  # tasks import this module

    def enqueue() -> None:
        try:
            submit_refund.apply_async(
                args=[refund_id], countdown=countdown, retry=True, retry_policy=PUBLISH_RETRY_POLICY
            )
        except Exception:
            logger.exception("Could not queue refund %s; retry it from the admin.", refund_id)

    transaction.on_commit(enqueue)


def refund_submit(*, refund: Refund) -> Refund:
    """Send a pending refund to the provider with its idempotency key; record the provider id.

    Does nothing for a refund that is no longer pending or was already sent. Safe to repeat:
    the provider answers a repeated key with the first refund.

    :raises GatewayError: the provider could not be reached (``transient``); try again later.
    :raises RefundError: ``refund_refused``: the provider refused; the refund is now failed.
    """
    refund = Refund.objects.select_related("payment").get(pk=refund.pk)
    if refund.status != Refund.Status.PENDING or refund.provider_refund_id:
        return refund
    gateway = gateway_for(refund.payment.gateway)
    try:
        result = gateway.refund_create(payment=refund.payment, refund=refund)
    except GatewayError as error:
        if error.transient:
            raise
        failure = f"{error.code}: {error.extra.get('provider_message') or error.message}"
        refund_complete(refund=refund, status=Refund.Status.FAILED, failure_reason=failure)
        raise RefundError(
            _("The payment service refused the refund: %(reason)s")
            % {"reason": error.extra.get("provider_message") or error.message},
            code="refund_refused",
            extra={"refund_id": refund.pk, "gateway_code": error.code},
        ) from error
    Refund.objects.filter(pk=refund.pk, provider_refund_id__isnull=True).update(
        provider_refund_id=result.provider_id, updated_at=timezone.now()
    )
    refund.refresh_from_db()
    if result.status in (Refund.Status.FAILED, Refund.Status.CANCELED):
        refund_complete(refund=refund, status=result.status)
        refund.refresh_from_db()
    # "succeeded" stays pending here: the webhook is the truth (and completes it exactly once).
    return refund


def refund_complete(
    *,
    refund: Refund,
    status: str,
    provider_refund_id: str = "",
    failure_reason: str = "",
) -> bool:
    """Apply the provider's final word on ``refund``; True if this call changed its status.

    ``succeeded``: the refund is recorded on the order once (partially_refunded / refunded, or,
    for money returned on an order that was never marked paid, a timeline entry and the
    ``REFUNDED`` notice). ``failed`` / ``canceled``: the amount is free to refund again.
    ``pending`` / ``requires_action`` only record the provider id. A refund already final is
    left as it is, so repeated and reordered webhooks change nothing.
    """
    new_status = _STATUSES.get((status or "").lower())
    if new_status is None:
        logger.warning("Refund %s: unknown provider status %r ignored.", refund.pk, status)
        return False
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=refund.order_id)
        locked = (
            Refund.objects.select_for_update(of=("self",))
            .select_related("requested_by", "payment")
            .get(pk=refund.pk)
        )
        fields = []
        if provider_refund_id and not locked.provider_refund_id:
            taken = Refund.objects.filter(provider_refund_id=provider_refund_id).exists()
            if not taken:
                locked.provider_refund_id = provider_refund_id
                fields.append("provider_refund_id")
        changed = locked.status == Refund.Status.PENDING and new_status != Refund.Status.PENDING
        if changed:
            locked.status = new_status
            locked.completed_at = timezone.now()
            fields += ["status", "completed_at"]
            if new_status != Refund.Status.SUCCEEDED:
                locked.failure_reason = (failure_reason or new_status)[:300]
                fields.append("failure_reason")
        if fields:
            locked.save(update_fields=[*fields, "updated_at"])
        if changed and new_status == Refund.Status.SUCCEEDED:
            _record_on_order(order, locked)
        elif changed:
            OrderEvent.objects.create(
                order=order,
                kind=Kind.NOTE,
                actor=Actor.PROVIDER,
                message=f"Refund of {locked.amount.format('en')} {new_status}: "
                f"{locked.failure_reason}"[:300],
                data={"refund_id": locked.pk, "status": new_status},
            )
    for name in ("status", "completed_at", "failure_reason", "provider_refund_id"):
        setattr(refund, name, getattr(locked, name))
    return changed


def _record_on_order(order: Order, refund: Refund) -> None:
    """Put a succeeded refund on the order (called with the order and refund rows locked)."""
    actor = Actor.STAFF if refund.requested_by_id else Actor.PROVIDER
    reference = refund.provider_refund_id or refund.idempotency_key
    allowed = TRANSITIONS.get(order.status, frozenset())
    if Order.Status.REFUNDED in allowed or Order.Status.PARTIALLY_REFUNDED in allowed:
        try:
            order_record_refund(
                order=order,
                amount_minor=refund.amount_minor,
                user=refund.requested_by,
                actor=actor,
                reference=reference,
            )
            return
        except ApplicationError as error:  # more than the order's total: money left anyway
            order_flag_and_alert(
                order=order,
                reason=f"Refund {reference} could not be recorded: {error.code}.",
                subject=f"Refund on order {order.number} needs review",
                details=(
                    f"Refund {reference} of {refund.amount.format('en')} succeeded at the "
                    f"payment provider but could not be recorded on order {order.number}: "
                    f"{error.message}"
                ),
            )
            return
    # Money returned for an order our books never marked paid (a payment that arrived after
    # the order expired): no status to change, but the timeline and the shopper learn of it.
    refunded = _refunded_total(refund.payment.refunds.filter(status=Refund.Status.SUCCEEDED))
    OrderEvent.objects.create(
        order=order,
        kind=Kind.REFUNDED,
        actor=actor,
        actor_user=refund.requested_by,
        data={
            "amount_minor": refund.amount_minor,
            "refund_id": refund.pk,
            "reference": reference,
            "status_unchanged": order.status,
        },
    )
    order_announce(
        order=order,
        notice=OrderNotice.REFUNDED,
        amount_minor=refund.amount_minor,
        reference=reference,
        fully_refunded=refunded >= refund.payment.amount_minor,
    )


def _refunded_total(refunds: Iterable[Refund]) -> int:
    return sum(r.amount_minor for r in refunds)


def refund_record_external(
    *,
    payment: Payment,
    provider_refund_id: str,
    amount_minor: int,
    status: str,
    failure_reason: str = "",
) -> Refund:
    """Record a refund of ``payment`` made at the provider, not through us (the Stripe
    Dashboard), then apply its status like any other. Idempotent per ``provider_refund_id``."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=payment.order_id)
        refund = Refund.objects.filter(provider_refund_id=provider_refund_id).first()
        if refund is None:
            refund = Refund.objects.create(
                payment=payment,
                order=order,
                amount_minor=amount_minor,
                currency=payment.currency,
                reason="Refunded at the payment provider",
                provider_refund_id=provider_refund_id,
            )
            OrderEvent.objects.create(
                order=order,
                kind=Kind.REFUND_REQUESTED,
                actor=Actor.PROVIDER,
                message="Refunded at the payment provider (not through this service).",
                data={
                    "refund_id": refund.pk,
                    "payment_id": payment.pk,
                    "amount_minor": amount_minor,
                    "currency": refund.currency,
                    "reference": provider_refund_id,
                },
            )
        refund_complete(refund=refund, status=status, failure_reason=failure_reason)
    return refund
