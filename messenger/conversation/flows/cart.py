"""The cart (DESIGN.md section 5, flow 3): contents and total, change quantities, remove, clear.

Payloads: ``CART``, ``CART_INC:variant=<id>``, ``CART_DEC:variant=<id>``,
``CART_REMOVE:variant=<id>``, ``CART_CLEAR``.

The cart shows as a carousel with one card per line (title, variant, quantity × price, image, and
buttons *+1*, *−1*, *Remove*: buttons, not quick replies, because a cart may have more lines than
the 13 quick replies allow), followed by a summary (lines, voucher, total in the shopper's locale)
with the quick replies *Checkout*, *Clear cart* and *Keep shopping*. Prices come from
``commerce.selectors.carts``; changes go through ``commerce.services.carts``, which validate the
variant against the cart's merchant, the quantity limit and the stock. A fixed number of queries
per turn, whatever the size of the cart.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from commerce.models import Cart, CartLine, Customer, ProductImage
from commerce.selectors.carts import cart_lines_for_pricing, cart_price_of_lines, cart_voucher
from commerce.services.carts import cart_clear, cart_remove, cart_set_quantity
from commerce.services.pricing import PriceBreakdown
from messenger import builders
from messenger.conversation.flows import common
from messenger.conversation.router import Payload, on_payload, payload_build
from messenger.conversation.turn import Turn

__all__ = ["cart_open_of", "cart_show"]

CARDS_SHOWN = 10  # the generic template's element limit


def cart_open_of(customer: Customer) -> Cart | None:
    """The customer's open cart with its merchant, or ``None`` (viewing never creates one)."""
    return (
        Cart.objects.select_related("merchant")
        .filter(customer_id=customer.pk, merchant_id=customer.merchant_id, status=Cart.Status.OPEN)
        .first()
    )


def _first_images(product_ids: list[int]) -> dict[int, str]:
    """The first image URL of each product (one query)."""
    urls: dict[int, str] = {}
    images = ProductImage.objects.filter(product_id__in=product_ids).order_by(
        "product_id", "position", "id"
    )
    for image in images:
        if image.product_id not in urls and image.image:
            urls[image.product_id] = common.absolute_url(image.image.url)
    return urls


def _line_name(turn: Turn, variant) -> str:
    title = variant.product.localized_title(turn.locale)
    name = variant.localized_name(turn.locale)
    return _("%(product)s (%(variant)s)") % {"product": title, "variant": name} if name else title


def _cards(turn: Turn, breakdown: PriceBreakdown) -> dict:
    lines = breakdown.lines[:CARDS_SHOWN]
    images = _first_images(sorted({line.variant.product_id for line in lines}))
    elements = []
    for line in lines:
        variant = line.variant
        subtitle = _("%(variant)s · %(quantity)d × %(price)s = %(total)s") % {
            "variant": variant.localized_name(turn.locale),
            "quantity": line.quantity,
            "price": common.money(turn, line.unit_price),
            "total": common.money(turn, line.total),
        }
        elements.append(
            builders.generic_element(
                variant.product.localized_title(turn.locale),
                subtitle=subtitle,
                image_url=images.get(variant.product_id),
                buttons=[
                    builders.postback_button("+1", payload_build("CART_INC", variant=variant.pk)),
                    builders.postback_button("−1", payload_build("CART_DEC", variant=variant.pk)),
                    builders.postback_button(
                        pgettext("button", "Remove"),
                        payload_build("CART_REMOVE", variant=variant.pk),
                    ),
                ],
            )
        )
    return builders.generic_template(elements)


def _summary(turn: Turn, cart: Cart, breakdown: PriceBreakdown) -> dict:
    count = sum(line.quantity for line in breakdown.lines)
    parts = [
        ngettext("Your cart (%(count)d item):", "Your cart (%(count)d items):", count)
        % {"count": count}
    ]
    for line in breakdown.lines:
        parts.append(
            _("%(quantity)d × %(name)s: %(total)s")
            % {
                "quantity": line.quantity,
                "name": _line_name(turn, line.variant),
                "total": common.money(turn, line.total),
            }
        )
    parts.append("")
    parts.append(_("Subtotal: %(amount)s") % {"amount": common.money(turn, breakdown.subtotal)})
    if breakdown.voucher is not None and breakdown.discount:
        parts.append(
            _("Discount (%(code)s): −%(amount)s")
            % {"code": breakdown.voucher.code, "amount": common.money(turn, breakdown.discount)}
        )
    elif cart.voucher_code and breakdown.voucher is None:
        parts.append(
            _("The code %(code)s no longer applies to this cart.") % {"code": cart.voucher_code}
        )
    if breakdown.tax and not breakdown.prices_include_tax:
        parts.append(_("Tax: %(amount)s") % {"amount": common.money(turn, breakdown.tax)})
    parts.append(_("Total: %(amount)s") % {"amount": common.money(turn, breakdown.total)})
    parts.append(_("Shipping is added at checkout."))
    return builders.text(
        "\n".join(parts),
        quick_replies=[
            common.qr_checkout(),
            builders.quick_reply(pgettext("quick reply", "Clear cart"), "CART_CLEAR"),
            common.qr_keep_shopping(),
        ],
    )


def _empty(turn: Turn, text: str | None = None) -> dict:
    return builders.text(
        text or _("Your cart is empty. Let's find something you like!"),
        quick_replies=[common.qr_shop(), common.qr_orders(), common.qr_menu()],
    )


def cart_show(turn: Turn, *, cart: Cart | None = None) -> None:
    """Say the cart: one card per line (with +1, −1, Remove) and the summary with the total."""
    if cart is None:
        cart = cart_open_of(turn.customer)
    lines = cart_lines_for_pricing(cart=cart) if cart is not None else []
    if not lines:
        turn.say(_empty(turn))
        return
    breakdown = cart_price_of_lines(cart=cart, lines=lines, voucher=cart_voucher(cart=cart))
    turn.say(_cards(turn, breakdown))
    turn.say(_summary(turn, cart, breakdown))


@on_payload("CART")
def cart(turn: Turn, payload: Payload) -> None:
    cart_show(turn)


def _line_of(turn: Turn, payload: Payload) -> tuple[Cart | None, CartLine | None, bool]:
    """The open cart and its line for the payload's variant; the flag is ``False`` when the
    payload is malformed. Only lines of the shopper's own cart are found, so another merchant's
    or a deleted variant is simply "not in your cart"."""
    variant_id = payload.int_param("variant")
    if variant_id is None:
        return None, None, False
    cart = cart_open_of(turn.customer)
    if cart is None:
        return None, None, True
    line = (
        CartLine.objects.select_related("variant__product")
        .filter(cart_id=cart.pk, variant_id=variant_id)
        .first()
    )
    return cart, line, True


def _not_in_cart(turn: Turn, cart: Cart | None) -> None:
    turn.say(builders.text(_("That item is no longer in your cart.")))
    cart_show(turn, cart=cart)


@on_payload("CART_INC", "CART_DEC")
def cart_step(turn: Turn, payload: Payload) -> None:
    cart, line, well_formed = _line_of(turn, payload)
    if not well_formed:
        turn.say(common.sorry_not_understood(turn))
        return
    if line is None:
        _not_in_cart(turn, cart)
        return
    step = 1 if payload.verb == "CART_INC" else -1
    cart_set_quantity(cart=cart, variant_id=line.variant_id, quantity=line.quantity + step)
    if line.quantity + step == 0:
        turn.say(
            builders.text(
                _("Removed %(item)s from your cart.") % {"item": _line_name(turn, line.variant)}
            )
        )
    cart_show(turn, cart=cart)


@on_payload("CART_REMOVE")
def cart_line_remove(turn: Turn, payload: Payload) -> None:
    cart, line, well_formed = _line_of(turn, payload)
    if not well_formed:
        turn.say(common.sorry_not_understood(turn))
        return
    if line is None:
        _not_in_cart(turn, cart)
        return
    cart_remove(cart=cart, variant_id=line.variant_id)
    turn.say(
        builders.text(
            _("Removed %(item)s from your cart.") % {"item": _line_name(turn, line.variant)}
        )
    )
    cart_show(turn, cart=cart)


@on_payload("CART_CLEAR")
def cart_empty(turn: Turn, payload: Payload) -> None:
    cart = cart_open_of(turn.customer)
    if cart is not None:
        cart_clear(cart=cart)
    turn.say(_empty(turn, _("Your cart is empty now. Let's find something else!")))
