"""Money as an integer count of minor units plus an ISO 4217 currency code.

Why integers: every amount we store, charge through Stripe or show on a receipt must be exact, and
minor units are what payment providers speak. ``Money`` therefore never touches ``float``: floats
are refused at every entry point, and fractional work (tax, discounts, splitting) goes through
integer arithmetic with an explicit rounding mode from :mod:`decimal`.

The number of minor units per major unit comes from :data:`core.currencies.EXPONENTS`, never from
Babel/CLDR, whose *display* precision differs for some currencies (IQD, LBP, ...).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
    InvalidOperation,
)
from typing import Self

from babel import Locale, UnknownLocaleError
from babel.numbers import format_currency

from core.currencies import currency_exponent, normalize_currency

__all__ = ["CurrencyMismatchError", "Money"]

DEFAULT_LOCALE = "en"

# Babel (as of 2.18) localizes the decimal and group *symbols* for a numbering system but always
# writes the digits themselves in ASCII, so we map them ourselves. Babel ships no digit data, so
# this is the zero digit of each CLDR numbering system that is some locale's default (all of them
# are ten contiguous code points), plus Thai for explicit use.
_ZERO_DIGIT: dict[str, int] = {
    "latn": ord("0"),
    "arab": 0x0660,  # ٠١٢٣٤٥٦٧٨٩ Arabic-Indic
    "arabext": 0x06F0,  # ۰۱۲۳۴۵۶۷۸۹ Extended Arabic-Indic (fa, ur, ps, ...)
    "adlm": 0x1E950,
    "beng": 0x09E6,
    "cakm": 0x11136,
    "deva": 0x0966,
    "hmnp": 0x1E140,
    "mtei": 0xABF0,
    "mymr": 0x1040,
    "nkoo": 0x07C0,
    "olck": 0x1C50,
    "thai": 0x0E50,
    "tibt": 0x0F20,
}
_DIGIT_TABLES: dict[str, dict[int, str]] = {
    system: {ord("0") + i: chr(zero + i) for i in range(10)}
    for system, zero in _ZERO_DIGIT.items()
    if system != "latn"
}

_ROUNDING_MODES = frozenset(
    {
        ROUND_05UP,
        ROUND_CEILING,
        ROUND_DOWN,
        ROUND_FLOOR,
        ROUND_HALF_DOWN,
        ROUND_HALF_EVEN,
        ROUND_HALF_UP,
        ROUND_UP,
    }
)


class CurrencyMismatchError(ValueError):
    """Raised when two amounts in different currencies are added, subtracted or compared."""


def _is_int(value: object) -> bool:
    """True for a real ``int``; ``bool`` is an ``int`` subclass but never a sensible amount."""
    return isinstance(value, int) and not isinstance(value, bool)


def _divide_rounded(numerator: int, denominator: int, rounding: str) -> int:
    """Return ``numerator / denominator`` rounded to an integer with a :mod:`decimal` mode.

    Pure integer arithmetic, so it is exact for amounts of any size (a ``Decimal`` division would
    be limited by the context precision).
    """
    if denominator == 0:
        raise ZeroDivisionError("Cannot divide money by zero.")
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    floor, remainder = divmod(numerator, denominator)  # 0 <= remainder < denominator
    if remainder == 0:
        return floor
    ceiling = floor + 1
    negative = numerator < 0
    toward_zero, away_from_zero = (ceiling, floor) if negative else (floor, ceiling)

    if rounding == ROUND_FLOOR:
        return floor
    if rounding == ROUND_CEILING:
        return ceiling
    if rounding == ROUND_DOWN:
        return toward_zero
    if rounding == ROUND_UP:
        return away_from_zero
    if rounding == ROUND_05UP:
        # Away from zero only if the digit rounded towards zero would be 0 or 5.
        return away_from_zero if abs(toward_zero) % 5 == 0 else toward_zero

    twice = 2 * remainder
    if twice < denominator:
        return floor
    if twice > denominator:
        return ceiling
    # Exactly half way.
    if rounding == ROUND_HALF_UP:
        return away_from_zero
    if rounding == ROUND_HALF_DOWN:
        return toward_zero
    if rounding == ROUND_HALF_EVEN:
        return floor if floor % 2 == 0 else ceiling
    raise AssertionError(f"unhandled rounding mode {rounding!r}")  # pragma: no cover


@functools.lru_cache(maxsize=64)
def _resolve_locale(identifier: str) -> Locale:
    """Parse a locale such as ``"en"``, ``"ar_SA"`` or ``"ar-EG"``, falling back gracefully.

    An unknown territory falls back to the language (Facebook sends ``"ar_AR"``, which CLDR does
    not know, and an Arabic speaker should still get Arabic), anything else to English.
    """
    normalized = identifier.strip().replace("-", "_")
    candidates = (normalized, normalized.split("_", 1)[0], DEFAULT_LOCALE)
    for candidate in candidates:
        try:
            return Locale.parse(candidate)
        except (UnknownLocaleError, ValueError, TypeError):
            continue
    raise AssertionError("the default locale must always parse")  # pragma: no cover


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount: ``amount_minor`` units of ``10**-exponent`` of ``currency``.

    ``Money(1050, "USD")`` is $10.50, ``Money(500, "JPY")`` is ¥500, ``Money(1234, "KWD")`` is
    1.234 KWD. Equality compares amount and currency; ordering and arithmetic across currencies
    raise :class:`CurrencyMismatchError` instead of guessing.
    """

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        if not _is_int(self.amount_minor):
            raise TypeError(
                "Money.amount_minor must be an int count of minor units, got "
                f"{type(self.amount_minor).__name__} {self.amount_minor!r}; "
                "use Money.from_major() for a Decimal or string amount."
            )
        if not isinstance(self.currency, str):
            raise TypeError(
                f"Money.currency must be an ISO 4217 code string, got {self.currency!r}."
            )
        # Frozen dataclass: normalizing the code has to go around __setattr__.
        object.__setattr__(self, "currency", normalize_currency(self.currency))

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def zero(cls, currency: str) -> Self:
        return cls(0, currency)

    @classmethod
    def from_major(cls, value: Decimal | int | str, currency: str) -> Self:
        """Build from a major-unit amount such as ``"12.50"``, refusing to round.

        A value that is not a whole number of minor units (``"1.005"`` USD, ``"1.5"`` JPY) raises
        ``ValueError``: silently rounding user or provider input would lose money. Trailing zeros
        are fine (``"12.500"`` USD is 1250 cents) because nothing is lost.
        """
        if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
            raise TypeError(
                f"Money.from_major() takes a Decimal, int or str, got {type(value).__name__} "
                f"{value!r}; floats are refused because they cannot represent most amounts."
            )
        try:
            decimal_value = Decimal(value.strip() if isinstance(value, str) else value)
        except InvalidOperation:
            raise ValueError(f"Not a decimal amount: {value!r}.") from None
        if not decimal_value.is_finite():
            raise ValueError(f"Not a finite amount: {value!r}.")

        exponent = currency_exponent(currency)
        sign, digits, value_exponent = decimal_value.as_tuple()
        assert isinstance(value_exponent, int)  # finite, checked above
        coefficient = int("".join(map(str, digits)))
        # The power of ten that turns the coefficient into minor units.
        shift = value_exponent + exponent
        if shift >= 0:
            minor = coefficient * 10**shift
        else:
            minor, lost = divmod(coefficient, 10**-shift)
            if lost:
                raise ValueError(
                    f"{value} has more decimal places than {normalize_currency(currency)} "
                    f"allows ({exponent})."
                )
        return cls(-minor if sign else minor, currency)

    @classmethod
    def sum(cls, amounts: Iterable[Money], currency: str) -> Self:
        """Add up ``amounts``; the currency is explicit so that an empty iterable gives zero."""
        total = cls.zero(currency)
        for amount in amounts:
            total = total + amount
        return total

    # -- conversion ---------------------------------------------------------------------------

    @property
    def exponent(self) -> int:
        """Minor-unit exponent of the currency from our table: USD 2, JPY 0, KWD 3."""
        return currency_exponent(self.currency)

    def to_major(self) -> Decimal:
        """The exact major-unit amount with exactly ``exponent`` places: ``Decimal("10.50")``.

        Built from the digit tuple rather than by division, so no decimal context can round it.
        """
        digits = tuple(int(digit) for digit in str(abs(self.amount_minor)))
        return Decimal((int(self.amount_minor < 0), digits, -self.exponent))

    def format(
        self, locale: str | Locale = DEFAULT_LOCALE, *, numbering_system: str = "default"
    ) -> str:
        """Format for people in ``locale`` via Babel, e.g. ``"$10.50"`` in ``"en"``.

        The fraction digits are exactly ``exponent`` (our table, not CLDR's). Digits follow the
        locale's default CLDR numbering system unless ``numbering_system`` names another one
        (``"arab"``, ``"latn"``). Note that CLDR 46 made Latin digits the default for plain
        ``"ar"``; ``"ar_SA"``, ``"ar_EG"`` and others still default to Arabic-Indic.
        An unknown locale falls back to its language, then to English.
        """
        resolved = locale if isinstance(locale, Locale) else _resolve_locale(locale)
        system = (
            resolved.default_numbering_system if numbering_system == "default" else numbering_system
        )
        if system not in _ZERO_DIGIT:
            raise ValueError(f"Unsupported numbering system: {numbering_system!r}.")

        # Force our exponent onto the locale's own pattern; currency_digits=False stops Babel
        # from substituting CLDR's precision for the currency.
        pattern = copy.copy(resolved.currency_formats["standard"])
        pattern.frac_prec = (self.exponent, self.exponent)
        text = format_currency(
            self.to_major(),
            self.currency,
            format=pattern,
            locale=resolved,
            currency_digits=False,
            numbering_system=system,
        )
        return text.translate(_DIGIT_TABLES[system]) if system != "latn" else text

    def __str__(self) -> str:
        return f"{self.to_major():f} {self.currency}"

    def __repr__(self) -> str:
        return f"Money({self.amount_minor}, {self.currency!r})"

    # -- arithmetic ---------------------------------------------------------------------------

    def _check_same_currency(self, other: Money, operation: str) -> None:
        if self.currency != other.currency:
            raise CurrencyMismatchError(
                f"Cannot {operation} {self.currency} and {other.currency} amounts."
            )

    def __add__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._check_same_currency(other, "add")
        return Money(self.amount_minor + other.amount_minor, self.currency)

    def __sub__(self, other: object) -> Money:
        if not isinstance(other, Money):
            return NotImplemented
        self._check_same_currency(other, "subtract")
        return Money(self.amount_minor - other.amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def __pos__(self) -> Money:
        return self

    def __abs__(self) -> Money:
        return Money(abs(self.amount_minor), self.currency)

    def __mul__(self, factor: object) -> Money:
        if not _is_int(factor):
            raise TypeError(
                f"Money can only be multiplied by an int, got {type(factor).__name__}; "
                "use multiply_ratio() for fractions and percentages."
            )
        assert isinstance(factor, int)
        return Money(self.amount_minor * factor, self.currency)

    __rmul__ = __mul__

    def __bool__(self) -> bool:
        return self.amount_minor != 0

    # -- comparison (equality and hashing come from the dataclass) ----------------------------

    def _compare_key(self, other: object, operation: str) -> int | None:
        """The other amount in minor units, or ``None`` if it is not Money at all."""
        if not isinstance(other, Money):
            return None
        self._check_same_currency(other, operation)
        return other.amount_minor

    def __lt__(self, other: object) -> bool:
        other_minor = self._compare_key(other, "compare")
        return NotImplemented if other_minor is None else self.amount_minor < other_minor

    def __le__(self, other: object) -> bool:
        other_minor = self._compare_key(other, "compare")
        return NotImplemented if other_minor is None else self.amount_minor <= other_minor

    def __gt__(self, other: object) -> bool:
        other_minor = self._compare_key(other, "compare")
        return NotImplemented if other_minor is None else self.amount_minor > other_minor

    def __ge__(self, other: object) -> bool:
        other_minor = self._compare_key(other, "compare")
        return NotImplemented if other_minor is None else self.amount_minor >= other_minor

    # -- fractions, tax and splitting ---------------------------------------------------------

    def multiply_ratio(
        self, numerator: int, denominator: int, *, rounding: str = ROUND_HALF_UP
    ) -> Money:
        """Return ``self * numerator / denominator`` rounded to a whole minor unit.

        For percentages and tax: 7.5% of an amount is ``multiply_ratio(75, 1000)``. ``rounding``
        is any :mod:`decimal` rounding constant; ``ROUND_HALF_UP`` rounds halves away from zero
        for negative amounts too, as ``decimal`` does.
        """
        if not (_is_int(numerator) and _is_int(denominator)):
            raise TypeError("multiply_ratio() takes int numerator and denominator.")
        if rounding not in _ROUNDING_MODES:
            raise ValueError(f"Unknown rounding mode: {rounding!r}.")
        minor = _divide_rounded(self.amount_minor * numerator, denominator, rounding)
        return Money(minor, self.currency)

    def allocate(self, ratios: Sequence[int]) -> list[Money]:
        """Split into parts proportional to integer ``ratios`` that add up exactly to ``self``.

        Each part first gets the floor of its exact share; the minor units left over go, one each,
        to the parts with the largest fractional remainders, ties to the earliest part. A zero
        ratio always gets zero. Negative amounts are split like their absolute value, then
        negated, so ``-100`` in three is ``[-34, -33, -33]``.
        """
        if not ratios:
            raise ValueError("allocate() needs at least one ratio.")
        if not all(_is_int(ratio) for ratio in ratios):
            raise TypeError("allocate() ratios must be ints.")
        if any(ratio < 0 for ratio in ratios):
            raise ValueError(f"allocate() ratios must not be negative: {list(ratios)!r}.")
        total_ratio = sum(ratios)
        if total_ratio == 0:
            raise ValueError("allocate() ratios must have a positive sum.")

        sign = -1 if self.amount_minor < 0 else 1
        amount = abs(self.amount_minor)
        shares_and_remainders = [divmod(amount * ratio, total_ratio) for ratio in ratios]
        parts = [share for share, _ in shares_and_remainders]
        leftover = amount - sum(parts)  # < number of parts with a non-zero remainder
        by_remainder = sorted(
            range(len(ratios)), key=lambda index: (-shares_and_remainders[index][1], index)
        )
        for index in by_remainder[:leftover]:
            parts[index] += 1
        return [Money(sign * part, self.currency) for part in parts]

    def split(self, parts: int) -> list[Money]:
        """Split into ``parts`` near-equal amounts, the earlier parts getting any extra unit."""
        if not _is_int(parts) or parts < 1:
            raise ValueError(f"split() needs a positive int number of parts, got {parts!r}.")
        return self.allocate([1] * parts)
