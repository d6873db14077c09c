"""Stripe's amounts as a shopper reads them. Pure.

Stripe's ``amount`` is in the currency's smallest unit *as Stripe counts it*: zero-decimal
currencies (JPY, KRW...) in whole units, the three-decimal ones (BHD, KWD...) in thousandths,
ISK in hundredths (a compatibility rule of Stripe's), every other currency in hundredths.
"""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency

ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])


def stripe_exponent(currency: str) -> int:
    code = currency.upper()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def amount_format(amount: int, currency: str, *, language: str = "en") -> str:
    """``1999, "usd"`` -> ``"$19.99"`` (``"US$ 19.99"``-like in Arabic, by CLDR)."""
    code = currency.upper()
    value = Decimal(amount).scaleb(-stripe_exponent(code))
    return format_currency(value, code, locale=language)
