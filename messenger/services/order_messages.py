"""What the shopper hears about their order: receipt, shipping and delivery updates, refunds,
expiry and failed payments.

Commerce announces order transitions (``commerce.notifications``); ``MessengerConfig.ready``
subscribes the handlers below. They run inside the transition's transaction and only write
outbox rows, each with a dedupe key, so every message exists exactly once and only if the
transition committed. Every message is built to fit whatever the order holds (ADR 0007); one
that still cannot be built is recorded as a failed outbox row, never raised into the transition.

Post-purchase updates are ``UPDATE`` rows (tagged ``POST_PURCHASE_UPDATE`` outside the 24-hour
window); "try again" offers are ordinary replies.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from commerce.models import Order, OrderLine, Shipment
from commerce.notifications import OrderNotice, order_subscribe
from core.money import Money
from messenger import builders
from messenger.conversation.flows import common
from messenger.conversation.router import payload_build
from messenger.models import MessengerPage, OutboundMessage
from messenger.services.outbox import outbox_enqueue, outbox_record_unbuildable
from payments.models import Payment

logger = logging.getLogger(__name__)

Kind = OutboundMessage.Kind

_DEDUPE_KEY_MAX = OutboundMessage._meta.get_field("dedupe_key").max_length


def _page_for(order: Order) -> MessengerPage | None:
    """The page the customer talks to; None for orders that did not come from Messenger, or
    whose page now belongs to another shop (the outbox would refuse the row)."""
    customer = order.customer
    return MessengerPage.objects.filter(
        page_id=customer.page_id, merchant_id=customer.merchant_id
    ).first()


def _dedupe_key(prefix: str, detail: str = "") -> str:
    """``prefix`` + ``detail``, with a long ``detail`` (many parcels) replaced by its digest so
    the key always fits the column."""
    key = f"{prefix}{detail}"
    if len(key) <= _DEDUPE_KEY_MAX:
        return key
    return f"{prefix}#{hashlib.sha256(detail.encode()).hexdigest()[:32]}"


def _send(order: Order, build: Callable[[], dict], *, key: str, kind: str = Kind.UPDATE) -> None:
    """Queue the message ``build()`` returns; when it cannot be built, record that instead.

    Nothing about formatting a message may stop the order change that causes it (ADR 0007):
    the build runs in a savepoint, and any failure becomes a ``failed`` outbox row with the
    error (shown in *Needs attention* and on the order's timeline) rather than an exception.
    """
    page = _page_for(order)
    if page is None:
        return
    try:
        with transaction.atomic():
            message = build()
    except Exception as error:
        logger.exception("Order %s: the message %s could not be built.", order.pk, key)
        outbox_record_unbuildable(
            customer=order.customer,
            page=page,
            kind=kind,
            dedupe_key=key,
            order=order,
            error_message=f"Not sent, the message could not be built: "
            f"{type(error).__name__}: {error}",
        )
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
    if payment is None or not payment.card_last4.strip():
        return _("Card")
    return f"{(payment.card_brand.strip() or _('Card')).title()} {payment.card_last4.strip()}"


def _receipt_address(order: Order) -> dict | None:
    """The shipping address, or None (it is optional) when the platform's required parts are
    missing: a partial address would fail the whole receipt."""
    street, city = order.shipping_line1.strip(), order.shipping_city.strip()
    country = order.shipping_country.strip()
    if not (street and city and country):
        return None
    return {
        "street_1": street,
        "street_2": order.shipping_line2.strip(),
        "city": city,
        "postal_code": order.shipping_postal_code.strip(),
        "state": order.shipping_region.strip(),
        "country": country,
    }


def _line_element(line: OrderLine, currency: str) -> dict:
    # ``price`` is what the line costs (unit price x quantity): the platform's reference adds
    # the element prices up to the subtotal (docs/platform-rules.md).
    return builders.receipt_element(
        line.product_title.strip() or line.sku.strip() or _("Item"),
        subtitle=line.variant_name.strip(),
        quantity=line.quantity,
        price=Money(line.total_minor, currency),
        image_url=line.image_url if builders.is_http_url(line.image_url) else None,
    )


def receipt_elements(lines: Sequence[OrderLine], currency: str) -> list[dict]:
    """One receipt element per order line, at most ``RECEIPT_ELEMENTS_MAX`` of them: past the
    platform's limit the last element sums up the rest ("and 12 more items", their units and
    their price), so the element prices still add up to the subtotal."""
    limit = builders.RECEIPT_ELEMENTS_MAX
    shown = list(lines) if len(lines) <= limit else list(lines[: limit - 1])
    elements = [_line_element(line, currency) for line in shown]
    rest = lines[len(shown) :]
    if rest:
        more = len(rest)
        elements.append(
            builders.receipt_element(
                ngettext("and %(count)d more item", "and %(count)d more items", more)
                % {"count": more},
                quantity=sum(line.quantity for line in rest),
                price=Money(sum(line.total_minor for line in rest), currency),
            )
        )
    return elements


def receipt_message(order: Order) -> dict:
    """The receipt template for a paid order; amounts converted exactly from minor units.

    Built to fit any real order: lines past the platform's 100 summed up in one element, long
    titles truncated, images that are not http(s) URLs and incomplete addresses left out.
    """
    currency = order.currency
    lines = list(order.lines.order_by("id"))
    adjustments = []
    if order.discount_minor:
        name = order.voucher_code.strip() or _("Discount")
        adjustments.append({"name": name, "amount": order.discount})
    tax = order.tax if order.tax_minor and not order.prices_include_tax else None
    customer_name = f"{order.customer.first_name} {order.customer.last_name}".strip()
    return builders.receipt_template(
        recipient_name=order.shipping_name.strip() or customer_name or _("Customer"),
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
        elements=receipt_elements(lines, currency),
    )


def _follow_up(text: str) -> dict:
    return builders.text(text, quick_replies=[common.qr_orders(), common.qr_shop()])


def order_paid_send_receipt(order: Order, **data) -> None:
    with translation.override(_language(order)):
        _send(order, lambda: receipt_message(order), key=f"receipt:{order.pk}")
        _send(
            order,
            lambda: _follow_up(
                _("Thank you! Order %(number)s is paid. We will tell you here when it ships.")
                % {"number": order.number}
            ),
            key=f"receipt-note:{order.pk}",
        )


def shipping_update_message(order: Order, shipment: Shipment) -> dict:
    """ "Order ... has shipped": a *Track package* button when the link is usable, *My orders*."""
    text = _("Good news: order %(number)s has shipped with %(carrier)s.") % {
        "number": order.number,
        "carrier": shipment.carrier,
    }
    if shipment.tracking_number:
        text += " " + _("Tracking number: %(tracking)s.") % {"tracking": shipment.tracking_number}
    buttons = []
    if builders.is_http_url(shipment.tracking_url):
        buttons.append(builders.url_button(_("Track package"), shipment.tracking_url))
    buttons.append(builders.postback_button(_("My orders"), payload_build("ORDER", order.pk)))
    return builders.button_template(text, buttons, quick_replies=[common.qr_shop()])


def order_fulfilled_send_shipping_update(order: Order, *, shipment: Shipment, **data) -> None:
    with translation.override(_language(order)):
        _send(
            order,
            lambda: shipping_update_message(order, shipment),
            key=f"shipment:{shipment.pk}",
        )


def order_delivered_send_update(order: Order, *, shipments=(), **data) -> None:
    with translation.override(_language(order)):
        text = _("Order %(number)s has been delivered. Enjoy!") % {"number": order.number}
        parcels = ",".join(str(shipment.pk) for shipment in shipments)
        _send(
            order,
            lambda: _follow_up(text),
            key=_dedupe_key(f"delivered:{order.pk}:", parcels),
        )


def order_refunded_send_update(
    order: Order, *, amount_minor: int, reference: str = "", fully_refunded: bool = False, **data
) -> None:
    with translation.override(_language(order)):
        text = _("We refunded %(amount)s for order %(number)s.") % {
            "amount": _money(order, amount_minor),
            "number": order.number,
        }
        text += " " + _("It can take a few days to appear on your statement.")
        _send(
            order,
            lambda: _follow_up(text),
            key=_dedupe_key(f"refund:{order.pk}:", str(reference or amount_minor)),
        )


def order_refund_failed_send_update(
    order: Order, *, amount_minor: int, reference: str = "", **data
) -> None:
    """A refund the shopper was told about came back (their card was closed, say): correct
    the earlier message and offer a person."""
    with translation.override(_language(order)):
        text = _(
            "Sorry: the refund of %(amount)s for order %(number)s did not reach you, your bank "
            "sent it back to us. We will contact you here to return the money another way."
        ) % {"amount": _money(order, amount_minor), "number": order.number}
        _send(
            order,
            lambda: builders.text(text, quick_replies=[common.qr_help(), common.qr_orders()]),
            key=_dedupe_key(f"refund-failed:{order.pk}:", str(reference or amount_minor)),
        )


def _try_again(order: Order, text: str, *, key: str) -> None:
    def build() -> dict:
        return builders.text(
            text,
            quick_replies=[
                builders.quick_reply(_("Try again"), payload_build("REORDER", order.pk)),
                common.qr_shop(),
                common.qr_help(),
            ],
        )

    _send(order, build, key=key, kind=Kind.RESPONSE)


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
        _send(order, lambda: _follow_up(text), key=f"cancelled:{order.pk}")


def order_messages_subscribe() -> None:
    """Called once from ``MessengerConfig.ready``."""
    order_subscribe(OrderNotice.PAID, order_paid_send_receipt)
    order_subscribe(OrderNotice.FULFILLED, order_fulfilled_send_shipping_update)
    order_subscribe(OrderNotice.DELIVERED, order_delivered_send_update)
    order_subscribe(OrderNotice.REFUNDED, order_refunded_send_update)
    order_subscribe(OrderNotice.REFUND_FAILED, order_refund_failed_send_update)
    order_subscribe(OrderNotice.EXPIRED, order_expired_offer_retry)
    order_subscribe(OrderNotice.PAYMENT_FAILED, order_payment_failed_offer_retry)
    order_subscribe(OrderNotice.CANCELLED, order_cancelled_send_update)
