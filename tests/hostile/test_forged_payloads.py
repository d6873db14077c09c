"""Forged postback and quick-reply payloads get a polite refusal in the conversation and change
nothing.

A payload is shopper input: anyone can send any postback to a page (the Send API does not sign
what the page sent), so a shopper of shop A may name shop B's variants, orders, addresses and
shipping methods, negative or absurd quantities, ids that do not exist, or send a payload that
is not text at all. Each case below is one signed webhook POST through the real inbox, engine
and outbox; the Graph stub shows the answer. The shopper must read a refusal, never a
confirmation or shop B's data, and no cart, cart line, order, stock level or reservation of
either shop may change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from commerce.models import Address, Cart, CartLine, Category, Order, StockReservation, Variant
from messenger.models import MessengerPage
from payments.services.buy_button import buy_button_payload_build
from tests.factories import category_create, customer_create, shipping_method_create
from tests.hostile.conftest import Shop, order_place
from tests.hostile.shopper import Shopper, texts

pytestmark = [pytest.mark.hostile, pytest.mark.django_db]

PSID = "2409000000000001"
NOT_UNDERSTOOD = "didn't get that"
UNAVAILABLE = "no longer available"


@dataclass
class Scene:
    a: Shop
    b: Shop
    b_category: Category
    b_order: Order
    b_address: Address
    shopper: Shopper


@pytest.fixture
def scene(shop, other_shop, graph_stub) -> Scene:
    """Shop A's shopper with one of A's shirts in the cart; shop B with a category, a customer,
    an address and an order of its own."""
    graph_stub.set_profile(PSID, first_name="Mona", locale="en_US")
    shop.variant.product.category = category_create(merchant=shop.merchant)
    shop.variant.product.save()
    b_category = category_create(merchant=other_shop.merchant, name="Abayas of B")
    other_shop.variant.product.title = "Shop B secret abaya"
    other_shop.variant.product.category = b_category
    other_shop.variant.product.save()
    b_customer = customer_create(merchant=other_shop.merchant, page_id=other_shop.page.page_id)
    b_order = order_place(other_shop, customer=b_customer)
    shopper = Shopper(graph_stub=graph_stub, page_id=shop.page.page_id, psid=PSID)
    shopper.tap("GET_STARTED", "Get Started")
    added = shopper.tap(f"ADD:variant={shop.variant.pk}")
    assert "Added" in texts(added)
    b_address = Address.objects.get(customer=b_customer)
    return Scene(shop, other_shop, b_category, b_order, b_address, shopper)


def _world() -> dict:
    """Everything a forged payload could change: carts, lines, orders, stock, reservations."""
    return {
        "carts": sorted(Cart.objects.values_list("pk", "merchant_id", "status", "voucher_code")),
        "lines": sorted(CartLine.objects.values_list("cart_id", "variant_id", "quantity")),
        "orders": sorted(Order.objects.values_list("pk", "merchant_id", "status", "total_minor")),
        "stock": sorted(Variant.objects.values_list("pk", "stock_on_hand")),
        "reservations": sorted(StockReservation.objects.values_list("pk", "status", "quantity")),
        "addresses": sorted(Address.objects.values_list("pk", "customer_id")),
    }


def _nested(depth: int) -> dict:
    value: dict = {"payload": "ADD:variant=1"}
    for _ in range(depth):
        value = {"payload": value}
    return value


# (id, how it is sent, payload built from the scene, what the refusal says)
CASES = [
    ("other-shops-variant", "tap", lambda s: f"ADD:variant={s.b.variant.pk}", UNAVAILABLE),
    ("other-shops-variant-qr", "qr", lambda s: f"ADD:variant={s.b.variant.pk}", UNAVAILABLE),
    ("other-shops-buy", "tap", lambda s: f"BUY:variant={s.b.variant.pk}", UNAVAILABLE),
    ("other-shops-product", "tap", lambda s: f"PRODUCT:{s.b.variant.product_id}", UNAVAILABLE),
    ("other-shops-sizes", "tap", lambda s: f"VARIANTS:{s.b.variant.product_id}", UNAVAILABLE),
    ("other-shops-category", "tap", lambda s: f"CATEGORY:{s.b_category.pk}", UNAVAILABLE),
    (
        "other-shops-line-inc",
        "tap",
        lambda s: f"CART_INC:variant={s.b.variant.pk}",
        "no longer in your cart",
    ),
    (
        "other-shops-line-remove",
        "tap",
        lambda s: f"CART_REMOVE:variant={s.b.variant.pk}",
        "no longer in your cart",
    ),
    ("other-shops-order", "tap", lambda s: f"ORDER:{s.b_order.number}", "can't find this order"),
    ("other-shops-reorder", "tap", lambda s: f"REORDER:{s.b_order.pk}", "can't find this order"),
    (
        "other-shoppers-address",
        "tap",
        lambda s: f"ADDRESS_USE:{s.b_address.pk}",
        "address is not available",
    ),
    ("unknown-variant", "tap", lambda s: "ADD:variant=987654321", UNAVAILABLE),
    ("unknown-product", "tap", lambda s: "VARIANTS:987654321", UNAVAILABLE),
    ("negative-quantity", "tap", lambda s: f"ADD:variant={s.a.variant.pk},qty=-3", NOT_UNDERSTOOD),
    ("zero-quantity", "tap", lambda s: f"ADD:variant={s.a.variant.pk},qty=0", NOT_UNDERSTOOD),
    (
        "huge-quantity",
        "tap",
        lambda s: f"ADD:variant={s.a.variant.pk},qty=999999999999999999",
        "at most",
    ),
    (
        "absurd-quantity",
        "tap",
        lambda s: f"ADD:variant={s.a.variant.pk},qty={'9' * 40}",
        NOT_UNDERSTOOD,
    ),
    ("oversized-payload", "tap", lambda s: "ADD:variant=1," + "x" * 5000, NOT_UNDERSTOOD),
    ("payload-not-text", "tap", lambda s: _nested(300), NOT_UNDERSTOOD),
    # A quick reply without a usable payload is read as its text ("Option"), like typed text.
    ("payload-a-list", "qr", lambda s: [[["ADD:variant=1"]]] * 50, "found nothing"),
    ("payload-a-number", "tap", lambda s: 10**40, NOT_UNDERSTOOD),
    ("oversized-text", "type", lambda s: "abaya " * 4000, "found nothing"),
    ("text-not-text", "type", lambda s: _nested(300), NOT_UNDERSTOOD),
]


@pytest.mark.parametrize(
    ("how", "build", "refusal"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_forged_payload_is_refused_politely_and_changes_nothing(scene, how, build, refusal):
    before = _world()
    send = {"tap": scene.shopper.tap, "qr": scene.shopper.quick_reply, "type": scene.shopper.type}

    answer = texts(send[how](build(scene)))

    assert refusal.lower() in answer.lower(), answer
    assert "Shop B" not in answer and "Abayas of B" not in answer
    assert _world() == before


REFUSALS = ("sorry", "no longer", "can't find", "not available", "your cart is empty")


def _offered_payloads(messages: list[dict]) -> list[str]:
    payloads = []
    for message in messages:
        payloads += [reply.get("payload", "") for reply in message.get("quick_replies", [])]
        attachment = message.get("attachment", {}).get("payload", {})
        buttons = attachment.get("buttons", [])
        for element in attachment.get("elements", []):
            buttons += element.get("buttons", [])
        payloads += [button.get("payload", "") for button in buttons]
    return [payload for payload in payloads if payload]


def _forgeries(payloads: list[str], scene: Scene) -> list[str]:
    """Each offered ``VERB:key=<id>,...`` payload with one id swapped for shop B's row of that
    kind (unknown kinds get B's order id)."""
    b_ids = {
        "order": scene.b_order.pk,
        "method": scene.b.shipping.pk,
        "shipping": scene.b.shipping.pk,
        "address": scene.b_address.pk,
        "variant": scene.b.variant.pk,
        "product": scene.b.variant.product_id,
        "customer": scene.b_order.customer_id,
    }
    forged = []
    for payload in payloads:
        verb, _, rest = payload.partition(":")
        params = [part.partition("=") for part in rest.split(",")] if "=" in rest else []
        for n, (key, _sep, value) in enumerate(params):
            if not value.isdigit():
                continue
            swapped = [f"{k}={v}" for k, _s, v in params]
            swapped[n] = f"{key}={b_ids.get(key, scene.b_order.pk)}"
            forged.append(f"{verb}:{','.join(swapped)}")
    return forged


def test_summary_buttons_forged_with_other_shops_ids_are_refused(scene):
    """At the order summary (an order placed, stock reserved), every button offered is replayed
    with one of its ids swapped for shop B's order, shipping method, address...: each answer is
    a refusal and nothing changes, neither A's order nor B's."""
    shipping_method_create(merchant=scene.a.merchant, name="Express", price_minor=900)
    shopper = scene.shopper
    shopper.tap("CHECKOUT")
    shopper.quick_reply("mona@example.com", "mona@example.com")
    shopper.quick_reply("+96550012345", "+96550012345")
    summary = shopper.type("Mona Haddad, Block 3 Street 12, Salmiya, Kuwait")
    assert Order.objects.filter(customer__psid=PSID, status="pending_payment").exists()
    forged = _forgeries(_offered_payloads(summary), scene)
    assert len(forged) >= 3, f"the summary offers too few buttons with ids: {summary}"
    before = _world()

    for payload in forged:
        answer = texts(shopper.tap(payload)).lower()

        assert any(refusal in answer for refusal in REFUSALS), (payload, answer)
        assert "shop b" not in answer
        assert _world() == before, payload


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda s: buy_button_payload_build(variant_id=s.b.variant.pk), id="b-variant"),
        pytest.param(
            lambda s: buy_button_payload_build(
                variant_id=s.a.variant.pk, customer_id=s.b_order.customer_id
            ),
            id="sent-to-another-shopper",
        ),
        pytest.param(
            lambda s: buy_button_payload_build(variant_id=s.a.variant.pk)[:-3] + "xyz",
            id="bad-signature",
        ),
        pytest.param(lambda s: f"ADD:variant={s.a.variant.pk}", id="not-a-button-payload"),
    ],
)
def test_forged_legacy_buy_button_payloads_are_refused_in_the_webhook_answer(scene, forge):
    """A page in legacy buy-button mode answers ``pre_checkout`` in the webhook response: a
    genuine payload of shop B's button (our own signature, so a shopper could copy it from B's
    page), one sent to another shopper, a damaged one: ``success: false`` with a message, and
    nothing reserved."""
    page = scene.a.page
    page.mode = MessengerPage.Mode.BUY_BUTTON
    page.save(update_fields=["mode"])
    before = _world()
    item = {
        "sender": {"id": PSID},
        "recipient": {"id": page.page_id},
        "timestamp": int(time.time() * 1000),
        "pre_checkout": {
            "payload": forge(scene),
            "requested_user_info": {"contact_name": "Mona"},
            "amount": {"currency": "USD", "amount": "25.00"},
        },
    }

    response = scene.shopper.post_item(item)

    assert response.status_code == 200
    answer = response.json()
    assert answer["success"] is False, answer
    assert answer["error"]["code"] in ("payload_invalid", "variant_unavailable"), answer
    assert answer["error"]["message"]
    assert _world() == before
