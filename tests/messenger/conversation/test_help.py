"""Help: the shop's contact details, and Talk to a person, which pauses the bot until resumed."""

from __future__ import annotations

import pytest

from commerce.models import Customer
from messenger.services.handover import conversation_pause, conversation_resume
from tests.factories import customer_create
from tests.messenger.conversation import support
from tests.messenger.conversation.support import Chat

pytestmark = pytest.mark.django_db

# The shared conversation fixtures (an English and an Arabic shopper of one shop).
chat, chat_ar, merchant = support.chat, support.chat_ar, support.merchant


@pytest.fixture
def support(merchant):
    merchant.support_email = "help@souq.example"
    merchant.support_phone = "+965 2222 3333"
    merchant.save()
    return merchant


def test_help_shows_the_shops_contact_details(chat, support):
    [reply] = chat.postback("HELP")

    assert reply["text"] == (
        "Need help with an order or a product? You can reach Souq Layla:\n"
        "Email: help@souq.example\n"
        "Phone: +965 2222 3333\n"
        "Or tap Talk to a person and someone from the shop will answer you here."
    )
    assert Chat.quick_reply_payloads(reply) == ["HUMAN", "ORDERS", "SHOP", "MENU"]
    assert Chat.quick_reply_titles(reply)[0] == "Talk to a person"


def test_help_with_a_contact_page_has_a_button(chat, support):
    support.support_url = "https://souq.example/contact"
    support.save()

    [reply] = chat.say("help")

    payload = reply["attachment"]["payload"]
    assert payload["template_type"] == "button"
    [button] = payload["buttons"]
    assert (button["type"], button["url"]) == ("web_url", "https://souq.example/contact")
    assert Chat.quick_reply_payloads(reply)[0] == "HUMAN"


def test_talk_to_a_person_pauses_the_bot_until_resumed(chat, support):
    [reply] = chat.tap("HUMAN", text="Talk to a person")

    assert reply["text"] == (
        "OK, a person from Souq Layla will answer you here as soon as possible. "
        "Just write your question below."
    )
    assert chat.customer.bot_paused_at is not None

    # The shopper writes to the person: the bot stays silent, whatever is sent.
    assert chat.say("My parcel has not arrived") == []
    assert chat.postback("MENU") == []
    assert chat.tap("SHOP") == []

    assert conversation_resume(customer=chat.customer) is True
    [menu] = chat.postback("MENU")
    assert Chat.quick_reply_payloads(menu)[0] == "SHOP"


def test_help_in_arabic(chat_ar, support):
    [reply] = chat_ar.postback("HELP")

    assert "help@souq.example" in reply["text"]
    assert reply["text"].startswith("تحتاج إلى مساعدة")
    assert Chat.quick_reply_titles(reply)[0] == "التحدث إلى شخص"

    [paused] = chat_ar.tap("HUMAN")
    assert "Souq Layla" in paused["text"]
    assert "سيرد عليك" in paused["text"]
    assert chat_ar.say("مرحبا") == []


def test_pause_twice_keeps_the_first_time_and_resume_clears_the_state(merchant):
    customer = customer_create(merchant=merchant, conversation_state="checkout_email")
    assert conversation_pause(customer=customer) is True
    first = customer.bot_paused_at
    assert conversation_pause(customer=Customer.objects.get(pk=customer.pk)) is False
    assert Customer.objects.get(pk=customer.pk).bot_paused_at == first

    assert conversation_resume(customer=customer) is True
    stored = Customer.objects.get(pk=customer.pk)
    assert stored.bot_paused_at is None and stored.conversation_state == ""
    assert conversation_resume(customer=customer) is False
