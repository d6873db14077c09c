"""The whole promise of the payments issue in one path: an order placed by a Messenger shopper is
paid through a Checkout Session, confirmed from the signed webhook, answered with exactly one
receipt in the thread, later with a tagged shipping update, and refunded with a message."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from commerce.models import Cart, CartLine, Order
from commerce.services.orders import order_create_from_cart, order_fulfil
from messenger.models import OutboundMessage
from messenger.services.outbox import outbox_deliver_customer
from payments.services.refunds import refund_request
from tests.factories import variant_create
from tests.messenger.conftest import messenger_customer, messenger_page  # noqa: F401
from tests.messenger.graph_stub import graph_stub  # noqa: F401
from tests.payments.webhook_helpers import deliver_and_process, pay

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat_order(messenger_page, messenger_customer):
    variant = variant_create(merchant=messenger_page.merchant, price_minor=2500, stock=3)
    cart = Cart.objects.create(merchant=messenger_page.merchant, customer=messenger_customer)
    CartLine.objects.create(cart=cart, variant=variant, quantity=1)
    return order_create_from_cart(cart=cart)


def test_paid_in_chat_receipt_shipping_update_and_refund(
    client, monkeypatch, stripe_stub, graph_stub, chat_order, messenger_customer
):
    payment = pay(client, monkeypatch, stripe_stub, chat_order, card_brand="visa", last4="4242")
    # The same event delivered again changes nothing and queues no second receipt.
    session = stripe_stub.sessions[payment.checkout_session_id]
    deliver_and_process(client, monkeypatch, "checkout.session.completed", session)

    order = Order.objects.get(pk=chat_order.pk)
    assert order.status == Order.Status.PAID
    assert OutboundMessage.objects.filter(dedupe_key=f"receipt:{order.pk}").count() == 1
    outbox_deliver_customer(customer_id=messenger_customer.pk)
    receipt = graph_stub.sent_messages()[0]["message"]["attachment"]["payload"]
    assert receipt["template_type"] == "receipt"
    assert receipt["payment_method"] == "Visa 4242"
    assert receipt["summary"]["total_cost"] == 25.0

    # Days later, outside the 24-hour window: the shipping update goes out tagged.
    messenger_customer.last_interaction_at = timezone.now() - timedelta(days=3)
    messenger_customer.save()
    order_fulfil(order=order, carrier="DHL", tracking_url="https://track.example.com/1")
    outbox_deliver_customer(customer_id=messenger_customer.pk)
    update = graph_stub.sent_messages()[-1]
    assert (update["messaging_type"], update["tag"]) == ("MESSAGE_TAG", "POST_PURCHASE_UPDATE")
    assert "DHL" in update["message"]["attachment"]["payload"]["text"]

    refund = refund_request(order=Order.objects.get(pk=order.pk), amount_minor=1000, user=None)
    refund_object = stripe_stub.refunds[refund.provider_refund_id]
    deliver_and_process(
        client, monkeypatch, "refund.updated", {**refund_object, "status": "succeeded"}
    )
    order.refresh_from_db()
    assert order.status == Order.Status.PARTIALLY_REFUNDED
    outbox_deliver_customer(customer_id=messenger_customer.pk)
    assert "$10.00" in graph_stub.sent_messages()[-1]["message"]["text"]
