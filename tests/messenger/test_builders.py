"""Send API message builders: exact shapes and the platform limits (pure; no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy

from core.money import Money
from messenger import builders as b
from messenger.builders import BuilderError

ARABIC = "قميص قطني أبيض بأكمام قصيرة ومريح للغاية"  # 40 characters, 74 UTF-8 bytes


def qr(n: int) -> list[dict]:
    return [b.quick_reply(f"Option {i}", f"OPT:{i}") for i in range(n)]


def buttons(n: int) -> list[dict]:
    return [b.postback_button(f"Button {i}", f"BTN:{i}") for i in range(n)]


def element(title: str = "Tee") -> dict:
    return b.generic_element(title, subtitle="$10.00", buttons=buttons(1))


# -- truncation -----------------------------------------------------------------------------


def test_truncate_keeps_text_that_fits():
    assert b.truncate("a" * 80, 80) == "a" * 80


def test_truncate_cuts_to_the_limit_including_the_ellipsis():
    result = b.truncate("a" * 81, 80)
    assert result == "a" * 79 + "…"
    assert len(result) == 80


def test_truncate_counts_characters_not_bytes_for_arabic():
    assert len(ARABIC) == 40 and len(ARABIC.encode()) > 40
    assert b.truncate(ARABIC, 40) == ARABIC  # fits: 40 characters
    cut = b.truncate(ARABIC * 3, 80)
    assert len(cut) <= 80
    assert cut.endswith("…")
    assert (ARABIC * 3).startswith(cut[:-1])


def test_truncate_never_strands_a_combining_mark():
    # "مَرْحَبًا" carries harakat (combining marks); a cut right after a letter must not keep
    # the letter without its mark or a mark without its letter.
    word = "مَرْحَبًا"
    for limit in range(2, len(word)):
        head = b.truncate(word, limit)[:-1]
        assert word.startswith(head)
        rest = word[len(head) :]
        assert not rest or b._attaches_to_previous(rest[0]) is False


def test_truncate_does_not_split_a_zwj_emoji():
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # 5 code points
    result = b.truncate("ab" + family + "cd", 6)
    assert result == "ab…"


def test_truncate_drops_trailing_space_before_the_ellipsis():
    assert b.truncate("Classic tee in white", 12) == "Classic tee…"


# -- text and quick replies -----------------------------------------------------------------


def test_text_message():
    assert b.text("Hello") == {"text": "Hello"}


def test_text_with_quick_replies():
    message = b.text("Pick one", quick_replies=[b.quick_reply("Shop", "SHOP")])
    assert message == {
        "text": "Pick one",
        "quick_replies": [{"content_type": "text", "title": "Shop", "payload": "SHOP"}],
    }


def test_text_is_truncated_at_2000():
    assert b.text("a" * 2000)["text"] == "a" * 2000
    long = b.text("a" * 2001)["text"]
    assert len(long) == 2000 and long.endswith("…")


def test_empty_text_is_refused():
    with pytest.raises(BuilderError):
        b.text("  ")


def test_lazy_translations_are_resolved():
    assert b.text(gettext_lazy("Cart")) == {"text": "Cart"}


def test_quick_reply_with_image():
    assert b.quick_reply("Red", "COLOR:red", image_url="https://cdn.example/red.png") == {
        "content_type": "text",
        "title": "Red",
        "payload": "COLOR:red",
        "image_url": "https://cdn.example/red.png",
    }


def test_quick_reply_title_20_fits_21_is_truncated():
    assert b.quick_reply("a" * 20, "P")["title"] == "a" * 20
    assert b.quick_reply("a" * 21, "P")["title"] == "a" * 19 + "…"


def test_arabic_quick_reply_title_is_truncated_by_characters():
    title = b.quick_reply("تصفح المنتجات الجديدة الآن", "SHOP")["title"]
    assert len(title) == 20
    assert title == "تصفح المنتجات الجدي…"


def test_13_quick_replies_fit_14_raise():
    assert len(b.text("x", quick_replies=qr(13))["quick_replies"]) == 13
    with pytest.raises(BuilderError, match="13"):
        b.text("x", quick_replies=qr(14))


def test_contact_quick_replies():
    assert b.quick_reply_email() == {"content_type": "user_email"}
    assert b.quick_reply_phone() == {"content_type": "user_phone_number"}
    message = b.text("Your email?", quick_replies=[b.quick_reply_email()])
    assert message["quick_replies"] == [{"content_type": "user_email"}]


def test_payload_limit_is_1000_and_never_truncated():
    assert b.quick_reply("T", "P" * 1000)["payload"] == "P" * 1000
    with pytest.raises(BuilderError):
        b.quick_reply("T", "P" * 1001)
    with pytest.raises(BuilderError):
        b.postback_button("T", "P" * 1001)


def test_empty_payload_only_with_an_image():
    with pytest.raises(BuilderError):
        b.quick_reply("T", "")
    assert b.quick_reply("T", "", image_url="https://cdn.example/i.png")["payload"] == ""


def test_foreign_quick_reply_objects_are_refused():
    with pytest.raises(BuilderError):
        b.text("x", quick_replies=[{"content_type": "location"}])
    with pytest.raises(BuilderError):
        b.text("x", quick_replies=["SHOP"])


def test_input_dicts_are_copied_not_shared():
    reply = b.quick_reply("Shop", "SHOP")
    message = b.text("x", quick_replies=[reply])
    message["quick_replies"][0]["title"] = "changed"
    assert reply["title"] == "Shop"


# -- buttons --------------------------------------------------------------------------------


def test_postback_button():
    assert b.postback_button("Add to cart", "ADD:variant=1,qty=1") == {
        "type": "postback",
        "title": "Add to cart",
        "payload": "ADD:variant=1,qty=1",
    }


def test_button_title_20_fits_21_is_truncated():
    assert b.postback_button("a" * 20, "P")["title"] == "a" * 20
    assert b.postback_button("a" * 21, "P")["title"] == "a" * 19 + "…"
    assert b.url_button("a" * 21, "https://x.example")["title"] == "a" * 19 + "…"


def test_url_button_defaults():
    assert b.url_button("Details", "https://shop.example/p/1") == {
        "type": "web_url",
        "title": "Details",
        "url": "https://shop.example/p/1",
        "webview_height_ratio": "tall",
    }


def test_url_button_for_checkout_with_extensions():
    button = b.url_button(
        "Pay",
        "https://shop.example/checkout/tok/",
        webview_height_ratio="tall",
        messenger_extensions=True,
        fallback_url="https://shop.example/checkout/tok/?fallback=1",
        share_button=False,
    )
    assert button == {
        "type": "web_url",
        "title": "Pay",
        "url": "https://shop.example/checkout/tok/",
        "webview_height_ratio": "tall",
        "messenger_extensions": True,
        "fallback_url": "https://shop.example/checkout/tok/?fallback=1",
        "webview_share_button": "hide",
    }


@pytest.mark.parametrize("ratio", ["compact", "tall", "full"])
def test_every_webview_height_ratio(ratio):
    assert (
        b.url_button("Go", "https://x.example", webview_height_ratio=ratio)["webview_height_ratio"]
        == ratio
    )


@pytest.mark.parametrize("ratio", ["TALL", "half", "", None])
def test_unknown_webview_height_ratio_raises(ratio):
    with pytest.raises(BuilderError, match="webview_height_ratio"):
        b.url_button("Go", "https://x.example", webview_height_ratio=ratio)


def test_fallback_url_needs_messenger_extensions():
    with pytest.raises(BuilderError, match="fallback_url"):
        b.url_button("Go", "https://x.example", fallback_url="https://y.example")


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "ftp://x.example/f",
        "//x.example/path",
        "/checkout/tok/",
        "https://",
        "https://x.example/a b",
        "",
        "http://[::1",
    ],
)
def test_urls_must_be_absolute_http_or_https(url):
    with pytest.raises(BuilderError):
        b.url_button("Go", url)


def test_plain_http_is_allowed_for_local_development():
    assert b.url_button("Go", "http://localhost:8000/x")["url"] == "http://localhost:8000/x"


# -- generic template -----------------------------------------------------------------------


def test_generic_element_shape():
    action = b.default_action("https://shop.example/p/1", webview_height_ratio="full")
    card = b.generic_element(
        "Classic tee",
        subtitle="$10.00 · In stock",
        image_url="https://cdn.example/tee.jpg",
        buttons=[b.postback_button("Add to cart", "ADD:variant=1,qty=1")],
        default_action=action,
    )
    assert card == {
        "title": "Classic tee",
        "subtitle": "$10.00 · In stock",
        "image_url": "https://cdn.example/tee.jpg",
        "default_action": {
            "type": "web_url",
            "url": "https://shop.example/p/1",
            "webview_height_ratio": "full",
        },
        "buttons": [{"type": "postback", "title": "Add to cart", "payload": "ADD:variant=1,qty=1"}],
    }


def test_a_url_button_as_default_action_loses_its_title():
    card = b.generic_element("Tee", default_action=b.url_button("Open", "https://x.example"))
    assert "title" not in card["default_action"]
    assert card["default_action"]["url"] == "https://x.example"


def test_default_action_must_be_a_web_url():
    with pytest.raises(BuilderError):
        b.generic_element("Tee", default_action=b.postback_button("Open", "P"))


def test_generic_element_needs_more_than_a_title():
    with pytest.raises(BuilderError):
        b.generic_element("Tee")


def test_title_and_subtitle_80_fit_81_are_truncated():
    card = b.generic_element("t" * 80, subtitle="s" * 80)
    assert (card["title"], card["subtitle"]) == ("t" * 80, "s" * 80)
    card = b.generic_element("t" * 81, subtitle="s" * 81)
    assert (card["title"], card["subtitle"]) == ("t" * 79 + "…", "s" * 79 + "…")


def test_arabic_title_is_truncated_by_characters():
    card = b.generic_element(ARABIC * 3, subtitle=ARABIC)
    assert len(card["title"]) <= 80 and card["title"].endswith("…")
    assert card["subtitle"] == ARABIC


def test_3_buttons_fit_4_raise():
    assert len(b.generic_element("Tee", buttons=buttons(3))["buttons"]) == 3
    with pytest.raises(BuilderError, match="3"):
        b.generic_element("Tee", buttons=buttons(4))


def test_generic_template_shape():
    message = b.generic_template([element()], quick_replies=[b.quick_reply("More", "MORE")])
    assert message == {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "generic",
                "image_aspect_ratio": "square",
                "elements": [element()],
            },
        },
        "quick_replies": [{"content_type": "text", "title": "More", "payload": "MORE"}],
    }


def test_10_elements_fit_11_raise():
    payload = b.generic_template([element(str(i)) for i in range(10)])["attachment"]["payload"]
    assert len(payload["elements"]) == 10
    with pytest.raises(BuilderError, match="10"):
        b.generic_template([element(str(i)) for i in range(11)])


def test_generic_template_needs_an_element():
    with pytest.raises(BuilderError):
        b.generic_template([])


def test_image_aspect_ratio_is_checked():
    payload = b.generic_template([element()], image_aspect_ratio="horizontal")
    assert payload["attachment"]["payload"]["image_aspect_ratio"] == "horizontal"
    with pytest.raises(BuilderError):
        b.generic_template([element()], image_aspect_ratio="portrait")


def test_generic_template_with_14_quick_replies_raises():
    with pytest.raises(BuilderError):
        b.generic_template([element()], quick_replies=qr(14))


# -- button template ------------------------------------------------------------------------


def test_button_template_shape():
    pay = b.url_button("Pay", "https://shop.example/checkout/t/", messenger_extensions=True)
    assert b.button_template("Total: $20.00", [pay]) == {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "button",
                "text": "Total: $20.00",
                "buttons": [
                    {
                        "type": "web_url",
                        "title": "Pay",
                        "url": "https://shop.example/checkout/t/",
                        "webview_height_ratio": "tall",
                        "messenger_extensions": True,
                    }
                ],
            },
        }
    }


def test_button_template_text_640():
    payload = b.button_template("a" * 640, buttons(1))["attachment"]["payload"]
    assert payload["text"] == "a" * 640
    payload = b.button_template("a" * 641, buttons(1))["attachment"]["payload"]
    assert payload["text"] == "a" * 639 + "…"


def test_button_template_takes_1_to_3_buttons():
    assert len(b.button_template("x", buttons(3))["attachment"]["payload"]["buttons"]) == 3
    with pytest.raises(BuilderError):
        b.button_template("x", buttons(4))
    with pytest.raises(BuilderError):
        b.button_template("x", [])


def test_button_template_with_quick_replies():
    message = b.button_template("x", buttons(1), quick_replies=qr(13))
    assert len(message["quick_replies"]) == 13


# -- media ----------------------------------------------------------------------------------


def test_image_attachment():
    assert b.image("https://cdn.example/tee.jpg", quick_replies=qr(1)) == {
        "attachment": {"type": "image", "payload": {"url": "https://cdn.example/tee.jpg"}},
        "quick_replies": [{"content_type": "text", "title": "Option 0", "payload": "OPT:0"}],
    }


def test_media_template_shape():
    message = b.media_template(
        media_type="image", attachment_id="1857777774821032", buttons=buttons(1)
    )
    assert message == {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "media",
                "elements": [
                    {
                        "media_type": "image",
                        "attachment_id": "1857777774821032",
                        "buttons": buttons(1),
                    }
                ],
            },
        }
    }


def test_media_template_checks_its_options():
    with pytest.raises(BuilderError):
        b.media_template(media_type="audio", attachment_id="1")
    with pytest.raises(BuilderError):
        b.media_template(media_type="image")
    with pytest.raises(BuilderError):
        b.media_template(media_type="image", attachment_id="1", url="https://x.example")
    with pytest.raises(BuilderError):
        b.media_template(media_type="video", attachment_id="1", buttons=buttons(2))


# -- sender actions -------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["typing_on", "typing_off", "mark_seen"])
def test_sender_action_body(action):
    assert b.sender_action_body("2401234567890123", action) == {
        "recipient": {"id": "2401234567890123"},
        "sender_action": action,
    }


def test_unknown_sender_action_raises():
    with pytest.raises(BuilderError):
        b.sender_action_body("1", "typing")


# -- receipt --------------------------------------------------------------------------------


def receipt(currency: str, **overrides) -> dict:
    def m(minor: int) -> Money:
        return Money(minor, currency)

    arguments = {
        "recipient_name": "Peter Chang",
        "order_number": "A1B2-1042",
        "currency": currency,
        "payment_method": "Visa 4242",
        "order_url": "https://shop.example/orders/A1B2-1042/",
        "timestamp": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "address": {
            "street_1": "1 Hacker Way",
            "street_2": "",
            "city": "Menlo Park",
            "postal_code": "94025",
            "state": "CA",
            "country": "US",
        },
        "summary": {
            "subtotal": m(2999),
            "shipping_cost": m(500),
            "total_tax": m(0),
            "total_cost": m(3499),
        },
        "adjustments": [{"name": "Welcome discount", "amount": m(100)}],
        "elements": [
            b.receipt_element(
                "Classic tee",
                price=m(1999),
                quantity=1,
                subtitle="White, M",
                image_url="https://cdn.example/tee.jpg",
            ),
            b.receipt_element("Socks", price=m(1000), quantity=2),
        ],
    }
    arguments.update(overrides)
    return b.receipt_template(**arguments)


def test_receipt_shape_in_usd():
    assert receipt("USD") == {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "receipt",
                "recipient_name": "Peter Chang",
                "order_number": "A1B2-1042",
                "currency": "USD",
                "payment_method": "Visa 4242",
                "order_url": "https://shop.example/orders/A1B2-1042/",
                "timestamp": "1767323045",
                "elements": [
                    {
                        "title": "Classic tee",
                        "subtitle": "White, M",
                        "quantity": 1,
                        "price": 19.99,
                        "currency": "USD",
                        "image_url": "https://cdn.example/tee.jpg",
                    },
                    {"title": "Socks", "quantity": 2, "price": 10, "currency": "USD"},
                ],
                "address": {
                    "street_1": "1 Hacker Way",
                    "street_2": "",
                    "city": "Menlo Park",
                    "postal_code": "94025",
                    "state": "CA",
                    "country": "US",
                },
                "summary": {
                    "subtotal": 29.99,
                    "shipping_cost": 5,
                    "total_tax": 0,
                    "total_cost": 34.99,
                },
                "adjustments": [{"name": "Welcome discount", "amount": 1}],
            },
        }
    }


def test_usd_amounts_serialize_exactly():
    body = json.dumps(receipt("USD"))
    assert '"price": 19.99,' in body
    assert '"total_cost": 34.99}' in body


def test_jpy_amounts_have_no_decimals():
    payload = receipt("JPY")["attachment"]["payload"]
    assert payload["elements"][0]["price"] == 1999
    assert isinstance(payload["elements"][0]["price"], int)
    assert payload["summary"]["total_cost"] == 3499
    assert '"price": 1999,' in json.dumps(payload)


def test_kwd_amounts_keep_three_decimals_exactly():
    message = receipt(
        "KWD",
        summary={"total_cost": Money(12345, "KWD")},
        elements=[b.receipt_element("Tee", price=Money(12345, "KWD"))],
        adjustments=[],
    )
    body = json.dumps(message)
    assert '"price": 12.345,' in body
    assert '"total_cost": 12.345}' in body
    assert Decimal(repr(json.loads(body)["attachment"]["payload"]["summary"]["total_cost"])) == (
        Decimal("12.345")
    )


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1999, "USD", "19.99"),
        (10, "USD", "0.1"),
        (1, "USD", "0.01"),
        (12345, "KWD", "12.345"),
        (1, "KWD", "0.001"),
        (999999999999999, "USD", "9999999999999.99"),
        (1500, "JPY", "1500"),
        (1000, "USD", "10"),
        (-250, "USD", "-2.5"),
    ],
)
def test_money_json_reads_back_as_the_exact_decimal(minor, currency, text):
    value = b.money_json(Money(minor, currency))
    assert json.dumps(value) == text
    assert Decimal(json.dumps(value)) == Money(minor, currency).to_major()


def test_money_json_refuses_amounts_a_float_cannot_carry():
    with pytest.raises(BuilderError):
        b.money_json(Money(123456789012345678, "USD"))  # 18 significant digits


def test_receipt_refuses_another_currency():
    with pytest.raises(BuilderError, match="EUR"):
        receipt("USD", summary={"total_cost": Money(100, "EUR")})


@pytest.mark.parametrize("amount", [Decimal("1.00"), 1.0, 100, "1.00"])
def test_receipt_amounts_must_be_money(amount):
    with pytest.raises(BuilderError):
        receipt("USD", summary={"total_cost": amount})


def test_receipt_needs_a_total_and_known_summary_fields():
    with pytest.raises(BuilderError):
        receipt("USD", summary={"subtotal": Money(1, "USD")})
    with pytest.raises(BuilderError):
        receipt("USD", summary={"total_cost": Money(1, "USD"), "discount": Money(1, "USD")})


def test_minimal_receipt_omits_optional_fields():
    payload = receipt(
        "USD",
        order_url=None,
        timestamp=None,
        address=None,
        adjustments=(),
        elements=(),
        summary={"total_cost": Money(100, "USD"), "total_tax": None},
    )["attachment"]["payload"]
    assert payload == {
        "template_type": "receipt",
        "recipient_name": "Peter Chang",
        "order_number": "A1B2-1042",
        "currency": "USD",
        "payment_method": "Visa 4242",
        "summary": {"total_cost": 1},
    }


def test_receipt_timestamp_is_a_string_of_seconds():
    assert receipt("USD", timestamp=1428444852)["attachment"]["payload"]["timestamp"] == (
        "1428444852"
    )
    with pytest.raises(BuilderError):
        receipt("USD", timestamp=datetime(2026, 1, 1))  # naive


def test_receipt_address_without_state_or_postal_code():
    address = {"street_1": "Block 3, Street 12", "city": "Salmiya", "country": "KW"}
    payload = receipt(
        "KWD", address=address, summary={"total_cost": Money(1, "KWD")}, adjustments=[], elements=[]
    )["attachment"]["payload"]
    assert payload["address"] == {
        "street_1": "Block 3, Street 12",
        "street_2": "",
        "city": "Salmiya",
        "postal_code": "",
        "state": "",
        "country": "KW",
    }
    with pytest.raises(BuilderError):
        receipt("USD", address={"city": "Menlo Park", "country": "US"})


def test_receipt_element_titles_are_truncated_and_counted():
    long_title = b.receipt_element("t" * 81, price=Money(1, "USD"))
    payload = receipt("USD", elements=[long_title])["attachment"]["payload"]
    assert payload["elements"][0]["title"] == "t" * 79 + "…"
    with pytest.raises(BuilderError):
        receipt("USD", elements=[b.receipt_element("t", price=Money(1, "USD"))] * 101)


def test_receipt_output_is_plain_json():
    message = receipt(
        "KWD", summary={"total_cost": Money(12345, "KWD")}, adjustments=[], elements=[]
    )
    assert json.loads(json.dumps(message, allow_nan=False)) == message
