"""Try again after an order expired or its payment failed: ``REORDER:<order id>``.

Puts the order's items back into the shopper's open cart (at today's prices and stock: the cart
never trusts the old order's amounts) and continues with checkout. Items that are no longer
available are named; the rest still go in.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from commerce.models import Order
from messenger import builders
from messenger.conversation.flows import common
from messenger.conversation.flows.checkout import cart_refill_from_order, checkout_start
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
    missing = cart_refill_from_order(turn, order)
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
