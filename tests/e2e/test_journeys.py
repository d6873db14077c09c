"""Shopping journeys in a real browser, from the Messenger emulator's Get Started to the receipt,
and what the merchant does afterwards in the admin.

Each journey runs against the whole service (web, Celery worker, Redis, PostgreSQL) with the
sandbox standing in for Meta and Stripe; see ``conftest.py``. Taps are counted from Get Started
to paid: at most 8 for a new shopper, at most 6 for a returning one whose details are saved.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from commerce.models import Order, Variant
from tests.e2e.screens import CARD_OK, Admin, Chat

NEW_SHOPPER_TAPS = 8
RETURNING_SHOPPER_TAPS = 6

TEE = "Desert T-shirt"  # the demo catalog's first product: sizes S, M, L, XL
TEE_SKU_M = "DEMO-TEE-001-M"
SIZE_M = re.compile(r"^\s*M\b")  # the size's quick reply reads "M · $19.00"


def _order_of(psid: str) -> Order:
    return Order.objects.filter(customer__psid=psid).order_by("-id").first()


def _stock(sku: str) -> tuple[int, int]:
    variant = Variant.objects.get(sku=sku)
    return variant.stock_on_hand, variant.stock_available


def buy_tee_as_new_shopper(chat: Chat, *, address: str, name: str) -> None:
    """Get Started -> Buy now on the T-shirt -> size M -> email -> phone -> address typed ->
    Pay -> the checkout page's Pay -> card 4242 on the hosted page -> Pay."""
    journey = chat.journey
    chat.get_started()
    expect(chat.card(TEE)).to_be_visible()
    journey.shot("featured-products")
    chat.tap_card_button(TEE, "Buy now")
    expect(chat.quick_reply(SIZE_M)).to_be_visible()
    chat.tap_quick_reply(SIZE_M)
    expect(chat.quick_reply_of_type("user_email")).to_be_visible()
    chat.tap_contact("user_email")
    expect(chat.quick_reply_of_type("user_phone_number")).to_be_visible()
    chat.tap_contact("user_phone_number")
    expect(chat.reply_with("address")).to_be_visible()
    chat.type(address)
    expect(chat.pay_button).to_be_visible()
    journey.shot("order-summary")
    chat.tap_pay()
    journey.shot("checkout-page")
    chat.pay_in_webview(card=CARD_OK, name=name)
    chat.close_webview()


def test_english_shopper_buys_a_tshirt_and_the_merchant_sees_it_paid(journey, shop):
    chat = Chat(journey, shop)
    before = _stock(TEE_SKU_M)
    psid = chat.start_as_new_shopper(
        first="Emma",
        last="Walker",
        locale="en_US",
        email="emma@example.com",
        phone="+14155550123",
    )
    expect(chat.page.locator("[data-testid=greeting]")).to_contain_text("Emma")
    journey.shot("welcome")

    buy_tee_as_new_shopper(
        chat, address="Emma Walker, 12 Market Street, San Francisco, 94103, USA", name="Emma"
    )

    receipt = chat.wait_for_receipt()
    journey.shot("receipt")
    assert journey.taps <= NEW_SHOPPER_TAPS, journey.tapped
    order = _order_of(psid)
    assert order.status == Order.Status.PAID
    expect(receipt).to_contain_text(order.number)
    expect(receipt).to_contain_text(TEE)
    on_hand, available = _stock(TEE_SKU_M)
    assert (on_hand, available) == (before[0] - 1, before[1] - 1)

    admin = Admin(journey, shop).order_page(order)
    expect(admin.locator("body")).to_contain_text(order.number)
    expect(admin.locator("body")).to_contain_text(re.compile("Paid", re.IGNORECASE))
    admin.screenshot(path=str(journey.folder / "admin-order-paid.png"))
