"""The stand-in's pure parts: Stripe's form encoding, the test cards, amounts as shown."""

from __future__ import annotations

from datetime import date

import pytest

from sandbox.stripe.amounts import amount_format
from sandbox.stripe.cards import CardInvalid, card_check
from sandbox.stripe.encoding import form_decode, request_fingerprint

TODAY = date(2026, 11, 25)


def test_form_decode_builds_nested_dicts_and_lists_like_stripe_sends_them():
    pairs = [
        ("line_items[0][price_data][unit_amount]", "1000"),
        ("line_items[0][quantity]", "2"),
        ("line_items[1][price_data][product_data][name]", "Scarf"),
        ("metadata[order_id]", "7"),
        ("expand[0]", "payment_intent"),
        ("expand[]", "payment_intent.latest_charge"),
        ("mode", "payment"),
    ]

    assert form_decode(pairs) == {
        "line_items": [
            {"price_data": {"unit_amount": "1000"}, "quantity": "2"},
            {"price_data": {"product_data": {"name": "Scarf"}}},
        ],
        "metadata": {"order_id": "7"},
        "expand": ["payment_intent", "payment_intent.latest_charge"],
        "mode": "payment",
    }


def test_fingerprint_ignores_field_order_but_not_values():
    one = request_fingerprint(method="POST", path="refunds", params={"a": "1", "b": "2"})
    same = request_fingerprint(method="POST", path="refunds", params={"b": "2", "a": "1"})
    other = request_fingerprint(method="POST", path="refunds", params={"a": "1", "b": "3"})

    assert one == same != other


@pytest.mark.parametrize(
    ("number", "decline_code", "message"),
    [
        ("4242 4242 4242 4242", None, None),
        ("5555555555554444", None, None),
        ("4000 0000 0000 0002", "generic_decline", "Your card was declined."),
        ("4000 0000 0000 9995", "insufficient_funds", "Your card has insufficient funds."),
    ],
)
def test_test_cards(number, decline_code, message):
    card = card_check(number=number, expiry="12 / 34", cvc="123", today=TODAY)

    assert card.last4 == number.replace(" ", "")[-4:]
    if decline_code is None:
        assert card.decline is None
    else:
        assert card.decline.code == "card_declined"
        assert card.decline.decline_code == decline_code
        assert str(card.decline.message) == message


def test_a_real_card_number_is_declined_in_test_mode():
    card = card_check(number="4012888888881881", expiry="1/30", cvc="123", today=TODAY)

    assert card.decline is not None and card.decline.decline_code == "test_mode_live_card"


@pytest.mark.parametrize(
    ("number", "expiry", "cvc", "field", "message"),
    [
        ("4242", "12/34", "123", "card-number", "Your card number is incomplete."),
        ("4242 4242 4242 4241", "12/34", "123", "card-number", "Your card number is invalid."),
        ("4242424242424242", "12", "123", "card-expiry", "incomplete"),
        ("4242424242424242", "13/34", "123", "card-expiry", "invalid"),
        ("4242424242424242", "10/26", "123", "card-expiry", "in the past"),
        ("4242424242424242", "12/34", "12", "card-cvc", "security code is incomplete"),
    ],
)
def test_incomplete_or_invalid_card_details_are_refused(number, expiry, cvc, field, message):
    with pytest.raises(CardInvalid) as caught:
        card_check(number=number, expiry=expiry, cvc=cvc, today=TODAY)

    assert caught.value.field == field
    assert message in caught.value.message


def test_this_month_is_still_a_valid_expiry():
    assert card_check(number="4242424242424242", expiry="11/26", cvc="123", today=TODAY)


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1999, "usd", "$19.99"),
        (1999, "jpy", "¥1,999"),
        (12340, "kwd", "KWD12.340"),
    ],
)
def test_amounts_are_shown_by_stripe_exponent(amount, currency, shown):
    assert amount_format(amount, currency).replace("\xa0", "") == shown
