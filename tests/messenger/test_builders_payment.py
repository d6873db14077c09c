"""The legacy v1.2 buy button (``type: payment``): its exact shape and what the builder refuses."""

from __future__ import annotations

import json

import pytest

from core.money import Money
from messenger import builders as b
from messenger.builders import BuilderError


def summary(**changes) -> dict:
    base = {
        "currency": "USD",
        "payment_type": "FIXED_AMOUNT",
        "is_test_payment": True,
        "merchant_name": "Peter's Apparel",
        "requested_user_info": [
            "shipping_address",
            "contact_name",
            "contact_phone",
            "contact_email",
        ],
        "price_list": [
            {"label": "Subtotal", "amount": "29.99"},
            {"label": "Taxes", "amount": "2.47"},
        ],
    }
    base.update(changes)
    return base


def test_payment_button_has_the_reference_shape():
    button = b.payment_button(
        title="buy", payload="BUYBTN:variant=1:sig", payment_summary=summary()
    )

    assert button == {
        "type": "payment",
        "title": "buy",
        "payload": "BUYBTN:variant=1:sig",
        "payment_summary": {
            "currency": "USD",
            "payment_type": "FIXED_AMOUNT",
            "is_test_payment": True,
            "merchant_name": "Peter's Apparel",
            "requested_user_info": [
                "shipping_address",
                "contact_name",
                "contact_phone",
                "contact_email",
            ],
            "price_list": [
                {"label": "Subtotal", "amount": "29.99"},
                {"label": "Taxes", "amount": "2.47"},
            ],
        },
    }
    json.dumps(button)  # plain JSON, ready for the outbox


def test_title_defaults_to_buy_as_the_reference_requires():
    assert b.payment_button(payload="P", payment_summary=summary())["title"] == "buy"


def test_money_amounts_become_exact_decimal_strings():
    prices = [
        {"label": "Dishdasha", "amount": Money(1250, "USD")},
        {"label": "Oud", "amount": Money(12345, "KWD")},
        {"label": "Tea", "amount": Money(1500, "JPY")},
        {"label": "Free", "amount": Money(0, "USD")},
    ]
    button = b.payment_button(payload="P", payment_summary=summary(price_list=prices))

    assert [p["amount"] for p in button["payment_summary"]["price_list"]] == [
        "12.50",
        "12.345",
        "1500",
        "0.00",
    ]


def test_is_test_payment_is_optional():
    plain = summary()
    del plain["is_test_payment"]
    button = b.payment_button(payload="P", payment_summary=plain)
    assert "is_test_payment" not in button["payment_summary"]


def test_arabic_labels_and_merchant_name_pass_through():
    button = b.payment_button(
        payload="P",
        payment_summary=summary(
            merchant_name="سوق ليلى", price_list=[{"label": "قميص كتان", "amount": "7.500"}]
        ),
    )
    assert button["payment_summary"]["merchant_name"] == "سوق ليلى"
    assert button["payment_summary"]["price_list"] == [{"label": "قميص كتان", "amount": "7.500"}]


@pytest.mark.parametrize(
    "changes",
    [
        {"currency": "usd"},
        {"currency": "DOLLARS"},
        {"payment_type": "WHATEVER_AMOUNT"},
        {"is_test_payment": "yes"},
        {"merchant_name": ""},
        {"requested_user_info": ["shipping_address", "favourite_colour"]},
        {"requested_user_info": ["contact_name", "contact_name"]},
        {"requested_user_info": "contact_name"},
        {"price_list": []},
        {"price_list": [{"label": "", "amount": "1.00"}]},
        {"price_list": [{"label": "Shirt", "amount": 12.5}]},
        {"price_list": [{"label": "Shirt", "amount": "12,50"}]},
        {"price_list": [{"label": "Shirt", "amount": "-1.00"}]},
        {"price_list": [{"label": "Shirt", "amount": "12.50\n"}]},
        {"price_list": [{"label": "Shirt", "amount": Money(-100, "USD")}]},
    ],
)
def test_a_summary_the_platform_would_reject_is_refused(changes):
    with pytest.raises(BuilderError):
        b.payment_button(payload="P", payment_summary=summary(**changes))


def test_payload_is_required_and_limited():
    with pytest.raises(BuilderError):
        b.payment_button(payload="", payment_summary=summary())
    with pytest.raises(BuilderError):
        b.payment_button(payload="P" * 1001, payment_summary=summary())


def test_the_payment_button_must_come_first_on_its_card():
    pay = b.payment_button(payload="P", payment_summary=summary())
    details = b.url_button("Details", "https://shop.example/p/1")

    element = b.generic_element("Linen shirt", subtitle="$29.99", buttons=[pay, details])
    assert [button["type"] for button in element["buttons"]] == ["payment", "web_url"]

    with pytest.raises(BuilderError):
        b.generic_element("Linen shirt", subtitle="$29.99", buttons=[details, pay])
