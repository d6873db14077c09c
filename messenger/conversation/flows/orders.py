"""My orders (DESIGN.md section 5, flow 7): recent orders, then one order with its tracking.

Payloads: ``ORDERS`` (the five most recent orders as a carousel) and ``ORDER:<id>`` (one order:
lines, amounts, status, shipments with a *Track package* button, and *Pay* again while it waits
for payment). Only the customer's own orders are ever shown: any other id is "not found".
"""

from __future__ import annotations

from datetime import timedelta

from babel.dates import format_date
from django.db.models import Prefetch
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from commerce.models import Order, OrderLine, Shipment
from messenger import builders
from messenger.conversation.flows import common
from messenger.conversation.flows.checkout import order_pay_button, order_summary_lines
from messenger.conversation.router import Payload, on_payload, payload_build
from messenger.conversation.turn import Turn

RECENT_ORDERS = 5
_BUTTON_TEXT_LIMIT = 640
_MAX_BUTTONS = 3

Status = Order.Status


def status_label(status: str) -> str:
    """The order status in the shopper's words (and language)."""
    labels = {
        Status.PENDING_PAYMENT: pgettext("order status", "Waiting for payment"),
        Status.PAID: pgettext("order status", "Paid, being prepared"),
        Status.FULFILLED: pgettext("order status", "Shipped"),
        Status.DELIVERED: pgettext("order status", "Delivered"),
        Status.EXPIRED: pgettext("order status", "Expired (not paid in time)"),
        Status.CANCELLED: pgettext("order status", "Cancelled"),
        Status.PAYMENT_FAILED: pgettext("order status", "Payment failed"),
        Status.PARTIALLY_REFUNDED: pgettext("order status", "Partly refunded"),
        Status.REFUNDED: pgettext("order status", "Refunded"),
    }
    return labels.get(status, status)


def _customer_orders(turn: Turn):
    return Order.objects.filter(customer_id=turn.customer.pk, merchant_id=turn.merchant.pk)


def _placed_on(turn: Turn, order: Order) -> str:
    """The order date in the customer's own time zone (Messenger gives an hour offset)."""
    offset = turn.customer.timezone_offset or 0
    local = order.created_at + timedelta(hours=offset)
    return format_date(local.date(), format="medium", locale=turn.locale)


def _is_payable(order: Order) -> bool:
    return (
        order.status == Status.PENDING_PAYMENT
        and order.reserved_until is not None
        and order.reserved_until > timezone.now()
    )


def _track_buttons(order: Order) -> list[dict]:
    return [
        builders.url_button(
            pgettext("button", "Track package"), shipment.tracking_url, webview_height_ratio="full"
        )
        for shipment in order.shipments.all()
        if builders.is_http_url(shipment.tracking_url)
    ]


@on_payload("ORDERS")
def orders_list(turn: Turn, payload: Payload) -> None:
    orders = list(
        _customer_orders(turn)
        .order_by("-created_at", "-id")
        .prefetch_related(
            Prefetch("lines", queryset=OrderLine.objects.order_by("id")),
            Prefetch("shipments", queryset=Shipment.objects.order_by("shipped_at", "id")),
        )[:RECENT_ORDERS]
    )
    if not orders:
        turn.say(
            common.menu_message(turn, _("You have no orders yet. Have a look at what we sell:"))
        )
        return
    elements = []
    for order in orders:
        subtitle = " · ".join(
            [status_label(order.status), common.money(turn, order.total), _placed_on(turn, order)]
        )
        buttons = [builders.postback_button(pgettext("button", "Details"), _order_payload(order))]
        if _is_payable(order):
            buttons.append(order_pay_button(turn, order))
        buttons += _track_buttons(order)[:1]
        lines = list(order.lines.all())
        elements.append(
            builders.generic_element(
                _("Order %(number)s") % {"number": order.number},
                subtitle=subtitle,
                image_url=next(
                    (line.image_url for line in lines if builders.is_http_url(line.image_url)),
                    None,
                ),
                buttons=buttons[:_MAX_BUTTONS],
            )
        )
    turn.say(
        builders.generic_template(elements, quick_replies=common.main_menu_quick_replies(turn))
    )


def _order_payload(order: Order) -> str:
    return payload_build("ORDER", order.pk)


def _order_from(turn: Turn, payload: Payload) -> Order | None:
    """The customer's order named by id (``ORDER:42``) or number (``ORDER:A1B2-1042``)."""
    orders = _customer_orders(turn).prefetch_related("lines", "shipments")
    order_id = payload.int_param("arg")
    if order_id is not None:
        return orders.filter(pk=order_id).first()
    if payload.arg and len(payload.arg) <= 24:
        return orders.filter(number=payload.arg.upper()).first()
    return None


@on_payload("ORDER")
def order_detail(turn: Turn, payload: Payload) -> None:
    order = _order_from(turn, payload)
    quick_replies = [common.qr_orders(), common.qr_shop(), common.qr_help(), common.qr_menu()]
    if order is None:
        turn.say(
            builders.text(
                _("Sorry, I can't find this order."),
                quick_replies=quick_replies,
            )
        )
        return
    text = [
        _("Order %(number)s: %(status)s")
        % {"number": order.number, "status": status_label(order.status)},
        _("Placed on %(date)s") % {"date": _placed_on(turn, order)},
        "",
        *order_summary_lines(turn, order),
    ]
    shipments = list(order.shipments.all())
    if shipments:
        text.append("")
    for shipment in shipments:
        if shipment.tracking_number:
            line = _("Shipped with %(carrier)s, tracking number %(number)s") % {
                "carrier": shipment.carrier,
                "number": shipment.tracking_number,
            }
        else:
            line = _("Shipped with %(carrier)s") % {"carrier": shipment.carrier}
        if shipment.delivered_at:
            line += " · " + pgettext("shipment", "delivered")
        text.append(line)
    buttons = []
    if _is_payable(order):
        text += ["", _("We are holding your items until you pay.")]
        buttons.append(order_pay_button(turn, order))
    buttons += _track_buttons(order)
    body = "\n".join(text)
    if not buttons:
        turn.say(builders.text(body, quick_replies=quick_replies))
    elif len(body) <= _BUTTON_TEXT_LIMIT:
        turn.say(
            builders.button_template(body, buttons[:_MAX_BUTTONS], quick_replies=quick_replies)
        )
    else:
        turn.say(builders.text(body))
        turn.say(
            builders.button_template(
                _("Order %(number)s") % {"number": order.number},
                buttons[:_MAX_BUTTONS],
                quick_replies=quick_replies,
            )
        )
