"""Changing carts: one open cart per customer and merchant, lines and the voucher code.

Every change validates against the catalog of the cart's own merchant. A variant id that is
unknown, inactive, of an inactive product or of another merchant is refused with one and the same
error (``variant_unavailable``), so a forged payload learns nothing about other shops. Carts hold
quantities only: prices are read from the catalog whenever the cart is priced
(``commerce.selectors.carts.cart_price``).

Each change locks the cart row first, so concurrent changes to one cart apply one after the other
on PostgreSQL, and runs a fixed number of queries whatever the size of the cart.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.exceptions import CartError, OutOfStockError, VoucherError
from commerce.models import Cart, CartLine, Customer, Variant, Voucher
from commerce.selectors.carts import cart_subtotal
from commerce.services.pricing import voucher_check

VOUCHER_CODE_MAX_LENGTH = Voucher._meta.get_field("code").max_length


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _variant_unavailable() -> CartError:
    return CartError(_("Sorry, this item is not available."), code="variant_unavailable")


def _line_unknown() -> CartError:
    return CartError(_("This item is not in your cart."), code="line_unknown")


def _cart_lock(*, cart: Cart) -> Cart:
    """Lock the cart row (with its merchant loaded) and check it is still open.

    Call inside ``transaction.atomic``.

    :raises CartError: the cart has been ordered or abandoned (``cart_closed``).
    """
    locked = Cart.objects.select_related("merchant").select_for_update(of=("self",)).get(pk=cart.pk)
    if locked.status != Cart.Status.OPEN:
        raise CartError(_("This cart is closed. Please start a new one."), code="cart_closed")
    return locked


def _cart_touch(*, cart: Cart) -> None:
    """Mark the cart as changed now (abandoned-cart reminders look at ``updated_at``)."""
    now = timezone.now()
    Cart.objects.filter(pk=cart.pk).update(updated_at=now)
    cart.updated_at = now


def _quantity_check(quantity: object, *, allow_zero: bool = False) -> int:
    """:raises CartError: not an int, or below 1 (below 0 with ``allow_zero``)."""
    if not _is_int(quantity) or quantity < (0 if allow_zero else 1):
        raise CartError(_("Please choose a whole number of items."), code="quantity_invalid")
    return quantity


def _variant_for_cart(*, cart: Cart, variant_id: object) -> Variant:
    """The buyable variant ``variant_id`` of the cart's merchant, with its product.

    :raises CartError: ``variant_unavailable`` for anything else, whatever the reason.
    """
    if not _is_int(variant_id):
        raise _variant_unavailable()
    variant = (
        Variant.objects.select_related("product")
        .filter(pk=variant_id, merchant_id=cart.merchant_id)
        .first()
    )
    if variant is None or not variant.is_active or not variant.product.is_active:
        raise _variant_unavailable()
    return variant


def _line_quantity_check(*, cart: Cart, variant: Variant, quantity: int) -> None:
    """Check the quantity a line would end up with against the merchant limit and the stock.

    ``cart`` must have its merchant loaded (``_cart_lock`` does).

    :raises CartError: more than ``merchant.max_line_quantity`` (``quantity_limit``).
    :raises OutOfStockError: more than ``variant.stock_available``.
    """
    limit = cart.merchant.max_line_quantity
    if quantity > limit:
        raise CartError(
            _("You can order at most %(limit)d of this item.") % {"limit": limit},
            code="quantity_limit",
            extra={"variant_id": variant.pk, "max_quantity": limit},
        )
    available = variant.stock_available
    if quantity > available:
        if available:
            message = _("Only %(available)d left in stock.") % {"available": available}
        else:
            message = _("Sorry, this item is out of stock.")
        raise OutOfStockError(message, extra={"variant_id": variant.pk, "available": available})


def cart_get_open(*, customer: Customer) -> Cart:
    """The customer's open cart with their merchant, created on first use.

    Race-safe: when a concurrent call creates the cart first, the partial unique constraint
    (one open cart per customer and merchant) refuses our insert and we return theirs.
    """
    carts = Cart.objects.select_related("merchant").filter(
        customer_id=customer.pk, merchant_id=customer.merchant_id, status=Cart.Status.OPEN
    )
    cart = carts.first()
    if cart is not None:
        return cart
    try:
        # A savepoint, so that the failed insert does not break the caller's transaction.
        with transaction.atomic():
            return Cart.objects.create(customer=customer, merchant=customer.merchant)
    except IntegrityError:
        return carts.get()


@transaction.atomic
def cart_add(*, cart: Cart, variant_id: int, quantity: int = 1) -> CartLine:
    """Add ``quantity`` units of the merchant's variant ``variant_id``, merging with its line.

    :raises CartError: ``quantity_invalid`` (not a positive int), ``variant_unavailable``
        (unknown, inactive, inactive product or another merchant's variant: one error for all),
        ``quantity_limit`` (the line would exceed ``merchant.max_line_quantity``) or
        ``cart_closed``.
    :raises OutOfStockError: the line would exceed the stock available; ``extra`` holds
        ``variant_id`` and ``available``.
    """
    _quantity_check(quantity)
    locked = _cart_lock(cart=cart)
    variant = _variant_for_cart(cart=locked, variant_id=variant_id)
    line = CartLine.objects.filter(cart_id=locked.pk, variant_id=variant.pk).first()
    new_quantity = quantity + (line.quantity if line else 0)
    _line_quantity_check(cart=locked, variant=variant, quantity=new_quantity)
    if line is None:
        line = CartLine.objects.create(cart=locked, variant=variant, quantity=new_quantity)
    else:
        line.quantity = new_quantity
        line.save(update_fields=["quantity", "updated_at"])
    line.variant = variant
    _cart_touch(cart=cart)
    return line


@transaction.atomic
def cart_set_quantity(
    *,
    cart: Cart,
    quantity: int,
    line_id: int | None = None,
    variant_id: int | None = None,
) -> CartLine | None:
    """Set the quantity of a line, named by ``line_id`` or by ``variant_id`` (exactly one).

    Zero removes the line and returns ``None``; removing a line that is not there is a no-op,
    so a replayed "remove" does no harm. A positive quantity re-validates the variant, the
    merchant's limit and the stock, as ``cart_add`` does.

    :raises CartError: ``quantity_invalid``, ``line_unknown`` (no such line in this cart),
        ``variant_unavailable``, ``quantity_limit`` or ``cart_closed``.
    :raises OutOfStockError: more than the stock available.
    """
    if (line_id is None) == (variant_id is None):
        raise TypeError("cart_set_quantity() takes exactly one of line_id and variant_id.")
    _quantity_check(quantity, allow_zero=True)
    locked = _cart_lock(cart=cart)
    key = line_id if line_id is not None else variant_id
    if not _is_int(key):
        raise _line_unknown()
    lines = CartLine.objects.filter(cart_id=locked.pk)
    lines = lines.filter(pk=line_id) if line_id is not None else lines.filter(variant_id=variant_id)
    if quantity == 0:
        if lines.delete()[0]:
            _cart_touch(cart=cart)
        return None
    line = lines.first()
    if line is None:
        raise _line_unknown()
    variant = _variant_for_cart(cart=locked, variant_id=line.variant_id)
    _line_quantity_check(cart=locked, variant=variant, quantity=quantity)
    if line.quantity != quantity:
        line.quantity = quantity
        line.save(update_fields=["quantity", "updated_at"])
        _cart_touch(cart=cart)
    line.variant = variant
    return line


@transaction.atomic
def cart_remove(*, cart: Cart, variant_id: int) -> bool:
    """Remove the variant's line; ``False`` (and no error) when it was not in the cart.

    :raises CartError: ``cart_closed``.
    """
    locked = _cart_lock(cart=cart)
    if not _is_int(variant_id):
        return False
    deleted, _by_model = CartLine.objects.filter(cart_id=locked.pk, variant_id=variant_id).delete()
    if deleted:
        _cart_touch(cart=cart)
    return bool(deleted)


@transaction.atomic
def cart_clear(*, cart: Cart) -> int:
    """Remove every line and return how many there were. The voucher code stays: it is checked
    again whenever the cart is priced.

    :raises CartError: ``cart_closed``.
    """
    locked = _cart_lock(cart=cart)
    deleted, _by_model = CartLine.objects.filter(cart_id=locked.pk).delete()
    if deleted:
        _cart_touch(cart=cart)
    return deleted


@transaction.atomic
def cart_apply_voucher(*, cart: Cart, code: str, now: datetime | None = None) -> Voucher:
    """Validate the merchant's voucher ``code`` (any case) against the current subtotal and keep
    it on the cart. It is checked again each time the cart is priced.

    :raises VoucherError: ``voucher_unknown`` (no such code for this merchant), or the reason
        from ``pricing.voucher_check`` (``voucher_expired``, ``voucher_min_spend``...).
    :raises CartError: ``cart_closed``, or the cart mixes currencies.
    """
    locked = _cart_lock(cart=cart)
    normalized = code.strip().upper() if isinstance(code, str) else ""
    voucher = None
    if normalized and len(normalized) <= VOUCHER_CODE_MAX_LENGTH:
        voucher = Voucher.objects.filter(merchant_id=locked.merchant_id, code=normalized).first()
    if voucher is None:
        raise VoucherError(
            _("We don't recognise this code. Please check it and try again."),
            code="voucher_unknown",
        )
    voucher_check(voucher=voucher, subtotal=cart_subtotal(cart=locked), now=now or timezone.now())
    if locked.voucher_code != voucher.code:
        Cart.objects.filter(pk=locked.pk).update(
            voucher_code=voucher.code, updated_at=timezone.now()
        )
    cart.voucher_code = voucher.code
    return voucher


@transaction.atomic
def cart_remove_voucher(*, cart: Cart) -> None:
    """Forget the cart's voucher code (a no-op when there is none).

    :raises CartError: ``cart_closed``.
    """
    locked = _cart_lock(cart=cart)
    if locked.voucher_code:
        Cart.objects.filter(pk=locked.pk).update(voucher_code="", updated_at=timezone.now())
    cart.voucher_code = ""
