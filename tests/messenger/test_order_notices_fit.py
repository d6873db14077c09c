"""Order notices are built to fit whatever a real order holds, and formatting never blocks the
order change: 101 lines, long Arabic titles, zero- and three-decimal currencies, no image, an
image the platform would refuse, no or half an address, many parcels.

Orders are placed and moved through the real services (and paid through the real Stripe webhook
where the payment is the point); messages go through the outbox to the Graph stub. Every body
the stub receives is also checked with the sandbox's copy of the platform's rules
(``sandbox.meta.sendapi``), which refuses what Messenger refuses (e.g. 101 receipt elements).
"""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from commerce.models import (
    Address,
    Cart,
    CartLine,
    Order,
    OrderEvent,
    OrderLine,
    ProductImage,
    Shipment,
)
from commerce.notifications import OrderNotice, order_subscribe, order_unsubscribe
from commerce.services.orders import (
    order_create_from_cart,
    order_fulfil,
    order_mark_delivered,
    order_mark_paid,
)
from core.money import Money
from messenger.models import OutboundMessage
from messenger.services.outbox import outbox_deliver_customer
from sandbox.meta.sendapi import message_check
from tests.factories import product_create, shipping_method_create, variant_create
from tests.payments.stripe_stub import stripe_stub  # noqa: F401  (fixture)
from tests.payments.webhook_helpers import pay

pytestmark = pytest.mark.django_db

Status = OutboundMessage.Status


def _place(
    customer,
    *,
    lines: int = 1,
    price_minor: int = 1000,
    quantity: int = 1,
    title: str | None = None,
    variant_name: str = "M",
    with_address: bool = True,
    city: str = "Salmiya",
    with_image: bool = False,
) -> Order:
    merchant = customer.merchant
    cart = Cart.objects.create(merchant=merchant, customer=customer)
    for index in range(lines):
        product = product_create(merchant=merchant, title=title or f"Linen shirt {index + 1}")
        if with_image:
            ProductImage.objects.create(
                product=product, image=f"products/{product.pk}/main.jpg", width=800, height=800
            )
        variant = variant_create(
            product=product,
            price_minor=price_minor,
            stock=max(quantity, 10),
            currency=merchant.default_currency,
            name=variant_name,
        )
        CartLine.objects.create(cart=cart, variant=variant, quantity=quantity)
    address = None
    if with_address:
        address = Address.objects.create(
            customer=customer,
            name="Layla Haddad",
            line1="Block 3, Street 12",
            city=city,
            country="KW",
        )
    method = shipping_method_create(merchant=merchant, price_minor=0, name="Pickup")
    return order_create_from_cart(cart=cart, shipping_method=method, address=address)


def _receipt_row(order: Order) -> OutboundMessage:
    return OutboundMessage.objects.get(dedupe_key=f"receipt:{order.pk}")


def _receipt_payload(order: Order) -> dict:
    row = _receipt_row(order)
    assert row.status == Status.PENDING, (row.error_code, row.error_message)
    message_check(row.message)  # what the platform would accept
    return row.message["attachment"]["payload"]


# -- item 11: a paid 101-line order ----------------------------------------------------------


def test_a_101_line_order_is_paid_through_the_webhook_and_its_receipt_is_summarized(
    client, monkeypatch, stripe_stub, graph_stub, messenger_customer
):
    order = _place(messenger_customer, lines=101, price_minor=1250, quantity=2)

    pay(client, monkeypatch, stripe_stub, order, card_brand="visa", last4="4242")

    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert set(order.reservations.values_list("status", flat=True)) == {"sold"}
    # Stripe takes 100 line items at most: the session summed up the last two lines.
    session = stripe_stub.sessions[order.payments.get().checkout_session_id]
    assert session["amount_total"] == order.total_minor == 101 * 2 * 1250

    outbox_deliver_customer(customer_id=messenger_customer.pk)
    receipt_body, note_body = graph_stub.sent_messages()
    message_check(receipt_body["message"])
    receipt = receipt_body["message"]["attachment"]["payload"]
    elements = receipt["elements"]
    assert len(elements) == 100
    # Each element's price is its line's total (2 x 12.50), as the platform's reference adds up.
    assert elements[0] == {
        "title": "Linen shirt 1",
        "subtitle": "M",
        "quantity": 2,
        "price": 25,
        "currency": "USD",
    }
    assert elements[98]["title"] == "Linen shirt 99"
    assert elements[99] == {
        "title": "and 2 more items",
        "quantity": 4,
        "price": 50,
        "currency": "USD",
    }
    # The element prices (line totals) still add up to the subtotal.
    assert sum(Decimal(str(e["price"])) for e in elements) == Decimal("2525")
    assert receipt["summary"]["subtotal"] == receipt["summary"]["total_cost"] == 2525
    assert order.number in note_body["message"]["text"]
    assert not order.events.filter(kind=OrderEvent.Kind.NOTICE_FAILED).exists()


# -- every notice builds what fits -------------------------------------------------------------


def test_the_longest_arabic_titles_and_tracking_details_fit_every_notice(messenger_customer):
    messenger_customer.locale = "ar_AR"
    messenger_customer.save()
    title = ("قَمِيصٌ كَتَّانِيٌّ مُطَرَّزٌ " * 4)[:80]  # the column's 80, with harakat
    variant_name = ("مَقَاسٌ كَبِيرٌ جِدًّا " * 3)[:40]
    order = _place(messenger_customer, title=title, variant_name=variant_name)

    order = order_mark_paid(order=Order.objects.get(pk=order.pk))
    shipment = order_fulfil(
        order=order,
        carrier=("شَرِكَةُ الشَّحْنِ السَّرِيعِ " * 3)[:60],
        tracking_number="AX" + "7" * 78,
        tracking_url="https://track.example/" + "x" * 400,
    )

    (element,) = _receipt_payload(order)["elements"]
    assert (element["title"], element["subtitle"]) == (title.strip(), variant_name.strip())
    note = OutboundMessage.objects.get(dedupe_key=f"receipt-note:{order.pk}")
    assert re.search(r"[\u0621-\u064A]", note.message["text"]), note.message["text"]
    update = OutboundMessage.objects.get(dedupe_key=f"shipment:{shipment.pk}")
    assert update.status == Status.PENDING
    message_check(update.message)
    payload = update.message["attachment"]["payload"]
    assert len(payload["text"]) <= 640 and "AX7777" in payload["text"]
    assert [b["type"] for b in payload["buttons"]] == ["web_url", "postback"]


@pytest.mark.parametrize(
    ("currency", "price_minor", "expected"),
    [("JPY", 1500, 1500), ("KWD", 12345, 12.345), ("USD", 1999, 19.99)],
)
def test_receipt_amounts_are_exact_in_zero_and_three_decimal_currencies(
    messenger_page, messenger_customer, currency, price_minor, expected
):
    merchant = messenger_page.merchant
    merchant.default_currency = currency
    merchant.save()
    order = _place(messenger_customer, price_minor=price_minor)

    order_mark_paid(order=Order.objects.get(pk=order.pk))

    payload = _receipt_payload(order)
    assert payload["currency"] == currency
    assert payload["elements"][0]["price"] == expected
    assert payload["summary"]["total_cost"] == expected


def test_receipt_leaves_out_images_the_platform_would_refuse(settings, messenger_customer):
    settings.PUBLIC_BASE_URL = ""  # product images then get relative URLs
    order = _place(messenger_customer, lines=2, with_image=True)
    assert all(line.image_url.startswith("/") for line in order.lines.all())

    order_mark_paid(order=Order.objects.get(pk=order.pk))

    elements = _receipt_payload(order)["elements"]
    assert [("image_url" in element) for element in elements] == [False, False]


def test_receipt_without_an_address_or_with_half_of_one_leaves_it_out(messenger_customer):
    no_address = _place(messenger_customer, with_address=False)
    no_city = _place(messenger_customer, city="")
    blank_title = _place(messenger_customer)
    OrderLine.objects.filter(order=blank_title).update(product_title="  ", sku="SKU-77")
    Order.objects.filter(pk=blank_title.pk).update(shipping_name="   ")

    for order in (no_address, no_city, blank_title):
        order_mark_paid(order=Order.objects.get(pk=order.pk))

    assert "address" not in _receipt_payload(no_address)
    assert "address" not in _receipt_payload(no_city)
    payload = _receipt_payload(blank_title)
    assert payload["elements"][0]["title"] == "SKU-77"
    assert payload["address"]["city"] == "Salmiya"
    assert payload["recipient_name"] == "Layla"  # the customer's name, not blanks


def test_shipping_update_without_a_usable_tracking_link_keeps_the_other_button(
    messenger_customer,
):
    from messenger.services.order_messages import shipping_update_message

    order = _place(messenger_customer)
    shipment = Shipment(
        order=order, carrier="Aramex", tracking_number="AX1", tracking_url="track.example/AX1"
    )

    message = shipping_update_message(order, shipment)

    message_check(message)
    (button,) = message["attachment"]["payload"]["buttons"]
    assert button["type"] == "postback" and button["payload"] == f"ORDER:{order.pk}"


def test_delivering_many_parcels_at_once_is_recorded_and_announced(messenger_customer):
    """The delivery message's dedupe key names every parcel; with many it must still fit."""
    order = order_mark_paid(order=_place(messenger_customer, lines=1, quantity=60))
    for parcel in range(60):
        order_fulfil(order=order, carrier="Aramex", tracking_number=f"AX-{parcel:04d}")

    order_mark_delivered(order=Order.objects.get(pk=order.pk))

    assert Order.objects.get(pk=order.pk).status == Order.Status.DELIVERED
    (update,) = OutboundMessage.objects.filter(order=order, dedupe_key__startswith="delivered:")
    assert update.status == Status.PENDING and "delivered" in update.message["text"]


# -- a message that still cannot be built ------------------------------------------------------


def test_a_receipt_that_cannot_be_built_is_a_failed_message_and_the_order_is_still_paid(
    messenger_customer, graph_stub
):
    # A price JSON cannot carry exactly (19 significant digits): the receipt refuses to round.
    order = _place(messenger_customer, price_minor=1_234_567_890_123_456_789)

    order_mark_paid(order=Order.objects.get(pk=order.pk))

    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert set(order.reservations.values_list("status", flat=True)) == {"sold"}
    receipt = _receipt_row(order)
    assert (receipt.status, receipt.error_code) == (Status.FAILED, "build_failed")
    assert "cannot be sent exactly" in receipt.error_message
    outbox_deliver_customer(customer_id=messenger_customer.pk)
    (note,) = graph_stub.sent_messages()  # the failed row is never sent; the note is
    assert order.number in note["message"]["text"]


# -- a notifier that raises ------------------------------------------------------------------


def test_a_raising_notifier_lets_the_webhook_pay_the_order_and_shows_the_failure(
    client, admin_client, monkeypatch, stripe_stub, graph_stub, messenger_customer
):
    def broken(order, **data):
        raise RuntimeError("the CRM is down")

    order_subscribe(OrderNotice.PAID, broken)
    try:
        order = _place(messenger_customer, lines=2)
        pay(client, monkeypatch, stripe_stub, order)
    finally:
        order_unsubscribe(OrderNotice.PAID, broken)

    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    failure = order.events.get(kind=OrderEvent.Kind.NOTICE_FAILED)
    assert failure.data["notice"] == "paid" and "the CRM is down" in failure.message
    assert order.needs_review and "could not be notified" in order.review_reason
    # The other subscribers still ran: the receipt is queued.
    assert _receipt_row(order).status == Status.PENDING
    # An operator sees it: Needs attention lists the order.
    page = admin_client.get(reverse("dashboard:attention")).content.decode()
    assert order.number in page


def test_a_raising_notifier_lets_the_order_ship(messenger_customer):
    order = order_mark_paid(order=_place(messenger_customer))

    def broken(order, **data):
        raise ValueError("template missing")

    order_subscribe(OrderNotice.FULFILLED, broken)
    try:
        shipment = order_fulfil(order=order, carrier="DHL", tracking_number="D1")
    finally:
        order_unsubscribe(OrderNotice.FULFILLED, broken)

    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLED
    assert Shipment.objects.filter(order=order).get() == shipment
    assert order.events.filter(kind=OrderEvent.Kind.NOTICE_FAILED).count() == 1
    update = OutboundMessage.objects.get(dedupe_key=f"shipment:{shipment.pk}")
    assert update.status == Status.PENDING


def test_the_summing_up_receipt_element_is_in_the_shoppers_language():
    from django.utils import translation

    from messenger.services.order_messages import receipt_elements

    lines = [
        OrderLine(
            product_title=f"T{i}", sku=f"S{i}", unit_price_minor=100, quantity=1, total_minor=100
        )
        for i in range(103)
    ]
    with translation.override("ar"):
        elements = receipt_elements(lines, "KWD")

    assert len(elements) == 100
    assert elements[-1]["title"] == "و4 منتجات أخرى"
    assert (elements[-1]["quantity"], elements[-1]["price"]) == (4, Money(400, "KWD"))
