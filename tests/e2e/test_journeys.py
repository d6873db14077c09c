"""Shopping journeys in a real browser, from the Messenger emulator's Get Started to the receipt,
and what the merchant does afterwards in the admin.

Each journey runs against the whole service (web, Celery worker, Redis, PostgreSQL) with the
sandbox standing in for Meta and Stripe; see ``conftest.py``. Taps are counted from Get Started
to paid (every Get Started, quick reply, card or template button, the checkout page's Pay and the
hosted page's Pay; typing is not a tap): at most 8 for a new shopper, at most 6 for a returning
one whose details are saved.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import requests
from playwright.sync_api import expect

from commerce.models import Address, Order, Variant
from commerce.services.orders import order_expire_due
from core.money import Money
from messenger.models import MessengerPage
from payments.models import Payment
from tests.e2e.screens import (
    CARD_DECLINED,
    CARD_OK,
    Admin,
    Chat,
    a_day_passes,
    checkout_as_new_shopper,
)
from tests.factories import customer_create

NEW_SHOPPER_TAPS = 8
RETURNING_SHOPPER_TAPS = 6

# The demo catalog (seed_demo): its first product, with sizes S, M, L, XL, and a one-size mug.
TEE, TEE_AR = "Desert T-shirt", "قميص الصحراء"
TEE_SKU_M = "DEMO-TEE-001-M"
SIZE_M = re.compile(r"^\s*M\b")  # the size's quick reply reads "M · $19.00"
SIZE_M_AR = re.compile(r"^\s*وسط")
MUG, MUG_SKU = "Desert Mug", "DEMO-MUG-001-325"
HOODIE, HOODIE_SKU = "Desert Hoodie", "DEMO-HOOD-001-L"


def _latest_order(psid: str) -> Order:
    return Order.objects.filter(customer__psid=psid).order_by("-id").first()


def _available(sku: str) -> int:
    return Variant.objects.get(sku=sku).stock_available


def _on_hand(sku: str) -> int:
    return Variant.objects.get(sku=sku).stock_on_hand


# -- 1. English, new shopper ---------------------------------------------------------------------


def test_english_shopper_buys_a_tshirt_and_the_merchant_sees_it_paid(journey, shop):
    """Get Started -> Buy now on the featured T-shirt -> size M -> email -> phone -> address ->
    Pay -> the checkout page's Pay -> 4242 on the hosted page: the receipt arrives in the chat,
    the order is paid in the admin and the stock went down."""
    chat = Chat(journey, shop)
    on_hand = _on_hand(TEE_SKU_M)
    psid = chat.start_as_new_shopper(
        first="Emma", last="Walker", locale="en_US", email="emma@example.com", phone="+14155550123"
    )
    expect(chat.page.locator("[data-testid=greeting]")).to_contain_text("Hi Emma!")
    journey.shot("welcome")

    chat.get_started()
    expect(chat.card(TEE)).to_be_visible()
    journey.shot("featured-products")
    chat.tap_card_button(TEE, "Buy now")
    chat.tap_quick_reply(SIZE_M)
    checkout_as_new_shopper(chat, address="Emma Walker, 12 Market Street, San Francisco, USA")
    expect(chat.pay_button).to_have_text("Pay $24.00")  # $19.00 and Standard shipping
    journey.shot("order-summary")
    chat.tap_pay()
    journey.shot("checkout-page")
    chat.pay_in_webview(card=CARD_OK, name="Emma Walker", shot="hosted-page")
    chat.close_webview()
    receipt = chat.wait_for_receipt()
    journey.shot("receipt")

    assert journey.taps <= NEW_SHOPPER_TAPS, journey.tapped
    order = _latest_order(psid)
    assert order.status == Order.Status.PAID
    expect(receipt).to_contain_text(order.number)
    expect(receipt).to_contain_text(TEE)
    expect(receipt).to_contain_text("$24.00")
    assert _on_hand(TEE_SKU_M) == on_hand - 1

    admin = Admin(journey, shop).order_page(order)
    expect(admin.locator("#content")).to_contain_text(order.number)
    expect(admin.locator("#content")).to_contain_text(re.compile(r"\bPaid\b"))
    admin.screenshot(path=str(journey.folder / "admin-order-paid.png"))


# -- 2. Arabic, right to left --------------------------------------------------------------------


def test_arabic_shopper_buys_right_to_left_with_arabic_prices(journey, shop):
    chat = Chat(journey, shop)
    psid = chat.start_as_new_shopper(
        first="ليلى", last="حداد", locale="ar_AR", email="layla@example.com", phone="+96550012345"
    )
    expect(chat.conversation).to_have_attribute("dir", "rtl")
    expect(chat.page.locator("[data-testid=greeting]")).to_contain_text("ليلى")

    chat.get_started()
    expect(chat.card(TEE_AR)).to_be_visible()
    expect(chat.reply_with("مرحبًا بك")).to_be_visible()
    journey.shot("featured-products")
    chat.tap_card_button(TEE_AR, "اشترِ الآن")
    chat.tap_quick_reply(SIZE_M_AR)
    checkout_as_new_shopper(chat, address="ليلى حداد، قطعة ٣ شارع ١٢ منزل ٧، السالمية، الكويت")
    total = Money(2400, "USD").format("ar")  # 19.00 and Standard shipping, the Arabic way
    expect(chat.pay_button).to_have_text(f"ادفع {total}")
    journey.shot("order-summary")
    chat.tap_pay()
    journey.shot("checkout-page")
    chat.pay_in_webview(card=CARD_OK, name="Layla Haddad", shot="hosted-page")
    chat.close_webview()
    receipt = chat.wait_for_receipt()
    journey.shot("receipt")

    assert journey.taps <= NEW_SHOPPER_TAPS, journey.tapped
    order = _latest_order(psid)
    assert order.status == Order.Status.PAID
    assert order.shipping_country == "KW"
    expect(receipt).to_contain_text(TEE_AR)
    # Messenger formats a receipt's amounts in the reader's locale: the Arabic way, not "$24.00".
    arabic_total = chat.page.evaluate(
        "() => new Intl.NumberFormat('ar', {style: 'currency', currency: 'USD'}).format(24)"
    )
    expect(receipt).to_contain_text(arabic_total)
    assert "$24.00" not in receipt.inner_text()
    expect(receipt).to_contain_text("تأكيد الطلب")
    expect(chat.conversation).to_have_attribute("dir", "rtl")


# -- 3. Browsing and the cart, a declined card, an expired checkout ------------------------------


def test_declined_card_then_another_card_and_an_expired_checkout_releases_its_stock(journey, shop):
    chat = Chat(journey, shop)
    psid = chat.start_as_new_shopper(
        first="Omar", last="Said", locale="en_US", email="omar@example.com", phone="+14155550199"
    )
    chat.get_started()
    expect(chat.card(TEE)).to_be_visible()
    chat.tap_quick_reply("Shop")  # the categories
    chat.tap_quick_reply("T-shirts")
    expect(chat.page.locator("[data-testid=card-title]", has_text=TEE)).to_have_count(2)
    chat.tap_card_button(TEE, "Add to cart")
    chat.tap_quick_reply(SIZE_M)
    expect(chat.reply_with("to your cart")).to_be_visible()
    chat.tap_quick_reply("Cart")
    expect(chat.reply_with("Your cart (1 item)")).to_be_visible()
    journey.shot("cart")
    chat.tap_quick_reply("Checkout")
    checkout_as_new_shopper(chat, address="Omar Said, 22 Sheikh Zayed Road, Dubai, UAE")
    chat.tap_pay()

    chat.pay_in_webview(card=CARD_DECLINED, name="Omar Said", expect_error=True)
    expect(chat.webview_frame.locator("[data-testid=card-error]")).to_contain_text("declined")
    journey.shot("card-declined")
    assert _latest_order(psid).status == Order.Status.PENDING_PAYMENT
    chat.pay_in_webview(card=CARD_OK, name="Omar Said")
    chat.close_webview()
    chat.wait_for_receipt()
    assert _latest_order(psid).status == Order.Status.PAID

    # A second order, left unpaid: its Stripe session expires, then its reservation runs out.
    available = _available(MUG_SKU)
    chat.type("hi")
    expect(chat.page.locator("[data-testid=card-title]", has_text=MUG)).to_have_count(2)
    chat.tap_card_button(MUG, "Buy now")  # details saved: straight to the summary
    expect(chat.page.locator("[data-testid=button-template]", has_text=MUG)).to_be_visible()
    unpaid = _latest_order(psid)
    assert unpaid.status == Order.Status.PENDING_PAYMENT
    assert _available(MUG_SKU) == available - 1
    chat.tap_pay()
    frame = chat.webview_frame
    chat.journey.tap(frame.locator("button.pay"), "Pay (checkout page)")
    expect(frame.locator("[data-testid=card-number]")).to_be_visible()
    session_id = _stripe_session_in(chat)
    expired = requests.post(
        shop.at(f"/sandbox/stripe/_control/sessions/{session_id}/expire/"), timeout=10
    )
    assert expired.json()["expired"] is True
    chat.close_webview()
    # Stripe's checkout.session.expired reaches the worker first (it holds the order's row
    # lock while it records the expired payment, and the sweep skips locked orders).
    _wait_for_payment_status(unpaid, Payment.Status.EXPIRED)
    unpaid.refresh_from_db()
    order_expire_due(now=unpaid.reserved_until + timedelta(seconds=1))  # beat's expiry sweep
    unpaid.refresh_from_db()
    assert unpaid.status == Order.Status.EXPIRED
    assert _available(MUG_SKU) == available
    expect(chat.reply_with("was not paid in time")).to_be_visible()
    expect(chat.quick_reply("Try again")).to_be_visible()
    journey.shot("expired")


def _wait_for_payment_status(order: Order, status: str, *, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not Payment.objects.filter(order=order, status=status).exists():
        assert time.monotonic() < deadline, f"no {status} payment for order {order.number}"
        time.sleep(0.1)


def _stripe_session_in(chat: Chat) -> str:
    frame = next(f for f in chat.page.frames if "/sandbox/stripe/pay/" in f.url)
    return frame.url.split("/sandbox/stripe/pay/", 1)[1].split("/", 1)[0]


# -- 4 and 5. Returning shopper; the merchant ships, then refunds part --------------------------


def _returning_shopper(shop, psid: str) -> None:
    """The service already knows this shopper from an earlier order: email, phone, address."""
    page = MessengerPage.objects.get(page_id=shop.page_id)
    customer = customer_create(
        merchant=page.merchant,
        psid=psid,
        page_id=shop.page_id,
        first_name="Sara",
        last_name="Nasser",
        email="sara@example.com",
        phone="+96550022222",
    )
    Address.objects.create(
        customer=customer,
        name="Sara Nasser",
        line1="Block 4, Street 9, House 12",
        city="Salmiya",
        country="KW",
        phone="+96550022222",
        is_default=True,
    )


def test_returning_shopper_pays_in_six_taps_then_the_merchant_ships_and_refunds_part(journey, shop):
    chat = Chat(journey, shop)
    psid = chat.start_as_new_shopper(
        first="Sara", last="Nasser", locale="en_US", email="sara@example.com", phone="+96550022222"
    )
    _returning_shopper(shop, psid)

    chat.get_started()
    chat.tap_card_button(HOODIE, "Buy now")
    chat.tap_quick_reply(re.compile(r"^\s*L\b"))
    expect(chat.pay_button).to_be_visible()  # saved details: no question asked
    expect(chat.reply_with("Block 4, Street 9")).to_be_visible()
    journey.shot("summary-with-saved-details")
    chat.tap_pay()
    chat.pay_in_webview(card=CARD_OK, name="Sara Nasser")
    chat.close_webview()
    chat.wait_for_receipt()
    assert journey.taps <= RETURNING_SHOPPER_TAPS, journey.tapped
    order = _latest_order(psid)
    assert order.status == Order.Status.PAID
    assert order.lines.get().sku == HOODIE_SKU

    # 4. A day later the merchant ships it from the order page. Outside the 24-hour window the
    # update can only go out tagged POST_PURCHASE_UPDATE, with its Track package button.
    a_day_passes(chat, psid)
    admin = Admin(journey, shop)
    page = admin.order_page(order)
    page.get_by_role("link", name="Fulfil").click()
    page.locator("input[name=carrier]").fill("Aramex")
    page.locator("input[name=tracking_number]").fill("AWB123456789")
    page.locator("input[name=tracking_url]").fill("https://track.example/AWB123456789")
    page.locator("#content-main [type=submit]").first.click()
    expect(page.locator(".messagelist")).to_be_visible()
    page.screenshot(path=str(journey.folder / "admin-fulfilled.png"))
    update = chat.reply_with("has shipped with Aramex")
    expect(update).to_be_visible()
    expect(update).to_have_attribute("data-tag", "POST_PURCHASE_UPDATE")
    expect(update.locator("[data-testid=button]", has_text="Track package")).to_be_visible()
    journey.shot("shipping-update")

    # 5. A partial refund from the admin: the refund message in the chat.
    payment = order.payments.get(status="succeeded")
    page = admin.open(f"/admin/payments/payment/{payment.pk}/refund/")
    page.locator("input[name=amount]").fill("10.00")
    page.locator("[name=reason]").fill("Sleeve stitching")
    page.locator("#content-main [type=submit]").first.click()
    expect(page.locator(".messagelist")).to_contain_text("Refund of $10.00 requested")
    expect(chat.reply_with("We refunded $10.00")).to_be_visible()
    journey.shot("refund-message")
    order.refresh_from_db()
    assert order.status == Order.Status.PARTIALLY_REFUNDED
    assert order.refunded_minor == 1000


# -- 6. A referral link opens its product first ---------------------------------------------------


def test_referral_link_opens_its_product_first(journey, shop):
    chat = Chat(journey, shop)
    chat.open_link_as_new_shopper(
        f"/sandbox/m/{shop.page_id}/?ref=product-{HOODIE_SKU}",
        first="Noor",
        last="Ali",
        locale="en_US",
        email="noor@example.com",
        phone="+14155550111",
    )
    chat.get_started()
    card = chat.page.locator("[data-testid=card]").first
    expect(card.locator("[data-testid=card-title]")).to_have_text(HOODIE)
    expect(chat.replies.first).to_contain_text("Hi Noor!")
    expect(chat.page.locator("[data-testid=card]")).to_have_count(1)  # that product, nothing else
    journey.shot("referral-product")
    chat.tap_card_button(HOODIE, "Buy now")  # the link named size L: no size question
    expect(chat.quick_reply_of_type("user_email")).to_be_visible()
    assert (
        Variant.objects.get(sku=HOODIE_SKU)
        .cart_lines.filter(cart__customer__psid=chat.psid)
        .exists()
    )
