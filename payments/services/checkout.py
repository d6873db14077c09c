"""Starting a payment from the checkout page's Pay button: one Stripe Checkout Session per attempt.

:func:`checkout_session_start` is safe to call again and again (a double tap, a reload, the
shopper coming back from Stripe's page with the back button):

* while the latest attempt's session is open, it is returned as it is (no call to Stripe);
* otherwise a new ``Payment`` row is written first, with the next ``attempt`` number and the
  idempotency key ``checkout:<order id>:<attempt>``, and only then is the gateway called with
  that key. The gateway derives every parameter from the order and the row (never from the
  clock of the call), so when the answer is lost (timeout, crash) the next call with the same
  row sends the same request and Stripe replays the same session instead of opening another.

The gateway call happens between two short transactions, not inside one holding the order's
row lock: a Stripe call may take seconds (retries included), and the payment webhook and the
expiry sweep need that lock meanwhile. Two concurrent Pay presses are still safe: the second
finds the first one's row (without a session yet) and sends the identical request under the
same key, which Stripe answers with the same session.

A row whose call failed stays ``pending`` without a session: a retry within
:data:`RETRY_WINDOW` reuses it (and its key); after that it is marked ``failed`` and a new
attempt starts, because the Stripe parameters derived from it (the session expiry) would be
refused by then.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.models import Order
from commerce.services.orders import order_payment_started
from core.exceptions import ConflictError
from payments.gateways import CheckoutStarted, GatewayError, gateway_for
from payments.models import Payment
from payments.services.checkout_links import checkout_token_create

__all__ = ["ORDER_NOT_PAYABLE", "RETRY_WINDOW", "checkout_session_start", "checkout_urls"]

logger = logging.getLogger(__name__)

ORDER_NOT_PAYABLE = "order_not_payable"
# How long a Payment row whose gateway call failed may be retried with the same key. Shorter
# than the allowance the Stripe gateway keeps between the row's creation and the session's
# earliest expiry (payments.gateways.stripe.SESSION_CLAMP_ALLOWANCE).
RETRY_WINDOW = timedelta(minutes=2)
# The stock stays reserved this long after the session closes, for its webhook to arrive.
WEBHOOK_GRACE = timedelta(minutes=5)
# An open session about to expire is not worth sending the shopper to.
REUSE_MARGIN = timedelta(minutes=2)

_MONEY_RECEIVED = (Payment.Status.SUCCEEDED, Payment.Status.MISMATCH)


def checkout_urls(*, order: Order, language: str = "") -> tuple[str, str]:
    """The absolute ``(success_url, cancel_url)`` Stripe sends the shopper back to."""
    token = checkout_token_create(order=order)
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    query = f"?{urlencode({'lang': language})}" if language in ("ar", "en") else ""
    done = reverse("payments:checkout_done", kwargs={"token": token})
    cancel = reverse("payments:checkout_cancel", kwargs={"token": token})
    return f"{base}{done}{query}", f"{base}{cancel}{query}"


def _not_payable(order: Order, *, reason: str) -> ConflictError:
    Status = Order.Status
    if reason == "payment_received" or order.status in (
        Status.PAID,
        Status.FULFILLED,
        Status.DELIVERED,
        Status.PARTIALLY_REFUNDED,
        Status.REFUNDED,
    ):
        message = _("This order has already been paid.")
    elif order.status == Status.CANCELLED:
        message = _("This order was cancelled.")
    elif order.status == Status.PAYMENT_FAILED:
        message = _("The payment for this order did not go through. Please order again.")
    else:
        message = _("This order has expired. Please order again in Messenger.")
    return ConflictError(
        message, code=ORDER_NOT_PAYABLE, extra={"status": order.status, "reason": reason}
    )


def _check_payable(order: Order, *, now: datetime) -> None:
    """:raises ConflictError: ``order_not_payable`` (call with the order row locked)."""
    if order.status != Order.Status.PENDING_PAYMENT:
        raise _not_payable(order, reason="status")
    if order.reserved_until is None or order.reserved_until <= now:
        raise _not_payable(order, reason="reservation_over")
    if Payment.objects.filter(order=order, status__in=_MONEY_RECEIVED).exists():
        raise _not_payable(order, reason="payment_received")


@transaction.atomic
def _payment_for_attempt(*, order: Order, now: datetime) -> tuple[Payment, bool]:
    """Lock the order, check it, and return ``(payment, ready)``.

    ``ready``: the payment's session is open and can be used as it is. Otherwise the payment
    needs its session (a new attempt, or one whose call failed moments ago).
    """
    locked = Order.objects.select_for_update().get(pk=order.pk)
    _check_payable(locked, now=now)
    latest = (
        Payment.objects.select_for_update()
        .filter(order=locked, gateway=Payment.Gateway.STRIPE_CHECKOUT)
        .order_by("-attempt")
        .first()
    )
    if latest is not None and latest.status == Payment.Status.PENDING:
        if latest.checkout_session_id:
            if latest.expires_at and latest.expires_at > now + REUSE_MARGIN:
                return latest, True
            # Its session is over (the webhook records that); a new attempt follows.
        elif now - latest.created_at < RETRY_WINDOW:
            return latest, False
        else:
            latest.status = Payment.Status.FAILED
            latest.failure_reason = "The payment service did not answer; a new attempt started."
            latest.save(update_fields=["status", "failure_reason", "updated_at"])
    last_attempt = Payment.objects.filter(order=locked).aggregate(n=Max("attempt"))["n"] or 0
    attempt = last_attempt + 1
    payment = Payment.objects.create(
        order=locked,
        gateway=Payment.Gateway.STRIPE_CHECKOUT,
        status=Payment.Status.PENDING,
        attempt=attempt,
        amount_minor=locked.total_minor,
        currency=locked.currency,
        idempotency_key=f"checkout:{locked.pk}:{attempt}",
    )
    return payment, False


@transaction.atomic
def _session_record(
    *, order: Order, payment: Payment, started: CheckoutStarted, now: datetime
) -> tuple[Payment, bool]:
    """Store the session on the payment and record ``payment_started``; ``(payment, payable)``.

    ``payable`` is False when the order stopped being payable while the gateway was called
    (expired by the sweep, cancelled by staff): the session must then be closed again.
    """
    locked = Order.objects.select_for_update().get(pk=order.pk)
    stored = Payment.objects.filter(pk=payment.pk, checkout_session_id__isnull=True).update(
        checkout_session_id=started.session_id,
        checkout_url=started.url,
        expires_at=started.expires_at,
        is_test=not started.livemode,
        updated_at=now,
    )
    payment.refresh_from_db()
    if stored and locked.status == Order.Status.PENDING_PAYMENT:
        # Hold the stock as long as the session can still be paid (plus time for the webhook).
        order_payment_started(
            order=locked,
            hold_until=started.expires_at + WEBHOOK_GRACE,
            data={
                "payment_id": payment.pk,
                "attempt": payment.attempt,
                "gateway": payment.gateway,
                "session_id": started.session_id,
                "expires_at": started.expires_at.isoformat(),
                "amount_minor": payment.amount_minor,
                "currency": payment.currency,
            },
        )
        locked.refresh_from_db()
    elif payment.checkout_session_id != started.session_id:
        # The same idempotency key must give the same session; anything else is a bug to see.
        logger.error(
            "Payment %s already has session %s, the gateway answered %s.",
            payment.pk,
            payment.checkout_session_id,
            started.session_id,
        )
    payable = locked.status == Order.Status.PENDING_PAYMENT and (
        locked.reserved_until is not None and locked.reserved_until > now
    )
    return payment, payable


def checkout_session_start(*, order: Order, locale: str) -> Payment:
    """Return a pending ``Payment`` of ``order`` with an open checkout session to redirect to.

    ``locale`` is the shopper's language (``"ar"``, ``"en"``): it is passed to the gateway and
    kept on the return URLs.

    :raises ConflictError: ``order_not_payable``: the order is not ``pending_payment``, its
        reservation has run out, or money was already received for it (``extra``:
        ``status``, ``reason``). Nothing is written.
    :raises GatewayError: the payment service failed or refused (``transient`` says whether
        trying again can help). The attempt's ``Payment`` row stays ``pending`` without a
        session, and a retry soon after reuses it and its idempotency key.
    """
    now = timezone.now()
    payment, ready = _payment_for_attempt(order=order, now=now)
    if ready:
        return payment
    success_url, cancel_url = checkout_urls(order=order, language=locale)
    gateway = gateway_for(payment.gateway)
    fresh_order = Order.objects.select_related("merchant").get(pk=order.pk)
    started = gateway.checkout_start(
        order=fresh_order,
        payment=payment,
        success_url=success_url,
        cancel_url=cancel_url,
        locale=locale,
    )
    payment, payable = _session_record(
        order=order, payment=payment, started=started, now=timezone.now()
    )
    if not payable:
        try:
            gateway.checkout_expire(session_id=started.session_id)
        except GatewayError:
            logger.exception(
                "Could not expire session %s of order %s, which is no longer payable.",
                started.session_id,
                order.pk,
            )
        fresh_order.refresh_from_db()
        raise _not_payable(fresh_order, reason="status_changed")
    return payment
