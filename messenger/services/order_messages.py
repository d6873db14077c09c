"""What the shopper hears about their order: receipt, shipping and delivery updates, refunds,
expiry and failed payments.

Commerce announces order transitions (``commerce.notifications``); ``MessengerConfig.ready``
subscribes the handlers below. They run inside the transition's transaction and only write
outbox rows, each with a dedupe key, so every message exists exactly once and only if the
transition committed. Post-purchase updates are ``UPDATE`` rows (tagged
``POST_PURCHASE_UPDATE`` outside the 24-hour window); "try again" offers are ordinary replies.
"""

from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext as _

from commerce.models import Order, Shipment
from commerce.notifications import OrderNotice, order_subscribe
from core.money import Money
from messenger import builders
from messenger.conversation.flows import common
from messenger.conversation.router import payload_build
from messenger.models import MessengerPage, OutboundMessage
from messenger.services.outbox import outbox_enqueue
from payments.models import Payment

Kind = OutboundMessage.Kind


def _page_for(order: Order) -> MessengerPage | None:
    """The page the customer talks to; None for orders that did not come from Messenger."""
    return MessengerPage.objects.filter(page_id=order.customer.page_id).first()


def _send(order: Order, message: dict, *, key: str, kind: str = Kind.UPDATE) -> None:
    page = _page_for(order)
    if page is None:
        return
    outbox_enqueue(
        customer=order.customer, page=page, message=message, kind=kind, dedupe_key=key, order=order
    )


def _language(order: Order) -> str:
    """The customer's language now (they may have switched since ordering)."""
    chosen = (order.customer.conversation_context or {}).get("language")
    if chosen in {"ar", "en"}:
        return chosen
    locale = order.customer.locale or order.locale
    return "ar" if locale.lower().startswith("ar") else "en"


def _money(order: Order, amount_minor: int) -> str:
    return common.money(None, Money(amount_minor, order.currency))


def _payment_method(order: Order) -> str:
    payment = (
        Payment.objects.filter(order=order, status=Payment.Status.SUCCEEDED)
        .order_by("-succeeded_at", "-id")
        .first()
    )
    if payment is None or not payment.card_last4:
        return _("Card")
    return f"{(payment.card_brand or _('Card')).title()} {payment.card_last4}"


def _receipt_address(order: Order) -> dict | None:
    if not order.shipping_line1:
        return None
    return {
        "street_1": order.shipping_line1,
        "street_2": order.shipping_line2,
        "city": order.shipping_city,
        "postal_code": order.shipping_postal_code,
        "state": order.shipping_region,
        "country": order.shipping_country,
    }


def receipt_message(order: Order) -> dict:
    """The receipt template for a paid order; amounts converted exactly from minor units."""
    currency = order.currency
    elements = [
        builders.receipt_element(
            line.product_title,
            subtitle=line.variant_name,
            quantity=line.quantity,
            price=Money(line.unit_price_minor, currency),
            image_url=line.image_url or None,
        )
        for line in order.lines.all()
    ]
    adjustments = []
    if order.discount_minor:
        name = order.voucher_code or _("Discount")
        adjustments.append({"name": name, "amount": order.discount})
    tax = order.tax if order.tax_minor and not order.prices_include_tax else None
    customer_name = f"{order.customer.first_name} {order.customer.last_name}".strip()
    return builders.receipt_template(
        recipient_name=order.shipping_name or customer_name or _("Customer"),
        order_number=order.number,
        currency=currency,
        payment_method=_payment_method(order),
        order_url=None,
        timestamp=order.paid_at or order.created_at,
        address=_receipt_address(order),
        summary={
            "subtotal": order.subtotal,
            "shipping_cost": order.shipping,
            "total_tax": tax,
            "total_cost": order.total,
        },
        adjustments=adjustments,
        elements=elements,
    )


def _follow_up(text: str) -> dict:
    return builders.text(text, quick_replies=[common.qr_orders(), common.qr_shop()])


def order_paid_send_receipt(order: Order, **data) -> None:
    with translation.override(_language(order)):
        _send(order, receipt_message(order), key=f"receipt:{order.pk}")
        _send(
            order,
            _follow_up(
                _("Thank you! Order %(number)s is paid. We will tell you here when it ships.")
                % {"number": order.number}
            ),
            key=f"receipt-note:{order.pk}",
        )


def order_fulfilled_send_shipping_update(order: Order, *, shipment: Shipment, **data) -> None:
    with translation.override(_language(order)):
        text = _("Good news: order %(number)s has shipped with %(carrier)s.") % {
            "number": order.number,
            "carrier": shipment.carrier,
        }
        if shipment.tracking_number:
            text += " " + _("Tracking number: %(tracking)s.") % {
                "tracking": shipment.tracking_number
            }
        buttons = []
        if shipment.tracking_url:
            buttons.append(builders.url_button(_("Track package"), shipment.tracking_url))
        buttons.append(builders.postback_button(_("My orders"), payload_build("ORDER", order.pk)))
        message = builders.button_template(text, buttons, quick_replies=[common.qr_shop()])
        _send(order, message, key=f"shipment:{shipment.pk}")


def order_delivered_send_update(order: Order, *, shipments=(), **data) -> None:
    with translation.override(_language(order)):
        text = _("Order %(number)s has been delivered. Enjoy!") % {"number": order.number}
        parcels = ",".join(str(shipment.pk) for shipment in shipments)
        _send(order, _follow_up(text), key=f"delivered:{order.pk}:{parcels}")


def order_refunded_send_update(
    order: Order, *, amount_minor: int, reference: str = "", fully_refunded: bool = False, **data
) -> None:
    with translation.override(_language(order)):
        text = _("We refunded %(amount)s for order %(number)s.") % {
            "amount": _money(order, amount_minor),
            "number": order.number,
        }
        text += " " + _("It can take a few days to appear on your statement.")
        _send(order, _follow_up(text), key=f"refund:{order.pk}:{reference or amount_minor}")


def _try_again(order: Order, text: str, *, key: str) -> None:
    message = builders.text(
        text,
        quick_replies=[
            builders.quick_reply(_("Try again"), payload_build("REORDER", order.pk)),
            common.qr_shop(),
            common.qr_help(),
        ],
    )
    _send(order, message, key=key, kind=Kind.RESPONSE)


def order_expired_offer_retry(order: Order, **data) -> None:
    with translation.override(_language(order)):
        _try_again(
            order,
            _("Order %(number)s was not paid in time, so we released its items.")
            % {"number": order.number},
            key=f"expired:{order.pk}",
        )


def order_payment_failed_offer_retry(order: Order, **data) -> None:
    with translation.override(_language(order)):
        _try_again(
            order,
            _("The payment for order %(number)s did not go through. Nothing was charged.")
            % {"number": order.number},
            key=f"payment-failed:{order.pk}",
        )


def order_cancelled_send_update(order: Order, *, reason: str = "", **data) -> None:
    with translation.override(_language(order)):
        text = _("Order %(number)s was cancelled.") % {"number": order.number}
        _send(order, _follow_up(text), key=f"cancelled:{order.pk}")


def order_messages_subscribe() -> None:
    """Called once from ``MessengerConfig.ready``."""
    order_subscribe(OrderNotice.PAID, order_paid_send_receipt)
    order_subscribe(OrderNotice.FULFILLED, order_fulfilled_send_shipping_update)
    order_subscribe(OrderNotice.DELIVERED, order_delivered_send_update)
    order_subscribe(OrderNotice.REFUNDED, order_refunded_send_update)
    order_subscribe(OrderNotice.EXPIRED, order_expired_offer_retry)
    order_subscribe(OrderNotice.PAYMENT_FAILED, order_payment_failed_offer_retry)
    order_subscribe(OrderNotice.CANCELLED, order_cancelled_send_update)
