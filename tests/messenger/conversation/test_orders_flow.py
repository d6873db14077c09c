"""My orders: the recent orders with status, and one order with its lines, tracking and Pay."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.utils import timezone

from commerce.models import Cart, CartLine, Order
from commerce.services.orders import order_create_from_cart, order_fulfil, order_mark_paid
from core.money import Money
from payments.services.checkout_links import checkout_token_read
from tests.factories import customer_create, product_create, shipping_method_create, variant_create
from tests.messenger.conversation import support
from tests.messenger.conversation.support import Chat

pytestmark = pytest.mark.django_db

# The shared conversation fixtures (an English and an Arabic shopper of one shop).
chat, chat_ar, merchant = support.chat, support.chat_ar, support.merchant


@pytest.fixture
def place(merchant):
    product = product_create(merchant=merchant, title="Linen shirt", title_ar="قميص كتان")
    variant = variant_create(product=product, price_minor=2000, stock=50, name="M", name_ar="وسط")
    method = shipping_method_create(merchant=merchant, name="Standard", price_minor=500)

    def place_order(customer, quantity: int = 1) -> Order:
        cart = Cart.objects.create(merchant=merchant, customer=customer)
        CartLine.objects.create(cart=cart, variant=variant, quantity=quantity)
        return order_create_from_cart(
            cart=cart, shipping_method=method, contact_email="layla@example.com"
        )

    return place_order


def shipped(order: Order, **tracking) -> Order:
    order_mark_paid(order=order)
    order_fulfil(order=order, carrier="Aramex", **tracking)
    order.refresh_from_db()
    return order


def buttons_of(message: dict) -> list[dict]:
    return message["attachment"]["payload"]["buttons"]


def test_no_orders_yet(chat):
    [reply] = chat.postback("ORDERS")

    assert reply["text"] == "You have no orders yet. Have a look at what we sell:"
    assert Chat.quick_reply_payloads(reply)[0] == "SHOP"


def test_recent_orders_with_status_total_and_buttons(chat, place):
    pending = place(chat.customer)
    sent = shipped(
        place(chat.customer, quantity=2),
        tracking_number="AR123",
        tracking_url="https://track.example.com/AR123",
    )

    chat.deliver()  # the receipt and shipping update the orders caused
    [carousel] = chat.postback("ORDERS")

    first, second = Chat.elements(carousel)
    assert first["title"] == f"Order {sent.number}"
    assert first["subtitle"].startswith("Shipped · $45.00 · ")
    assert [b["title"] for b in first["buttons"]] == ["Details", "Track package"]
    assert first["buttons"][0]["payload"] == f"ORDER:{sent.pk}"
    assert first["buttons"][1]["url"] == "https://track.example.com/AR123"
    assert second["title"] == f"Order {pending.number}"
    assert second["subtitle"].startswith("Waiting for payment · $25.00 · ")
    pay = second["buttons"][1]
    assert pay["title"] == "Pay $25.00"
    assert pay["messenger_extensions"] is True and pay["webview_height_ratio"] == "tall"
    assert Chat.quick_reply_payloads(carousel)[0] == "SHOP"


def test_only_the_five_most_recent_orders_of_this_customer(chat, place):
    orders = [place(chat.customer) for _ in range(6)]
    place(customer_create(merchant=chat.customer.merchant, psid="999"))

    chat.deliver()  # the receipt and shipping update the orders caused
    [carousel] = chat.postback("ORDERS")

    titles = [element["title"] for element in Chat.elements(carousel)]
    assert titles == [f"Order {order.number}" for order in reversed(orders[1:])]


def test_order_details_with_tracking(chat, place):
    order = shipped(
        place(chat.customer, quantity=2),
        tracking_number="AR123",
        tracking_url="https://track.example.com/AR123",
    )

    chat.deliver()  # the receipt and shipping update the orders caused
    [details] = chat.postback(f"ORDER:{order.pk}")

    text = details["attachment"]["payload"]["text"]
    assert text.startswith(f"Order {order.number}: Shipped\nPlaced on ")
    assert "2 × Linen shirt (M): $40.00" in text
    assert "Total: $45.00" in text
    assert "Shipped with Aramex, tracking number AR123" in text
    [track] = buttons_of(details)
    assert track == {
        "type": "web_url",
        "title": "Track package",
        "url": "https://track.example.com/AR123",
        "webview_height_ratio": "full",
    }
    assert Chat.quick_reply_payloads(details)[0] == "ORDERS"


def test_order_details_by_number(chat, place):
    order = place(chat.customer)

    [details] = chat.postback(f"ORDER:{order.number}")

    assert details["attachment"]["payload"]["text"].startswith(f"Order {order.number}:")


def test_shipment_without_tracking_link_is_text_only(chat, place):
    order = shipped(place(chat.customer), tracking_number="X1")

    chat.deliver()  # the receipt and shipping update the orders caused
    [details] = chat.postback(f"ORDER:{order.pk}")

    assert "Shipped with Aramex, tracking number X1" in details["text"]
    assert "attachment" not in details


def test_pending_order_offers_pay_again(chat, place):
    order = place(chat.customer)

    chat.deliver()  # the receipt and shipping update the orders caused
    [details] = chat.postback(f"ORDER:{order.pk}")

    [pay] = buttons_of(details)
    assert pay["title"] == "Pay $25.00"
    token = urlsplit(pay["url"]).path.removeprefix("/checkout/").rstrip("/")
    assert checkout_token_read(token=token) == order.pk


def test_pending_order_past_its_reservation_has_no_pay_button(chat, place):
    order = place(chat.customer)
    Order.objects.filter(pk=order.pk).update(reserved_until=timezone.now() - timedelta(minutes=1))

    chat.deliver()  # the receipt and shipping update the orders caused
    [details] = chat.postback(f"ORDER:{order.pk}")

    assert "attachment" not in details
    assert "Waiting for payment" in details["text"]


@pytest.mark.parametrize("arg", ["other", "999999", "abc", ""])
def test_someone_elses_or_unknown_order_is_not_found(chat, place, arg):
    theirs = place(customer_create(merchant=chat.customer.merchant, psid="999"))
    payload = {"other": f"ORDER:{theirs.pk}", "": "ORDER"}.get(arg, f"ORDER:{arg}")

    [reply] = chat.postback(payload)

    assert reply["text"] == "Sorry, I can't find this order."
    assert theirs.number not in reply["text"]
    assert Chat.quick_reply_payloads(reply)[0] == "ORDERS"


def test_orders_in_arabic(chat_ar, place):
    order = shipped(
        place(chat_ar.customer),
        tracking_number="AR123",
        tracking_url="https://track.example.com/AR123",
    )

    chat_ar.deliver()  # the receipt and shipping update the order caused
    [carousel] = chat_ar.postback("ORDERS")
    [element] = Chat.elements(carousel)
    assert element["title"] == f"الطلب {order.number}"
    assert element["subtitle"].startswith(f"تم الشحن · {Money(2500, 'USD').format('ar')} · ")
    assert [b["title"] for b in element["buttons"]] == ["التفاصيل", "تتبّع الشحنة"]

    [details] = chat_ar.postback(f"ORDER:{order.pk}")
    text = details["attachment"]["payload"]["text"]
    assert "قميص كتان (وسط)" in text
    assert "Aramex" in text and "AR123" in text
