"""Try again after an order expired or its payment failed: ``REORDER:<order id>``.

Puts the order's items back into the shopper's open cart (at today's prices and stock: the cart
never trusts the old order's amounts) and continues with checkout. Items that are no longer
available are named; the rest still go in.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from commerce.exceptions import CartError, OutOfStockError
from commerce.models import Order
from commerce.services.carts import cart_add, cart_get_open
from messenger import builders
from messenger.conversation.flows import common
from messenger.conversation.flows.checkout import checkout_start
from messenger.conversation.router import Payload, on_payload
from messenger.conversation.turn import Turn

RETRYABLE = {Order.Status.EXPIRED, Order.Status.PAYMENT_FAILED, Order.Status.CANCELLED}


@on_payload("REORDER")
def reorder(turn: Turn, payload: Payload) -> None:
    order_id = payload.int_param("arg")
    order = (
        Order.objects.filter(pk=order_id, customer=turn.customer, status__in=RETRYABLE)
        .prefetch_related("lines")
        .first()
        if order_id
        else None
    )
    if order is None:
        turn.say(common.menu_message(turn, _("Sorry, I can't find this order.")))
        return
    cart = cart_get_open(customer=turn.customer)
    missing = []
    for line in order.lines.all():
        if line.variant_id is None:
            missing.append(line.product_title)
            continue
        try:
            cart_add(cart=cart, variant_id=line.variant_id, quantity=line.quantity)
        except (CartError, OutOfStockError):
            missing.append(line.product_title)
    if missing:
        turn.say(
            builders.text(
                _("Sorry, these items are no longer available: %(items)s.")
                % {"items": "، ".join(missing) if turn.language == "ar" else ", ".join(missing)}
            )
        )
    if len(missing) == len(order.lines.all()):
        turn.say(common.menu_message(turn, _("Let's find something else.")))
        return
    checkout_start(turn)
