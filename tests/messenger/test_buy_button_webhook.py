"""Legacy v1.2 buy button, the Messenger side: signed webhook POSTs of the shared fixtures
(adapted to the shop) answered synchronously (``pre_checkout``, ``checkout_update``) and stored
in the inbox all the same; a ``payment`` stored and confirmed by the worker, its receipt
delivered to the Graph stub; and the product card's payment button in buy-button mode.
"""

from __future__ import annotations

import pytest
from django.test import TestCase

from commerce.models import Order, Variant
from commerce.tasks import order_paid_alert_staff
from messenger.models import InboundEvent, MessengerPage
from messenger.services import inbox
from messenger.services.inbox import inbound_events_drain
from messenger.services.outbox import outbox_deliver_customer
from messenger.tasks.outbox import outbox_deliver
from payments.services.buy_button import buy_button_payload_parse
from tests.factories import product_create, variant_create
from tests.messenger.conversation import support
from tests.messenger.conversation.support import Chat, chat_for
from tests.messenger.webhook.helpers import SECRET, URL, signed_headers
from tests.payments import stripe_stub as stripe_stub_module
from tests.payments.buy_button_support import (
    KW_ADDRESS,
    PAGE_ID,
    legacy_body,
    legacy_item,
    payment_item,
    shop_create,
    stripe_charge,
)

pytestmark = pytest.mark.django_db

stripe_stub = stripe_stub_module.stripe_stub  # fixture

merchant = support.merchant  # fixture for the product card tests

US_ADDRESS = {
    "id": 10105655000959552,
    "country": "US",
    "city": "MENLO PARK",
    "street1": "1 Hacker Way",
    "street2": "",
    "state": "CA",
    "postal_code": "94025",
}


@pytest.fixture(autouse=True)
def _webhook_state(settings, monkeypatch):
    """Meta's app secret, no page remembered from earlier tests, Celery publishes recorded."""
    settings.MESSENGER_APP_SECRET = SECRET
    inbox.inbox_page_cache_clear()
    monkeypatch.setattr(inbox, "_nudge_state", {"covered_until": 0.0, "redis_down_until": 0.0})
    monkeypatch.setattr(outbox_deliver, "apply_async", lambda *args, **kwargs: None)
    monkeypatch.setattr(order_paid_alert_staff, "delay", lambda *args, **kwargs: None)
    yield
    inbox.inbox_page_cache_clear()


def post(client, item: dict):
    body = legacy_body(item)
    return client.post(URL, data=body, content_type="application/json", **signed_headers(body))


def pre_checkout(shop, *, amount: str = "25.00", payload: str | None = None, **changes) -> dict:
    return legacy_item(
        "pre_checkout",
        payload=payload if payload is not None else shop.payload(),
        amount={"currency": "USD", "amount": amount},
        **changes,
    )


# -- pre_checkout -------------------------------------------------------------------------------


def test_pre_checkout_with_stock_succeeds_and_is_stored(client):
    shop = shop_create(stock=2)

    response = post(client, pre_checkout(shop))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"success": True}
    row = InboundEvent.objects.get()
    assert (row.kind, row.page_id, row.status) == ("pre_checkout", PAGE_ID, "pending")
    shop.variant.refresh_from_db()
    assert shop.variant.stock_reserved == 0  # a read check: nothing is reserved yet


def test_pre_checkout_without_stock_fails_in_the_shoppers_language(client):
    shop = shop_create(stock=0, locale="ar_AR")

    answer = post(client, pre_checkout(shop)).json()

    assert answer["success"] is False
    assert answer["error"]["code"] == "out_of_stock"
    assert answer["error"]["message"] == "عذرًا، نفدت كمية هذا المنتج."
    assert InboundEvent.objects.filter(kind="pre_checkout").exists()


def test_pre_checkout_with_stock_reserved_by_others_fails(client):
    shop = shop_create(stock=1)
    Variant.objects.filter(pk=shop.variant.pk).update(stock_reserved=1)

    assert post(client, pre_checkout(shop)).json()["error"]["code"] == "out_of_stock"


@pytest.mark.parametrize(
    "forge",
    [
        lambda shop: "ORDER:1042",  # the fixture's own payload
        lambda shop: shop.payload().replace(f"variant={shop.variant.pk}", "variant=999999"),
        lambda shop: shop.payload()[:-4] + "AAAA",
    ],
)
def test_a_forged_payload_is_refused(client, forge):
    shop = shop_create()

    answer = post(client, pre_checkout(shop, payload=forge(shop))).json()

    assert answer["success"] is False
    assert answer["error"]["code"] == "payload_invalid"


def test_a_button_sent_to_another_shopper_is_refused(client):
    shop = shop_create()
    other = shop.customer.__class__.objects.create(
        merchant=shop.merchant, page_id=PAGE_ID, psid="2407777"
    )

    answer = post(client, pre_checkout(shop, payload=shop.payload(customer=other))).json()

    assert answer["error"]["code"] == "payload_invalid"


def test_pre_checkout_after_a_price_change_fails(client):
    shop = shop_create(price_minor=2500)
    shop.variant.price_minor = 2700
    shop.variant.save(update_fields=["price_minor"])

    answer = post(client, pre_checkout(shop, amount="25.00")).json()

    assert answer["error"]["code"] == "amount_changed"


def test_pre_checkout_accepts_the_amount_with_a_shipping_option(client):
    shop = shop_create()  # 25.00, International to the US adds 15.00

    assert post(client, pre_checkout(shop, amount="40.00")).json() == {"success": True}
    assert post(client, pre_checkout(shop, amount="30.00")).json()["success"] is False


def test_an_inactive_variant_is_refused(client):
    shop = shop_create()
    shop.variant.is_active = False
    shop.variant.save(update_fields=["is_active"])

    assert post(client, pre_checkout(shop)).json()["error"]["code"] == "variant_unavailable"


def test_a_page_not_in_buy_button_mode_just_stores_the_event(client):
    shop = shop_create(mode=MessengerPage.Mode.CHECKOUT_PAGE)

    response = post(client, pre_checkout(shop))

    assert response.content == b"EVENT_RECEIVED"
    assert InboundEvent.objects.filter(kind="pre_checkout").exists()


def test_an_unsigned_pre_checkout_is_refused_before_anything(client):
    shop = shop_create()
    body = legacy_body(pre_checkout(shop))

    response = client.post(URL, data=body, content_type="application/json")

    assert response.status_code == 403
    assert not InboundEvent.objects.exists()


def test_an_unexpected_failure_answers_false_not_500(client, caplog):
    """A real failure inside the answer (a variant row whose currency code no longer exists,
    as old data could hold: pricing it raises) is logged and answered with a refusal."""
    shop = shop_create()
    type(shop.variant).objects.filter(pk=shop.variant.pk).update(currency="ZZZ")

    response = post(client, pre_checkout(shop))

    assert (response.status_code, response.json()) == (200, {"success": False})
    assert InboundEvent.objects.filter(kind="pre_checkout").exists()
    assert "could not answer a pre_checkout" in caplog.text


# -- checkout_update ------------------------------------------------------------------------------


def checkout_update(shop, address: dict) -> dict:
    return legacy_item("checkout_update", payload=shop.payload(), shipping_address=address)


def test_checkout_update_lists_the_shipping_options_for_the_address_country(client):
    shop = shop_create()

    us = post(client, checkout_update(shop, US_ADDRESS)).json()
    kw = post(client, checkout_update(shop, {**US_ADDRESS, "country": "KW"})).json()

    assert us == {
        "shipping": [
            {
                "option_id": str(shop.international.pk),
                "option_title": "International (5-7 days)",
                "price_list": [{"label": "Shipping", "amount": "15.00"}],
            }
        ]
    }
    assert kw == {
        "shipping": [
            {
                "option_id": str(shop.kuwait.pk),
                "option_title": "Kuwait courier",
                "price_list": [{"label": "Shipping", "amount": "5.00"}],
            }
        ]
    }
    assert InboundEvent.objects.filter(kind="checkout_update").count() == 2


def test_checkout_update_in_arabic_with_the_tax_on_shipping(client):
    shop = shop_create(locale="ar_AR", tax_rate_bp=500)

    answer = post(client, checkout_update(shop, {**US_ADDRESS, "country": "KW"})).json()

    assert answer == {
        "shipping": [
            {
                "option_id": str(shop.kuwait.pk),
                "option_title": "مندوب الكويت",
                "price_list": [
                    {"label": "الشحن", "amount": "5.00"},
                    {"label": "الضريبة", "amount": "0.25"},
                ],
            }
        ]
    }


def test_checkout_update_free_shipping_over_the_threshold_is_zero(client):
    shop = shop_create(price_minor=2500)
    shop.kuwait.free_over_minor = 2000
    shop.kuwait.save(update_fields=["free_over_minor"])

    answer = post(client, checkout_update(shop, KW_ADDRESS)).json()

    assert answer["shipping"][0]["price_list"] == [{"label": "Shipping", "amount": "0.00"}]


def test_checkout_update_nowhere_to_ship_or_forged_gets_no_options(client):
    shop = shop_create()

    assert post(client, checkout_update(shop, {**US_ADDRESS, "country": "FR"})).json() == {
        "shipping": []
    }
    forged = legacy_item("checkout_update", payload="ORDER:1042", shipping_address=US_ADDRESS)
    assert post(client, forged).json() == {"shipping": []}


# -- payment: stored by the webhook, confirmed by the worker --------------------------------------


def test_payment_is_stored_then_confirmed_with_a_receipt_to_the_shopper(
    client, stripe_stub, graph_stub
):
    shop = shop_create()
    stripe_charge(stripe_stub, charge_id="ch_3Webhook", amount=4000, brand="mastercard")
    item = payment_item(
        shop, charge_id="ch_3Webhook", amount="40.00", option_id=str(shop.international.pk)
    )

    response = post(client, item)

    assert response.content == b"EVENT_RECEIVED"  # answered by the worker, not here
    row = InboundEvent.objects.get()
    assert (row.kind, row.status) == ("payment", "pending")
    assert not Order.objects.exists()

    # The inbox worker's drain, through the inbox's own handler for legacy rows.
    with TestCase.captureOnCommitCallbacks(execute=True):
        inbound_events_drain()
    order = Order.objects.get()
    row.refresh_from_db()
    assert (row.status, row.error) == ("processed", f"order {order.number} paid")
    assert (order.total_minor, order.shipping_method) == (4000, shop.international)

    outbox_deliver_customer(customer_id=shop.customer.pk)
    receipt_body, thanks_body = graph_stub.sent_messages()
    assert receipt_body["recipient"] == {"id": shop.customer.psid}
    receipt = receipt_body["message"]["attachment"]["payload"]
    assert receipt["template_type"] == "receipt"
    assert receipt["order_number"] == order.number
    assert receipt["payment_method"] == "Mastercard 4242"
    assert receipt["summary"] == {"subtotal": 25, "shipping_cost": 15, "total_cost": 40}
    assert receipt["elements"] == [
        {"title": "Linen shirt", "subtitle": "M", "quantity": 1, "price": 25, "currency": "USD"}
    ]
    assert order.number in thanks_body["message"]["text"]
    assert receipt["address"]["street_1"] == "1 Hacker Way"


def test_the_inbox_worker_confirms_a_payment_and_keeps_the_answered_callbacks(client, stripe_stub):
    shop = shop_create()
    stripe_charge(stripe_stub, charge_id="ch_3Drain", amount=2500)
    post(client, pre_checkout(shop))
    post(client, payment_item(shop, charge_id="ch_3Drain"))

    with TestCase.captureOnCommitCallbacks(execute=True):
        inbound_events_drain()

    order = Order.objects.get()
    assert order.status == Order.Status.PAID
    rows = {row.kind: (row.status, row.error) for row in InboundEvent.objects.all()}
    assert rows == {
        "pre_checkout": ("processed", "answered by the webhook"),
        "payment": ("processed", f"order {order.number} paid"),
    }


def test_a_stripe_outage_leaves_the_payment_pending_for_a_retry(client, stripe_stub):
    shop = shop_create()
    stripe_charge(stripe_stub, charge_id="ch_3Outage", amount=2500)
    post(client, payment_item(shop, charge_id="ch_3Outage"))
    stripe_stub.fail_always(status=503, type="api_error", path="/v1/charges")

    inbound_events_drain()

    row = InboundEvent.objects.get()
    assert (row.status, row.attempts) == ("pending", 1)
    assert "GatewayError" in row.error
    assert not Order.objects.exists()

    stripe_stub.reset_failures()
    with TestCase.captureOnCommitCallbacks(execute=True):
        inbound_events_drain(include_retries=True)

    row.refresh_from_db()
    assert row.status == "processed"
    assert Order.objects.get().status == Order.Status.PAID


# -- the product card ----------------------------------------------------------------------------


def test_product_cards_carry_the_payment_button_in_buy_button_mode(graph_stub, merchant):
    chat = chat_for(stub=graph_stub, merchant=merchant)
    chat.page.mode = MessengerPage.Mode.BUY_BUTTON
    chat.page.is_test_mode = True
    chat.page.save()
    linen = product_create(merchant=merchant, title="Linen shirt", position=1)
    only = variant_create(product=linen, price_minor=2500, stock=4, name="One size")
    polo = product_create(merchant=merchant, title="Polo", position=2)
    variant_create(product=polo, price_minor=1800, stock=1, name="S")
    variant_create(product=polo, price_minor=1500, stock=1, name="M")

    [carousel] = chat.tap("SHOP")

    first, second = Chat.elements(carousel)
    pay, add, details = first["buttons"]
    assert (pay["type"], pay["title"]) == ("payment", "buy")
    assert buy_button_payload_parse(payload=pay["payload"]).variant_id == only.pk
    assert buy_button_payload_parse(payload=pay["payload"]).customer_id == chat.customer.pk
    assert pay["payment_summary"] == {
        "currency": "USD",
        "payment_type": "FIXED_AMOUNT",
        "is_test_payment": True,
        "merchant_name": merchant.name,
        "requested_user_info": [
            "shipping_address",
            "contact_name",
            "contact_phone",
            "contact_email",
        ],
        "price_list": [{"label": "Linen shirt", "amount": "25.00"}],
    }
    assert add["payload"] == f"ADD:variant={only.pk},qty=1"
    assert details["type"] == "web_url"
    # Several variants: the shopper picks one first, as in checkout-page mode.
    assert [b["title"] for b in second["buttons"]] == ["Add to cart", "Buy now", "Details"]


def test_checkout_page_mode_keeps_buy_now(graph_stub, merchant):
    chat = chat_for(stub=graph_stub, merchant=merchant)
    variant_create(product=product_create(merchant=merchant, title="Linen shirt"), stock=3)

    [carousel] = chat.tap("SHOP")

    [card] = Chat.elements(carousel)
    assert [b["type"] for b in card["buttons"]] == ["postback", "postback", "web_url"]
