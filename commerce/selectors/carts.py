"""Reading carts: the lines to price, the price itself and the shipping methods on offer.

Prices always come from the catalog rows loaded here, never from anything the shopper sent.
Every function runs a fixed number of queries whatever the size of the cart.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.exceptions import ShippingError, VoucherError
from commerce.models import Cart, CartLine, Merchant, ShippingMethod, Variant, Voucher
from commerce.services.pricing import PriceBreakdown, price_lines
from core.money import Money


def cart_lines_for_pricing(*, cart: Cart) -> list[tuple[Variant, int]]:
    """The cart's ``(variant, quantity)`` pairs that can still be bought, in the order added.

    One query (variants with their products). Lines whose variant or product has been
    deactivated since it was added, or that somehow point at another merchant's variant, are
    left out: they cannot be bought, so they are neither priced nor ordered.
    """
    lines = (
        CartLine.objects.filter(
            cart_id=cart.pk,
            variant__merchant_id=cart.merchant_id,
            variant__is_active=True,
            variant__product__is_active=True,
        )
        .select_related("variant__product")
        .order_by("created_at", "id")
    )
    return [(line.variant, line.quantity) for line in lines]


def cart_subtotal(*, cart: Cart, lines: list[tuple[Variant, int]] | None = None) -> Money:
    """The sum of the buyable lines at current catalog prices (zero, in the merchant's currency,
    for an empty cart).

    :raises CartError: the lines mix currencies (``cart_mixed_currencies``).
    """
    if lines is None:
        lines = cart_lines_for_pricing(cart=cart)
    if not lines:
        return Money.zero(cart.merchant.default_currency)
    return price_lines(merchant=cart.merchant, lines=lines, now=timezone.now()).subtotal


def cart_voucher(*, cart: Cart) -> Voucher | None:
    """The merchant's voucher named by ``cart.voucher_code``, whether or not it still applies."""
    code = cart.voucher_code.strip().upper()  # codes are stored in capitals
    if not code:
        return None
    return Voucher.objects.filter(merchant_id=cart.merchant_id, code=code).first()


def cart_price(
    *,
    cart: Cart,
    shipping_method: ShippingMethod | None = None,
    country: str | None = None,
    now: datetime | None = None,
) -> PriceBreakdown:
    """Price the cart from current catalog prices with ``pricing.price_lines``.

    The cart's voucher is applied while it is still valid for the current subtotal; a voucher
    that has since expired, been used up, been deactivated or deleted, or whose minimum spend
    the cart no longer reaches is ignored (the breakdown's ``voucher`` is then ``None`` while
    ``cart.voucher_code`` is still set, so the caller can tell the shopper). At most three
    queries: the merchant (unless already loaded), the voucher (if any) and the lines.

    :raises CartError: the cart is empty or mixes currencies.
    :raises ShippingError: ``shipping_method`` belongs to another merchant, is inactive, is
        priced in another currency or does not deliver to ``country``.
    """
    if shipping_method is not None and shipping_method.merchant_id != cart.merchant_id:
        # Same refusal as an inactive method: never hint that another shop's method exists.
        raise ShippingError(_("This shipping method is not available."), code="shipping_inactive")
    return cart_price_of_lines(
        cart=cart,
        lines=cart_lines_for_pricing(cart=cart),
        voucher=cart_voucher(cart=cart),
        shipping_method=shipping_method,
        country=country,
        now=now,
    )


def variant_is_buyable_in(*, variant: Variant, cart: Cart) -> bool:
    """The rule of ``cart_lines_for_pricing``, for lines already loaded in bulk."""
    return (
        variant.merchant_id == cart.merchant_id and variant.is_active and variant.product.is_active
    )


def cart_price_of_lines(
    *,
    cart: Cart,
    lines: list[tuple[Variant, int]],
    voucher: Voucher | None,
    shipping_method: ShippingMethod | None = None,
    country: str | None = None,
    now: datetime | None = None,
) -> PriceBreakdown:
    """``cart_price`` for lines and voucher the caller already loaded (no queries of its own).

    For pages of carts priced at once; the lines must be the buyable ones
    (``variant_is_buyable_in``). Same voucher rule as ``cart_price``.
    """
    options = {
        "merchant": cart.merchant,
        "lines": lines,
        "shipping_method": shipping_method,
        "country": country.strip().upper() if country else None,
        "now": now or timezone.now(),
    }
    if voucher is not None:
        try:
            return price_lines(voucher=voucher, **options)
        except VoucherError:
            pass  # No longer applies: price without it (see cart_price).
    return price_lines(**options)


def shipping_methods_for(*, merchant: Merchant, country: str) -> list[ShippingMethod]:
    """The merchant's active shipping methods that deliver to ``country``, in display order.

    One query. The country filter runs in Python: a merchant has a handful of methods, and
    JSON containment lookups are not portable to SQLite.
    """
    country = (country or "").strip().upper()
    methods = ShippingMethod.objects.filter(merchant_id=merchant.pk, is_active=True).order_by(
        "position", "price_minor", "id"
    )
    return [method for method in methods if method.ships_to(country)]
