"""The hosted page's card form: validation and Stripe's test cards. Pure: no database, no clock
(``today`` is passed in).

Test cards (any future expiry, any CVC; spaces allowed):

=====================  ==========================================================
4242 4242 4242 4242    Visa, succeeds
5555 5555 5555 4444    Mastercard, succeeds
4000 0000 0000 0002    declined: ``card_declined`` / ``generic_decline``
4000 0000 0000 9995    declined: ``card_declined`` / ``insufficient_funds``
4000 0000 0000 0069    declined: ``expired_card``
4000 0000 0000 0127    declined: ``incorrect_cvc``
=====================  ==========================================================

Any other number that passes the Luhn check is declined the way Stripe's test mode declines a
real card number (``test_mode_live_card``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Decline:
    """Why the issuer said no: Stripe's ``code``, ``decline_code`` and shopper-facing message."""

    code: str
    decline_code: str
    message: str


@dataclass(frozen=True)
class Card:
    """A card that passed the form's checks; ``decline`` is None when the payment succeeds."""

    brand: str
    last4: str
    exp_month: int
    exp_year: int
    funding: str
    decline: Decline | None


class CardInvalid(ValueError):
    """The form itself is wrong (what Stripe's page says under the field, before paying)."""

    def __init__(self, message: str, *, field: str):
        super().__init__(message)
        self.message = str(message)
        self.field = field


_DECLINED = Decline("card_declined", "generic_decline", _("Your card was declined."))
TEST_CARDS: dict[str, Decline | None] = {
    "4242424242424242": None,
    "5555555555554444": None,
    "4000000000000002": _DECLINED,
    "4000000000009995": Decline(
        "card_declined", "insufficient_funds", _("Your card has insufficient funds.")
    ),
    "4000000000000069": Decline("expired_card", "expired_card", _("Your card has expired.")),
    "4000000000000127": Decline(
        "incorrect_cvc", "incorrect_cvc", _("Your card's security code is incorrect.")
    ),
}
_LIVE_CARD = Decline(
    "card_declined",
    "test_mode_live_card",
    _("Your card was declined. This is a test page: use a test card such as 4242 4242 4242 4242."),
)
_EXPIRY = re.compile(r"^\s*(\d{1,2})\s*/?\s*(\d{2}|\d{4})\s*$")


def luhn_ok(number: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def card_brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"34", "37"}:
        return "amex"
    prefix = int(number[:4] or 0)
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= prefix <= 2720:
        return "mastercard"
    return "unknown"


def card_check(*, number: str, expiry: str, cvc: str, today: date) -> Card:
    """The card as entered -> :class:`Card` (with its decline, if the test card has one).

    :raises CardInvalid: incomplete or invalid number, expiry or security code.
    """
    digits = re.sub(r"[\s-]", "", number or "")
    if not digits.isdigit() or len(digits) < 13:
        raise CardInvalid(_("Your card number is incomplete."), field="card-number")
    if len(digits) > 19 or not luhn_ok(digits):
        raise CardInvalid(_("Your card number is invalid."), field="card-number")
    match = _EXPIRY.match(expiry or "")
    if not match:
        raise CardInvalid(_("Your card's expiration date is incomplete."), field="card-expiry")
    month, year = int(match.group(1)), int(match.group(2))
    if year < 100:
        year += 2000
    if not 1 <= month <= 12:
        raise CardInvalid(_("Your card's expiration date is invalid."), field="card-expiry")
    if (year, month) < (today.year, today.month):
        raise CardInvalid(_("Your card's expiration date is in the past."), field="card-expiry")
    brand = card_brand(digits)
    wanted = 4 if brand == "amex" else 3
    if not (cvc or "").strip().isdigit() or len(cvc.strip()) != wanted:
        raise CardInvalid(_("Your card's security code is incomplete."), field="card-cvc")
    decline = TEST_CARDS.get(digits, _LIVE_CARD)
    return Card(
        brand=brand,
        last4=digits[-4:],
        exp_month=month,
        exp_year=year,
        funding="credit",
        decline=decline,
    )
