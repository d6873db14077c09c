"""The conversation engine: routing, replays, paused bots, states, keywords, errors rolled back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.utils import timezone, translation
from django.utils.translation import gettext

from commerce.exceptions import CartError
from commerce.models import CartLine
from commerce.services.carts import cart_add, cart_get_open
from messenger.conversation import engine
from messenger.conversation.keywords import keyword_payload, text_normalize
from messenger.conversation.router import on_payload
from messenger.models import OutboundMessage
from tests.factories import customer_create, product_create, variant_create
from tests.messenger.conversation import support
from tests.messenger.conversation.support import Chat, page_create

pytestmark = pytest.mark.django_db

# Fixtures shared by the conversation tests.
chat, chat_ar, merchant = support.chat, support.chat_ar, support.merchant

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
MENU_EN = ["SHOP", "CART", "ORDERS", "HELP", "LANG:ar"]
SORRY = "Sorry, I didn't get that. Here is what I can help you with:"


# -- handlers registered for these tests only ---------------------------------------------------


@engine.on_state("zz_test_note")
def _note_taken(turn, text):
    from messenger import builders

    if text == "not mine":
        return False
    turn.set_state("", note=text)
    turn.say(
        builders.text(
            f"Noted: {text}",
            quick_replies=[{"content_type": "text", "title": "Menu", "payload": "MENU"}],
        )
    )
    return None


@on_payload("ZZ_TEST_FAIL")
def _fails_after_writing(turn, payload):
    """Writes to the cart and the state, queues a reply, then hits an anticipated error."""
    from messenger import builders

    variant_id = payload.int_param("variant")
    cart_add(cart=cart_get_open(customer=turn.customer), variant_id=variant_id, quantity=1)
    turn.set_state("zz_test_note", half_done=True)
    turn.say(builders.text("You will never see this."))
    raise CartError("This cart is closed. Please start a new one.", code="cart_closed")


# -- routing --------------------------------------------------------------------------------------


def test_replayed_event_is_answered_once(chat):
    item = chat.postback_item("MENU")

    first = chat.handle(item, inbound_event_id=4242)
    again = chat.handle(item, inbound_event_id=4242)

    assert [row.dedupe_key for row in first] == ["reply:4242:0"]
    assert again == []
    assert len(chat.deliver()) == 1
    assert OutboundMessage.objects.filter(customer=chat.customer).count() == 1


def test_a_replayed_add_to_cart_adds_once(chat, merchant):
    variant = variant_create(product=product_create(merchant=merchant))
    item = chat.postback_item(f"ADD:variant={variant.pk},qty=1")

    chat.handle(item, inbound_event_id=5151)
    chat.handle(item, inbound_event_id=5151)

    assert CartLine.objects.get(cart__customer=chat.customer).quantity == 1
    assert len(chat.deliver()) == 1


def test_replies_keep_their_order_and_dedupe_keys(chat, merchant):
    product = product_create(merchant=merchant, title="Tee")
    variant_create(product=product, name="S")
    variant_create(product=product, name="M")

    rows = chat.handle(chat.postback_item(f"PRODUCT:{product.pk}"), inbound_event_id=77)

    assert [row.dedupe_key for row in rows] == ["reply:77:0", "reply:77:1"]
    card, choice = chat.deliver()
    assert card["attachment"]["payload"]["template_type"] == "generic"
    assert choice["text"].startswith("Tee: which one would you like?")


def test_a_paused_bot_answers_nothing(chat):
    chat.customer.bot_paused_at = timezone.now()
    chat.customer.save()

    assert chat.handle(chat.text_item("hello")) == []
    assert chat.handle(chat.postback_item("GET_STARTED")) == []
    assert chat.deliver() == []


def test_echoes_deliveries_and_reads_get_no_answer(chat):
    echo = chat.text_item("hi")
    echo["message"]["is_echo"] = True
    echo["sender"], echo["recipient"] = echo["recipient"], echo["sender"]
    delivery = chat._item(delivery={"mids": ["m_1"], "watermark": 1764067200000})
    read = chat._item(read={"watermark": 1764067200000})

    for item in (echo, delivery, read):
        assert chat.handle(item) == []
    assert chat.deliver() == []


@pytest.mark.parametrize("kind", ["image", "sticker", "audio", "file"])
def test_attachments_get_a_polite_text_only_answer(chat, kind):
    [reply] = chat.send(chat.attachment_item(kind))

    assert reply["text"] == (
        "Thanks! I can only read text messages for now. Type what you are looking for, or:"
    )
    assert Chat.quick_reply_payloads(reply) == MENU_EN


def test_attachments_in_arabic(chat_ar):
    [reply] = chat_ar.send(chat_ar.attachment_item("image"))

    assert (
        reply["text"]
        == "شكرًا! لا أستطيع حاليًا قراءة إلا الرسائل النصية. اكتب ما تبحث عنه، أو اختر:"
    )


@pytest.mark.parametrize(
    "payload",
    ["FOO", "shop", "ADD:variant=1,variant=2", "PRODUCT:1,2", ":", "A" * 1001, "ZZ_NOPE:x=1"],
)
def test_unknown_or_malformed_payloads_get_the_menu(chat, payload):
    [by_postback] = chat.postback(payload)
    [by_quick_reply] = chat.tap(payload, text="?")

    for reply in (by_postback, by_quick_reply):
        assert reply["text"] == SORRY
        assert Chat.quick_reply_payloads(reply) == MENU_EN


def test_sorry_in_arabic(chat_ar):
    [reply] = chat_ar.postback("NOPE")

    assert reply["text"] == "عذرًا، لم أفهم ذلك. إليك ما يمكنني مساعدتك فيه:"
    assert Chat.quick_reply_titles(reply) == ["تسوّق", "السلة", "طلباتي", "مساعدة", "English"]


def test_a_pages_own_get_started_payload_gets_the_welcome(chat):
    chat.page.get_started_payload = "START_SHOPPING"
    chat.page.save()

    [welcome] = chat.postback("START_SHOPPING")

    assert welcome["text"].startswith("Hi Layla! Welcome to Souq Layla.")


def test_empty_postback_payload(chat):
    [reply] = chat.postback("")

    assert reply["text"] == SORRY


# -- anticipated errors ---------------------------------------------------------------------------


def test_an_application_error_rolls_back_the_turn_and_apologizes(chat, merchant):
    variant = variant_create(product=product_create(merchant=merchant))
    chat.customer.conversation_state = "somewhere"
    chat.customer.conversation_context = {"kept": 1}
    chat.customer.save()

    [reply] = chat.postback(f"ZZ_TEST_FAIL:variant={variant.pk}")

    assert reply["text"] == "This cart is closed. Please start a new one."
    assert Chat.quick_reply_payloads(reply) == ["CART", "SHOP", "MENU"]
    assert not CartLine.objects.filter(cart__customer=chat.customer).exists()
    assert chat.customer.conversation_state == "somewhere"
    assert chat.customer.conversation_context == {"kept": 1}


def test_commerce_errors_reach_the_shopper_in_their_language(chat_ar, merchant):
    """The commerce message is gettext'd when raised, inside the turn's Arabic override."""
    variant = variant_create(product=product_create(merchant=merchant), stock=0)

    [reply] = chat_ar.postback(f"ADD:variant={variant.pk},qty=1")

    with translation.override("ar"):
        expected = gettext("Sorry, this item is out of stock.")
    assert reply["text"] == expected
    assert Chat.quick_reply_titles(reply) == ["السلة", "تسوّق", "القائمة"]


# -- free-text states -----------------------------------------------------------------------------


@pytest.fixture
def noting(chat):
    chat.customer.conversation_state = "zz_test_note"
    chat.customer.save()
    return chat


def test_free_text_goes_to_the_state_handler(noting):
    [reply] = noting.say("Blue door, 3rd floor")

    assert reply["text"] == "Noted: Blue door, 3rd floor"
    assert noting.customer.conversation_state == ""
    assert noting.customer.conversation_context["note"] == "Blue door, 3rd floor"


def test_an_email_quick_reply_goes_to_the_state_handler(noting):
    item = noting.quick_reply_item("buyer@example.com", text="buyer@example.com")

    [reply] = noting.send(item)

    assert reply["text"] == "Noted: buyer@example.com"


def test_a_phone_quick_reply_without_a_state_is_not_understood(chat):
    [reply] = chat.tap("+96550012345")

    assert reply["text"] == SORRY


def test_a_state_handler_may_decline(noting, merchant):
    variant_create(product=product_create(merchant=merchant, title="Not mine at all"))

    intro, _carousel = noting.say("not mine")

    assert intro["text"] == "Here is what I found for “not mine”:"
    assert noting.customer.conversation_state == "zz_test_note"


def test_a_menu_keyword_leaves_the_state(noting):
    [reply] = noting.say("menu")

    assert reply["text"] == "What would you like to do?"
    assert noting.customer.conversation_state == ""


def test_a_payload_leaves_the_state_but_keeps_the_context(noting):
    noting.customer.conversation_context = {"language": "en", "draft": {"city": "Kuwait"}}
    noting.customer.save()

    noting.tap("SHOP")

    assert noting.customer.conversation_state == ""
    assert noting.customer.conversation_context == {"language": "en", "draft": {"city": "Kuwait"}}


def test_an_unregistered_state_is_ignored(chat, merchant):
    chat.customer.conversation_state = "zz_gone_after_a_deploy"
    chat.customer.save()
    variant_create(product=product_create(merchant=merchant, title="Lamp"))

    intro, _carousel = chat.say("lamp")

    assert intro["text"] == "Here is what I found for “lamp”:"


def test_on_state_refuses_a_second_handler():
    with pytest.raises(ValueError, match="two handlers"):
        engine.on_state("zz_test_note")(lambda turn, text: None)
    assert engine.state_handler_for("zz_test_note") is _note_taken


# -- keywords -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "payload"),
    [
        ("Cart", "CART"),
        ("  my CART!! ", "CART"),
        ("سلة التسوق", "CART"),
        ("السلة", "CART"),
        ("طلباتي", "ORDERS"),
        ("My orders", "ORDERS"),
        ("مساعدة", "HELP"),
        ("Help", "HELP"),
        ("أهلاً", "GET_STARTED"),
        ("السلام عليكم", "GET_STARTED"),
        ("مَرْحَبًا", "GET_STARTED"),
        ("القائمة", "MENU"),
        ("تسوّق", "SHOP"),
        ("English", "LANG:en"),
        ("عربي", "LANG:ar"),
        ("red shoes", None),
        ("cart toy", None),
        ("", None),
    ],
)
def test_keywords(text, payload):
    assert keyword_payload(text) == payload


def test_text_normalize_folds_arabic_variants():
    assert text_normalize("إِتْمَامُ الشِّراءِ") == text_normalize("اتمام الشراء") == "اتمام الشراء"
    assert text_normalize("مدرســة") == "مدرسه"


# -- the shared webhook fixtures, end to end through the engine ---------------------------------


def _fixture_item(name: str) -> dict:
    body = json.loads((FIXTURES / f"{name}.json").read_text())
    return body["entry"][0]["messaging"][0]


@pytest.fixture
def fixture_chat(graph_stub, merchant):
    page = page_create(merchant=merchant, page_id="104412345678901")
    customer = customer_create(
        merchant=merchant,
        page_id=page.page_id,
        psid="2401234567890123",
        locale="ar_AR",
        first_name="ليلى",
        last_interaction_at=timezone.now(),
    )
    return Chat(page=page, customer=customer, stub=graph_stub)


def test_fixture_arabic_text_opens_the_cart(fixture_chat):
    [reply] = fixture_chat.send(_fixture_item("text_message_arabic"))  # "سلة التسوق"

    assert reply["text"] == "سلتك فارغة. لنجد شيئًا يعجبك!"


def test_fixture_get_started_with_referral_opens_the_product(fixture_chat, merchant):
    product = product_create(merchant=merchant, title="White tee", title_ar="تيشيرت أبيض")
    variant_create(product=product, sku="TSHIRT-WHITE")

    greeting, card = fixture_chat.send(_fixture_item("get_started_with_referral"))

    assert greeting["text"] == "أهلًا ليلى! مرحبًا بك في Souq Layla."
    assert Chat.elements(card)[0]["title"] == "تيشيرت أبيض"


def test_fixture_referral_from_an_ad(fixture_chat, merchant):
    variant_create(product=product_create(merchant=merchant, title_ar="تيشيرت"), sku="TSHIRT-WHITE")

    [card] = fixture_chat.send(_fixture_item("referral_from_ad"))

    assert Chat.elements(card)[0]["title"] == "تيشيرت"


def test_fixture_text_search_and_image(fixture_chat, merchant):
    variant_create(product=product_create(merchant=merchant, title="Red shoes"))

    intro, _carousel = fixture_chat.send(_fixture_item("text_message"))  # "red shoes"
    [image] = fixture_chat.send(_fixture_item("image_attachment"))

    assert intro["text"] == "إليك ما وجدته عن «red shoes»:"
    assert image["text"].startswith("شكرًا!")


def test_fixture_quick_reply_shop(fixture_chat, merchant):
    variant_create(product=product_create(merchant=merchant, title="Only product"))

    [carousel] = fixture_chat.send(_fixture_item("quick_reply"))  # SHOP, no categories

    assert Chat.elements(carousel)[0]["title"] == "Only product"


# -- every answer offers a way forward ------------------------------------------------------------


def test_every_answer_ends_with_a_way_forward(chat, merchant):
    product = product_create(merchant=merchant, title="Tee")
    small = variant_create(product=product, name="S")
    variant_create(product=product, name="M")
    turns = [
        chat.postback_item("GET_STARTED"),
        chat.quick_reply_item("SHOP"),
        chat.postback_item(f"PRODUCT:{product.pk}"),
        chat.postback_item(f"VARIANTS:{product.pk}"),
        chat.postback_item(f"ADD:variant={small.pk},qty=1"),
        chat.postback_item("CART"),
        chat.postback_item(f"CART_INC:variant={small.pk}"),
        chat.postback_item(f"CART_REMOVE:variant={small.pk}"),
        chat.text_item("tee"),
        chat.text_item("nothing like this"),
        chat.postback_item("PRODUCT:999999"),
        chat.postback_item("NOPE"),
        chat.attachment_item(),
        chat.postback_item("CART_CLEAR"),
        chat.quick_reply_item("LANG:ar"),
        chat.postback_item("MENU"),
    ]
    for item in turns:
        messages = chat.send(item)
        assert messages, item
        last = messages[-1]
        buttons = last.get("attachment", {}).get("payload", {}).get("elements", [{}])[0]
        assert last.get("quick_replies") or buttons.get("buttons"), (item, last)
