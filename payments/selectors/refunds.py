"""Reads of payments and refunds shared by the refund services, the admin and the dashboard."""

from __future__ import annotations

from collections.abc import Iterable

from payments.models import Payment, Refund

__all__ = ["HOLDING", "payment_refundable_minor"]

#: Refund statuses that hold money: they count against what is left to refund of a payment.
#: An ``abandoned`` refund (never sent) does not.
HOLDING = (Refund.Status.PENDING, Refund.Status.SUCCEEDED)


def payment_refundable_minor(
    payments: Iterable[Payment], refunds: Iterable[Refund]
) -> dict[int, int]:
    """What can still be refunded of each succeeded payment (payment id -> minor units), from
    rows already read: what it collected minus its pending and succeeded refunds. The refund
    service checks again under the order lock; this pre-fills and guards forms."""
    held: dict[int, int] = {}
    for refund in refunds:
        if refund.status in HOLDING:
            held[refund.payment_id] = held.get(refund.payment_id, 0) + refund.amount_minor
    return {
        payment.pk: max(payment.amount_minor - held.get(payment.pk, 0), 0)
        for payment in payments
        if payment.status == Payment.Status.SUCCEEDED
    }
