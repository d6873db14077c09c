"""Orders: placement from a cart, and one service per status transition.

Placement (:func:`order_create_from_cart`) prices the cart server-side, snapshots its lines,
reserves the stock until ``now + STOCK_RESERVATION_MINUTES`` and hands out a human number such as
``A1B2-1042``. Everything happens in one transaction: when a line is out of stock or the voucher
is used up, nothing at all is written.

Status transitions. Each service locks the order row (``select_for_update``), checks the move
against this one table, records an ``OrderEvent`` and announces an ``OrderNotice``
(``commerce.notifications``); an illegal move raises ``InvalidTransition`` and changes nothing.

==================  =====================================================  =====================
from                to                                                     services
==================  =====================================================  =====================
pending_payment     paid, payment_failed, expired, cancelled               order_mark_paid,
                                                                           order_payment_failed,
                                                                           order_expire,
                                                                           order_cancel
payment_failed      cancelled                                              order_cancel
paid                fulfilled, partially_refunded, refunded                order_fulfil,
                                                                           order_record_refund
fulfilled           delivered, partially_refunded, refunded                order_mark_delivered,
                                                                           order_record_refund
delivered           partially_refunded, refunded                           order_record_refund
partially_refunded  fulfilled, delivered, partially_refunded, refunded     all three above
expired, cancelled,  (none: final)
refunded
==================  =====================================================  =====================

Not in the table because the status does not change: a further shipment of a fulfilled order
(partial shipments), the delivery of one of several shipments, a refund of a duplicate payment
(the order is still paid in full), review flags and notes.

Refunds follow what is left paid for the order (its payments net of their refunds, which
payments tells :func:`order_record_refund`), not the sum of refunds: nothing left -> refunded,
less than the total -> partially_refunded. One move is outside the table, because only the
payment provider can cause it: a refund that fails after it had succeeded gives the money back
to the order (:func:`order_record_refund_reversal`, :data:`REVERSALS`): refunded or
partially_refunded -> partially_refunded, or back to paid / fulfilled / delivered.

Stock: ``paid`` sells the reservation (``stock_sell``); ``expired``, ``cancelled`` and
``payment_failed`` release it (``stock_release``). Both act only on active reservations and the
status check runs under the row lock, so each reservation is sold or released exactly once, even
when a webhook, a staff member and the expiry sweep act on one order at the same moment. Leaving
``pending_payment`` without payment also gives the voucher use back.

Every transition service returns the fresh order and also copies its fields onto the instance
it was given, so callers holding that instance do not read a stale status.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from commerce.exceptions import (
    AddressError,
    CartError,
    InvalidTransition,
    RefundError,
    ShippingError,
    VoucherError,
)
from commerce.models import (
    Address,
    Cart,
    Merchant,
    Order,
    OrderEvent,
    OrderLine,
    ProductImage,
    Shipment,
    ShippingMethod,
    StockReservation,
    Voucher,
)
from commerce.notifications import OrderNotice, order_announce
from commerce.selectors.carts import cart_lines_for_pricing, cart_voucher
from commerce.services.pricing import price_lines
from commerce.services.sales_figures import (
    sales_record_paid,
    sales_record_placed,
    sales_record_refund,
)
from commerce.services.stock import StockMovement, stock_release, stock_reserve, stock_sell
from commerce.services.submissions import submission_key_clean, submission_reused
from core.exceptions import ApplicationError

__all__ = [
    "REVERSALS",
    "TRANSITIONS",
    "order_add_note",
    "order_cancel",
    "order_create_from_cart",
    "order_expire",
    "order_expire_due",
    "order_flag_for_review",
    "order_fulfil",
    "order_mark_delivered",
    "order_mark_paid",
    "order_mark_paid_if_pending",
    "order_number_assign",
    "order_number_prefix",
    "order_payment_failed",
    "order_record_refund",
    "order_record_refund_reversal",
]

logger = logging.getLogger(__name__)

Status = Order.Status
Actor = OrderEvent.Actor
Kind = OrderEvent.Kind

TRANSITIONS: dict[str, frozenset[str]] = {
    Status.PENDING_PAYMENT: frozenset(
        {Status.PAID, Status.PAYMENT_FAILED, Status.EXPIRED, Status.CANCELLED}
    ),
    # A later issue may allow payment_failed -> paid (a retried payment); not yet.
    Status.PAYMENT_FAILED: frozenset({Status.CANCELLED}),
    Status.PAID: frozenset({Status.FULFILLED, Status.PARTIALLY_REFUNDED, Status.REFUNDED}),
    Status.FULFILLED: frozenset({Status.DELIVERED, Status.PARTIALLY_REFUNDED, Status.REFUNDED}),
    Status.DELIVERED: frozenset({Status.PARTIALLY_REFUNDED, Status.REFUNDED}),
    Status.PARTIALLY_REFUNDED: frozenset(
        {Status.FULFILLED, Status.DELIVERED, Status.PARTIALLY_REFUNDED, Status.REFUNDED}
    ),
    Status.EXPIRED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.REFUNDED: frozenset(),
}

# "Order A1B2-1042 is <state>; it cannot be <action>."
_STATE_WORDS = {
    Status.PENDING_PAYMENT: pgettext_lazy("order state", "awaiting payment"),
    Status.PAID: pgettext_lazy("order state", "paid"),
    Status.FULFILLED: pgettext_lazy("order state", "shipped"),
    Status.DELIVERED: pgettext_lazy("order state", "delivered"),
    Status.EXPIRED: pgettext_lazy("order state", "expired"),
    Status.CANCELLED: pgettext_lazy("order state", "cancelled"),
    Status.PAYMENT_FAILED: pgettext_lazy("order state", "unpaid after a failed payment"),
    Status.PARTIALLY_REFUNDED: pgettext_lazy("order state", "partially refunded"),
    Status.REFUNDED: pgettext_lazy("order state", "refunded"),
}
_ACTION_WORDS = {
    Status.PAID: pgettext_lazy("order action", "marked paid"),
    Status.PAYMENT_FAILED: pgettext_lazy("order action", "marked as a failed payment"),
    Status.EXPIRED: pgettext_lazy("order action", "expired"),
    Status.CANCELLED: pgettext_lazy("order action", "cancelled"),
    Status.FULFILLED: pgettext_lazy("order action", "shipped"),
    Status.DELIVERED: pgettext_lazy("order action", "marked delivered"),
    Status.PARTIALLY_REFUNDED: pgettext_lazy("order action", "refunded"),
    Status.REFUNDED: pgettext_lazy("order action", "refunded"),
}
_EVENT_KINDS = {
    Status.PAID: Kind.PAID,
    Status.PAYMENT_FAILED: Kind.PAYMENT_FAILED,
    Status.EXPIRED: Kind.EXPIRED,
    Status.CANCELLED: Kind.CANCELLED,
    Status.FULFILLED: Kind.FULFILLED,
    Status.DELIVERED: Kind.DELIVERED,
    Status.PARTIALLY_REFUNDED: Kind.REFUNDED,
    Status.REFUNDED: Kind.REFUNDED,
}
# Statuses an order only reaches after its payment was recorded.
_PAID_STATUSES = frozenset(
    {
        Status.PAID,
        Status.FULFILLED,
        Status.DELIVERED,
        Status.PARTIALLY_REFUNDED,
        Status.REFUNDED,
    }
)


# -- order numbers ----------------------------------------------------------------------------

_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_ORDER_NUMBER_MAX_LENGTH = Order._meta.get_field("number").max_length


def _base32(value: int, length: int) -> str:
    return "".join(_BASE32[(value >> (5 * i)) & 31] for i in reversed(range(length)))


def _generated_prefix(merchant_id: int) -> str:
    """A stable code for the merchant id: four characters up to id 2**20, then six.

    Not a hash: multiplying by an odd constant and XOR-ing with a constant modulo 2**bits is a
    bijection, so no two merchants ever get the same code (a 4-character hash would collide
    once there are about a thousand merchants, and then their order numbers would too), while
    consecutive merchants still get unrelated-looking codes.
    """
    for chars in (4, 6):
        bits = 5 * chars
        if merchant_id < 2**bits:
            scrambled = ((merchant_id * 0x2F4A7C15) % 2**bits) ^ (0x5A3C96E1 % 2**bits)
            return _base32(scrambled, chars)
    return _base32(merchant_id, 8)


def order_number_prefix(merchant: Merchant) -> str:
    """The merchant's own prefix if set, else a stable code derived from its id (``A1B2``)."""
    return merchant.order_number_prefix or _generated_prefix(merchant.pk)


def order_number_assign(*, order: Order) -> str:
    """Give ``order`` its human number ``<prefix>-<sequence>`` and return it.

    Increments ``Merchant.order_sequence`` with an ``F()`` update, which holds the merchant row
    lock until the transaction ends: call it as the last write of the placement transaction so
    concurrent placements for one merchant wait on each other as briefly as possible. A number
    already taken (a merchant picked a prefix equal to another merchant's) is skipped.
    """
    prefix = order_number_prefix(order.merchant)
    while True:
        Merchant.objects.filter(pk=order.merchant_id).update(order_sequence=F("order_sequence") + 1)
        sequence = (
            Merchant.objects.filter(pk=order.merchant_id)
            .values_list("order_sequence", flat=True)
            .get()
        )
        number = f"{prefix}-{sequence}"[:_ORDER_NUMBER_MAX_LENGTH]
        if not Order.objects.filter(number=number).exclude(pk=order.pk).exists():
            break
    Order.objects.filter(pk=order.pk).update(number=number)
    order.number = number
    return number


# -- placement --------------------------------------------------------------------------------


def _cart_lock(cart: Cart) -> Cart:
    """Lock the cart row only (not its merchant or customer) and check it is still open."""
    locked = (
        Cart.objects.select_related("merchant", "customer")
        .select_for_update(of=("self",))
        .get(pk=cart.pk)
    )
    if locked.status != Cart.Status.OPEN:
        raise CartError(_("This cart is closed. Please start a new one."), code="cart_closed")
    return locked


def _cart_voucher(cart: Cart) -> Voucher | None:
    """The cart's voucher; a code that names no voucher any more is refused, not ignored.

    ``cart_price`` ignores a voucher that stopped applying (the summary shows the price without
    it and the conversation says why); placement refuses it instead, so a shopper never pays a
    total they were not shown.
    """
    voucher = cart_voucher(cart=cart)
    if cart.voucher_code and voucher is None:
        raise VoucherError(_("This code is no longer valid."), code="voucher_unknown")
    return voucher


def _voucher_use(voucher: Voucher) -> None:
    """Count one use, refusing in the same statement once the limit is reached (no race)."""
    used = (
        Voucher.objects.filter(pk=voucher.pk)
        .filter(Q(usage_limit__isnull=True) | Q(times_used__lt=F("usage_limit")))
        .update(times_used=F("times_used") + 1)
    )
    if not used:
        raise VoucherError(_("This code has been used up."), code="voucher_used_up")


def _voucher_give_back(order: Order) -> None:
    if order.voucher_id:
        Voucher.objects.filter(pk=order.voucher_id, times_used__gt=0).update(
            times_used=F("times_used") - 1
        )


def _image_urls(product_ids: Iterable[int]) -> dict[int, str]:
    """Absolute URL of each product's first image, in one query."""
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    urls: dict[int, str] = {}
    images = ProductImage.objects.filter(product_id__in=set(product_ids)).order_by(
        "product_id", "position", "id"
    )
    for image in images.only("id", "product_id", "image"):
        if image.product_id in urls or not image.image:
            continue
        url = image.image.url
        if not url.startswith(("http://", "https://")):
            url = base + url
        urls[image.product_id] = url if len(url) <= 500 else ""
    return urls


def _contact(*, email: str, phone: str, customer, address: Address | None) -> tuple[str, str]:
    email = (email or customer.email or "").strip()
    phone = (phone or customer.phone or (address.phone if address else "") or "").strip()
    if email:
        try:
            validate_email(email)
        except ValidationError:
            raise AddressError(
                _("Please enter a valid email address."), code="email_invalid"
            ) from None
    if len(phone) > Order._meta.get_field("contact_phone").max_length:
        raise AddressError(_("Please enter a valid phone number."), code="phone_invalid")
    return email, phone


def _shipping_method_name(method: ShippingMethod | None, locale: str) -> str:
    if method is None:
        return ""
    if locale.lower().startswith("ar") and method.name_ar:
        return method.name_ar
    return method.name


@transaction.atomic
def order_create_from_cart(
    *,
    cart: Cart,
    shipping_method: ShippingMethod | None = None,
    address: Address | None = None,
    contact_email: str = "",
    contact_phone: str = "",
    now: datetime | None = None,
) -> Order:
    """Place a ``pending_payment`` order from the customer's open cart and reserve its stock.

    Prices come from the catalog (``pricing.price_lines``), never from the caller. The cart is
    locked first, so placing one cart twice at once yields one order and a ``cart_closed``
    error. Contact details default to the customer's; the stock is held until
    ``now + STOCK_RESERVATION_MINUTES``. Nothing is announced: placement is not a notice.

    :raises CartError: the cart is not open (``cart_closed``) or has no buyable line
        (``cart_empty``), or mixes currencies.
    :raises OutOfStockError: a line cannot be reserved. Nothing is written at all.
    :raises VoucherError: the cart's voucher is unknown, no longer applies or is used up.
    :raises ShippingError: the method is another merchant's, inactive, or does not deliver there.
    :raises AddressError: the address is another customer's, or the contact is malformed.
    """
    now = now or timezone.now()
    cart_instance = cart
    cart = _cart_lock(cart)
    merchant, customer = cart.merchant, cart.customer
    cart_lines = cart_lines_for_pricing(cart=cart)
    if not cart_lines:
        raise CartError(_("The cart is empty."), code="cart_empty")
    if address is not None and address.customer_id != customer.pk:
        raise AddressError(_("This address is not available."), code="address_unknown")
    if shipping_method is not None and shipping_method.merchant_id != merchant.pk:
        raise ShippingError(_("This shipping method is not available."), code="shipping_inactive")
    email, phone = _contact(
        email=contact_email, phone=contact_phone, customer=customer, address=address
    )
    voucher = _cart_voucher(cart)
    breakdown = price_lines(
        merchant=merchant,
        lines=cart_lines,
        voucher=voucher,
        shipping_method=shipping_method,
        country=address.country.upper() if address else None,
        now=now,
    )
    locale = customer.locale
    reserved_until = now + timedelta(minutes=settings.STOCK_RESERVATION_MINUTES)
    order = Order.objects.create(
        merchant=merchant,
        customer=customer,
        # Unique placeholder; the real number is assigned last (see order_number_assign).
        number=f"new-{uuid4().hex[:20]}",
        status=Status.PENDING_PAYMENT,
        currency=breakdown.currency,
        locale=locale,
        subtotal_minor=breakdown.subtotal.amount_minor,
        discount_minor=breakdown.discount.amount_minor,
        shipping_minor=breakdown.shipping.amount_minor,
        tax_minor=breakdown.tax.amount_minor,
        total_minor=breakdown.total.amount_minor,
        tax_rate_bp=breakdown.tax_rate_bp,
        prices_include_tax=breakdown.prices_include_tax,
        voucher=voucher,
        voucher_code=voucher.code if voucher else "",
        shipping_method=shipping_method,
        shipping_method_name=_shipping_method_name(shipping_method, locale),
        shipping_name=address.name if address else "",
        shipping_line1=address.line1 if address else "",
        shipping_line2=address.line2 if address else "",
        shipping_city=address.city if address else "",
        shipping_region=address.region if address else "",
        shipping_postal_code=address.postal_code if address else "",
        shipping_country=address.country.upper() if address else "",
        contact_email=email,
        contact_phone=phone,
        referral_ref=customer.referral_ref,
        referral_source=customer.referral_source,
        referral_ad_id=customer.referral_ad_id,
        reserved_until=reserved_until,
    )
    images = _image_urls(variant.product_id for variant, _quantity in cart_lines)
    OrderLine.objects.bulk_create(
        OrderLine(
            order=order,
            variant=priced.variant,
            product_title=priced.variant.product.localized_title(locale),
            variant_name=priced.variant.localized_name(locale),
            sku=priced.variant.sku,
            image_url=images.get(priced.variant.product_id, ""),
            unit_price_minor=priced.unit_price.amount_minor,
            quantity=priced.quantity,
            total_minor=priced.total.amount_minor,
        )
        for priced in breakdown.lines
    )
    reservations = stock_reserve(order=order, lines=cart_lines, expires_at=reserved_until)
    if voucher is not None:
        _voucher_use(voucher)
    Cart.objects.filter(pk=cart.pk).update(status=Cart.Status.ORDERED, updated_at=now)
    cart_instance.status = Cart.Status.ORDERED
    order_number_assign(order=order)
    OrderEvent.objects.bulk_create(
        [
            OrderEvent(
                order=order,
                kind=Kind.CREATED,
                actor=Actor.CUSTOMER,
                data={
                    "cart_id": cart.pk,
                    "total_minor": order.total_minor,
                    "currency": order.currency,
                },
            ),
            OrderEvent(
                order=order,
                kind=Kind.STOCK_RESERVED,
                actor=Actor.CUSTOMER,
                data={
                    "reserved_until": reserved_until.isoformat(),
                    "quantities": {str(r.variant_id): r.quantity for r in reservations},
                },
            ),
        ]
    )
    sales_record_placed(order=order)
    return order


# -- transitions: shared machinery ------------------------------------------------------------


def _lock(order: Order) -> Order:
    """Re-read the order under its row lock: the status checked below cannot change meanwhile."""
    return Order.objects.select_for_update().get(pk=order.pk)


def _refuse(order: Order, to: str, *, code: str = "invalid_transition") -> InvalidTransition:
    message = _("Order %(number)s is %(state)s; it cannot be %(action)s.") % {
        "number": order.number,
        "state": _STATE_WORDS[order.status],
        "action": _ACTION_WORDS[to],
    }
    return InvalidTransition(message, code=code, extra={"from": order.status, "to": str(to)})


def _check(order: Order, to: str) -> None:
    """:raises InvalidTransition: ``TRANSITIONS`` does not allow ``order.status -> to``."""
    if to not in TRANSITIONS[order.status]:
        raise _refuse(order, to)


def _event(
    order: Order,
    kind: str,
    *,
    actor: str,
    user=None,
    message: str = "",
    data: dict[str, Any] | None = None,
) -> OrderEvent:
    data = dict(data or {})
    if len(message) > 300:
        data.setdefault("full_message", message)
        message = message[:299] + "…"
    return OrderEvent.objects.create(
        order=order,
        kind=kind,
        actor=actor,
        actor_user=user if user is not None and user.is_authenticated else None,
        message=message,
        data=data,
    )


def _transition(
    order: Order,
    to: str,
    *,
    actor: str,
    user=None,
    message: str = "",
    data: dict[str, Any] | None = None,
    **fields: Any,
) -> OrderEvent:
    """Move the locked ``order`` to ``to``, set ``fields`` and record the event.

    The single place where ``Order.status`` changes. Call it with the row lock held.

    :raises InvalidTransition: the move is not in ``TRANSITIONS`` (code ``invalid_transition``,
        extra ``{"from", "to"}``).
    """
    _check(order, to)
    data = {"from": order.status, "to": str(to), **(data or {})}
    order.status = to
    for name, value in fields.items():
        setattr(order, name, value)
    order.save(update_fields=["status", "updated_at", *fields])
    return _event(order, _EVENT_KINDS[to], actor=actor, user=user, message=message, data=data)


def _stock_event(order: Order, kind: str, movement: StockMovement, *, actor: str, user=None):
    if movement:
        _event(order, kind, actor=actor, user=user, data={"quantities": movement.as_data()})


def _sync(given: Order, fresh: Order) -> Order:
    """Copy the fresh row onto the caller's instance and return the fresh one."""
    if given is not fresh:
        for field in Order._meta.concrete_fields:
            setattr(given, field.attname, getattr(fresh, field.attname))
    return fresh


# -- payment ----------------------------------------------------------------------------------


def _mark_paid(order: Order, *, actor: str, user, data: dict[str, Any] | None) -> None:
    _transition(order, Status.PAID, actor=actor, user=user, data=data, paid_at=timezone.now())
    _stock_event(order, Kind.STOCK_SOLD, stock_sell(order=order), actor=actor, user=user)
    order_announce(order=order, notice=OrderNotice.PAID)
    sales_record_paid(order=order)


@transaction.atomic
def order_mark_paid(
    *,
    order: Order,
    actor: str = Actor.PROVIDER,
    user=None,
    data: dict[str, Any] | None = None,
) -> Order:
    """pending_payment -> paid: sell the reserved stock and announce ``PAID``.

    Not idempotent on purpose: a second call raises ``InvalidTransition`` (and sells nothing).
    Callers that may see the same payment twice use :func:`order_mark_paid_if_pending`.
    """
    locked = _lock(order)
    _mark_paid(locked, actor=actor, user=user, data=data)
    return _sync(order, locked)


@transaction.atomic
def order_mark_paid_if_pending(
    *,
    order: Order,
    actor: str = Actor.PROVIDER,
    user=None,
    data: dict[str, Any] | None = None,
) -> bool:
    """Mark the order paid unless its payment was already recorded; True if this call did it.

    For webhooks and tasks that may run twice: returns False, changing nothing, when the order
    is paid or has moved on from paid (shipped, delivered, refunded).

    :raises InvalidTransition: the order expired, was cancelled or failed payment: the money
        arrived for an order we no longer hold stock for, which someone must look at.
    """
    locked = _lock(order)
    if locked.status in _PAID_STATUSES:
        _sync(order, locked)
        return False
    _mark_paid(locked, actor=actor, user=user, data=data)
    _sync(order, locked)
    return True


@transaction.atomic
def order_payment_failed(
    *,
    order: Order,
    reason: str = "",
    actor: str = Actor.PROVIDER,
    user=None,
    data: dict[str, Any] | None = None,
) -> Order:
    """pending_payment -> payment_failed: release the stock and the voucher, announce it."""
    locked = _lock(order)
    _transition(
        locked,
        Status.PAYMENT_FAILED,
        actor=actor,
        user=user,
        message=reason,
        data=data,
        closed_at=timezone.now(),
    )
    _release(locked, actor=actor, user=user)
    order_announce(order=locked, notice=OrderNotice.PAYMENT_FAILED, reason=reason)
    return _sync(order, locked)


def _release(order: Order, *, actor: str, user=None) -> None:
    """Give back stock and voucher use of an order that leaves pending_payment unpaid."""
    movement = stock_release(order=order)
    _stock_event(order, Kind.STOCK_RELEASED, movement, actor=actor, user=user)
    if movement:
        # Same exactly-once guarantee as the stock: only the first release finds active rows.
        _voucher_give_back(order)


# -- expiry and cancellation ------------------------------------------------------------------


def _expire(order: Order, *, now: datetime) -> None:
    _check(order, Status.EXPIRED)
    if order.reserved_until is None or order.reserved_until > now:
        raise InvalidTransition(
            _("Order %(number)s is still reserved for the customer; it cannot expire yet.")
            % {"number": order.number},
            code="not_expired_yet",
            extra={
                "from": order.status,
                "to": Status.EXPIRED.value,
                "reserved_until": order.reserved_until.isoformat()
                if order.reserved_until
                else None,
            },
        )
    _transition(
        order,
        Status.EXPIRED,
        actor=Actor.SYSTEM,
        data={"reserved_until": order.reserved_until.isoformat()},
        closed_at=now,
    )
    _release(order, actor=Actor.SYSTEM)
    order_announce(order=order, notice=OrderNotice.EXPIRED)


@transaction.atomic
def order_expire(*, order: Order, now: datetime | None = None) -> Order:
    """pending_payment -> expired once the reservation has run out; release the stock.

    :raises InvalidTransition: code ``not_expired_yet`` while ``reserved_until > now``,
        ``invalid_transition`` when the order is not pending payment.
    """
    locked = _lock(order)
    _expire(locked, now=now or timezone.now())
    return _sync(order, locked)


def order_expire_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """Expire up to ``limit`` unpaid orders whose reservation ran out; return how many.

    Safe to run concurrently with itself and with payments: each order is expired in its own
    transaction under ``select_for_update(skip_locked=True)``, re-checking status and time, so
    an order being paid (or expired by another run) right now is skipped, not waited for, and
    one whose status changed meanwhile is skipped silently. An order whose expiry fails (a
    subscriber raised) is logged and retried by the next run.
    """
    now = now or timezone.now()
    due = (
        Order.objects.filter(status=Status.PENDING_PAYMENT, reserved_until__lte=now)
        .order_by("reserved_until", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    expired = 0
    for pk in list(due):
        try:
            with transaction.atomic():
                order = (
                    Order.objects.select_for_update(skip_locked=True)
                    .filter(pk=pk, status=Status.PENDING_PAYMENT, reserved_until__lte=now)
                    .first()
                )
                if order is None:
                    continue
                _expire(order, now=now)
        except Exception:
            logger.exception("Could not expire order %s; the next run retries it.", pk)
            continue
        expired += 1
    return expired


@transaction.atomic
def order_cancel(*, order: Order, user=None, actor: str = Actor.STAFF, reason: str = "") -> Order:
    """pending_payment or payment_failed -> cancelled; release whatever is still reserved."""
    locked = _lock(order)
    _transition(
        locked,
        Status.CANCELLED,
        actor=actor,
        user=user,
        message=reason,
        closed_at=timezone.now(),
    )
    _release(locked, actor=actor, user=user)
    order_announce(order=locked, notice=OrderNotice.CANCELLED, reason=reason)
    return _sync(order, locked)


# -- fulfilment -------------------------------------------------------------------------------


def _shipment_invalid(message: str) -> ApplicationError:
    return ApplicationError(message, code="shipment_invalid")


@transaction.atomic
def order_fulfil(
    *,
    order: Order,
    carrier: str,
    tracking_number: str = "",
    tracking_url: str = "",
    user=None,
    shipped_at: datetime | None = None,
    submission_key: str | None = None,
) -> Shipment:
    """Record a shipment: paid or partially_refunded -> fulfilled, and announce ``FULFILLED``.

    An order that is already fulfilled may get further shipments (partial shipments): each one
    is recorded with an event and announced, without a status change.

    Idempotent per submission (ADR 0007): with a ``submission_key`` (the form's one-time token,
    the API's ``Idempotency-Key``) that already recorded a shipment of this order, that
    shipment is returned and nothing is written or announced; ``shipment.replayed`` tells
    which happened. The check runs under the order row lock, so two identical submissions at
    the same moment record one shipment. Without a key, a parcel whose carrier and tracking
    number are already recorded on the order is refused (one tracking number, one parcel).

    :raises InvalidTransition: the order is not paid (or is delivered, refunded...).
    :raises ApplicationError: ``shipment_invalid``: no carrier, or a tracking URL that is not
        an http(s) URL (it becomes a button in the customer's thread);
        ``shipment_duplicate``: that tracking number is already recorded;
        ``submission_key_invalid``: a malformed key.
    :raises SubmissionReusedError: the key recorded a shipment with other details.
    """
    carrier = (carrier or "").strip()
    tracking_number = (tracking_number or "").strip()
    tracking_url = (tracking_url or "").strip()
    submission_key = submission_key_clean(submission_key)
    if not carrier:
        raise _shipment_invalid(_("Please name the carrier."))
    if len(carrier) > 60 or len(tracking_number) > 80:
        raise _shipment_invalid(_("The carrier or tracking number is too long."))
    if tracking_url:
        try:
            URLValidator(schemes=["http", "https"])(tracking_url)
        except ValidationError:
            raise _shipment_invalid(_("The tracking link must be an http(s) URL.")) from None
        if len(tracking_url) > 500:
            raise _shipment_invalid(_("The tracking link is too long."))
    now = timezone.now()
    shipped_at = shipped_at or now
    locked = _lock(order)
    if submission_key:
        recorded = locked.shipments.filter(submission_key=submission_key).first()
        if recorded is not None:
            if (recorded.carrier, recorded.tracking_number, recorded.tracking_url) != (
                carrier,
                tracking_number,
                tracking_url,
            ):
                raise submission_reused()
            recorded.replayed = True
            _sync(order, locked)
            return recorded
    further = locked.status == Status.FULFILLED
    if not further:
        _check(locked, Status.FULFILLED)
    if (
        tracking_number
        and locked.shipments.filter(
            carrier__iexact=carrier, tracking_number__iexact=tracking_number
        ).exists()
    ):
        raise ApplicationError(
            _("Order %(number)s already has a parcel with %(carrier)s %(tracking)s.")
            % {"number": locked.number, "carrier": carrier, "tracking": tracking_number},
            code="shipment_duplicate",
        )
    shipment = Shipment.objects.create(
        order=locked,
        carrier=carrier,
        tracking_number=tracking_number,
        tracking_url=tracking_url,
        shipped_at=shipped_at,
        created_by=user if user is not None and user.is_authenticated else None,
        submission_key=submission_key,
    )
    shipment.replayed = False
    data = {"shipment_id": shipment.pk, "carrier": carrier, "tracking_number": tracking_number}
    actor = Actor.STAFF if user is not None else Actor.SYSTEM
    if further:
        _event(locked, Kind.FULFILLED, actor=actor, user=user, data={**data, "further": True})
    else:
        fields = {} if locked.fulfilled_at else {"fulfilled_at": shipped_at}
        _transition(locked, Status.FULFILLED, actor=actor, user=user, data=data, **fields)
    order_announce(order=locked, notice=OrderNotice.FULFILLED, shipment=shipment)
    _sync(order, locked)
    return shipment


@transaction.atomic
def order_mark_delivered(*, order: Order, user=None, shipment: Shipment | None = None) -> Order:
    """fulfilled (or partially_refunded, once shipped) -> delivered; announce ``DELIVERED``.

    Without ``shipment``, every shipment not yet delivered is marked delivered. With one, only
    that shipment is; the order becomes delivered when no shipment is left on its way (until
    then the delivery is recorded and announced without a status change).

    :raises InvalidTransition: the order cannot be delivered from its status, has no shipment
        (``not_shipped``), or ``shipment`` was already delivered (``already_delivered``).
    :raises ApplicationError: ``shipment_invalid``: ``shipment`` belongs to another order.
    """
    locked = _lock(order)
    _check(locked, Status.DELIVERED)
    pending = list(locked.shipments.filter(delivered_at__isnull=True).order_by("pk"))
    if shipment is not None:
        if shipment.order_id != locked.pk:
            raise _shipment_invalid(_("This shipment belongs to another order."))
        targets = [s for s in pending if s.pk == shipment.pk]
        if not targets:
            raise _refuse(locked, Status.DELIVERED, code="already_delivered")
    else:
        targets = pending
        if not targets:
            raise _refuse(locked, Status.DELIVERED, code="not_shipped")
    now = timezone.now()
    Shipment.objects.filter(pk__in=[s.pk for s in targets]).update(delivered_at=now, updated_at=now)
    for target in targets:
        target.delivered_at = now
    if shipment is not None:
        shipment.delivered_at = now
    actor = Actor.STAFF if user is not None else Actor.SYSTEM
    data = {"shipment_ids": [s.pk for s in targets]}
    if len(targets) < len(pending):
        _event(locked, Kind.DELIVERED, actor=actor, user=user, data={**data, "partial": True})
    else:
        _transition(locked, Status.DELIVERED, actor=actor, user=user, data=data, delivered_at=now)
    order_announce(order=locked, notice=OrderNotice.DELIVERED, shipments=targets)
    return _sync(order, locked)


# -- refunds ----------------------------------------------------------------------------------


def _net_paid(order: Order, net_paid_minor: int | None, change_minor: int) -> int:
    """What the customer has paid for ``order`` net of refunds, after a change of
    ``change_minor`` (positive: a refund; negative: one taken back). Without
    ``net_paid_minor`` the order was paid its total exactly once."""
    if net_paid_minor is None:
        return order.total_minor - order.refunded_minor - change_minor
    return net_paid_minor


def _refunded_of_total(order: Order, net_paid: int) -> int:
    """How much of the order's total has been given back: what a duplicate payment returns
    does not count (it was never revenue), so this stays within ``0..total``."""
    return min(max(order.total_minor - net_paid, 0), order.total_minor)


def _before_refunds(order: Order) -> str:
    """The status an order with refunds would have without them."""
    if order.delivered_at is not None:
        return Status.DELIVERED
    if order.fulfilled_at is not None:
        return Status.FULFILLED
    return Status.PAID


def _refund_data(amount_minor: int, refunded: int, net_paid: int, reference: str) -> dict:
    return {
        "amount_minor": amount_minor,
        "refunded_minor": refunded,
        "net_paid_minor": net_paid,
        "reference": reference,
    }


@transaction.atomic
def order_record_refund(
    *,
    order: Order,
    amount_minor: int,
    net_paid_minor: int | None = None,
    user=None,
    actor: str = Actor.STAFF,
    reference: str = "",
) -> Order:
    """Record money given back; the order's status follows what is left paid for it.

    ``net_paid_minor`` is what the order's payments collected minus every refund recorded so
    far, this one included (payments knows it; None: the order was paid its total exactly
    once). Left paid nothing: -> ``refunded``; less than the total: -> ``partially_refunded``;
    the total or more (a duplicate payment given back): the status does not change and the
    order stays shippable. ``refunded_minor`` and the sales figures count only what was given
    back of the total. Allowed from paid, fulfilled, delivered and partially_refunded. Records
    what happened; it does not move money and is not idempotent: callers that may see one
    refund twice (webhooks) dedupe on their refund row first.

    :raises InvalidTransition: the order was never paid, or is fully refunded.
    :raises RefundError: ``amount_minor`` is not a positive integer, or (without
        ``net_paid_minor``) more than is left to refund (``extra``: ``amount_minor``,
        ``remaining_minor``); a negative ``net_paid_minor``.
    """
    locked = _lock(order)
    remaining = locked.total_minor - locked.refunded_minor
    amount_ok = isinstance(amount_minor, int) and not isinstance(amount_minor, bool)
    net_paid = _net_paid(locked, net_paid_minor, amount_minor if amount_ok else 0)
    to = Status.REFUNDED if net_paid <= 0 else Status.PARTIALLY_REFUNDED
    _check(locked, to)
    too_much = net_paid_minor is None and amount_ok and amount_minor > remaining
    if not amount_ok or amount_minor <= 0 or too_much or net_paid < 0:
        raise RefundError(
            _("A refund must be more than zero and at most %(remaining)s.")
            % {"remaining": locked._money(remaining)},
            extra={"amount_minor": amount_minor, "remaining_minor": remaining},
        )
    refunded = _refunded_of_total(locked, net_paid)
    change = refunded - locked.refunded_minor
    data = _refund_data(amount_minor, refunded, net_paid, reference)
    if net_paid >= locked.total_minor:
        # A second payment given back: still paid in full, the status stays.
        locked.refunded_minor = refunded
        locked.save(update_fields=["refunded_minor", "updated_at"])
        data["status_unchanged"] = locked.status
        event = _event(locked, Kind.REFUNDED, actor=actor, user=user, data=data)
    else:
        event = _transition(locked, to, actor=actor, user=user, data=data, refunded_minor=refunded)
    if change:
        sales_record_refund(order=locked, amount_minor=change)
    order_announce(
        order=locked,
        notice=OrderNotice.REFUNDED,
        amount_minor=amount_minor,
        # Never empty: the shopper's message is deduplicated on it, and two refunds of the
        # same amount are two messages.
        reference=reference or f"event:{event.pk}",
        fully_refunded=to == Status.REFUNDED,
    )
    return _sync(order, locked)


#: Where a refund taken back can move an order (not in ``TRANSITIONS``: only
#: :func:`order_record_refund_reversal` makes these moves).
REVERSALS: dict[str, frozenset[str]] = {
    Status.REFUNDED: frozenset(
        {Status.PARTIALLY_REFUNDED, Status.PAID, Status.FULFILLED, Status.DELIVERED}
    ),
    Status.PARTIALLY_REFUNDED: frozenset({Status.PAID, Status.FULFILLED, Status.DELIVERED}),
}


@transaction.atomic
def order_record_refund_reversal(
    *,
    order: Order,
    amount_minor: int,
    net_paid_minor: int,
    reason: str = "",
    actor: str = Actor.PROVIDER,
    reference: str = "",
) -> Order:
    """A refund recorded on ``order`` did not reach the customer after all (the provider
    reported it failed after it had succeeded): the money counts as paid again.

    ``net_paid_minor`` is what the order's payments collected minus the refunds that still
    stand. ``refunded_minor`` and the sales figures go back by what the refund had taken off
    the total; a ``refunded`` or ``partially_refunded`` order moves back to
    ``partially_refunded``, or to the status it had before its refunds (paid, fulfilled,
    delivered) once it is paid in full again. Any other status stays. Records a
    ``refund_failed`` event and announces ``REFUND_FAILED`` (the shopper was told the money
    was on its way). Call once per refund (callers dedupe on their refund row).

    :raises RefundError: ``amount_minor`` not a positive integer, or a negative
        ``net_paid_minor``.
    """
    locked = _lock(order)
    amount_ok = isinstance(amount_minor, int) and not isinstance(amount_minor, bool)
    if not amount_ok or amount_minor <= 0 or net_paid_minor < 0:
        raise RefundError(
            _("A refund must be more than zero."),
            extra={"amount_minor": amount_minor, "net_paid_minor": net_paid_minor},
        )
    refunded = _refunded_of_total(locked, net_paid_minor)
    change = refunded - locked.refunded_minor
    data = _refund_data(amount_minor, refunded, net_paid_minor, reference)
    to = locked.status
    if locked.status in REVERSALS:
        if net_paid_minor >= locked.total_minor:
            to = _before_refunds(locked)
        elif net_paid_minor > 0:
            to = Status.PARTIALLY_REFUNDED
    data |= {"from": locked.status, "to": to}
    locked.status, locked.refunded_minor = to, refunded
    locked.save(update_fields=["status", "refunded_minor", "updated_at"])
    event = _event(locked, Kind.REFUND_FAILED, actor=actor, message=reason, data=data)
    if change:
        sales_record_refund(order=locked, amount_minor=change)
    order_announce(
        order=locked,
        notice=OrderNotice.REFUND_FAILED,
        amount_minor=amount_minor,
        reference=reference or f"event:{event.pk}",
    )
    return _sync(order, locked)


# -- annotations ------------------------------------------------------------------------------


@transaction.atomic
def order_flag_for_review(
    *, order: Order, reason: str, actor: str = Actor.SYSTEM, user=None
) -> Order:
    """Mark the order for a person to look at (amount mismatch, late payment...); any status."""
    locked = _lock(order)
    locked.needs_review = True
    locked.review_reason = reason[: Order._meta.get_field("review_reason").max_length]
    locked.save(update_fields=["needs_review", "review_reason", "updated_at"])
    _event(locked, Kind.REVIEW_FLAGGED, actor=actor, user=user, message=reason)
    return _sync(order, locked)


@transaction.atomic
def order_add_note(
    *, order: Order, message: str, user, submission_key: str | None = None
) -> OrderEvent:
    """Add a staff note to the order's timeline; any status.

    With a ``submission_key`` that already added a note to this order, that note is returned
    (``note.replayed``) and nothing is written: a double click adds one note.

    :raises ApplicationError: ``note_empty`` for a blank message; ``submission_key_invalid``.
    :raises SubmissionReusedError: the key added a note with another message.
    """
    message = (message or "").strip()
    submission_key = submission_key_clean(submission_key)
    if not message:
        raise ApplicationError(_("The note is empty."), code="note_empty")
    if not submission_key:
        note = _event(order, Kind.NOTE, actor=Actor.STAFF, user=user, message=message)
        note.replayed = False
        return note
    locked = _lock(order)
    recorded = locked.events.filter(kind=Kind.NOTE, data__submission_key=submission_key).first()
    if recorded is not None:
        if recorded.data.get("full_message", recorded.message) != message:
            raise submission_reused()
        recorded.replayed = True
        return recorded
    note = _event(
        locked,
        Kind.NOTE,
        actor=Actor.STAFF,
        user=user,
        message=message,
        data={"submission_key": submission_key},
    )
    note.replayed = False
    return note


@transaction.atomic
def order_payment_started(
    *, order: Order, hold_until: datetime, data: dict[str, Any] | None = None
) -> Order:
    """Record that the shopper started paying, and hold the stock while they can still pay.

    A payment page may stay payable longer than the reservation (Stripe Checkout sessions live
    at least 30 minutes), so the reservation and the order's ``reserved_until`` are extended to
    ``hold_until`` when that is later; they never shrink. Only ``pending_payment`` orders.

    :raises InvalidTransition: the order is not ``pending_payment``.
    """
    locked = _lock(order)
    if locked.status != Status.PENDING_PAYMENT:
        raise InvalidTransition(
            _("Order %(number)s is %(state)s; it cannot be paid.")
            % {"number": locked.number, "state": _STATE_WORDS[locked.status]},
            code="not_payable",
            extra={"from": locked.status},
        )
    if locked.reserved_until is None or hold_until > locked.reserved_until:
        locked.reserved_until = hold_until
        locked.save(update_fields=["reserved_until", "updated_at"])
        StockReservation.objects.filter(
            order=locked, status=StockReservation.Status.ACTIVE, expires_at__lt=hold_until
        ).update(expires_at=hold_until)
    _event(locked, Kind.PAYMENT_STARTED, actor=Actor.CUSTOMER, data=data)
    return _sync(order, locked)
