"""A refund can fail, even after Stripe said it succeeded (the card was closed and the issuer
sent the money back). Stripe says so with ``refund.updated`` / ``refund.failed`` /
``charge.refund.updated``; the service matches the refund by its id and gives the money back
to the order: the refund row is failed, the order's refunded status and the sales figures go
back, the order is flagged and the staff alerted, and the shopper who was told "refunded" is
told it did not reach them.

Everything goes through the real webhook and the worker's processing; Stripe is the HTTP stub.
"""

from __future__ import annotations

import pytest
from django.core import mail

from commerce.models import DailySales, MerchantMembership, Order, OrderEvent
from commerce.services.orders import order_fulfil
from messenger.models import MessengerPage, OutboundMessage
from payments.models import Payment, ProviderEvent, Refund
from payments.services.refunds import refund_remaining_minor, refund_request
from tests.factories import staff_create
from tests.payments.webhook_helpers import deliver_and_process, pay

pytestmark = pytest.mark.django_db

Status = Order.Status


@pytest.fixture
def shop_page(make_order):
    """The shop's Messenger page, so what the shopper is told lands in the outbox."""

    def attach(order: Order) -> MessengerPage:
        return MessengerPage.objects.create(
            merchant=order.merchant,
            page_id=order.customer.page_id,
            name="Souq Layla",
            access_token="EAAtestpagetoken0123456789",
        )

    return attach


@pytest.fixture
def paid(client, monkeypatch, stripe_stub, make_order, shop_page):
    order = make_order(prices=(2500, 1000), shipping_minor=500)  # 40.00 USD
    shop_page(order)
    payment = pay(client, monkeypatch, stripe_stub, order)
    owner = staff_create(merchant=order.merchant, role=MerchantMembership.Role.OWNER)
    owner.email = "owner@souq.example"
    owner.save(update_fields=["email"])
    return order, payment, owner


def _event(client, monkeypatch, stub, refund: Refund, type_: str, **changes):
    obj = dict(stub.refunds[refund.provider_refund_id], **changes)
    return deliver_and_process(client, monkeypatch, type_, obj)


def _texts(order: Order) -> list[str]:
    rows = OutboundMessage.objects.filter(order=order).order_by("pk")
    return [row.message.get("text", "") for row in rows]


def _sales(order: Order) -> DailySales:
    return DailySales.objects.get(merchant=order.merchant, currency=order.currency)


@pytest.mark.parametrize("type_", ["refund.updated", "refund.failed", "charge.refund.updated"])
def test_a_refund_that_fails_after_succeeding_gives_the_money_back_to_the_order(
    client, monkeypatch, stripe_stub, paid, type_, django_capture_on_commit_callbacks
):
    order, _payment, owner = paid
    refund = refund_request(order=order, amount_minor=4000, user=owner, reason="Returned")
    _event(client, monkeypatch, stripe_stub, refund, "refund.updated", status="succeeded")
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (Status.REFUNDED, 4000)
    assert _sales(order).refunded_minor == 4000
    assert any("We refunded $40.00" in text for text in _texts(order))

    with django_capture_on_commit_callbacks(execute=True):
        event = _event(
            client,
            monkeypatch,
            stripe_stub,
            refund,
            type_,
            status="failed",
            failure_reason="expired_or_canceled_card",
        )

    assert event.status == ProviderEvent.Status.PROCESSED
    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == Refund.Status.FAILED
    assert refund.failure_reason == "expired_or_canceled_card"
    # The order holds the customer's money again: paid, nothing refunded, figures back.
    assert (order.status, order.refunded_minor) == (Status.PAID, 0)
    assert _sales(order).refunded_minor == 0
    assert refund_remaining_minor(order=order) == 4000
    failed = order.events.get(kind=OrderEvent.Kind.REFUND_FAILED)
    assert (failed.data["from"], failed.data["to"]) == (Status.REFUNDED, Status.PAID)
    # Operators and the shop's owner see it.
    assert order.needs_review
    assert "failed after it had succeeded" in order.review_reason
    alert = next(m for m in mail.outbox if owner.email in m.to)
    assert order.number in alert.subject and "expired_or_canceled_card" in alert.body
    # The shopper is not left believing the money is on its way.
    assert any("did not reach you" in text and "$40.00" in text for text in _texts(order))


def test_a_partial_refund_failing_on_a_shipped_order_puts_it_back_to_shipped(
    client, monkeypatch, stripe_stub, paid
):
    order, _payment, owner = paid
    order_fulfil(order=order, carrier="Aramex", tracking_number="AX1")
    refund = refund_request(order=order, amount_minor=1000, user=owner)
    _event(client, monkeypatch, stripe_stub, refund, "refund.updated", status="succeeded")
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (Status.PARTIALLY_REFUNDED, 1000)

    _event(client, monkeypatch, stripe_stub, refund, "refund.failed", status="failed")

    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (Status.FULFILLED, 0)
    assert _sales(order).refunded_minor == 0


def test_charge_refunded_never_completes_refunds_by_their_amount(
    client, monkeypatch, stripe_stub, paid, django_capture_on_commit_callbacks
):
    """Two pending refunds of the same amount; Stripe's charge counts both as refunded. Only
    the one Stripe names as succeeded is recorded, and the other one's failure counts."""
    order, payment, owner = paid
    first = refund_request(order=order, amount_minor=1000, user=owner)
    second = refund_request(order=order, amount_minor=1000, user=owner)
    charge = stripe_stub.charges[payment.charge_id]
    assert charge["amount_refunded"] == 2000

    deliver_and_process(client, monkeypatch, "charge.refunded", dict(charge))
    _event(client, monkeypatch, stripe_stub, first, "refund.updated", status="succeeded")
    with django_capture_on_commit_callbacks(execute=True):
        _event(client, monkeypatch, stripe_stub, second, "refund.failed", status="failed")

    first.refresh_from_db()
    second.refresh_from_db()
    order.refresh_from_db()
    assert (first.status, second.status) == (Refund.Status.SUCCEEDED, Refund.Status.FAILED)
    assert (order.status, order.refunded_minor) == (Status.PARTIALLY_REFUNDED, 1000)
    assert order.events.filter(kind=OrderEvent.Kind.REFUNDED).count() == 1
    assert _sales(order).refunded_minor == 1000
    # A refund that failed before it succeeded: the shopper was never told, the staff are.
    assert order.needs_review and len(mail.outbox) >= 1
    assert not any("did not reach you" in text for text in _texts(order))


def test_our_refund_id_in_metadata_does_not_complete_a_refund_of_another_payment(
    client, monkeypatch, stripe_stub, paid, make_order
):
    """Metadata alone is not proof: a refund naming our refund id but refunding some other
    charge (another integration on the account) leaves our refund pending."""
    order, _payment, owner = paid
    ours = refund_request(order=order, amount_minor=1000, user=owner)
    elsewhere = make_order()
    elsewhere.customer.page_id = "104400000000002"  # another shop's page, not ours
    elsewhere.customer.save(update_fields=["page_id"])
    other_payment = pay(client, monkeypatch, stripe_stub, elsewhere)
    other_charge = stripe_stub.charges[other_payment.charge_id]
    impostor = {
        "id": "re_other_integration_1",
        "object": "refund",
        "amount": 1000,
        "currency": "usd",
        "charge": other_charge["id"],
        "payment_intent": other_charge["payment_intent"],
        "status": "succeeded",
        "metadata": {"refund_id": str(ours.pk)},
    }

    deliver_and_process(client, monkeypatch, "refund.updated", impostor)

    ours.refresh_from_db()
    order.refresh_from_db()
    assert ours.status == Refund.Status.PENDING
    assert (order.status, order.refunded_minor) == (Status.PAID, 0)
    # It is a refund of that other order's payment, made outside our admin, and booked there.
    booked = Refund.objects.get(provider_refund_id="re_other_integration_1")
    assert booked.payment == other_payment and booked.order == elsewhere


def test_a_late_success_does_not_undo_a_failure(client, monkeypatch, stripe_stub, paid):
    order, _payment, owner = paid
    refund = refund_request(order=order, amount_minor=1000, user=owner)
    _event(client, monkeypatch, stripe_stub, refund, "refund.failed", status="failed")
    _event(client, monkeypatch, stripe_stub, refund, "refund.updated", status="succeeded")

    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == Refund.Status.FAILED
    assert (order.status, order.refunded_minor) == (Status.PAID, 0)


def test_money_back_for_an_expired_order_then_failing_is_told_and_flagged(
    client, monkeypatch, stripe_stub, make_order, shop_page, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from commerce.services.orders import order_expire
    from tests.payments.webhook_helpers import checkout_start

    order = make_order()
    shop_page(order)
    payment = checkout_start(order)
    session = stripe_stub.session_complete(payment.checkout_session_id)
    order_expire(order=order, now=order.reserved_until + timedelta(seconds=1))
    deliver_and_process(client, monkeypatch, "checkout.session.completed", session)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.SUCCEEDED
    owner = staff_create(merchant=order.merchant, role=MerchantMembership.Role.OWNER)
    refund = refund_request(order=order, amount_minor=order.total_minor, user=owner)
    _event(client, monkeypatch, stripe_stub, refund, "refund.updated", status="succeeded")

    with django_capture_on_commit_callbacks(execute=True):
        _event(client, monkeypatch, stripe_stub, refund, "refund.failed", status="failed")

    order.refresh_from_db()
    assert order.status == Status.EXPIRED
    assert order.events.filter(kind=OrderEvent.Kind.REFUND_FAILED).count() == 1
    assert any("did not reach you" in text for text in _texts(order))
    assert refund_remaining_minor(payment=payment) == order.total_minor
