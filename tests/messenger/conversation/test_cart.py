"""Cart flow: contents and total, +1 / −1 / Remove, clear, vouchers, forged payloads."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone, translation
from django.utils.translation import gettext

from commerce.models import CartLine, ProductImage, Voucher
from commerce.services.carts import cart_add, cart_get_open
from core.money import Money
from tests.factories import merchant_create, product_create, variant_create
from tests.messenger.conversation import support
from tests.messenger.conversation.support import Chat

pytestmark = pytest.mark.django_db

# Fixtures shared by the conversation tests.
chat, chat_ar, merchant = support.chat, support.chat_ar, support.merchant

BASE = "http://127.0.0.1:8000"


@pytest.fixture(autouse=True)
def _public_base_url(settings):
    settings.PUBLIC_BASE_URL = BASE


@pytest.fixture
def items(merchant):
    tee = product_create(merchant=merchant, title="Tee", title_ar="تيشيرت")
    ProductImage.objects.create(product=tee, image="products/tee.jpg", width=600, height=600)
    small = variant_create(product=tee, name="S", name_ar="صغير", price_minor=1000, stock=5)
    cap = product_create(merchant=merchant, title="Cap", title_ar="قبعة")
    red = variant_create(product=cap, name="Red", name_ar="أحمر", price_minor=750, stock=20)
    return small, red


def _fill(chat: Chat, *lines: tuple) -> None:
    cart = cart_get_open(customer=chat.customer)
    for variant, quantity in lines:
        cart_add(cart=cart, variant_id=variant.pk, quantity=quantity)


def _lines(chat: Chat) -> dict[int, int]:
    return dict(
        CartLine.objects.filter(cart__customer=chat.customer).values_list("variant_id", "quantity")
    )


def test_empty_cart_offers_shopping(chat):
    [reply] = chat.tap("CART", text="Cart")

    assert reply["text"] == "Your cart is empty. Let's find something you like!"
    assert Chat.quick_reply_payloads(reply) == ["SHOP", "ORDERS", "MENU"]


def test_cart_shows_lines_with_edit_buttons_and_the_total(chat, items):
    small, red = items
    _fill(chat, (small, 2), (red, 1))

    cards, summary = chat.tap("CART")

    first, second = Chat.elements(cards)
    assert first["title"] == "Tee"
    assert first["subtitle"] == "S · 2 × $10.00 = $20.00"
    assert first["image_url"] == f"{BASE}/media/products/tee.jpg"
    assert first["buttons"] == [
        {"type": "postback", "title": "+1", "payload": f"CART_INC:variant={small.pk}"},
        {"type": "postback", "title": "−1", "payload": f"CART_DEC:variant={small.pk}"},
        {"type": "postback", "title": "Remove", "payload": f"CART_REMOVE:variant={small.pk}"},
    ]
    assert second["title"] == "Cap"
    assert "image_url" not in second
    assert summary["text"] == (
        "Your cart (3 items):\n"
        "2 × Tee (S): $20.00\n"
        "1 × Cap (Red): $7.50\n"
        "\n"
        "Subtotal: $27.50\n"
        "Total: $27.50\n"
        "Shipping is added at checkout."
    )
    assert Chat.quick_reply_payloads(summary) == ["CHECKOUT", "CART_CLEAR", "SHOP"]
    assert Chat.quick_reply_titles(summary) == ["Checkout", "Clear cart", "Keep shopping"]


def test_cart_in_arabic(chat_ar, items):
    small, _red = items
    _fill(chat_ar, (small, 2))

    cards, summary = chat_ar.say("سلة التسوق")

    [card] = Chat.elements(cards)
    ten, twenty = Money(1000, "USD").format("ar"), Money(2000, "USD").format("ar")
    assert card["title"] == "تيشيرت"
    assert card["subtitle"] == f"صغير · 2 × {ten} = {twenty}"
    assert [b["title"] for b in card["buttons"]] == ["+1", "−1", "إزالة"]
    assert summary["text"] == (
        "سلتك (قطعتان):\n"
        f"2 × تيشيرت (صغير): {twenty}\n"
        "\n"
        f"المجموع الفرعي: {twenty}\n"
        f"الإجمالي: {twenty}\n"
        "تُضاف تكلفة الشحن عند إتمام الشراء."
    )
    assert Chat.quick_reply_titles(summary) == ["إتمام الشراء", "إفراغ السلة", "متابعة التسوق"]


def test_voucher_discount_and_stale_voucher_are_shown(chat, merchant, items):
    small, _red = items
    _fill(chat, (small, 2))
    Voucher.objects.create(merchant=merchant, code="SAVE10", kind="percentage", percent_bp=1000)
    cart = cart_get_open(customer=chat.customer)
    cart.voucher_code = "SAVE10"
    cart.save()

    _cards, summary = chat.tap("CART")
    assert "Discount (SAVE10): −$2.00\nTotal: $18.00" in summary["text"]

    Voucher.objects.filter(code="SAVE10").update(valid_until=timezone.now() - timedelta(days=1))
    _cards, summary = chat.tap("CART")
    assert "The code SAVE10 no longer applies to this cart.\nTotal: $20.00" in summary["text"]


def test_plus_and_minus_change_the_quantity(chat, items):
    small, red = items
    _fill(chat, (small, 1), (red, 1))

    cards, summary = chat.postback(f"CART_INC:variant={small.pk}", title="+1")
    assert _lines(chat) == {small.pk: 2, red.pk: 1}
    assert Chat.elements(cards)[0]["subtitle"] == "S · 2 × $10.00 = $20.00"
    assert "Total: $27.50" in summary["text"]

    chat.postback(f"CART_DEC:variant={small.pk}")
    assert _lines(chat) == {small.pk: 1, red.pk: 1}

    removed, cards, _summary = chat.postback(f"CART_DEC:variant={small.pk}")
    assert removed["text"] == "Removed Tee (S) from your cart."
    assert _lines(chat) == {red.pk: 1}
    assert [e["title"] for e in Chat.elements(cards)] == ["Cap"]


def test_plus_beyond_the_stock_apologizes_and_changes_nothing(chat, items):
    small, _red = items
    _fill(chat, (small, 5))

    [reply] = chat.postback(f"CART_INC:variant={small.pk}")

    assert reply["text"] == "Only 5 left in stock."
    assert Chat.quick_reply_payloads(reply) == ["CART", "SHOP", "MENU"]
    assert _lines(chat) == {small.pk: 5}


def test_plus_beyond_the_merchant_limit_in_arabic(chat_ar, merchant, items):
    _small, red = items
    merchant.max_line_quantity = 2
    merchant.save()
    _fill(chat_ar, (red, 2))

    [reply] = chat_ar.postback(f"CART_INC:variant={red.pk}")

    with translation.override("ar"):  # commerce's message, translated when raised
        expected = gettext("You can order at most %(limit)d of this item.") % {"limit": 2}
    assert reply["text"] == expected
    assert Chat.quick_reply_titles(reply) == ["السلة", "تسوّق", "القائمة"]
    assert _lines(chat_ar) == {red.pk: 2}


def test_remove_a_line(chat, items):
    small, red = items
    _fill(chat, (small, 1), (red, 3))

    removed, _cards, summary = chat.postback(f"CART_REMOVE:variant={red.pk}")

    assert removed["text"] == "Removed Cap (Red) from your cart."
    assert _lines(chat) == {small.pk: 1}
    assert summary["text"].startswith("Your cart (1 item):")


def test_removing_the_last_line_shows_the_empty_cart(chat, items):
    small, _red = items
    _fill(chat, (small, 1))

    removed, empty = chat.postback(f"CART_REMOVE:variant={small.pk}")

    assert removed["text"] == "Removed Tee (S) from your cart."
    assert empty["text"] == "Your cart is empty. Let's find something you like!"


def test_clear_cart(chat, items):
    small, red = items
    _fill(chat, (small, 1), (red, 1))

    [reply] = chat.tap("CART_CLEAR", text="Clear cart")

    assert reply["text"] == "Your cart is empty now. Let's find something else!"
    assert Chat.quick_reply_payloads(reply) == ["SHOP", "ORDERS", "MENU"]
    assert _lines(chat) == {}


@pytest.mark.parametrize("verb", ["CART_INC", "CART_DEC", "CART_REMOVE"])
def test_forged_cart_payloads_change_nothing(chat, merchant, items, verb):
    small, red = items
    _fill(chat, (small, 1))
    foreign = variant_create(product=product_create(merchant=merchant_create()))

    stale, cards, _summary = chat.postback(f"{verb}:variant={foreign.pk}")
    assert stale["text"] == "That item is no longer in your cart."
    assert [e["title"] for e in Chat.elements(cards)] == ["Tee"]

    chat.postback(f"{verb}:variant={red.pk}")  # this shop's, but not in the cart
    [malformed] = chat.postback(f"{verb}:variant=-3")
    assert malformed["text"].startswith("Sorry, I didn't get that.")
    assert _lines(chat) == {small.pk: 1}


def test_a_line_whose_variant_was_deactivated_is_left_out(chat, items):
    small, red = items
    _fill(chat, (small, 1), (red, 1))
    red.is_active = False
    red.save()

    cards, summary = chat.tap("CART")

    assert [e["title"] for e in Chat.elements(cards)] == ["Tee"]
    assert "Total: $10.00" in summary["text"]


def test_a_big_cart_shows_ten_cards_and_every_line_in_the_summary(chat, merchant):
    variants = [
        variant_create(product=product_create(merchant=merchant, title=f"Item {i:02d}"))
        for i in range(12)
    ]
    _fill(chat, *((variant, 1) for variant in variants))

    cards, summary = chat.tap("CART")

    assert len(Chat.elements(cards)) == 10
    assert summary["text"].startswith("Your cart (12 items):")
    assert "1 × Item 11" in summary["text"]
