"""Money: exact minor-unit arithmetic, rounding, allocation and Babel formatting.

Plain unit tests: nothing here touches the database.
"""

from __future__ import annotations

import dataclasses
from decimal import (
    ROUND_05UP,
    ROUND_CEILING,
    ROUND_DOWN,
    ROUND_FLOOR,
    ROUND_HALF_DOWN,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    ROUND_UP,
    Decimal,
    localcontext,
)

import pytest

from core.currencies import UnknownCurrencyError
from core.money import CurrencyMismatchError, Money

ALL_ROUNDING_MODES = [
    ROUND_HALF_UP,
    ROUND_HALF_EVEN,
    ROUND_HALF_DOWN,
    ROUND_DOWN,
    ROUND_UP,
    ROUND_FLOOR,
    ROUND_CEILING,
    ROUND_05UP,
]

RLM = "\u200f"  # RIGHT-TO-LEFT MARK, which CLDR puts around Arabic currency amounts
NBSP = "\xa0"
ARABIC_INDIC_DIGITS = "".join(chr(0x0660 + i) for i in range(10))
ASCII_DIGITS = "0123456789"


def usd(minor: int) -> Money:
    return Money(minor, "USD")


# -- construction ------------------------------------------------------------------------------


def test_currency_code_is_normalized_to_upper_case() -> None:
    assert Money(100, " usd ").currency == "USD"
    assert Money(100, "usd") == Money(100, "USD")


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(UnknownCurrencyError, match="XYZ"):
        Money(100, "XYZ")


def test_non_string_currency_is_refused() -> None:
    with pytest.raises(TypeError, match="ISO 4217"):
        Money(100, 840)  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [10.5, 10.0, True, False, Decimal("10"), "10", None])
def test_non_int_amount_is_refused(amount: object) -> None:
    with pytest.raises(TypeError, match="must be an int"):
        Money(amount, "USD")  # type: ignore[arg-type]


def test_money_is_immutable_and_hashable() -> None:
    price = usd(1050)
    with pytest.raises(dataclasses.FrozenInstanceError):
        price.amount_minor = 1  # type: ignore[misc]
    assert {usd(1050), usd(1050), Money(1050, "EUR")} == {usd(1050), Money(1050, "EUR")}


def test_equal_amounts_in_different_currencies_are_not_equal() -> None:
    assert Money(100, "USD") != Money(100, "EUR")


def test_zero_is_zero_in_the_given_currency() -> None:
    assert Money.zero("jpy") == Money(0, "JPY")


# -- from_major / to_major ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [
        ("12.50", "USD", 1250),
        ("12.5", "USD", 1250),
        (Decimal("12.50"), "USD", 1250),
        (12, "USD", 1200),
        (" 3.10 ", "USD", 310),
        ("-0.01", "USD", -1),
        ("0", "USD", 0),
        ("12.500", "USD", 1250),  # trailing zeros lose nothing
        ("500", "JPY", 500),
        (500, "JPY", 500),
        (Decimal("1E+2"), "JPY", 100),
        ("1.234", "KWD", 1234),
        ("-1.234", "KWD", -1234),
        ("0.0001", "CLF", 1),
        # Beyond the 28 digits of the default decimal context: still exact.
        ("12345678901234567890123456789.99", "USD", 1234567890123456789012345678999),
    ],
)
def test_from_major_converts_exactly(value: Decimal | int | str, currency: str, minor: int) -> None:
    assert Money.from_major(value, currency) == Money(minor, currency)


@pytest.mark.parametrize(
    ("value", "currency"),
    [("1.005", "USD"), (Decimal("0.001"), "USD"), ("1.5", "JPY"), ("1.2345", "KWD")],
)
def test_from_major_refuses_to_round_extra_decimals(value: Decimal | str, currency: str) -> None:
    with pytest.raises(ValueError, match="more decimal places"):
        Money.from_major(value, currency)


@pytest.mark.parametrize("value", [12.5, 12.0, True])
def test_from_major_refuses_floats_and_bools(value: object) -> None:
    with pytest.raises(TypeError):
        Money.from_major(value, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", ["abc", "", "12,50", "NaN", "Infinity", Decimal("-Infinity")])
def test_from_major_refuses_non_numbers(value: Decimal | str) -> None:
    with pytest.raises(ValueError):
        Money.from_major(value, "USD")


def test_from_major_refuses_unknown_currency() -> None:
    with pytest.raises(UnknownCurrencyError):
        Money.from_major("1.00", "ABC")


@pytest.mark.parametrize(
    ("money", "exponent", "major"),
    [
        (Money(1050, "USD"), 2, "10.50"),
        (Money(5, "USD"), 2, "0.05"),
        (Money(-5, "USD"), 2, "-0.05"),
        (Money(0, "USD"), 2, "0.00"),
        (Money(500, "JPY"), 0, "500"),
        (Money(1234, "KWD"), 3, "1.234"),
        (Money(1000, "KWD"), 3, "1.000"),
        (Money(1, "CLF"), 4, "0.0001"),
    ],
)
def test_to_major_has_exactly_the_currency_exponent_places(
    money: Money, exponent: int, major: str
) -> None:
    assert money.exponent == exponent
    result = money.to_major()
    assert isinstance(result, Decimal)
    assert str(result) == major  # same digits *and* same number of places
    assert result.as_tuple().exponent == -exponent


@pytest.mark.parametrize("currency", ["USD", "JPY", "KWD"])
@pytest.mark.parametrize("minor", [0, 1, 7, 99, 100, 1050, 123456789, -1, -1050])
def test_from_major_and_to_major_round_trip(currency: str, minor: int) -> None:
    money = Money(minor, currency)
    assert Money.from_major(money.to_major(), currency) == money
    assert Money.from_major(str(money.to_major()), currency) == money


def test_to_major_is_exact_beyond_the_default_decimal_precision() -> None:
    huge = Money(10**40 + 1, "USD")
    assert huge.to_major() == Decimal("100000000000000000000000000000000000000.01")


def test_str_is_unambiguous_and_not_localized() -> None:
    assert str(usd(1050)) == "10.50 USD"
    assert str(usd(-5)) == "-0.05 USD"
    assert str(Money(500, "JPY")) == "500 JPY"
    assert str(Money(1234, "KWD")) == "1.234 KWD"
    assert str(Money(1234567890, "USD")) == "12345678.90 USD"


def test_repr_shows_constructor_call() -> None:
    assert repr(usd(1050)) == "Money(1050, 'USD')"


# -- arithmetic and comparison -----------------------------------------------------------------


def test_adding_and_subtracting_same_currency() -> None:
    assert usd(1050) + usd(25) == usd(1075)
    assert usd(1050) - usd(1100) == usd(-50)


def test_adding_different_currencies_raises() -> None:
    with pytest.raises(CurrencyMismatchError, match="USD and EUR"):
        usd(100) + Money(100, "EUR")


def test_subtracting_different_currencies_raises() -> None:
    with pytest.raises(CurrencyMismatchError):
        usd(100) - Money(100, "EUR")


def test_currency_mismatch_is_a_value_error() -> None:
    assert issubclass(CurrencyMismatchError, ValueError)


@pytest.mark.parametrize("other", [1, Decimal("1.00"), 1.0, "1.00"])
def test_adding_a_plain_number_raises_type_error(other: object) -> None:
    with pytest.raises(TypeError):
        usd(100) + other  # type: ignore[operator]
    with pytest.raises(TypeError):
        other + usd(100)  # type: ignore[operator]


def test_negation_absolute_value_and_unary_plus() -> None:
    assert -usd(100) == usd(-100)
    assert abs(usd(-100)) == usd(100)
    assert +usd(-100) == usd(-100)


def test_multiplying_by_an_int_on_either_side() -> None:
    assert usd(250) * 3 == usd(750)
    assert 3 * usd(250) == usd(750)
    assert usd(250) * -2 == usd(-500)
    assert usd(250) * 0 == usd(0)


@pytest.mark.parametrize("factor", [1.5, 2.0, Decimal("1.5"), True, "2"])
def test_multiplying_by_anything_but_an_int_raises(factor: object) -> None:
    with pytest.raises(TypeError):
        usd(100) * factor  # type: ignore[operator]
    with pytest.raises(TypeError):
        factor * usd(100)  # type: ignore[operator]


def test_comparisons_within_one_currency() -> None:
    assert usd(100) < usd(200)
    assert usd(100) <= usd(100)
    assert usd(200) > usd(100)
    assert usd(200) >= usd(200)
    assert not usd(200) < usd(100)
    assert max(usd(1), usd(300), usd(20)) == usd(300)
    assert sorted([usd(3), usd(-1), usd(2)]) == [usd(-1), usd(2), usd(3)]


@pytest.mark.parametrize(
    "compare",
    [
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
    ],
)
def test_ordering_different_currencies_raises(compare) -> None:
    with pytest.raises(CurrencyMismatchError):
        compare(usd(100), Money(100, "EUR"))


def test_ordering_against_a_plain_number_raises_type_error() -> None:
    with pytest.raises(TypeError):
        usd(100) < 200  # type: ignore[operator]  # noqa: B015


def test_truthiness_is_non_zero() -> None:
    assert usd(1)
    assert usd(-1)
    assert not usd(0)
    assert not Money.zero("JPY")


def test_sum_of_an_empty_iterable_is_zero() -> None:
    assert Money.sum([], "KWD") == Money(0, "KWD")


def test_sum_adds_amounts_of_one_currency() -> None:
    assert Money.sum((usd(n) for n in (100, 250, -50)), "usd") == usd(300)


def test_sum_with_a_different_currency_raises() -> None:
    with pytest.raises(CurrencyMismatchError):
        Money.sum([usd(100), Money(100, "EUR")], "USD")


# -- multiply_ratio ----------------------------------------------------------------------------

# Each input is divided by 10 so the exact results are 2.5, 3.5, 2.4, 2.6, 5.1 and negatives.
RATIO_INPUTS = [25, 35, 24, 26, 51, -25, -35, -24, -26, -51]


@pytest.mark.parametrize(
    ("rounding", "expected"),
    [
        (ROUND_HALF_UP, [3, 4, 2, 3, 5, -3, -4, -2, -3, -5]),
        (ROUND_HALF_EVEN, [2, 4, 2, 3, 5, -2, -4, -2, -3, -5]),
        (ROUND_HALF_DOWN, [2, 3, 2, 3, 5, -2, -3, -2, -3, -5]),
        (ROUND_DOWN, [2, 3, 2, 2, 5, -2, -3, -2, -2, -5]),
        (ROUND_UP, [3, 4, 3, 3, 6, -3, -4, -3, -3, -6]),
        (ROUND_FLOOR, [2, 3, 2, 2, 5, -3, -4, -3, -3, -6]),
        (ROUND_CEILING, [3, 4, 3, 3, 6, -2, -3, -2, -2, -5]),
        (ROUND_05UP, [2, 3, 2, 2, 6, -2, -3, -2, -2, -6]),
    ],
)
def test_multiply_ratio_rounds_with_each_mode_including_negatives(
    rounding: str, expected: list[int]
) -> None:
    results = [usd(minor).multiply_ratio(1, 10, rounding=rounding) for minor in RATIO_INPUTS]
    assert results == [usd(minor) for minor in expected]


def test_multiply_ratio_defaults_to_half_up() -> None:
    assert usd(25).multiply_ratio(1, 10) == usd(3)
    assert usd(-25).multiply_ratio(1, 10) == usd(-3)


def test_multiply_ratio_for_a_percentage_tax() -> None:
    # 7.5% of $19.99 is 149.925 cents.
    assert usd(1999).multiply_ratio(75, 1000) == usd(150)
    # 7.5% of $0.60 is exactly 4.5 cents: the mode decides.
    assert usd(60).multiply_ratio(75, 1000) == usd(5)
    assert usd(60).multiply_ratio(75, 1000, rounding=ROUND_HALF_EVEN) == usd(4)
    assert usd(60).multiply_ratio(75, 1000, rounding=ROUND_DOWN) == usd(4)


def test_multiply_ratio_keeps_the_currency() -> None:
    assert Money(1000, "KWD").multiply_ratio(1, 3) == Money(333, "KWD")


def test_multiply_ratio_accepts_a_negative_denominator() -> None:
    assert usd(3).multiply_ratio(1, -2) == usd(-2)  # -1.5 rounded half away from zero


def test_multiply_ratio_is_exact_for_amounts_beyond_decimal_precision() -> None:
    assert usd(10**40 + 1).multiply_ratio(1, 2) == usd(5 * 10**39 + 1)


@pytest.mark.parametrize("rounding", ALL_ROUNDING_MODES)
def test_multiply_ratio_agrees_with_decimal_quantize(rounding: str) -> None:
    with localcontext() as context:
        context.prec = 50
        for minor in range(-60, 61):
            for numerator in (1, 3, 7):
                for denominator in (1, 2, 3, 4, 6, 8, 10, 12):
                    exact = Decimal(minor * numerator) / Decimal(denominator)
                    expected = int(exact.quantize(Decimal(1), rounding=rounding))
                    result = usd(minor).multiply_ratio(numerator, denominator, rounding=rounding)
                    assert result == usd(expected), (minor, numerator, denominator)


def test_multiply_ratio_by_zero_denominator_raises() -> None:
    with pytest.raises(ZeroDivisionError):
        usd(100).multiply_ratio(1, 0)


@pytest.mark.parametrize(("numerator", "denominator"), [(0.075, 1), (Decimal("7.5"), 100)])
def test_multiply_ratio_refuses_non_int_ratios(numerator: object, denominator: int) -> None:
    with pytest.raises(TypeError):
        usd(100).multiply_ratio(numerator, denominator)  # type: ignore[arg-type]


def test_multiply_ratio_refuses_an_unknown_rounding_mode() -> None:
    with pytest.raises(ValueError, match="rounding"):
        usd(100).multiply_ratio(1, 3, rounding="ROUND_SOMETIMES")


# -- allocate / split --------------------------------------------------------------------------


def minors(parts: list[Money]) -> list[int]:
    return [part.amount_minor for part in parts]


def test_splitting_100_cents_in_three_gives_the_extra_cent_to_the_first() -> None:
    assert minors(usd(100).split(3)) == [34, 33, 33]


def test_allocating_one_cent_three_ways() -> None:
    assert minors(usd(1).allocate([1, 1, 1])) == [1, 0, 0]


def test_allocate_gives_leftovers_to_the_largest_fractional_remainders() -> None:
    # Exact shares 3.33 and 6.67: the second part has the larger fraction.
    assert minors(usd(10).allocate([1, 2])) == [3, 7]
    # Exact shares 16.67, 33.33, 50: only the first has the largest fraction.
    assert minors(usd(100).allocate([1, 2, 3])) == [17, 33, 50]


def test_allocate_breaks_remainder_ties_towards_the_earliest_part() -> None:
    # Exact shares 1.5 and 3.5.
    assert minors(usd(5).allocate([3, 7])) == [2, 3]
    # Exact shares 1.67, 1.67, 6.67: two leftover cents, all fractions equal.
    assert minors(usd(10).allocate([1, 1, 4])) == [2, 2, 6]


def test_zero_ratio_parts_get_zero() -> None:
    assert minors(usd(5).allocate([0, 1, 1])) == [0, 3, 2]
    assert minors(usd(1).allocate([0, 1, 0, 1, 0])) == [0, 1, 0, 0, 0]


def test_allocate_splits_negative_amounts_symmetrically() -> None:
    assert minors(usd(-100).split(3)) == [-34, -33, -33]


def test_allocate_keeps_the_currency() -> None:
    assert Money(1000, "KWD").split(3) == [Money(334, "KWD"), Money(333, "KWD"), Money(333, "KWD")]


@pytest.mark.parametrize("amount", [0, 1, 2, 99, 100, 101, 9999, -7, -12345])
@pytest.mark.parametrize("ratios", [[1], [1, 1], [1, 1, 1], [1, 2, 3], [0, 5, 3], [7, 0, 0, 2, 9]])
def test_allocated_parts_sum_to_the_original_and_stay_within_one_unit(
    amount: int, ratios: list[int]
) -> None:
    parts = usd(amount).allocate(ratios)
    assert len(parts) == len(ratios)
    assert Money.sum(parts, "USD") == usd(amount)
    total = sum(ratios)
    for part, ratio in zip(parts, ratios, strict=True):
        exact = Decimal(amount * ratio) / total
        assert abs(Decimal(part.amount_minor) - exact) < 1


@pytest.mark.parametrize("ratios", [[], [0], [0, 0], [1, -1], [-1, 2]])
def test_allocate_refuses_empty_negative_or_all_zero_ratios(ratios: list[int]) -> None:
    with pytest.raises(ValueError):
        usd(100).allocate(ratios)


def test_allocate_refuses_non_int_ratios() -> None:
    with pytest.raises(TypeError):
        usd(100).allocate([0.5, 0.5])  # type: ignore[list-item]


@pytest.mark.parametrize("parts", [0, -1])
def test_split_refuses_a_non_positive_number_of_parts(parts: int) -> None:
    with pytest.raises(ValueError):
        usd(100).split(parts)


# -- format ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "locale", "expected"),
    [
        (Money(1050, "USD"), "en", "$10.50"),
        (Money(1050, "USD"), "en_US", "$10.50"),
        (Money(1050, "USD"), "en-US", "$10.50"),
        (Money(-1050, "USD"), "en", "-$10.50"),
        (Money(123456789, "USD"), "en", "$1,234,567.89"),
        (Money(0, "USD"), "en", "$0.00"),
        (Money(500, "JPY"), "en", "\xa5500"),  # ¥500, no decimals
        (Money(1234, "KWD"), "en", "KWD1.234"),  # three decimals
        # CLDR shows IQD without decimals; our table stores it in fils, so we show three.
        (Money(1234500, "IQD"), "en", "IQD1,234.500"),
    ],
)
def test_format_in_english(money: Money, locale: str, expected: str) -> None:
    assert money.format(locale) == expected


def test_format_defaults_to_english() -> None:
    assert usd(1050).format() == "$10.50"


@pytest.mark.parametrize(
    ("money", "expected"),
    [
        # RLM 10.50 NBSP US$
        (Money(1050, "USD"), f"{RLM}10.50{NBSP}US$"),
        # RLM 500 NBSP JP¥
        (Money(500, "JPY"), f"{RLM}500{NBSP}JP\xa5"),
        # RLM 1.234 NBSP د.ك. RLM
        (Money(1234, "KWD"), f"{RLM}1.234{NBSP}\u062f.\u0643.{RLM}"),
    ],
)
def test_format_in_plain_arabic_uses_latin_digits_as_cldr_now_says(
    money: Money, expected: str
) -> None:
    # CLDR 46 switched the default numbering system of "ar" itself to Latin digits.
    assert money.format("ar") == expected


@pytest.mark.parametrize("locale", ["ar_SA", "ar-EG", "ar_EG"])
@pytest.mark.parametrize(
    ("money", "expected"),
    [
        # RLM ١٠٫٥٠ NBSP US$
        (Money(1050, "USD"), f"{RLM}\u0661\u0660\u066b\u0665\u0660{NBSP}US$"),
        # RLM ٥٠٠ NBSP JP¥
        (Money(500, "JPY"), f"{RLM}\u0665\u0660\u0660{NBSP}JP\xa5"),
        # RLM ١٫٢٣٤ NBSP د.ك. RLM
        (Money(1234, "KWD"), f"{RLM}\u0661\u066b\u0662\u0663\u0664{NBSP}\u062f.\u0643.{RLM}"),
        # RLM ١٬٢٣٤٬٥٦٧٫٨٩ NBSP US$
        (
            Money(123456789, "USD"),
            f"{RLM}\u0661\u066c\u0662\u0663\u0664\u066c\u0665\u0666\u0667\u066b\u0668\u0669{NBSP}US$",
        ),
    ],
)
def test_format_in_arabic_regions_uses_arabic_indic_digits(
    locale: str, money: Money, expected: str
) -> None:
    formatted = money.format(locale)
    assert formatted == expected
    assert not any(digit in formatted for digit in ASCII_DIGITS)


def test_format_can_force_arabic_indic_digits_for_plain_arabic() -> None:
    formatted = Money(1050, "USD").format("ar", numbering_system="arab")
    assert formatted == f"{RLM}\u0661\u0660\u066b\u0665\u0660{NBSP}US$"
    assert set(formatted) & set(ARABIC_INDIC_DIGITS)


def test_format_can_force_latin_digits_for_an_arabic_region() -> None:
    assert Money(1050, "USD").format("ar_SA", numbering_system="latn") == f"{RLM}10.50{NBSP}US$"


def test_format_uses_extended_arabic_indic_digits_for_persian() -> None:
    # LRM $ NBSP ۱۰٫۵۰
    assert Money(1050, "USD").format("fa") == "\u200e$\xa0\u06f1\u06f0\u066b\u06f5\u06f0"


def test_format_falls_back_from_an_unknown_territory_to_the_language() -> None:
    # Facebook sends "ar_AR", which CLDR does not know.
    assert Money(1050, "USD").format("ar_AR") == Money(1050, "USD").format("ar")


@pytest.mark.parametrize("locale", ["zz", "xx_YY", "", "not a locale"])
def test_format_falls_back_to_english_for_an_unknown_locale(locale: str) -> None:
    assert Money(1050, "USD").format(locale) == "$10.50"


def test_format_refuses_an_unsupported_numbering_system() -> None:
    with pytest.raises(ValueError, match="numbering system"):
        usd(1050).format("en", numbering_system="roman")
