"""Refunds: requested by staff (admin, dashboard, REST API), sent to the provider, finished by
the provider's word (its webhook, or the refunds sweep asking it by id).

1. :func:`refund_request` locks the order and its payments, checks the amount against what the
   refunded *payment* collected and has not yet given back (pending refunds count: two staff
   members refunding at once cannot give back more than was paid), and commits a ``pending``
   Refund row against that payment and a ``refund_requested`` timeline event naming the staff
   member. The row exists before the provider hears of it, so its idempotency key
   (``refund:<id>``) is stable: a retried call can never refund twice.
2. Sending it (``payments.services.refund_sending``): the first try at once, then retries
   and the sweep, with a bounded budget; a refund the provider never answered is
   ``abandoned`` and holds no money any more.
3. The provider's word calls :func:`refund_complete`, which moves the row along the only
   paths a refund takes (a repeated or reordered event changes nothing):

   ============================  ==============================================================
   pending -> succeeded          recorded on the order (``order_record_refund``)
   pending -> failed / canceled  the amount is free again; operators alerted
   succeeded -> failed           the refund did not reach the customer after all (Stripe:
                                 a closed card): the order and the sales figures take it back
                                 (``order_record_refund_reversal``), the shopper is told,
                                 operators alerted
   abandoned -> succeeded        the provider made it after all: recorded, operators alerted
   abandoned -> pending          the provider has it: it holds money again
   ============================  ==============================================================

The order's status follows what its payments collected net of their succeeded refunds
(:func:`order_net_paid_minor`), never a sum over the order: giving back a duplicate payment in
full leaves the order paid and shippable.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.exceptions import RefundError
from commerce.models import Order, OrderEvent
from commerce.notifications import OrderNotice, order_announce
from commerce.services.orders import order_record_refund, order_record_refund_reversal
from commerce.services.submissions import submission_key_clean, submission_reused
from core.exceptions import ApplicationError
from core.money import Money
from payments.models import Payment, Refund
from payments.selectors.refunds import HOLDING
from payments.services.alerts import order_flag_and_alert

__all__ = [
    "CLAIM",
    "FIRST_CHECK_AFTER",
    "order_net_paid_minor",
    "refund_complete",
    "refund_record_external",
    "refund_remaining_minor",
    "refund_request",
]

logger = logging.getLogger(__name__)

#: A refund the provider accepted but has not confirmed is asked about (by its id) after this
#: long, in case its webhook never comes; then less and less often (``refund_sending``).
FIRST_CHECK_AFTER = timedelta(minutes=10)
#: How long a row being sent is left alone by the refunds sweep: more than a provider call can
#: take (the Stripe client's 20 s timeout, three tries).
CLAIM = timedelta(minutes=5)

Actor = OrderEvent.Actor
Kind = OrderEvent.Kind
S = Refund.Status

#: Provider statuses -> ours. ``requires_action`` waits like ``pending``.
_STATUSES = {
    "pending": S.PENDING,
    "requires_action": S.PENDING,
    "succeeded": S.SUCCEEDED,
    "failed": S.FAILED,
    "canceled": S.CANCELED,
    "cancelled": S.CANCELED,
}
_CLOSED = (S.FAILED, S.CANCELED)
#: (from, to) -> what it means; any other pair changes nothing (final states stay final, a
#: late ``pending`` or ``succeeded`` never undoes a failure).
_MOVES = {
    (S.PENDING, S.SUCCEEDED): "record",
    (S.PENDING, S.FAILED): "close",
    (S.PENDING, S.CANCELED): "close",
    (S.SUCCEEDED, S.FAILED): "reverse",
    (S.SUCCEEDED, S.CANCELED): "reverse",
    (S.ABANDONED, S.SUCCEEDED): "record",
    (S.ABANDONED, S.PENDING): "resume",
    (S.ABANDONED, S.FAILED): "close",
    (S.ABANDONED, S.CANCELED): "close",
}
# Statuses an order only reaches after its payment was recorded.
_PAID_STATUSES = frozenset(
    {
        Order.Status.PAID,
        Order.Status.FULFILLED,
        Order.Status.DELIVERED,
        Order.Status.PARTIALLY_REFUNDED,
        Order.Status.REFUNDED,
    }
)


def _payment_remaining(payment: Payment) -> int:
    held = payment.refunds.filter(status__in=HOLDING).aggregate(total=Sum("amount_minor"))
    return max(payment.amount_minor - (held["total"] or 0), 0)


def refund_remaining_minor(*, order: Order | None = None, payment: Payment | None = None) -> int:
    """What can still be refunded of ``payment`` (what it collected minus its pending and
    succeeded refunds), or of all of ``order``'s succeeded payments together. Nothing for a
    payment that did not succeed."""
    if payment is not None:
        return _payment_remaining(payment) if payment.status == Payment.Status.SUCCEEDED else 0
    payments = order.payments.filter(status=Payment.Status.SUCCEEDED)
    return sum(_payment_remaining(payment) for payment in payments)


def order_net_paid_minor(*, order: Order) -> int:
    """What ``order``'s succeeded payments collected minus their succeeded refunds (each
    payment on its own, never below zero): what the order still holds of the customer's
    money. Read it under the order's row lock for a decision."""
    payments = Payment.objects.filter(order=order, status=Payment.Status.SUCCEEDED).annotate(
        given_back=Sum("refunds__amount_minor", filter=Q(refunds__status=S.SUCCEEDED))
    )
    return sum(max(p.amount_minor - (p.given_back or 0), 0) for p in payments)


def refund_request(
    *,
    order: Order,
    amount_minor: int,
    user,
    reason: str = "",
    payment: Payment | None = None,
    submission_key: str | None = None,
) -> Refund:
    """Refund ``amount_minor`` of a payment of ``order`` (``payment`` when given, else the
    oldest succeeded payment that covers it) and send it to the provider.

    Returns the Refund, ``pending`` until the provider confirms it (its
    ``provider_refund_id`` is empty while the provider could not be reached; it is sent
    again later, see ``refund_sending``).

    Idempotent per submission (ADR 0007): a ``submission_key`` (the refund form's one-time
    token, the API's ``Idempotency-Key``) that already requested a refund of this order returns
    that refund (``refund.replayed``) without asking for the money again; the check runs under
    the order lock, so a double click refunds once.

    :raises RefundError: ``refund_amount_invalid`` (not a positive integer),
        ``refund_nothing_paid`` (no collected payment, or ``payment`` is not a succeeded
        payment of ``order``), ``refund_exceeds_paid`` (more than is left to refund of the
        payment, or of the order without ``payment``; ``extra``: ``amount_minor``,
        ``remaining_minor``), ``refund_needs_split`` (no single payment covers it),
        ``refund_refused`` (the provider refused it; the row is kept as failed).
    :raises SubmissionReusedError: the key already requested another amount or payment.
    :raises ApplicationError: ``submission_key_invalid``.
    """
    from payments.services.refund_sending import refund_send_first  # it imports this module

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
        remaining = {p.pk: _payment_remaining(p) for p in payments}
        total = sum(remaining.values())
        currency = payments[0].currency
        if amount_minor > total:
            if payment is not None:
                message = _(
                    "At most %(remaining)s of this payment of order %(number)s can still be "
                    "refunded."
                )
            else:
                message = _("At most %(remaining)s of order %(number)s can still be refunded.")
            raise RefundError(
                message % {"remaining": Money(total, currency), "number": locked.number},
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
            next_attempt_at=timezone.now() + CLAIM,  # this request sends it first
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
    submitted = refund_send_first(refund=refund)
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


def refund_complete(
    *,
    refund: Refund,
    status: str,
    provider_refund_id: str = "",
    failure_reason: str = "",
    alert: bool = True,
) -> bool:
    """Apply the provider's word on ``refund``; True if this call changed its status.

    The moves are in the module docstring; anything else (a repeated event, a ``succeeded``
    arriving after ``failed``, a refund already final) changes nothing. ``pending`` /
    ``requires_action`` also record the provider id. ``alert=False`` when a person sees the
    failure at once (the provider refused the request they just made).
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
        move = _MOVES.get((locked.status, new_status))
        if move is not None:
            previous = locked.status
            locked.status = new_status
            fields.append("status")
            if new_status == S.PENDING:  # the provider has it after all: ask it again later
                locked.completed_at, locked.failure_reason = None, ""
                locked.next_attempt_at = timezone.now() + FIRST_CHECK_AFTER
            else:
                locked.completed_at, locked.next_attempt_at = timezone.now(), None
                if new_status in _CLOSED:
                    locked.failure_reason = (failure_reason or new_status)[:300]
            fields += ["completed_at", "failure_reason", "next_attempt_at"]
        if fields:
            locked.save(update_fields=[*fields, "updated_at"])
        if move == "record":
            _record_on_order(order, locked)
            if previous == S.ABANDONED:
                _alert(order, locked, "succeeded after it was given up")
        elif move == "reverse":
            _reverse_on_order(order, locked)
            _alert(order, locked, "failed after it had succeeded")
        elif move is not None:
            _note(order, locked, previous)
            if move == "close" and previous == S.PENDING and alert:
                _alert(order, locked, "failed")
    for name in ("status", "completed_at", "failure_reason", "provider_refund_id"):
        setattr(refund, name, getattr(locked, name))
    return move is not None


def _reference(refund: Refund) -> str:
    return refund.provider_refund_id or refund.idempotency_key


def _note(order: Order, refund: Refund, previous: str) -> None:
    text = f"Refund of {refund.amount.format('en')} {previous} -> {refund.status}"
    if refund.failure_reason:
        text += f": {refund.failure_reason}"
    OrderEvent.objects.create(
        order=order,
        kind=Kind.NOTE,
        actor=Actor.PROVIDER,
        message=text[:300],
        data={"refund_id": refund.pk, "status": refund.status, "from": previous},
    )


def _alert(order: Order, refund: Refund, what: str) -> None:
    """Flag the order and tell the operators and the shop's managers (after commit)."""
    reference = _reference(refund)
    amount = refund.amount.format("en")
    reason = f": {refund.failure_reason}" if refund.failure_reason else ""
    order_flag_and_alert(
        order=order,
        reason=f"Refund {reference} of {amount} {what}{reason}.",
        subject=f"Refund on order {order.number} {what}",
        details=(
            f"Refund {reference} of {amount} for order {order.number} {what}{reason}. "
            f"What the customer has been given back: "
            f"{Money(_given_back(order), order.currency).format('en')}. Check the refund at "
            "the payment provider and settle it with the customer (refund again, or another way)."
        ),
    )


def _given_back(order: Order) -> int:
    total = Refund.objects.filter(order=order, status=S.SUCCEEDED).aggregate(t=Sum("amount_minor"))
    return total["t"] or 0


def _given_back_of(payment: Payment) -> int:
    total = payment.refunds.filter(status=S.SUCCEEDED).aggregate(t=Sum("amount_minor"))
    return total["t"] or 0


def _record_on_order(order: Order, refund: Refund) -> None:
    """Put a succeeded refund on the order (called with the order and refund rows locked)."""
    actor = Actor.STAFF if refund.requested_by_id else Actor.PROVIDER
    reference = _reference(refund)
    if order.status in _PAID_STATUSES:
        try:
            order_record_refund(
                order=order,
                amount_minor=refund.amount_minor,
                net_paid_minor=order_net_paid_minor(order=order),
                user=refund.requested_by,
                actor=actor,
                reference=reference,
            )
            return
        except ApplicationError as error:  # e.g. a refund on an order already fully refunded
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
    refunded = _given_back_of(refund.payment)
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


def _reverse_on_order(order: Order, refund: Refund) -> None:
    """Take back a refund that failed after it succeeded (order and refund rows locked)."""
    reference = _reference(refund)
    if order.status in _PAID_STATUSES:
        order_record_refund_reversal(
            order=order,
            amount_minor=refund.amount_minor,
            net_paid_minor=order_net_paid_minor(order=order),
            reason=refund.failure_reason,
            reference=reference,
        )
        return
    OrderEvent.objects.create(
        order=order,
        kind=Kind.REFUND_FAILED,
        actor=Actor.PROVIDER,
        message=refund.failure_reason[:300],
        data={
            "amount_minor": refund.amount_minor,
            "refund_id": refund.pk,
            "reference": reference,
            "status_unchanged": order.status,
        },
    )
    order_announce(
        order=order,
        notice=OrderNotice.REFUND_FAILED,
        amount_minor=refund.amount_minor,
        reference=reference,
    )


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
                next_attempt_at=timezone.now() + FIRST_CHECK_AFTER,
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
