"""Refunds: ``POST /v1/refunds`` against a succeeded PaymentIntent or Charge, and the later
life of a refund (test controls).

Card refunds in test mode succeed at once: the refund is created ``succeeded``, the charge's
``amount_refunded`` grows (``refunded`` once all of it is back), and two events follow:
``refund.created`` (the refund, with its metadata) and ``charge.refunded`` (the charge, with
``previous_attributes``). With the control ``refund_status: "pending"`` new refunds are created
``pending`` (``pending_reason: "processing"``) instead; the money is held on the charge all
the same, as Stripe does.

:func:`refund_settle` plays what the bank does afterwards: a pending refund succeeds or fails,
and a succeeded one can still fail (the card was closed and the issuer sends the money back).
A failure gives the amount back to the charge (``amount_refunded`` shrinks) and sets
``failure_reason`` and ``failure_balance_transaction``. Each change emits ``refund.updated``
and ``charge.refund.updated`` (the refund, with the previous status), plus ``refund.failed``
for a failure.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from sandbox.stripe.errors import StripeError, as_int, invalid
from sandbox.stripe.services.checkout import metadata_param
from sandbox.stripe.services.events import control_get, event_emit
from sandbox.stripe.services.objects import new_id, now, object_create, object_get, object_save

REASONS = ("duplicate", "fraudulent", "requested_by_customer")
#: Stripe's refund ``failure_reason`` values (the library's Refund type, 2026-10-28).
FAILURE_REASONS = (
    "lost_or_stolen_card",
    "expired_or_canceled_card",
    "charge_for_pending_refund_disputed",
    "insufficient_funds",
    "declined",
    "merchant_request",
    "unknown",
)
#: status now -> statuses it may move to.
_SETTLE = {"pending": ("succeeded", "failed"), "succeeded": ("failed",)}


@transaction.atomic
def refund_create(
    *, params: dict[str, Any], request_id: str | None = None, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Refund ``amount`` (default: what is left) of a charge.

    :raises StripeError: no charge or payment intent named, unknown ids, an intent without a
        successful charge, an amount larger than what is left, a charge already refunded.
    """
    if params.get("payment_intent"):
        intent = object_get(kind="payment_intent", object_id=str(params["payment_intent"])).data
        if intent["status"] != "succeeded" or not intent.get("latest_charge"):
            raise invalid(
                f"This PaymentIntent ({intent['id']}) does not have a successful charge to refund.",
                param="payment_intent",
                code="charge_not_refundable",
            )
        charge_id = intent["latest_charge"]
    elif params.get("charge"):
        charge_id = str(params["charge"])
    else:
        raise invalid(
            "One of the following params should be provided for this request: payment_intent "
            "or charge.",
            code="parameter_missing",
        )
    charge_row = object_get(kind="charge", object_id=charge_id, lock=True)
    charge = charge_row.data
    if charge["status"] != "succeeded":
        raise invalid(
            f"Charge {charge['id']} has not been captured and cannot be refunded.",
            param="charge",
            code="charge_not_refundable",
        )
    remaining = charge["amount"] - charge["amount_refunded"]
    if remaining <= 0:
        raise invalid(
            f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
        )
    amount = (
        as_int(params["amount"], "amount") if params.get("amount") not in (None, "") else remaining
    )
    if amount <= 0:
        raise invalid("This value must be greater than or equal to 1.", param="amount")
    if amount > remaining:
        raise StripeError(
            f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
            param="amount",
            code="amount_too_large",
        )
    reason = params.get("reason") or None
    if reason is not None and reason not in REASONS:
        raise invalid(f"Invalid reason: must be one of {', '.join(REASONS)}", param="reason")
    refund = {
        "id": new_id("re_3Q"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": new_id("txn_3Q"),
        "charge": charge["id"],
        "created": now(),
        "currency": charge["currency"],
        "destination_details": {"card": {"type": "refund"}, "type": "card"},
        "metadata": metadata_param(params.get("metadata"), "metadata"),
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    if control_get().refund_status == "pending":
        refund.update(status="pending", pending_reason="processing")
    object_create(kind="refund", data=refund)
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
    object_save(charge_row)
    event_emit(
        type="refund.created", obj=refund, request_id=request_id, idempotency_key=idempotency_key
    )
    event_emit(
        type="charge.refunded",
        obj=charge,
        request_id=request_id,
        idempotency_key=idempotency_key,
        previous_attributes=previous,
    )
    return refund


@transaction.atomic
def refund_settle(*, refund_id: str, status: str, failure_reason: str = "") -> dict[str, Any]:
    """Move refund ``refund_id`` to ``status`` (see the module docstring) and emit its events.

    :raises StripeError: unknown refund (404), a move a refund cannot make (a failed refund
        stays failed), an unknown ``failure_reason``.
    """
    row = object_get(kind="refund", object_id=refund_id, lock=True)
    refund = row.data
    if status not in _SETTLE.get(refund["status"], ()):
        raise invalid(
            f"Refund {refund_id} is {refund['status']}; it cannot become {status!r}.",
            param="status",
        )
    if status == "failed":
        failure_reason = failure_reason or "expired_or_canceled_card"
        if failure_reason not in FAILURE_REASONS:
            raise invalid(
                f"failure_reason must be one of {', '.join(FAILURE_REASONS)}.",
                param="failure_reason",
            )
        charge_row = object_get(kind="charge", object_id=refund["charge"], lock=True)
        charge = charge_row.data
        charge["amount_refunded"] = max(charge["amount_refunded"] - refund["amount"], 0)
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        object_save(charge_row)
        refund["failure_reason"] = failure_reason
        refund["failure_balance_transaction"] = new_id("txn_3Q")
    previous = {"status": refund["status"]}
    refund["status"] = status
    refund.pop("pending_reason", None)
    object_save(row)
    types = ["refund.updated", "charge.refund.updated"]
    if status == "failed":
        types.append("refund.failed")
    for type_ in types:
        event_emit(type=type_, obj=refund, previous_attributes=previous)
    return refund
