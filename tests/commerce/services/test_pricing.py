"""``pricing.price_lines`` with exact figures: rounding, vouchers, shipping and tax.

``price_lines`` is pure (no database, no clock), so these tests build unsaved model instances
and need no database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commerce.exceptions import CartError, ShippingError, VoucherError
from commerce.models import Merchant, ShippingMethod, Variant, Voucher
from commerce.services.pricing import PriceBreakdown, price_lines
from core.money import Money

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)


def shop(*, tax_bp: int = 0, inclusive: bool = False, currency: str = "USD") -> Merchant:
    return Merchant(
        name="Shop",
        slug="shop",
        default_currency=currency,
        tax_rate_bp=tax_bp,
        prices_include_tax=inclusive,
    )


def item(price_minor: int, currency: str = "USD") -> Variant:
    return Variant(name="M", sku=f"SKU-{price_minor}", price_minor=price_minor, currency=currency)


def percent_off(percent_bp: int, **fields) -> Voucher:
    return Voucher(code="SAVE", kind=Voucher.Kind.PERCENTAGE, percent_bp=percent_bp, **fields)


def amount_off(amount_minor: int, currency: str = "USD", **fields) -> Voucher:
    return Voucher(
        code="MINUS",
        kind=Voucher.Kind.FIXED,
        amount_minor=amount_minor,
        currency=currency,
        **fields,
    )


def method(price_minor: int = 500, currency: str = "USD", **fields) -> ShippingMethod:
    return ShippingMethod(name="Standard", price_minor=price_minor, currency=currency, **fields)


def price(
    *lines: tuple[Variant, int],
    merchant: Merchant | None = None,
    voucher: Voucher | None = None,
    shipping_method: ShippingMethod | None = None,
    country: str | None = None,
    now: datetime = NOW,
) -> PriceBreakdown:
    breakdown = price_lines(
        merchant=merchant or shop(),
        lines=list(lines),
        voucher=voucher,
        shipping_method=shipping_method,
        country=country,
        now=now,
    )
    assert_invariants(breakdown)
    return breakdown


def assert_invariants(b: PriceBreakdown) -> None:
    """total = subtotal − discount + shipping (+ tax when exclusive), in one currency."""
    amounts = [b.subtotal, b.discount, b.shipping, b.tax, b.total]
    assert {amount.currency for amount in amounts} == {b.currency}
    assert all(isinstance(amount.amount_minor, int) for amount in amounts)
    assert b.subtotal == Money.sum((line.total for line in b.lines), b.currency)
    for line in b.lines:
        assert line.total == line.unit_price * line.quantity
    assert Money.zero(b.currency) <= b.discount <= b.subtotal
    extra_tax = Money.zero(b.currency) if b.prices_include_tax else b.tax
    assert b.total == b.subtotal - b.discount + b.shipping + extra_tax


# -- subtotal and lines ----------------------------------------------------------------------


def test_subtotal_is_unit_price_times_quantity_from_the_variants():
    b = price((item(1250), 3), (item(199), 2))
    assert [line.total.amount_minor for line in b.lines] == [3750, 398]
    assert b.subtotal == Money(4148, "USD")
    assert b.total == Money(4148, "USD")
    assert (b.discount, b.shipping, b.tax) == (Money(0, "USD"),) * 3


def test_empty_cart_is_refused():
    with pytest.raises(CartError) as error:
        price()
    assert error.value.code == "cart_empty"


def test_mixed_currencies_are_refused():
    with pytest.raises(CartError) as error:
        price((item(1000, "USD"), 1), (item(1000, "EUR"), 1))
    assert error.value.code == "cart_mixed_currencies"


# -- vouchers --------------------------------------------------------------------------------


def test_percentage_voucher_rounds_half_up_to_the_cent():
    # 15% of 999 cents is 149.85 cents.
    b = price((item(999), 1), voucher=percent_off(1500))
    assert b.discount == Money(150, "USD")
    assert b.total == Money(849, "USD")


def test_percentage_voucher_exact_half_rounds_up_not_to_even():
    # 10% of 1005 is 100.5: half up gives 101 (banker's rounding would give 100).
    b = price((item(1005), 1), voucher=percent_off(1000))
    assert b.discount == Money(101, "USD")
    # 10% of 1015 is 101.5: 102 either way, shown for contrast.
    assert price((item(1015), 1), voucher=percent_off(1000)).discount == Money(102, "USD")


def test_percentage_below_half_rounds_down():
    # 15% of 1001 is 150.15.
    assert price((item(1001), 1), voucher=percent_off(1500)).discount == Money(150, "USD")


def test_hundred_percent_voucher_makes_the_goods_free():
    b = price((item(2500), 2), voucher=percent_off(10000))
    assert b.discount == Money(5000, "USD")
    assert b.total == Money(0, "USD")


def test_fixed_voucher_is_taken_off_the_subtotal():
    b = price((item(3000), 1), voucher=amount_off(700))
    assert b.discount == Money(700, "USD")
    assert b.total == Money(2300, "USD")


def test_fixed_voucher_is_capped_at_the_subtotal():
    b = price((item(3000), 1), voucher=amount_off(5000), shipping_method=method(500))
    assert b.discount == Money(3000, "USD")
    # The goods are free; shipping is still charged.
    assert b.shipping == Money(500, "USD")
    assert b.total == Money(500, "USD")


def test_fixed_voucher_in_another_currency_is_refused():
    with pytest.raises(VoucherError) as error:
        price((item(3000), 1), voucher=amount_off(500, "EUR"))
    assert error.value.code == "voucher_currency"


def test_minimum_spend_is_checked_against_the_subtotal_before_discount():
    voucher = percent_off(1000, min_spend_minor=5000)
    b = price((item(2500), 2), voucher=voucher)
    assert b.discount == Money(500, "USD")  # 5000 reaches the minimum, although 4500 is paid
    with pytest.raises(VoucherError) as error:
        price((item(4999), 1), voucher=voucher)
    assert error.value.code == "voucher_min_spend"
    assert error.value.extra == {"min_spend_minor": 5000}
    assert "50.00 USD" in error.value.message


def test_validity_window_starts_inclusive():
    voucher = percent_off(1000, valid_from=NOW)
    assert price((item(1000), 1), voucher=voucher, now=NOW).discount == Money(100, "USD")
    with pytest.raises(VoucherError) as error:
        price((item(1000), 1), voucher=voucher, now=NOW - ONE_MICROSECOND)
    assert error.value.code == "voucher_not_started"


def test_validity_window_ends_exclusive():
    voucher = percent_off(1000, valid_until=NOW)
    before_end = price((item(1000), 1), voucher=voucher, now=NOW - ONE_MICROSECOND)
    assert before_end.discount == Money(100, "USD")
    with pytest.raises(VoucherError) as error:
        price((item(1000), 1), voucher=voucher, now=NOW)
    assert error.value.code == "voucher_expired"


def test_usage_limit_refuses_once_reached():
    assert price(
        (item(1000), 1), voucher=percent_off(1000, usage_limit=3, times_used=2)
    ).discount == Money(100, "USD")
    with pytest.raises(VoucherError) as error:
        price((item(1000), 1), voucher=percent_off(1000, usage_limit=3, times_used=3))
    assert error.value.code == "voucher_used_up"


def test_inactive_voucher_is_refused():
    with pytest.raises(VoucherError) as error:
        price((item(1000), 1), voucher=percent_off(1000, is_active=False))
    assert error.value.code == "voucher_inactive"


def test_voucher_applies_once_per_order_not_per_line():
    # 700 off an order of three lines is 700 in all, not 700 a line.
    b = price((item(1000), 1), (item(1000), 1), (item(1000), 1), voucher=amount_off(700))
    assert b.discount == Money(700, "USD")
    assert b.total == Money(2300, "USD")


# -- shipping --------------------------------------------------------------------------------


def test_shipping_is_charged_below_the_free_threshold_and_free_exactly_at_it():
    standard = method(500, free_over_minor=5000)
    assert price((item(4999), 1), shipping_method=standard).shipping == Money(500, "USD")
    at_threshold = price((item(5000), 1), shipping_method=standard)
    assert at_threshold.shipping == Money(0, "USD")
    assert at_threshold.total == Money(5000, "USD")


def test_free_shipping_threshold_uses_the_discounted_subtotal():
    standard = method(500, free_over_minor=5000)
    # 5500 − 10% (550) = 4950: under the threshold although the subtotal is over it.
    under = price((item(5500), 1), voucher=percent_off(1000), shipping_method=standard)
    assert (under.discount, under.shipping) == (Money(550, "USD"), Money(500, "USD"))
    assert under.total == Money(5450, "USD")
    # 5556 − 10% (555.6 -> 556) = 5000: exactly at the threshold.
    at = price((item(5556), 1), voucher=percent_off(1000), shipping_method=standard)
    assert (at.discount, at.shipping) == (Money(556, "USD"), Money(0, "USD"))
    assert at.total == Money(5000, "USD")


def test_shipping_country_restriction():
    gulf = method(500, countries=["KW", "AE"])
    assert price((item(1000), 1), shipping_method=gulf, country="kw").shipping == Money(500, "USD")
    with pytest.raises(ShippingError) as error:
        price((item(1000), 1), shipping_method=gulf, country="US")
    assert error.value.code == "shipping_country"
    # No country restriction: ships anywhere.
    assert price((item(1000), 1), shipping_method=method(300), country="US").shipping == Money(
        300, "USD"
    )


def test_inactive_shipping_method_is_refused():
    with pytest.raises(ShippingError) as error:
        price((item(1000), 1), shipping_method=method(500, is_active=False))
    assert error.value.code == "shipping_inactive"


def test_shipping_method_in_another_currency_is_refused():
    with pytest.raises(ShippingError):
        price((item(1000), 1), shipping_method=method(500, "EUR"))


# -- tax -------------------------------------------------------------------------------------


def test_exclusive_tax_on_goods_and_shipping_rounds_half_up_once():
    # 5% of (1999 + 500) = 124.95 -> 125.
    b = price((item(1999), 1), merchant=shop(tax_bp=500), shipping_method=method(500))
    assert (b.subtotal, b.shipping, b.tax) == (
        Money(1999, "USD"),
        Money(500, "USD"),
        Money(125, "USD"),
    )
    assert b.total == Money(2624, "USD")


def test_exclusive_tax_is_rounded_once_per_order_not_per_line():
    # Per line, 5% of 1010 is 50.5 -> 51, twice 102. Once on 2020: exactly 101.
    b = price((item(1010), 1), (item(1010), 1), merchant=shop(tax_bp=500))
    assert b.tax == Money(101, "USD")
    assert b.total == Money(2121, "USD")


def test_exclusive_tax_applies_after_the_discount():
    # 10000 − 10% = 9000, + 500 shipping = 9500; 5% of that is 475.
    b = price(
        (item(10000), 1),
        merchant=shop(tax_bp=500),
        voucher=percent_off(1000),
        shipping_method=method(500),
    )
    assert (b.discount, b.shipping, b.tax, b.total) == (
        Money(1000, "USD"),
        Money(500, "USD"),
        Money(475, "USD"),
        Money(9975, "USD"),
    )


def test_inclusive_tax_is_the_tax_part_of_the_total():
    # 10500 at 5% inclusive: 10500 × 5 / 105 = 500 exactly; the total stays 10500.
    b = price((item(10500), 1), merchant=shop(tax_bp=500, inclusive=True))
    assert (b.tax, b.total) == (Money(500, "USD"), Money(10500, "USD"))


def test_inclusive_tax_rounds_half_up():
    # 1000 at 15% inclusive: 1000 × 15 / 115 = 130.43 -> 130.
    b = price((item(1000), 1), merchant=shop(tax_bp=1500, inclusive=True))
    assert (b.tax, b.total) == (Money(130, "USD"), Money(1000, "USD"))
    # 2300 at 15% inclusive: 300 exactly; 2301 -> 300.13 -> 300; 2304 -> 300.52 -> 301.
    taxes = [
        price((item(amount), 1), merchant=shop(tax_bp=1500, inclusive=True)).tax.amount_minor
        for amount in (2300, 2301, 2304)
    ]
    assert taxes == [300, 300, 301]


def test_inclusive_tax_includes_shipping_and_discount():
    # (2000 − 200 + 300) = 2100 at 5% inclusive: 100.
    b = price(
        (item(2000), 1),
        merchant=shop(tax_bp=500, inclusive=True),
        voucher=percent_off(1000),
        shipping_method=method(300),
    )
    assert (b.tax, b.total) == (Money(100, "USD"), Money(2100, "USD"))


def test_zero_rate_means_no_tax():
    assert price((item(1999), 1), merchant=shop(tax_bp=0)).tax == Money(0, "USD")


def test_no_tax_on_a_free_order():
    b = price((item(1000), 1), merchant=shop(tax_bp=500), voucher=percent_off(10000))
    assert (b.tax, b.total) == (Money(0, "USD"), Money(0, "USD"))


# -- currencies with other exponents ---------------------------------------------------------


def test_jpy_has_no_minor_digits():
    jpy = shop(tax_bp=1000, currency="JPY")
    # 10% of ¥1234 = 123.4 -> ¥123.
    b = price((item(1234, "JPY"), 1), merchant=jpy)
    assert (b.tax, b.total) == (Money(123, "JPY"), Money(1357, "JPY"))
    # A 15% voucher on ¥1234 = 185.1 -> ¥185; 10% tax on 1049 = 104.9 -> ¥105.
    b = price((item(1234, "JPY"), 1), merchant=jpy, voucher=percent_off(1500))
    assert (b.discount, b.tax, b.total) == (
        Money(185, "JPY"),
        Money(105, "JPY"),
        Money(1154, "JPY"),
    )


def test_kwd_has_three_minor_digits():
    # 5% of 12.345 KWD = 617.25 fils -> 617.
    b = price((item(12345, "KWD"), 1), merchant=shop(tax_bp=500, currency="KWD"))
    assert (b.tax, b.total) == (Money(617, "KWD"), Money(12962, "KWD"))
    assert str(b.total) == "12.962 KWD"
    # The same rate as a voucher.
    discounted = price((item(12345, "KWD"), 1), voucher=percent_off(500))
    assert discounted.discount == Money(617, "KWD")


# -- invariants over many inputs -------------------------------------------------------------


@given(
    prices=st.lists(st.integers(0, 10**7), min_size=1, max_size=6),
    quantity=st.integers(1, 999),
    percent_bp=st.none() | st.integers(1, 10000),
    shipping_minor=st.none() | st.integers(0, 5000),
    free_over=st.none() | st.integers(0, 10**8),
    tax_bp=st.integers(0, 10000),
    inclusive=st.booleans(),
)
def test_totals_hold_together_for_any_input(
    prices, quantity, percent_bp, shipping_minor, free_over, tax_bp, inclusive
):
    b = price(
        *[(item(amount), quantity) for amount in prices],
        merchant=shop(tax_bp=tax_bp, inclusive=inclusive),
        voucher=percent_off(percent_bp) if percent_bp else None,
        shipping_method=None
        if shipping_minor is None
        else method(shipping_minor, free_over_minor=free_over),
    )
    base = b.subtotal - b.discount + b.shipping
    if tax_bp == 0:
        assert not b.tax
    elif inclusive:
        # The tax part of the base, within half a minor unit of base × rate / (1 + rate).
        assert abs(2 * (b.tax.amount_minor * (10000 + tax_bp) - base.amount_minor * tax_bp)) <= (
            10000 + tax_bp
        )
    else:
        assert abs(2 * (b.tax.amount_minor * 10000 - base.amount_minor * tax_bp)) <= 10000
