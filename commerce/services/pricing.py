"""Order totals, computed server-side from catalog prices. Pure: no database, no clock.

Rules (all integer minor units of one currency):

* subtotal = sum of unit price × quantity.
* discount: a voucher applies to the subtotal once. Percentages round half up to the minor unit;
  a discount never exceeds the subtotal.
* shipping: the method's price, or zero once the discounted subtotal reaches its free-over amount.
* tax: at the merchant's rate on (subtotal − discount + shipping), rounded half up once per order.
  Exclusive tax is added to the total; inclusive tax is the part of that base that is tax,
  base × rate / (1 + rate), and the total is the base.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP

from django.utils.translation import gettext as _

from commerce.exceptions import CartError, ShippingError, VoucherError
from commerce.models import Merchant, ShippingMethod, Variant, Voucher
from core.money import Money

BASIS_POINTS = 10_000


@dataclass(frozen=True)
class PricedLine:
    variant: Variant
    quantity: int
    unit_price: Money
    total: Money


@dataclass(frozen=True)
class PriceBreakdown:
    currency: str
    lines: tuple[PricedLine, ...]
    subtotal: Money
    discount: Money
    shipping: Money
    tax: Money
    total: Money
    tax_rate_bp: int
    prices_include_tax: bool
    voucher: Voucher | None
    shipping_method: ShippingMethod | None


def voucher_check(*, voucher: Voucher, subtotal: Money, now: datetime) -> None:
    """Raise ``VoucherError`` with the reason when ``voucher`` cannot apply to ``subtotal``."""
    if not voucher.is_active:
        raise VoucherError(_("This code is no longer active."), code="voucher_inactive")
    if voucher.valid_from and now < voucher.valid_from:
        raise VoucherError(_("This code is not valid yet."), code="voucher_not_started")
    if voucher.valid_until and now >= voucher.valid_until:
        raise VoucherError(_("This code has expired."), code="voucher_expired")
    if voucher.usage_limit is not None and voucher.times_used >= voucher.usage_limit:
        raise VoucherError(_("This code has been used up."), code="voucher_used_up")
    if voucher.kind == Voucher.Kind.FIXED and voucher.currency != subtotal.currency:
        raise VoucherError(_("This code is for another currency."), code="voucher_currency")
    if voucher.min_spend_minor and subtotal.amount_minor < voucher.min_spend_minor:
        minimum = Money(voucher.min_spend_minor, subtotal.currency)
        raise VoucherError(
            _("This code needs a minimum spend of %(amount)s.") % {"amount": minimum},
            code="voucher_min_spend",
            extra={"min_spend_minor": voucher.min_spend_minor},
        )


def voucher_discount(*, voucher: Voucher, subtotal: Money) -> Money:
    if voucher.kind == Voucher.Kind.PERCENTAGE:
        discount = subtotal.multiply_ratio(voucher.percent_bp, BASIS_POINTS, rounding=ROUND_HALF_UP)
    else:
        discount = Money(voucher.amount_minor, subtotal.currency)
    return min(discount, subtotal)


def shipping_price(*, method: ShippingMethod, goods: Money, country: str | None) -> Money:
    """The method's price for these goods, or ``ShippingError`` when it cannot be used."""
    if not method.is_active:
        raise ShippingError(_("This shipping method is not available."), code="shipping_inactive")
    if country and not method.ships_to(country):
        raise ShippingError(
            _("This shipping method does not deliver to %(country)s.") % {"country": country},
            code="shipping_country",
        )
    if method.currency != goods.currency:
        raise ShippingError(_("This shipping method is priced in another currency."))
    if method.free_over_minor is not None and goods.amount_minor >= method.free_over_minor:
        return Money.zero(goods.currency)
    return method.price


def tax_amount(*, base: Money, rate_bp: int, inclusive: bool) -> Money:
    if rate_bp == 0 or not base:
        return Money.zero(base.currency)
    if inclusive:
        return base.multiply_ratio(rate_bp, BASIS_POINTS + rate_bp, rounding=ROUND_HALF_UP)
    return base.multiply_ratio(rate_bp, BASIS_POINTS, rounding=ROUND_HALF_UP)


def price_lines(
    *,
    merchant: Merchant,
    lines: Sequence[tuple[Variant, int]],
    voucher: Voucher | None = None,
    shipping_method: ShippingMethod | None = None,
    country: str | None = None,
    now: datetime,
) -> PriceBreakdown:
    """Price ``(variant, quantity)`` lines for ``merchant`` from the variants' current prices.

    :raises CartError: no lines, or lines in several currencies.
    :raises VoucherError: the voucher does not apply.
    :raises ShippingError: the shipping method cannot be used for ``country``.
    """
    if not lines:
        raise CartError(_("The cart is empty."), code="cart_empty")
    currencies = {variant.currency for variant, _quantity in lines}
    if len(currencies) > 1:
        raise CartError(_("The cart mixes currencies."), code="cart_mixed_currencies")
    currency = currencies.pop()
    priced = tuple(
        PricedLine(variant, quantity, variant.price, variant.price * quantity)
        for variant, quantity in lines
    )
    subtotal = Money.sum((line.total for line in priced), currency)
    discount = Money.zero(currency)
    if voucher is not None:
        voucher_check(voucher=voucher, subtotal=subtotal, now=now)
        discount = voucher_discount(voucher=voucher, subtotal=subtotal)
    goods = subtotal - discount
    shipping = Money.zero(currency)
    if shipping_method is not None:
        shipping = shipping_price(method=shipping_method, goods=goods, country=country)
    base = goods + shipping
    tax = tax_amount(base=base, rate_bp=merchant.tax_rate_bp, inclusive=merchant.prices_include_tax)
    total = base if merchant.prices_include_tax else base + tax
    return PriceBreakdown(
        currency=currency,
        lines=priced,
        subtotal=subtotal,
        discount=discount,
        shipping=shipping,
        tax=tax,
        total=total,
        tax_rate_bp=merchant.tax_rate_bp,
        prices_include_tax=merchant.prices_include_tax,
        voucher=voucher,
        shipping_method=shipping_method,
    )
