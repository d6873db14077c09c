"""The legacy Messenger v1.2 buy button (DESIGN.md section 6.3), for pages in ``buy_button`` mode.

A product card carries a ``payment`` button whose ``payload`` names the variant (and the customer
the card was sent to), signed with ``django.core.signing`` so a shopper cannot make one up:
``BUYBTN:variant=87,customer=12:<signature>``. Messenger then calls the webhook:

- ``pre_checkout`` (synchronous): :func:`pre_checkout_answer` says ``{"success": true}`` only for a
  valid payload whose variant is still sold at the amount shown and is in stock (a read check:
  the stock is reserved when the order is created at ``payment``).
- ``checkout_update`` (synchronous): :func:`checkout_update_answer` lists the merchant's shipping
  methods for the address's country, ``{"shipping": [{"option_id", "option_title",
  "price_list": [{"label", "amount"}]}]}``.
- ``payment`` (stored, then processed by the inbox worker through
  :func:`legacy_payment_process`): :func:`buy_button_payment_confirm` checks the
  ``payment_credential`` (``provider_type: stripe`` and a ``charge_id`` never used before),
  retrieves the charge from Stripe, places a one-line order and settles the payment through
  ``payments.services.events.payment_settle``, the path a completed Checkout Session takes:
  amount and currency must equal the order's, else the order is flagged and never paid.

Amounts in the button and the answers are exact decimal strings in major units
(``Money.to_major()``: ``"12.50"``, KWD ``"12.345"``). The button's ``price_list`` is the
variant's price (plus exclusive tax on it); a shipping option's ``price_list`` holds what that
method adds (shipping, plus the tax on it), so the two together are the order's total.

Test payments (``charge_id`` ``test_charge_id_*``, no money moved) are accepted only when the
page is in test mode; they are not looked up at Stripe and their ``charge_id`` is kept in the
payment's idempotency key rather than in the unique ``charge_id`` column (Messenger reuses the
same test id for every test payment).

This module never imports ``messenger`` (payments sits below it): pages and events arrive as the
messenger objects, read by attribute (``page.mode``, ``page.is_test_mode``, ``event.payload``...).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core import signing
from django.core.mail import mail_admins, send_mail
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from commerce.exceptions import AddressError, OutOfStockError
from commerce.models import Cart, Customer, Merchant, Order, OrderEvent, ShippingMethod, Variant
from commerce.selectors.carts import shipping_methods_for
from commerce.services.addresses import (
    address_save,
    customer_set_contact,
    email_normalize,
    phone_normalize,
)
from commerce.services.carts import cart_add, cart_get_open
from commerce.services.orders import order_create_from_cart, order_flag_for_review
from commerce.services.pricing import PriceBreakdown, price_lines
from commerce.services.staff_alerts import staff_recipients
from core.exceptions import ApplicationError
from core.money import Money
from payments.gateways import ChargeInfo, GatewayError, gateway_for
from payments.models import Payment
from payments.services.alerts import order_flag_and_alert
from payments.services.events import payment_settle

__all__ = [
    "BUY_BUTTON_MODE",
    "PAYLOAD_PREFIX",
    "REQUESTED_USER_INFO",
    "TEST_CHARGE_PREFIX",
    "ButtonPayload",
    "BuyButtonRefused",
    "buy_button_payload_build",
    "buy_button_payload_parse",
    "buy_button_payment_confirm",
    "buy_button_payment_summary",
    "checkout_update_answer",
    "legacy_payment_process",
    "pre_checkout_answer",
]

logger = logging.getLogger(__name__)
alerts_logger = logging.getLogger("payments.alerts")

#: ``MessengerPage.Mode.BUY_BUTTON`` (payments does not import messenger).
BUY_BUTTON_MODE = "buy_button"
PAYLOAD_PREFIX = "BUYBTN:"
#: Every test payment's ``charge_id`` starts with this (``test_charge_id_12345``).
TEST_CHARGE_PREFIX = "test_charge_id"
#: What the checkout dialog asks for, in the order the reference lists it.
REQUESTED_USER_INFO = ("shipping_address", "contact_name", "contact_phone", "contact_email")
PAYMENT_TYPE = "FIXED_AMOUNT"
_SALT = "payments.buy_button"
_CHARGE_ID_MAX = Payment._meta.get_field("charge_id").max_length

# Inbox statuses (``InboundEvent.Status`` values) returned by legacy_payment_process.
_PROCESSED, _IGNORED = "processed", "ignored"


class BuyButtonRefused(ApplicationError):
    """A buy-button event we do not act on. ``message`` is fit for the shopper; ``details`` (for
    operators) and ``alert`` (money may have been taken: tell the operators) describe it."""

    default_code = "buy_button_refused"

    def __init__(self, message: str, *, code: str, details: str = "", alert: bool = False):
        super().__init__(message, code=code)
        self.details = details or str(message)
        self.alert = alert


# -- the button's payload -------------------------------------------------------------------


@dataclass(frozen=True)
class ButtonPayload:
    variant_id: int
    customer_id: int | None = None


def buy_button_payload_build(*, variant_id: int, customer_id: int | None = None) -> str:
    """The signed ``payload`` of a payment button for ``variant_id`` (sent to ``customer_id``)."""
    value = f"variant={int(variant_id)}"
    if customer_id is not None:
        value += f",customer={int(customer_id)}"
    return PAYLOAD_PREFIX + signing.Signer(salt=_SALT).sign(value)


def _payload_invalid(details: str) -> BuyButtonRefused:
    return BuyButtonRefused(
        _("This offer is no longer valid. Please open the product again."),
        code="payload_invalid",
        details=details,
    )


def buy_button_payload_parse(*, payload: str) -> ButtonPayload:
    """Read a payload built by :func:`buy_button_payload_build`.

    :raises BuyButtonRefused: ``payload_invalid``: not ours, damaged or forged.
    """
    if not isinstance(payload, str) or not payload.startswith(PAYLOAD_PREFIX):
        raise _payload_invalid(f"The payload {str(payload)[:60]!r} is not a buy-button payload.")
    try:
        value = signing.Signer(salt=_SALT).unsign(payload[len(PAYLOAD_PREFIX) :])
    except signing.BadSignature:
        raise _payload_invalid("The buy-button payload's signature does not match.") from None
    fields: dict[str, int] = {}
    for part in value.split(","):
        key, _sep, number = part.partition("=")
        if key not in {"variant", "customer"} or key in fields or not number.isdigit():
            raise _payload_invalid(f"The buy-button payload {value!r} is malformed.")
        fields[key] = int(number)
    if not fields.get("variant"):
        raise _payload_invalid(f"The buy-button payload {value!r} names no variant.")
    return ButtonPayload(variant_id=fields["variant"], customer_id=fields.get("customer"))


# -- the button -------------------------------------------------------------------------------


def _major(amount: Money) -> str:
    """``Money`` as the exact decimal string the buy button takes: ``"12.50"``."""
    return str(amount.to_major())


def _tax_label(merchant: Merchant) -> str:
    """The merchant's own name for tax ("VAT"); the untouched default reads in the shopper's
    language."""
    label = (merchant.tax_label or "").strip()
    return label if label and label != "Tax" else _("Tax")


def _price_alone(*, merchant: Merchant, variant: Variant, now: datetime) -> PriceBreakdown:
    """One unit of ``variant``, without shipping (no query: prices come from the rows)."""
    return price_lines(merchant=merchant, lines=[(variant, 1)], now=now)


def buy_button_payment_summary(*, page: Any, variant: Variant, label: str) -> dict[str, Any]:
    """The ``payment_summary`` of a payment button selling one unit of ``variant``.

    ``label`` names the item in the checkout dialog (the product's title in the shopper's
    language); the tax line, when the merchant adds tax to prices, is labelled in the active
    language. No query: ``page.merchant`` and the variant are loaded by the caller.
    """
    merchant = page.merchant
    price = _price_alone(merchant=merchant, variant=variant, now=timezone.now())
    price_list = [{"label": label, "amount": _major(price.subtotal)}]
    if price.tax and not price.prices_include_tax:
        price_list.append({"label": _tax_label(merchant), "amount": _major(price.tax)})
    return {
        "currency": price.currency,
        "payment_type": PAYMENT_TYPE,
        "is_test_payment": bool(page.is_test_mode),
        "merchant_name": merchant.name,
        "requested_user_info": list(REQUESTED_USER_INFO),
        "price_list": price_list,
    }


# -- shared checks ----------------------------------------------------------------------------


def _customer_of(page: Any, psid: str) -> Customer | None:
    if not psid:
        return None
    return Customer.objects.filter(page_id=page.page_id, psid=psid).first()


def _language(customer: Customer | None, page: Any) -> str:
    if customer is not None:
        chosen = (customer.conversation_context or {}).get("language")
        if chosen in {"ar", "en"}:
            return chosen
        if customer.locale:
            return customer.language
    return "ar" if (page.merchant.default_locale or "").startswith("ar") else "en"


def _button_variant(*, page: Any, payload: str, customer: Customer | None) -> Variant:
    """The page merchant's buyable variant named by a genuine payload sent to ``customer``.

    :raises BuyButtonRefused: ``buy_button_off``, ``payload_invalid``, ``variant_unavailable``.
    """
    if page.mode != BUY_BUTTON_MODE:
        raise BuyButtonRefused(
            _("This shop does not take payments in Messenger."),
            code="buy_button_off",
            details=f"Page {page.page_id} is not in buy-button mode.",
        )
    button = buy_button_payload_parse(payload=payload)
    if button.customer_id is not None and (customer is None or customer.pk != button.customer_id):
        raise _payload_invalid(
            f"The button was sent to customer {button.customer_id}, "
            f"not to {customer.pk if customer else 'an unknown customer'}."
        )
    variant = (
        Variant.objects.select_related("product")
        .filter(
            pk=button.variant_id,
            merchant_id=page.merchant.pk,
            is_active=True,
            product__is_active=True,
        )
        .first()
    )
    if variant is None:
        raise BuyButtonRefused(
            _("Sorry, this item is no longer available."),
            code="variant_unavailable",
            details=f"Variant {button.variant_id} is not sold by the page's merchant any more.",
        )
    return variant


def _out_of_stock(variant: Variant) -> BuyButtonRefused:
    return BuyButtonRefused(
        _("Sorry, this item is out of stock."),
        code="out_of_stock",
        details=f"{variant.sku} is out of stock ({variant.stock_available} available).",
    )


def _event_money(amount: Any) -> Money | None:
    """The ``{"currency": "USD", "amount": "29.62"}`` of an event, or None if unreadable."""
    if not isinstance(amount, dict):
        return None
    value, currency = amount.get("amount"), amount.get("currency")
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not isinstance(currency, str):
        return None
    try:
        return Money.from_major(value, currency.strip().upper())
    except (ValueError, TypeError, LookupError):
        return None


def _country(address: Any) -> str:
    country = address.get("country") if isinstance(address, dict) else None
    return country.strip().upper() if isinstance(country, str) else ""


def _with_shipping(
    *, merchant: Merchant, variant: Variant, country: str, now: datetime
) -> list[tuple[ShippingMethod, PriceBreakdown]]:
    """Each shipping method delivering to ``country`` with the one-unit price it gives."""
    if not country:
        return []
    priced = []
    for method in shipping_methods_for(merchant=merchant, country=country):
        if method.currency != variant.currency:
            continue
        breakdown = price_lines(
            merchant=merchant,
            lines=[(variant, 1)],
            shipping_method=method,
            country=country,
            now=now,
        )
        priced.append((method, breakdown))
    return priced


# -- pre_checkout -----------------------------------------------------------------------------


def pre_checkout_answer(*, page: Any, event: Any) -> dict[str, Any]:
    """The synchronous answer to a ``pre_checkout``: ``{"success": true}`` when the payload is
    genuine, its variant is still sold at the amount the dialog shows (the price alone, or with
    one of the shipping methods to the address's country) and at least one is in stock;
    otherwise ``{"success": false, "error": {"code", "message"}}`` (message in the shopper's
    language). Reads only (four small queries at most); nothing is reserved or written.
    """
    customer = _customer_of(page, event.sender_psid)
    with translation.override(_language(customer, page)):
        try:
            variant = _button_variant(page=page, payload=event.payload, customer=customer)
            if variant.stock_available < 1:
                raise _out_of_stock(variant)
            _pre_checkout_amount_check(page=page, variant=variant, event=event)
        except BuyButtonRefused as refused:
            logger.info("pre_checkout refused (%s): %s", refused.code, refused.details)
            return {"success": False, "error": {"code": refused.code, "message": refused.message}}
    return {"success": True}


def _pre_checkout_amount_check(*, page: Any, variant: Variant, event: Any) -> None:
    shown = _event_money(event.amount)
    now = timezone.now()
    merchant = page.merchant
    totals = {_price_alone(merchant=merchant, variant=variant, now=now).total}
    address = (event.requested_user_info or {}).get("shipping_address")
    totals |= {
        breakdown.total
        for _method, breakdown in _with_shipping(
            merchant=merchant, variant=variant, country=_country(address), now=now
        )
    }
    if shown not in totals:
        raise BuyButtonRefused(
            _("The price of this item has changed. Please open the product again."),
            code="amount_changed",
            details=f"The dialog shows {event.amount!r}; the price is now one of {totals}.",
        )


# -- checkout_update --------------------------------------------------------------------------


def _method_title(method: ShippingMethod, language: str) -> str:
    name = method.name_ar if language == "ar" and method.name_ar else method.name
    estimate = method.delivery_estimate_ar if language == "ar" else ""
    estimate = estimate or method.delivery_estimate
    return f"{name} ({estimate})" if estimate else name


def checkout_update_answer(*, page: Any, event: Any) -> dict[str, Any]:
    """The synchronous answer to a ``checkout_update``: the merchant's shipping methods for the
    address's country as ``{"shipping": [{"option_id", "option_title", "price_list"}]}``.

    Each option's ``price_list`` is what the method adds to the button's price: the shipping
    price (zero once the item reaches the method's free-over amount) and, when the merchant
    adds tax to prices, the tax on it. An invalid payload or a country nobody ships to gets
    ``{"shipping": []}``.
    """
    customer = _customer_of(page, event.sender_psid)
    language = _language(customer, page)
    try:
        variant = _button_variant(page=page, payload=event.payload, customer=customer)
    except BuyButtonRefused as refused:
        logger.info("checkout_update refused (%s): %s", refused.code, refused.details)
        return {"shipping": []}
    merchant, now = page.merchant, timezone.now()
    alone = _price_alone(merchant=merchant, variant=variant, now=now).total
    options = []
    with translation.override(language):
        for method, breakdown in _with_shipping(
            merchant=merchant, variant=variant, country=_country(event.shipping_address), now=now
        ):
            price_list = [{"label": _("Shipping"), "amount": _major(breakdown.shipping)}]
            tax = breakdown.total - alone - breakdown.shipping
            if tax:
                price_list.append({"label": _tax_label(merchant), "amount": _major(tax)})
            options.append(
                {
                    "option_id": str(method.pk),
                    "option_title": _method_title(method, language),
                    "price_list": price_list,
                }
            )
    return {"shipping": options}


# -- payment ----------------------------------------------------------------------------------


def legacy_payment_process(*, page: Any, event: Any) -> tuple[str, str]:
    """The inbox worker's handler for legacy v1.2 rows: ``(status, note)`` for the row.

    ``payment`` events are confirmed (:func:`buy_button_payment_confirm`); ``pre_checkout`` and
    ``checkout_update`` rows were answered by the webhook already and are kept for the record.
    A refusal is noted on the row (and, when money may have been taken, sent to the operators);
    a transient Stripe failure raises, so the inbox tries the row again.
    """
    if page.mode != BUY_BUTTON_MODE:
        return _IGNORED, "the page is not in buy-button mode"
    if not hasattr(event, "payment_credential"):
        return _PROCESSED, "answered by the webhook"
    try:
        order = buy_button_payment_confirm(page=page, event=event)
    except BuyButtonRefused as refused:
        if refused.alert:
            _operators_alert(
                merchant=page.merchant,
                subject=f"Messenger payment needs a refund or a look ({refused.code})",
                message=refused.details,
            )
        else:
            logger.warning("Buy-button payment refused (%s): %s", refused.code, refused.details)
        return _PROCESSED, f"refused ({refused.code}): {refused.details}"[:2000]
    review = " (flagged for review)" if order.needs_review else ""
    return _PROCESSED, f"order {order.number} {order.status}{review}"


@dataclass(frozen=True)
class _Credential:
    charge_id: str
    is_test: bool
    fb_payment_id: str


def _credential(*, page: Any, event: Any) -> _Credential:
    """:raises BuyButtonRefused: ``credential_unsupported``, ``test_payment_refused``."""
    credential = event.payment_credential if isinstance(event.payment_credential, dict) else {}
    provider, charge_id = credential.get("provider_type"), credential.get("charge_id")
    fb_payment_id = credential.get("fb_payment_id")
    fb_payment_id = str(fb_payment_id) if isinstance(fb_payment_id, str | int) else ""
    if (
        provider != "stripe"
        or not isinstance(charge_id, str)
        or not charge_id.strip()
        or len(charge_id) > _CHARGE_ID_MAX
    ):
        raise BuyButtonRefused(
            _("We could not confirm this payment."),
            code="credential_unsupported",
            details=(
                f"A Messenger payment from PSID {event.sender_psid} came with a "
                f"{provider!r} credential (charge {str(charge_id)[:60]!r}, Facebook payment "
                f"{fb_payment_id or '?'}), which we cannot verify. Check the payment provider "
                "and refund it if money was taken."
            ),
            alert=True,
        )
    charge_id = charge_id.strip()
    is_test = charge_id.startswith(TEST_CHARGE_PREFIX)
    if is_test and not page.is_test_mode:
        raise BuyButtonRefused(
            _("We could not confirm this payment."),
            code="test_payment_refused",
            details=f"Test charge {charge_id} for page {page.page_id}, which is not in test mode.",
        )
    return _Credential(charge_id=charge_id, is_test=is_test, fb_payment_id=fb_payment_id)


def _charge_reused(*, credential: _Credential, page: Any, event: Any) -> None:
    """Refuse a charge id that already paid for something; no second order is ever made.

    A redelivery of the same shopper's payment (same customer, same variant) only notes it;
    anything else is flagged on the order the charge paid for, and the operators are alerted.

    :raises BuyButtonRefused: ``charge_reused``.
    """
    existing = (
        Payment.objects.select_related("order__customer")
        .filter(charge_id=credential.charge_id)
        .first()
    )
    if existing is None:
        return
    order = existing.order
    details = (
        f"Charge {credential.charge_id} already paid for order {order.number}; a Messenger "
        f"payment from PSID {event.sender_psid} on page {page.page_id} used it again. "
        "No second order was made."
    )
    same_shopper = (
        existing.gateway == Payment.Gateway.STRIPE_BUY_BUTTON
        and order.customer.page_id == page.page_id
        and order.customer.psid == event.sender_psid
    )
    if same_shopper:
        try:
            button = buy_button_payload_parse(payload=event.payload)
        except BuyButtonRefused:
            button = None
        if button and order.lines.filter(variant_id=button.variant_id).exists():
            raise BuyButtonRefused(
                _("This payment was already received."),
                code="charge_reused",
                details=f"Charge {credential.charge_id} was already recorded: a redelivery.",
            )
    with transaction.atomic():
        order_flag_and_alert(
            order=Order.objects.select_for_update().get(pk=order.pk),
            reason=f"Charge {credential.charge_id} was used again by another Messenger payment.",
            subject=f"Charge reused on order {order.number}",
            details=details,
        )
    raise BuyButtonRefused(
        _("This payment was already received."), code="charge_reused", details=details
    )


def _charge(credential: _Credential) -> ChargeInfo | None:
    """The charge at Stripe (None for a test charge: nothing to look up).

    :raises GatewayError: transient: Stripe did not answer (the inbox tries again).
    :raises BuyButtonRefused: ``charge_unknown`` / ``charge_not_paid``.
    """
    if credential.is_test:
        return None
    try:
        charge = gateway_for("stripe").charge_retrieve(charge_id=credential.charge_id)
    except GatewayError as error:
        if error.transient:
            raise
        raise BuyButtonRefused(
            _("We could not confirm this payment."),
            code="charge_unknown",
            details=(
                f"Stripe did not confirm charge {credential.charge_id} ({error.code}: "
                f"{error.message}). Check it in the Stripe Dashboard and refund it if needed."
            ),
            alert=True,
        ) from error
    if not charge.paid or charge.refunded:
        raise BuyButtonRefused(
            _("We could not confirm this payment."),
            code="charge_not_paid",
            details=f"Charge {charge.id} is not paid (paid={charge.paid}, "
            f"refunded={charge.refunded}); no order was made.",
        )
    return charge


def buy_button_payment_confirm(*, page: Any, event: Any) -> Order:
    """Confirm a legacy v1.2 ``payment`` and return its order (paid, or flagged for review).

    Checks, in order: the page is in buy-button mode; the credential is Stripe's with a
    ``charge_id``; a test charge only on a page in test mode; the charge id was never used
    (:func:`_charge_reused`); the charge, retrieved from Stripe, is paid; the payload is genuine
    and sent to this shopper, its variant still sold. Then, in one transaction: the shopper's
    address and contact are saved, a one-line order is placed with the chosen shipping method
    (``shipping_option_id``; none with a fixed amount) and its stock reserved, and the payment
    is recorded and settled by ``payment_settle`` against the order total: both the event's
    amount and the charge's must equal it (a mismatch is flagged, never paid).

    :raises BuyButtonRefused: the payment is not acted on (``code`` says why; ``alert`` when
        money may have been taken). Nothing was written then, except the review flag of the
        order a reused charge paid for.
    :raises GatewayError: Stripe did not answer (transient): try again later.
    """
    if page.mode != BUY_BUTTON_MODE:
        raise BuyButtonRefused(
            _("This shop does not take payments in Messenger."),
            code="buy_button_off",
            details=f"Page {page.page_id} is not in buy-button mode.",
        )
    credential = _credential(page=page, event=event)
    if not credential.is_test:
        _charge_reused(credential=credential, page=page, event=event)
    charge = _charge(credential)  # network, before any lock is taken
    money_note = (
        f"Charge {credential.charge_id} ({_charge_text(charge, event)}) from PSID "
        f"{event.sender_psid} on page {page.page_id}"
    )
    no_order = "No order was made." if credential.is_test else "No order was made; refund it."
    try:
        customer = _payment_customer(page=page, event=event)
        variant = _button_variant(page=page, payload=event.payload, customer=customer)
        with transaction.atomic():
            order = _order_place(page=page, customer=customer, variant=variant, event=event)
            order = _payment_record(
                order=order, charge=charge, credential=credential, event=event, page=page
            )
    except BuyButtonRefused as refused:
        refused.alert = refused.alert or not credential.is_test
        refused.details = f"{money_note}: {refused.details} {no_order}"
        raise
    except OutOfStockError as error:
        raise BuyButtonRefused(
            error.message,
            code="out_of_stock",
            details=f"{money_note}: out of stock ({error.extra}). {no_order}",
            alert=not credential.is_test,
        ) from error
    except ApplicationError as error:
        raise BuyButtonRefused(
            error.message,
            code=error.code,
            details=f"{money_note}: the order could not be placed ({error.code}: "
            f"{error.message}). {no_order}",
            alert=not credential.is_test,
        ) from error
    return order


def _charge_text(charge: ChargeInfo | None, event: Any) -> str:
    if charge is not None:
        return _money_text(Money(charge.amount_minor, charge.currency))
    shown = _event_money(event.amount)
    return f"test payment of {_money_text(shown) if shown else event.amount!r}"


def _money_text(amount: Money) -> str:
    try:
        return amount.format("en")
    except Exception:  # an odd currency from a payload: still say something useful
        return f"{amount.amount_minor} {amount.currency} (minor units)"


def _payment_customer(*, page: Any, event: Any) -> Customer:
    """The customer behind the sender (created when the inbox has not seen them yet).

    :raises BuyButtonRefused: ``customer_unknown``: no sender, or a customer of another shop.
    """
    if not event.sender_psid:
        raise BuyButtonRefused(
            _("We could not confirm this payment."),
            code="customer_unknown",
            details="The payment event has no sender.",
        )
    customer, _created = Customer.objects.select_related("merchant").get_or_create(
        page_id=page.page_id, psid=event.sender_psid, defaults={"merchant": page.merchant}
    )
    if customer.merchant_id != page.merchant.pk:
        raise BuyButtonRefused(
            _("We could not confirm this payment."),
            code="customer_unknown",
            details=f"Customer {customer.pk} belongs to another merchant than page {page.page_id}.",
        )
    return customer


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _contact(info: dict, country: str) -> tuple[str, str]:
    """The dialog's email and phone, normalized; a value we cannot read is left out."""
    email = phone = ""
    try:
        email = email_normalize(raw=_text(info.get("contact_email"))) if info else ""
    except AddressError:
        email = ""
    try:
        raw_phone = _text(info.get("contact_phone"))
        phone = phone_normalize(raw=raw_phone, default_region=country or None) if raw_phone else ""
    except AddressError:
        phone = ""
    return email, phone


def _address(*, customer: Customer, info: dict, phone: str):
    """Save the dialog's shipping address (``street_1`` here, ``street1`` in some callbacks);
    None (and the reason) when it is missing or unusable."""
    address = info.get("shipping_address") if isinstance(info.get("shipping_address"), dict) else {}
    if not address:
        return None, "no shipping address came with the payment"
    name = _text(info.get("contact_name")) or f"{customer.first_name} {customer.last_name}".strip()
    try:
        saved = address_save(
            customer=customer,
            name=name,
            line1=_text(address.get("street_1")) or _text(address.get("street1")),
            line2=_text(address.get("street_2")) or _text(address.get("street2")),
            city=_text(address.get("city")),
            region=_text(address.get("state")),
            postal_code=_text(address.get("postal_code")),
            country=_text(address.get("country")),
            phone=phone,
        )
    except AddressError as error:
        return None, f"the shipping address is unusable ({error.code}: {error.message})"
    return saved, ""


def _order_place(*, page: Any, customer: Customer, variant: Variant, event: Any) -> Order:
    """A ``pending_payment`` order for one unit of ``variant``, stock reserved.

    The order comes from a cart holding only that line: the shopper's open cart (what they are
    still browsing) is set aside for the placement and given back unchanged, in this transaction.

    :raises OutOfStockError: the unit cannot be reserved.
    :raises ApplicationError: any other refusal of the cart or order services.
    """
    info = event.requested_user_info if isinstance(event.requested_user_info, dict) else {}
    country = _country(info.get("shipping_address"))
    email, phone = _contact(info, country)
    address, address_problem = _address(customer=customer, info=info, phone=phone)
    _contact_fill(customer=customer, email=email, phone=phone, country=country)
    method = _shipping_method(
        merchant=page.merchant, country=country, option_id=_text(event.shipping_option_id)
    )
    open_carts = Cart.objects.filter(
        customer_id=customer.pk, merchant_id=customer.merchant_id, status=Cart.Status.OPEN
    )
    set_aside = list(open_carts.values_list("pk", flat=True))
    open_carts.update(status=Cart.Status.ABANDONED)  # no updated_at bump: given back below
    cart = cart_get_open(customer=customer)
    cart_add(cart=cart, variant_id=variant.pk, quantity=1)
    order = order_create_from_cart(
        cart=cart,
        shipping_method=method,
        address=address,
        contact_email=email,
        contact_phone=phone,
    )
    Cart.objects.filter(pk__in=set_aside).update(status=Cart.Status.OPEN)
    if address_problem:
        order_flag_for_review(
            order=order,
            reason=f"Messenger payment: {address_problem}."[:200],
            actor=OrderEvent.Actor.PROVIDER,
        )
    return order


def _contact_fill(*, customer: Customer, email: str, phone: str, country: str) -> None:
    """Keep the dialog's email and phone on the customer where they have none yet."""
    changes = {}
    if email and not customer.email:
        changes["email"] = email
    if phone and not customer.phone:
        changes["phone"] = phone
    if changes:
        try:
            customer_set_contact(customer=customer, default_region=country or None, **changes)
        except AddressError:  # already normalized above; never fail a payment over this
            logger.info("Could not keep the contact of customer %s.", customer.pk)


def _shipping_method(*, merchant: Merchant, country: str, option_id: str) -> ShippingMethod | None:
    """The method the shopper picked in the dialog (``shipping_option_id``, one of the options
    :func:`checkout_update_answer` offered), else none: with ``FIXED_AMOUNT`` the dialog shows
    no shipping choice and the shopper pays the button's price."""
    if not option_id or not country:
        return None
    for method in shipping_methods_for(merchant=merchant, country=country):
        if str(method.pk) == option_id:
            return method
    return None


def _payment_record(
    *, order: Order, charge: ChargeInfo | None, credential: _Credential, event: Any, page: Any
) -> Order:
    """Record the payment on ``order`` and settle it (``payment_settle``): paid when the event's
    amount and the charge's equal the order total, else a flagged mismatch. Returns the order
    as it is now."""
    order = Order.objects.select_for_update().get(pk=order.pk)
    shown = _event_money(event.amount)
    if charge is not None:
        paid = Money(charge.amount_minor, charge.currency) if charge.currency else None
    else:
        paid = shown
    amount_minor, currency, received = None, order.currency, None
    if paid is not None and shown == paid:
        amount_minor, currency = paid.amount_minor, paid.currency
    else:
        received = (
            f"{_money_text(paid) if paid else '?'} "
            f"(the Messenger payment said {_money_text(shown) if shown else event.amount!r})"
        )
        currency = paid.currency if paid else (shown.currency if shown else "")
    key = credential.charge_id if not credential.is_test else f"{credential.charge_id}:{order.pk}"
    payment = Payment.objects.create(
        order=order,
        gateway=Payment.Gateway.STRIPE_BUY_BUTTON,
        attempt=1,
        amount_minor=max(paid.amount_minor if paid else 0, 0),
        currency=(paid.currency if paid else order.currency)[:3],
        idempotency_key=f"buy_button:{key}"[:100],
        charge_id=None if credential.is_test else credential.charge_id,
        payment_intent_id=charge.payment_intent_id if charge else "",
        card_brand=(charge.card_brand if charge else "")[:20],
        card_last4=(charge.card_last4 if charge else "")[:4],
        is_test=credential.is_test or (charge is not None and not charge.livemode),
    )
    payment_settle(
        order=order,
        payment=payment,
        amount_minor=amount_minor,
        currency=currency,
        received=received,
        source=f"Messenger payment (Stripe charge {credential.charge_id})",
        data={
            "payment_id": payment.pk,
            "charge_id": credential.charge_id,
            "fb_payment_id": credential.fb_payment_id,
            "gateway": Payment.Gateway.STRIPE_BUY_BUTTON,
            "page_id": page.page_id,
        },
    )
    return order


def _operators_alert(*, merchant: Merchant, subject: str, message: str) -> None:
    """Log ``message`` and, after commit, mail it to ``ADMINS`` and the merchant's owners and
    managers: ``payments.services.alerts.operators_alert`` for money that has no order."""
    alerts_logger.error("Merchant %s: %s", merchant.pk, message)
    merchant_id = merchant.pk

    def send() -> None:
        try:
            mail_admins(subject, message, fail_silently=True)
            recipients = staff_recipients(merchant_id=merchant_id)
            if recipients:
                send_mail(subject, message, settings.DEFAULT_FROM_EMAIL, recipients)
        except Exception:
            alerts_logger.exception("Could not mail the alert %r.", subject)

    transaction.on_commit(send)
