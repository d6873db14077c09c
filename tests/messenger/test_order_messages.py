"""Order transitions reach the shopper in Messenger exactly once: receipt, shipping and delivery
updates, refunds, and a "try again" after an expired or failed payment.

Orders go through the real commerce services; messages go through the outbox to the local Graph
stub, whose received bodies are asserted.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from commerce.models import Address, Cart, CartLine, Order
from commerce.services.orders import (
    order_create_from_cart,
    order_expire,
    order_fulfil,
    order_mark_delivered,
    order_mark_paid,
    order_payment_failed,
    order_record_refund,
    order_record_refund_reversal,
)
from messenger.models import OutboundMessage
from messenger.services.outbox import outbox_deliver_customer
from payments.models import Payment
from tests.factories import shipping_method_create, variant_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(messenger_page, messenger_customer):
    merchant = messenger_page.merchant
    merchant.tax_rate_bp = 500
    merchant.save()
    variant = variant_create(merchant=merchant, price_minor=1999, stock=5, name="M")
    variant.product.title = "Desert T-shirt"
    variant.product.title_ar = "قميص الصحراء"
    variant.product.save()
    cart = Cart.objects.create(merchant=merchant, customer=messenger_customer)
    CartLine.objects.create(cart=cart, variant=variant, quantity=2)
    address = Address.objects.create(
        customer=messenger_customer,
        name="Layla Haddad",
        line1="12 Gulf Road",
        city="Kuwait City",
        country="KW",
        is_default=True,
    )
    method = shipping_method_create(merchant=merchant, price_minor=500, name="Courier")
    return order_create_from_cart(cart=cart, shipping_method=method, address=address)


def _deliver(customer) -> list[dict]:
    outbox_deliver_customer(customer_id=customer.pk)
    return [row.message for row in OutboundMessage.objects.filter(customer=customer)]


def _paid(order) -> Order:
    Payment.objects.create(
        order=order,
        gateway=Payment.Gateway.STRIPE_CHECKOUT,
        status=Payment.Status.SUCCEEDED,
        amount_minor=order.total_minor,
        currency=order.currency,
        idempotency_key=f"checkout:{order.pk}:1",
        card_brand="visa",
        card_last4="4242",
        succeeded_at=timezone.now(),
    )
    return order_mark_paid(order=order)


def test_paid_order_gets_one_receipt_with_exact_amounts(order, messenger_customer, graph_stub):
    _paid(order)
    order_mark_paid_again = Order.objects.get(pk=order.pk)
    assert order_mark_paid_again.status == Order.Status.PAID

    outbox_deliver_customer(customer_id=messenger_customer.pk)

    receipt_body, note_body = graph_stub.sent_messages()
    assert receipt_body["messaging_type"] == "RESPONSE"
    receipt = receipt_body["message"]["attachment"]["payload"]
    assert receipt["template_type"] == "receipt"
    assert receipt["order_number"] == order.number
    assert receipt["currency"] == "USD"
    assert receipt["payment_method"] == "Visa 4242"
    assert receipt["recipient_name"] == "Layla Haddad"
    assert receipt["address"]["street_1"] == "12 Gulf Road"
    assert receipt["address"]["country"] == "KW"
    # An element's price is what the line costs (2 x 19.99): the platform's reference example
    # adds the element prices up to the subtotal (docs/platform-rules.md).
    assert receipt["elements"] == [
        {
            "title": "Desert T-shirt",
            "subtitle": "M",
            "quantity": 2,
            "price": 39.98,
            "currency": "USD",
        }
    ]
    # 39.98 + 5.00 shipping, 5% tax on 44.98 = 2.249 -> 2.25, total 47.23
    assert receipt["summary"] == {
        "subtotal": 39.98,
        "shipping_cost": 5.0,
        "total_tax": 2.25,
        "total_cost": 47.23,
    }
    raw = next(r.raw_body for r in graph_stub.requests if '"receipt"' in r.raw_body)
    assert '"total_cost": 47.23' in raw or '"total_cost":47.23' in raw
    assert order.number in note_body["message"]["text"]
    assert {q["payload"] for q in note_body["message"]["quick_replies"]} >= {"ORDERS", "SHOP"}


def test_receipt_is_tagged_outside_the_24_hour_window(order, messenger_customer, graph_stub):
    messenger_customer.last_interaction_at = timezone.now() - timedelta(days=2)
    messenger_customer.save()
    _paid(order)
    outbox_deliver_customer(customer_id=messenger_customer.pk)
    bodies = graph_stub.sent_messages()
    assert {(b["messaging_type"], b.get("tag")) for b in bodies} == {
        ("MESSAGE_TAG", "POST_PURCHASE_UPDATE")
    }


def test_shipping_update_has_a_track_package_button(order, messenger_customer, graph_stub):
    order = _paid(order)
    shipment = order_fulfil(
        order=order,
        carrier="Aramex",
        tracking_number="AX123",
        tracking_url="https://track.example.com/AX123",
    )
    outbox_deliver_customer(customer_id=messenger_customer.pk)
    update = graph_stub.sent_messages()[-1]["message"]["attachment"]["payload"]
    assert update["template_type"] == "button"
    assert "Aramex" in update["text"] and "AX123" in update["text"]
    track, orders = update["buttons"]
    assert track == {
        "type": "web_url",
        "title": "Track package",
        "url": "https://track.example.com/AX123",
        "webview_height_ratio": "tall",
    }
    assert orders["payload"] == f"ORDER:{order.pk}"
    assert OutboundMessage.objects.filter(dedupe_key=f"shipment:{shipment.pk}").count() == 1

    order_mark_delivered(order=Order.objects.get(pk=order.pk))
    outbox_deliver_customer(customer_id=messenger_customer.pk)
    assert "delivered" in graph_stub.sent_messages()[-1]["message"]["text"]


def test_refund_message_names_the_amount(order, messenger_customer, graph_stub):
    order = _paid(order)
    order_record_refund(order=order, amount_minor=1000, reference="re_1")
    outbox_deliver_customer(customer_id=messenger_customer.pk)
    assert "$10.00" in graph_stub.sent_messages()[-1]["message"]["text"]


def test_arabic_shopper_gets_arabic_updates(order, messenger_customer, graph_stub):
    messenger_customer.locale = "ar_AR"
    messenger_customer.save()
    order.customer.refresh_from_db()
    order = _paid(Order.objects.get(pk=order.pk))
    order_record_refund(order=order, amount_minor=1000, reference="re_1")
    outbox_deliver_customer(customer_id=messenger_customer.pk)
    texts = [b["message"].get("text", "") for b in graph_stub.sent_messages()]
    refund_text = texts[-1]
    assert "استرداد" in refund_text or "أعدنا" in refund_text, refund_text
    assert "US$" in refund_text


def test_two_refunds_of_the_same_amount_are_two_messages(order, messenger_customer, graph_stub):
    order = _paid(order)
    order_record_refund(order=order, amount_minor=500)
    order_record_refund(order=order, amount_minor=500)
    outbox_deliver_customer(customer_id=messenger_customer.pk)
    texts = [b["message"].get("text", "") for b in graph_stub.sent_messages()]
    assert sum("We refunded $5.00" in text for text in texts) == 2


@pytest.mark.parametrize(
    ("locale", "says"),
    [("en_US", "did not reach you"), ("ar_AR", "لم يصلك")],
)
def test_a_refund_that_failed_after_the_shopper_was_told_is_corrected_in_their_language(
    order, messenger_customer, graph_stub, locale, says
):
    messenger_customer.locale = locale
    messenger_customer.save()
    order = _paid(Order.objects.get(pk=order.pk))
    order_record_refund(order=order, amount_minor=1000, reference="re_1")
    order_record_refund_reversal(
        order=order,
        amount_minor=1000,
        net_paid_minor=order.total_minor,
        reason="expired_or_canceled_card",
        reference="re_1",
    )
    outbox_deliver_customer(customer_id=messenger_customer.pk)
    last = graph_stub.sent_messages()[-1]["message"]
    assert says in last["text"] and order.number in last["text"]
    assert last["quick_replies"][0]["payload"] == "HELP"
    assert OutboundMessage.objects.filter(dedupe_key=f"refund-failed:{order.pk}:re_1").count() == 1


def test_expired_order_offers_to_try_again_and_reorder_refills_the_cart(
    order, messenger_customer, graph_stub
):
    order_expire(order=order, now=order.reserved_until + timedelta(seconds=1))
    outbox_deliver_customer(customer_id=messenger_customer.pk)
    offer = graph_stub.sent_messages()[-1]["message"]
    assert order.number in offer["text"]
    assert offer["quick_replies"][0]["payload"] == f"REORDER:{order.pk}"

    from messenger.conversation.engine import conversation_handle
    from messenger.events import event_parse

    event = event_parse(
        {
            "sender": {"id": messenger_customer.psid},
            "recipient": {"id": messenger_customer.page_id},
            "timestamp": 1764067200000,
            "message": {
                "mid": "m_retry",
                "text": "Try again",
                "quick_reply": {"payload": f"REORDER:{order.pk}"},
            },
        },
        page_id=messenger_customer.page_id,
    )
    conversation_handle(
        customer=messenger_customer,
        page=_page(messenger_customer),
        event=event,
        inbound_event_id=999001,
    )
    cart = Cart.objects.get(customer=messenger_customer, status=Cart.Status.OPEN)
    assert list(cart.lines.values_list("quantity", flat=True)) == [2]


def _page(customer):
    from messenger.models import MessengerPage

    return MessengerPage.objects.get(page_id=customer.page_id)


def test_failed_payment_offers_to_try_again_once(order, messenger_customer, graph_stub):
    order_payment_failed(order=order, reason="card_declined")
    outbox_deliver_customer(customer_id=messenger_customer.pk)
    assert OutboundMessage.objects.filter(dedupe_key=f"payment-failed:{order.pk}").count() == 1
    assert "did not go through" in graph_stub.sent_messages()[-1]["message"]["text"]


def test_no_message_for_orders_without_a_messenger_page(order, messenger_page):
    messenger_page.page_id = "999"
    messenger_page.save()
    _paid(order)
    assert not OutboundMessage.objects.exists()
