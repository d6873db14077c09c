"""Welcome flow: greeting by first name, main menu, language switch, referrals to a product."""

from __future__ import annotations

import pytest

from tests.factories import merchant_create, product_create, variant_create
from tests.messenger.conversation import support
from tests.messenger.conversation.support import Chat

pytestmark = pytest.mark.django_db

# Fixtures shared by the conversation tests.
chat, chat_ar, merchant = support.chat, support.chat_ar, support.merchant

MENU_EN = ["SHOP", "CART", "ORDERS", "HELP", "LANG:ar"]
MENU_AR = ["SHOP", "CART", "ORDERS", "HELP", "LANG:en"]


def test_get_started_greets_by_first_name_with_the_main_menu(chat):
    [welcome] = chat.postback("GET_STARTED", title="Get Started")

    assert welcome["text"] == "Hi Layla! Welcome to Souq Layla.\nWhat would you like to do?"
    assert Chat.quick_reply_titles(welcome) == ["Shop", "Cart", "My orders", "Help", "العربية"]
    assert Chat.quick_reply_payloads(welcome) == MENU_EN
    assert all(reply["content_type"] == "text" for reply in welcome["quick_replies"])


def test_get_started_in_arabic_for_an_arabic_profile(chat_ar):
    [welcome] = chat_ar.postback("GET_STARTED")

    assert welcome["text"] == "أهلًا ليلى! مرحبًا بك في Souq Layla.\nماذا تودّ أن تفعل؟"
    assert Chat.quick_reply_titles(welcome) == ["تسوّق", "السلة", "طلباتي", "مساعدة", "English"]
    assert Chat.quick_reply_payloads(welcome) == MENU_AR


def test_greeting_without_a_first_name(chat):
    chat.customer.first_name = ""
    chat.customer.save()

    [welcome] = chat.postback("GET_STARTED")

    assert welcome["text"].startswith("Hi! Welcome to Souq Layla.")


@pytest.mark.parametrize("text", ["hello", "Hi!", "مرحبا", "السلام عليكم", "  HEY  "])
def test_typed_greetings_get_the_welcome(chat, text):
    [welcome] = chat.say(text)

    assert welcome["text"].startswith("Hi Layla!")
    assert Chat.quick_reply_payloads(welcome) == MENU_EN


def test_menu_payload_and_keyword(chat):
    [by_payload] = chat.postback("MENU")
    [by_keyword] = chat.say("Menu")

    assert by_payload["text"] == by_keyword["text"] == "What would you like to do?"
    assert Chat.quick_reply_payloads(by_keyword) == MENU_EN


def test_switch_to_arabic_is_remembered(chat):
    [switched] = chat.tap("LANG:ar", text="العربية")

    assert switched["text"] == "تم! سأكتب لك بالعربية من الآن فصاعدًا."
    assert Chat.quick_reply_payloads(switched) == MENU_AR
    assert chat.customer.conversation_context["language"] == "ar"

    [menu] = chat.postback("MENU")
    assert menu["text"] == "ماذا تودّ أن تفعل؟"


def test_switch_back_to_english_by_typing(chat_ar):
    [switched] = chat_ar.say("English")

    assert switched["text"] == "Done! I will write in English from now on."
    assert Chat.quick_reply_payloads(switched) == MENU_EN
    assert chat_ar.customer.conversation_context["language"] == "en"


def test_typing_arabi_switches_to_arabic(chat):
    [switched] = chat.say("عربي")

    assert switched["text"] == "تم! سأكتب لك بالعربية من الآن فصاعدًا."
    assert chat.customer.conversation_context["language"] == "ar"


@pytest.mark.parametrize("payload", ["LANG:fr", "LANG", "LANG:lang=ar"])
def test_unknown_language_changes_nothing(chat, payload):
    [reply] = chat.tap(payload)

    assert reply["text"].startswith("Sorry, I didn't get that.")
    assert "language" not in chat.customer.conversation_context


def test_get_started_with_a_product_referral_greets_then_opens_the_product(chat, merchant):
    product = product_create(merchant=merchant, title="White T-shirt", title_ar="قميص أبيض")
    white = variant_create(product=product, sku="TSHIRT-WHITE", price_minor=1500, name="M")
    variant_create(product=product, sku="TSHIRT-WHITE-L", price_minor=1700, name="L")
    referral = {"ref": "product-TSHIRT-WHITE", "source": "SHORTLINK", "type": "OPEN_THREAD"}

    greeting, card = chat.postback("GET_STARTED", referral=referral)

    assert greeting["text"] == "Hi Layla! Welcome to Souq Layla."
    [element] = Chat.elements(card)
    assert element["title"] == "White T-shirt"
    assert element["subtitle"] == "$15.00"
    postbacks = [b["payload"] for b in element["buttons"] if b["type"] == "postback"]
    assert postbacks == [f"ADD:variant={white.pk},qty=1", f"BUY:variant={white.pk}"]


def test_referral_from_an_ad_opens_the_product_in_arabic(chat_ar, merchant):
    product = product_create(merchant=merchant, title="White T-shirt", title_ar="قميص أبيض")
    variant_create(product=product, sku="TSHIRT-WHITE", price_minor=1500)

    [card] = chat_ar.send(chat_ar.referral_item("product-TSHIRT-WHITE", source="ADS"))

    [element] = Chat.elements(card)
    assert element["title"] == "قميص أبيض"
    assert element["subtitle"] == "\u200f15.00\xa0US$"
    assert [b["title"] for b in element["buttons"]] == ["أضف إلى السلة", "اشترِ الآن", "التفاصيل"]


@pytest.mark.parametrize("ref", ["product-NOPE", "product-", "summer-sale", "product-OTHER-SHOP"])
def test_unknown_or_foreign_referral_gets_the_welcome(chat, ref):
    other = merchant_create()
    variant_create(product=product_create(merchant=other), sku="OTHER-SHOP")

    [welcome] = chat.send(chat.referral_item(ref))

    assert welcome["text"].startswith("Hi Layla! Welcome to Souq Layla.")
    assert Chat.quick_reply_payloads(welcome) == MENU_EN


def test_referral_to_an_inactive_variant_gets_the_welcome(chat, merchant):
    variant_create(product=product_create(merchant=merchant), sku="OLD", is_active=False)

    [welcome] = chat.send(chat.referral_item("product-OLD"))

    assert welcome["text"].startswith("Hi Layla!")


def test_get_started_shows_the_featured_products_under_the_greeting(chat, merchant):
    """A shop with products: the greeting, then its first products (the merchant's display
    order) as a carousel with Buy now, carrying the main menu."""
    later = product_create(merchant=merchant, title="Canvas bag", position=2)
    variant_create(product=later, price_minor=1500)
    first = product_create(merchant=merchant, title="Linen shirt", position=1)
    variant_create(product=first, name="S")
    variant_create(product=first, name="M")

    greeting, carousel = chat.postback("GET_STARTED")

    assert greeting["text"].startswith("Hi Layla! Welcome to Souq Layla.\nHere are some")
    assert "quick_replies" not in greeting
    elements = Chat.elements(carousel)
    assert [e["title"] for e in elements] == ["Linen shirt", "Canvas bag"]
    assert elements[0]["buttons"][1] == {
        "type": "postback",
        "title": "Buy now",
        "payload": f"VARIANTS:id={first.pk},buy=1",
    }
    assert Chat.quick_reply_payloads(carousel) == MENU_EN


def test_get_started_in_arabic_shows_the_featured_products_in_arabic(chat_ar, merchant):
    product = product_create(merchant=merchant, title="Linen shirt", title_ar="قميص كتان")
    variant_create(product=product, price_minor=2500)

    greeting, carousel = chat_ar.postback("GET_STARTED")

    assert greeting["text"].startswith("أهلًا ليلى!")
    assert greeting["text"].endswith(
        "\nإليك بعض منتجاتنا المفضّلة. اسحب لترى المزيد، أو اضغط على تسوّق لترى الأقسام."
    )
    [element] = Chat.elements(carousel)
    assert element["title"] == "قميص كتان"
    assert Chat.quick_reply_payloads(carousel) == MENU_AR
