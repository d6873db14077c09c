"""Parsing webhook messaging items into typed events (pure; no database)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messenger import events as ev

# The shared webhook fixtures (../shared/fixtures/messenger), copied into the repository.
FIXTURES = Path(__file__).parent / "fixtures"
PAGE_ID = "104412345678901"
PSID = "2401234567890123"


def fixture_items(name: str) -> list[tuple[str, dict]]:
    """``(page id, messaging item)`` pairs of a fixture body, in order."""
    body = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return [(entry["id"], item) for entry in body["entry"] for item in entry["messaging"]]


def only_item(name: str) -> dict:
    (pair,) = fixture_items(name)
    return pair[1]


def parse(name: str) -> ev.Event:
    (page_id, item), *_ = fixture_items(name)
    return ev.event_parse(item, page_id=page_id)


# -- every fixture --------------------------------------------------------------------------

EXPECTED = {
    "batched_two_entries.json": [
        (ev.MessageEvent, "message"),
        (ev.PostbackEvent, "postback"),
        (ev.MessageEvent, "message"),
    ],
    "delivery_and_read.json": [(ev.DeliveryEvent, "delivery"), (ev.ReadEvent, "read")],
    "echo.json": [(ev.MessageEvent, "echo")],
    "get_started.json": [(ev.PostbackEvent, "postback")],
    "get_started_with_referral.json": [(ev.PostbackEvent, "postback")],
    "image_attachment.json": [(ev.MessageEvent, "message")],
    "legacy_checkout_update.json": [(ev.CheckoutUpdateEvent, "checkout_update")],
    "legacy_payment.json": [(ev.PaymentEvent, "payment")],
    "legacy_pre_checkout.json": [(ev.PreCheckoutEvent, "pre_checkout")],
    "postback.json": [(ev.PostbackEvent, "postback")],
    "quick_reply.json": [(ev.MessageEvent, "message")],
    "quick_reply_email.json": [(ev.MessageEvent, "message")],
    "referral_from_ad.json": [(ev.ReferralEvent, "referral")],
    "text_message.json": [(ev.MessageEvent, "message")],
    "text_message_arabic.json": [(ev.MessageEvent, "message")],
}


def test_every_fixture_is_covered():
    assert sorted(p.name for p in FIXTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_to_the_expected_event_types_and_kinds(name):
    pairs = fixture_items(name)
    assert len(pairs) == len(EXPECTED[name])
    for (page_id, item), (event_type, kind) in zip(pairs, EXPECTED[name], strict=True):
        event = ev.event_parse(item, page_id=page_id)
        assert type(event) is event_type
        assert ev.event_kind(item) == kind
        assert event.page_id == page_id
        assert event.timestamp_ms == item["timestamp"]
        key = ev.event_dedupe_key(item, page_id=page_id)
        assert key.startswith(kind + ":")
        assert len(key) <= 128
        # Redelivery (a fresh parse of the same JSON) gives the same key.
        assert ev.event_dedupe_key(json.loads(json.dumps(item)), page_id=page_id) == key


def test_text_message():
    event = parse("text_message.json")
    assert event == ev.MessageEvent(
        page_id=PAGE_ID,
        sender_psid=PSID,
        recipient_id=PAGE_ID,
        timestamp_ms=1764067200000,
        mid="m_txt_0001",
        text="red shoes",
    )
    assert event.quick_reply_payload is None
    assert event.customer_psid == PSID
    assert not event.is_email_reply
    assert event.contact_value is None


def test_arabic_text_message_keeps_the_text():
    event = parse("text_message_arabic.json")
    assert event.text == "سلة التسوق"


def test_quick_reply_payload():
    event = parse("quick_reply.json")
    assert isinstance(event, ev.MessageEvent)
    assert (event.text, event.quick_reply_payload) == ("Shop", "SHOP")
    assert not event.is_email_reply
    assert not event.is_phone_reply
    assert event.contact_value is None


def test_email_quick_reply_exposes_the_address():
    event = parse("quick_reply_email.json")
    assert event.quick_reply_payload == "buyer@example.com"
    assert event.is_email_reply
    assert not event.is_phone_reply
    assert event.contact_value == "buyer@example.com"


def test_phone_quick_reply_exposes_the_number():
    item = copy.deepcopy(only_item("quick_reply_email.json"))
    item["message"].update(text="+96599123456", quick_reply={"payload": "+96599123456"})
    event = ev.event_parse(item, page_id=PAGE_ID)
    assert event.is_phone_reply
    assert not event.is_email_reply
    assert event.contact_value == "+96599123456"


@pytest.mark.parametrize(
    "payload", ["SHOP", "ADD:variant=1,qty=2", "PRODUCT:42", "ORDER:1042", "12345", "a@b", ""]
)
def test_our_payloads_are_not_contact_replies(payload):
    event = ev.MessageEvent(page_id=PAGE_ID, quick_reply_payload=payload)
    assert event.contact_value is None


def test_numeric_quick_reply_payload_becomes_a_string():
    item = copy.deepcopy(only_item("quick_reply.json"))
    item["message"]["quick_reply"]["payload"] = 42
    assert ev.event_parse(item, page_id=PAGE_ID).quick_reply_payload == "42"


def test_image_attachment():
    event = parse("image_attachment.json")
    assert event.text == ""
    assert event.attachments == (
        {"type": "image", "payload": {"url": "https://scontent.example/img.jpg"}},
    )
    assert event.attachment_types == ("image",)


def test_reply_to():
    item = copy.deepcopy(only_item("text_message.json"))
    item["message"]["reply_to"] = {"mid": "m_original"}
    assert ev.event_parse(item, page_id=PAGE_ID).reply_to_mid == "m_original"
    assert parse("text_message.json").reply_to_mid is None


def test_echo_is_a_message_from_the_page_to_the_customer():
    item = only_item("echo.json")
    event = ev.event_parse(item, page_id=PAGE_ID)
    assert isinstance(event, ev.MessageEvent)
    assert event.is_echo
    assert event.sender_psid == PAGE_ID
    assert event.customer_psid == PSID
    assert (event.app_id, event.metadata, event.text) == (
        "1517776481860111",
        "outbox:17",
        "Welcome!",
    )
    assert ev.event_dedupe_key(item, page_id=PAGE_ID) == "echo:m_echo_0001"


def test_an_echo_and_a_message_with_the_same_mid_never_collide():
    message = {"sender": {"id": PSID}, "message": {"mid": "m_1", "text": "hi"}}
    echo = {"sender": {"id": PAGE_ID}, "message": {"mid": "m_1", "text": "hi", "is_echo": True}}
    keys = {
        ev.event_dedupe_key(message, page_id=PAGE_ID),
        ev.event_dedupe_key(echo, page_id=PAGE_ID),
    }
    assert keys == {"message:m_1", "echo:m_1"}


def test_postback():
    event = parse("postback.json")
    assert event == ev.PostbackEvent(
        page_id=PAGE_ID,
        sender_psid=PSID,
        recipient_id=PAGE_ID,
        timestamp_ms=1764067200000,
        mid="m_pb_0001",
        title="Add to cart",
        payload="ADD:variant=1",
    )
    assert ev.event_dedupe_key(only_item("postback.json"), page_id=PAGE_ID) == "postback:m_pb_0001"


def test_get_started_without_referral():
    event = parse("get_started.json")
    assert (event.payload, event.referral) == ("GET_STARTED", None)


def test_get_started_with_an_m_me_referral():
    event = parse("get_started_with_referral.json")
    assert event.payload == "GET_STARTED"
    assert event.referral == ev.Referral(
        ref="product-TSHIRT-WHITE", source="SHORTLINK", type="OPEN_THREAD"
    )


def test_referral_from_an_ad():
    event = parse("referral_from_ad.json")
    assert isinstance(event, ev.ReferralEvent)
    assert event.sender_psid == PSID
    assert event.referral == ev.Referral(
        ref="product-TSHIRT-WHITE",
        source="ADS",
        type="OPEN_THREAD",
        ad_id="6045246247433",
        ads_context_data={
            "ad_title": "Summer tees",
            "photo_url": "https://scontent.example/ad.jpg",
            "post_id": "104412345678901_55",
        },
    )


def test_delivery_and_read():
    (page_id, delivery), (_, read) = fixture_items("delivery_and_read.json")
    assert ev.event_parse(delivery, page_id=page_id) == ev.DeliveryEvent(
        page_id=PAGE_ID,
        sender_psid=PSID,
        recipient_id=PAGE_ID,
        timestamp_ms=1764067201500,
        mids=("m_out_0001",),
        watermark=1764067201000,
    )
    assert ev.event_parse(read, page_id=page_id) == ev.ReadEvent(
        page_id=PAGE_ID,
        sender_psid=PSID,
        recipient_id=PAGE_ID,
        timestamp_ms=1764067202000,
        watermark=1764067201000,
    )


def test_delivery_without_mids():
    item = {"sender": {"id": PSID}, "delivery": {"watermark": 5}}
    event = ev.event_parse(item, page_id=PAGE_ID)
    assert (event.mids, event.watermark) == ((), 5)


def test_legacy_pre_checkout_keeps_the_raw_dicts():
    item = only_item("legacy_pre_checkout.json")
    event = ev.event_parse(item, page_id=PAGE_ID)
    assert event.payload == "ORDER:1042"
    assert event.amount == {"currency": "USD", "amount": "29.62"}
    assert event.requested_user_info["contact_email"] == "peter@example.com"
    assert event.raw == item["pre_checkout"]


def test_legacy_checkout_update():
    event = parse("legacy_checkout_update.json")
    assert event.payload == "ORDER:1042"
    assert event.shipping_address["street1"] == "1 Hacker Way"


def test_legacy_payment():
    item = only_item("legacy_payment.json")
    event = ev.event_parse(item, page_id=PAGE_ID)
    assert event.payload == "ORDER:1042"
    assert event.payment_credential["charge_id"] == "ch_18tmdBEoNIH3FPJHa60ep123"
    assert event.amount == {"currency": "USD", "amount": "29.62"}
    assert event.shipping_option_id == "1"
    assert event.raw == item["payment"]


# -- kinds without a fixture ----------------------------------------------------------------


def test_optin_from_the_send_to_messenger_plugin():
    item = {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE_ID},
        "timestamp": 1234567890,
        "optin": {"ref": "PASS_THROUGH_PARAM", "user_ref": "UNIQUE_REF_PARAM"},
    }
    event = ev.event_parse(item, page_id=PAGE_ID)
    assert ev.event_kind(item) == "optin"
    assert isinstance(event, ev.OptinEvent)
    assert (event.ref, event.user_ref, event.type) == ("PASS_THROUGH_PARAM", "UNIQUE_REF_PARAM", "")


def test_optin_for_marketing_messages():
    item = {
        "sender": {"id": PSID},
        "optin": {
            "type": "notification_messages",
            "payload": "DEALS",
            "notification_messages_token": "tok",
            "notification_messages_status": "STOP NOTIFICATIONS",
        },
    }
    event = ev.event_parse(item, page_id=PAGE_ID)
    assert (event.type, event.payload, event.notification_messages_token) == (
        "notification_messages",
        "DEALS",
        "tok",
    )
    assert event.notification_messages_status == "STOP NOTIFICATIONS"


def test_reaction():
    item = {
        "sender": {"id": PSID},
        "reaction": {"reaction": "love", "emoji": "\u2764\ufe0f", "action": "react", "mid": "m_9"},
    }
    event = ev.event_parse(item, page_id=PAGE_ID)
    assert ev.event_kind(item) == "reaction"
    assert event == ev.ReactionEvent(
        page_id=PAGE_ID,
        sender_psid=PSID,
        mid="m_9",
        action="react",
        reaction="love",
        emoji="\u2764\ufe0f",
    )
    # The mid is the reacted-to message's, so it must not be the dedupe key.
    assert ev.event_dedupe_key(item, page_id=PAGE_ID).startswith("reaction:")
    assert "m_9" not in ev.event_dedupe_key(item, page_id=PAGE_ID)


def test_unknown_kind_is_recorded_by_name():
    item = {"sender": {"id": PSID}, "message_edit": {"mid": "m_1", "text": "x", "num_edit": 1}}
    event = ev.event_parse(item, page_id=PAGE_ID)
    assert ev.event_kind(item) == "unknown"
    assert event == ev.UnknownEvent(page_id=PAGE_ID, sender_psid=PSID, kind="message_edit")


# -- hostile input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item",
    [
        None,
        [],
        "message",
        42,
        {},
        {"message": "hi"},
        {"message": None, "postback": []},
        {"sender": "x", "recipient": 5, "timestamp": "soon"},
        {"sender": {"id": ["x"]}, "message": {"mid": 5, "text": {"a": 1}}},
        {"message": {"quick_reply": "SHOP", "attachments": "nope", "reply_to": []}},
        {"message": {"quick_reply": {"payload": None}, "attachments": [1, None, {"type": 2}]}},
        {"postback": {"referral": "x", "payload": True}},
        {"referral": {"ads_context_data": [], "ref": None}},
        {"delivery": {"mids": "m_1", "watermark": -5}},
        {"read": {"watermark": 1e300}},
        {"payment": {"amount": "29.62", "payment_credential": None}},
        {"timestamp": 10**40, "message": {}},
        {"\ud800": {"\udfff": "lone surrogates"}},
    ],
)
def test_malformed_items_never_raise(item):
    event = ev.event_parse(item, page_id=PAGE_ID)
    assert isinstance(event, ev.Event)
    assert ev.event_kind(item) in ev.KINDS
    key = ev.event_dedupe_key(item, page_id=PAGE_ID)
    assert 0 < len(key) <= 128


def test_wrong_types_become_defaults():
    item = {
        "sender": {"id": 2401234567890123},
        "timestamp": True,
        "message": {
            "mid": ["m"],
            "text": 7,
            "quick_reply": {"payload": None},
            "attachments": [{"type": "image"}, "junk"],
            "reply_to": {"mid": 3},
        },
    }
    event = ev.event_parse(item, page_id=PAGE_ID)
    assert event == ev.MessageEvent(
        page_id=PAGE_ID,
        sender_psid="2401234567890123",  # a numeric id still names the customer
        attachments=({"type": "image"},),
    )


def test_a_chat_plugin_sender_is_read_from_its_user_ref():
    item = {
        "sender": {"user_ref": "cp-5f1d0c"},
        "recipient": {"id": PAGE_ID},
        "timestamp": 1764067200000,
        "postback": {"mid": "m_cp", "title": "Get Started", "payload": "GET_STARTED"},
    }
    event = ev.event_parse(item, page_id=PAGE_ID)
    assert (event.sender_psid, event.sender_user_ref) == ("", "cp-5f1d0c")
    assert event.payload == "GET_STARTED"


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [(1764067200000, 1764067200000), ("1764067200000", 1764067200000), (-1, 0), (10**16, 0)],
)
def test_timestamps_are_sane_milliseconds_or_zero(timestamp, expected):
    item = {"sender": {"id": PSID}, "timestamp": timestamp, "read": {"watermark": timestamp}}
    event = ev.event_parse(item, page_id=PAGE_ID)
    assert (event.timestamp_ms, event.watermark) == (expected, expected)


def test_a_non_dict_kind_value_falls_through_to_the_next_kind():
    item = {"message": "spoof", "postback": {"mid": "m_2", "payload": "CART"}}
    assert ev.event_kind(item) == "postback"
    assert isinstance(ev.event_parse(item, page_id=PAGE_ID), ev.PostbackEvent)


def test_truthy_is_echo_counts_as_an_echo():
    item = {"sender": {"id": PAGE_ID}, "message": {"mid": "m_3", "is_echo": "true"}}
    assert ev.event_kind(item) == "echo"
    assert ev.event_parse(item, page_id=PAGE_ID).is_echo


# -- dedupe keys --------------------------------------------------------------------------


def test_items_without_mid_hash_stably_regardless_of_key_order():
    item = {"sender": {"id": PSID}, "timestamp": 1, "read": {"watermark": 1}}
    reordered = {"read": {"watermark": 1}, "timestamp": 1, "sender": {"id": PSID}}
    assert ev.event_dedupe_key(item, page_id=PAGE_ID) == ev.event_dedupe_key(
        reordered, page_id=PAGE_ID
    )


def test_the_same_item_for_two_pages_gets_two_keys():
    item = {"sender": {"id": PSID}, "read": {"watermark": 1}}
    assert ev.event_dedupe_key(item, page_id="1") != ev.event_dedupe_key(item, page_id="2")


def test_a_message_without_mid_falls_back_to_the_hash():
    item = {"sender": {"id": PSID}, "message": {"text": "hi"}}
    key = ev.event_dedupe_key(item, page_id=PAGE_ID)
    assert key.startswith("message:")
    assert len(key) == len("message:") + 64


def test_an_overlong_mid_is_hashed_into_the_column():
    item = {"message": {"mid": "m" * 500}}
    key = ev.event_dedupe_key(item, page_id=PAGE_ID)
    assert key.startswith("message:mid-sha256:")
    assert len(key) <= 128


def test_a_real_length_mid_is_kept_verbatim():
    mid = "qT7ywaKpO9kkQR7Gv-nM8LIfLZDamVrALniheUYEDdHJXjDXEAyaS1xxONzb2Iv-DFzmTihfWJV012P5pK0AhQ"
    assert ev.event_dedupe_key({"postback": {"mid": mid}}, page_id=PAGE_ID) == f"postback:{mid}"


# -- fuzz ---------------------------------------------------------------------------------

_KEYS = st.sampled_from(
    [
        "sender",
        "recipient",
        "id",
        "timestamp",
        "message",
        "postback",
        "referral",
        "delivery",
        "read",
        "optin",
        "reaction",
        "pre_checkout",
        "checkout_update",
        "payment",
        "mid",
        "text",
        "quick_reply",
        "payload",
        "attachments",
        "reply_to",
        "is_echo",
        "app_id",
        "metadata",
        "title",
        "ref",
        "source",
        "type",
        "ad_id",
        "ads_context_data",
        "mids",
        "watermark",
        "amount",
        "requested_user_info",
        "payment_credential",
        "shipping_address",
        "shipping_option_id",
    ]
)
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
JSON_LIKE = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(_KEYS | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(item=st.dictionaries(_KEYS | st.text(max_size=8), JSON_LIKE, max_size=6) | JSON_LIKE)
def test_parsing_never_raises_for_arbitrary_json(item):
    event = ev.event_parse(item, page_id=PAGE_ID)
    assert isinstance(event, ev.Event)
    kind = ev.event_kind(item)
    assert kind in ev.KINDS
    key = ev.event_dedupe_key(item, page_id=PAGE_ID)
    assert key.startswith(kind + ":")
    assert len(key) <= 128
    assert isinstance(event.sender_psid, str)
    assert isinstance(event.timestamp_ms, int)
    if isinstance(event, ev.MessageEvent):
        assert isinstance(event.text, str)
        assert all(isinstance(a, dict) for a in event.attachments)
        event.contact_value  # noqa: B018 (must not raise either)
