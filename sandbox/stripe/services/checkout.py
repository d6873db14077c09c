"""Checkout Sessions, coupons and what paying on the hosted page does to them.

A session is created ``open`` / ``unpaid`` with ``url`` = our hosted page. Paying there with a
test card either completes it (a PaymentIntent ``succeeded`` with its Charge; events
``charge.succeeded``, ``payment_intent.succeeded``, ``checkout.session.completed``) or, declined,
leaves it open for another try (a failed Charge on the same PaymentIntent; events
``charge.failed``, ``payment_intent.payment_failed``). A session expires when asked to
(``POST .../expire``) or once ``expires_at`` has passed: checked by a task queued at creation
for that moment, and on every read of the session (the API and the page), so expiry never
depends on a worker being up. Expiry sends ``checkout.session.expired``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from sandbox.stripe.amounts import THREE_DECIMAL
from sandbox.stripe.cards import Card, Decline
from sandbox.stripe.errors import StripeError, as_int, invalid
from sandbox.stripe.models import StripeObject
from sandbox.stripe.services.events import event_emit
from sandbox.stripe.services.objects import (
    new_id,
    now,
    object_create,
    object_get,
    object_save,
)

logger = logging.getLogger(__name__)

SESSION = "checkout.session"
SESSION_MIN_SECONDS = 30 * 60
SESSION_MAX_SECONDS = 24 * 60 * 60
CHECKOUT_LOCALES = frozenset(
    [
        "auto",
        "bg",
        "cs",
        "da",
        "de",
        "el",
        "en",
        "en-GB",
        "es",
        "es-419",
        "et",
        "fi",
        "fil",
        "fr",
        "fr-CA",
        "hi-IN",
        "hr",
        "hu",
        "id",
        "it",
        "ja",
        "ko",
        "lt",
        "lv",
        "ms",
        "mt",
        "nb",
        "nl",
        "pl",
        "pt",
        "pt-BR",
        "ro",
        "ru",
        "sk",
        "sl",
        "sv",
        "th",
        "tr",
        "vi",
        "zh",
        "zh-HK",
        "zh-TW",
    ]
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class SessionClosed(Exception):
    """The session can no longer be paid (``status`` says why: ``expired`` or ``complete``)."""

    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


class EmailInvalid(ValueError):
    """The email typed on the hosted page is not an address."""


# -- parameters -----------------------------------------------------------------------------------


def metadata_param(value: Any, param: str) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise invalid("Invalid object", param=param)
    if len(value) > 50:
        raise invalid("You can have at most 50 metadata keys.", param=param)
    for key, item in value.items():
        if len(key) > 40:
            raise invalid("Metadata keys can be at most 40 characters long.", param=param)
        if len(str(item)) > 500:
            raise invalid("Metadata values can be at most 500 characters long.", param=param)
    return {key: str(item) for key, item in value.items() if item != ""}


def _currency(value: Any, param: str) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z]{3}", value):
        raise invalid(f"Invalid currency: {value}", param=param, code="parameter_invalid")
    return value


def _amount(value: Any, param: str, currency: str) -> int:
    amount = as_int(value, param)
    if amount < 0:
        raise invalid("This value must be greater than or equal to 0.", param=param)
    if currency.upper() in THREE_DECIMAL and amount % 10:
        raise invalid(
            "Amounts in three-decimal currencies must be a multiple of 10 (the last digit 0).",
            param=param,
            code="invalid_amount",
        )
    return amount


def _url(value: Any, param: str) -> str | None:
    if value in (None, ""):
        return None
    parts = urlsplit(str(value))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid("Not a valid URL", param=param, code="url_invalid")
    return str(value)


def _line_items(params: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    items = params.get("line_items")
    if not isinstance(items, list) or not items:
        raise invalid(
            "line_items is required in payment mode.", param="line_items", code="parameter_missing"
        )
    if len(items) > 100:
        raise invalid("You can have at most 100 line items.", param="line_items")
    currencies, lines = set(), []
    for i, item in enumerate(items):
        here = f"line_items[{i}]"
        if not isinstance(item, dict):
            raise invalid("Invalid object", param=here)
        if item.get("price"):
            raise StripeError(
                f"No such price: '{item['price']}'",
                status=400,
                code="resource_missing",
                param=f"{here}[price]",
            )
        price = item.get("price_data")
        if not isinstance(price, dict):
            raise invalid(
                "You must specify either `price` or `price_data`.",
                param=f"{here}[price_data]",
                code="parameter_missing",
            )
        currency = _currency(price.get("currency"), f"{here}[price_data][currency]")
        unit = _amount(price.get("unit_amount"), f"{here}[price_data][unit_amount]", currency)
        quantity = as_int(item.get("quantity"), f"{here}[quantity]")
        if quantity < 1:
            raise invalid("Quantity must be at least 1.", param=f"{here}[quantity]")
        product = price.get("product_data")
        name = product.get("name") if isinstance(product, dict) else None
        if not name:
            raise invalid(
                "Missing required param: line_items[][price_data][product_data][name].",
                param=f"{here}[price_data][product_data][name]",
                code="parameter_missing",
            )
        currencies.add(currency)
        images = product.get("images") if isinstance(product.get("images"), list) else []
        lines.append(
            {
                "id": new_id("li_1Q"),
                "object": "item",
                "description": str(name),
                "quantity": quantity,
                "currency": currency,
                "price": {"unit_amount": unit, "currency": currency},
                "amount_subtotal": unit * quantity,
                "amount_total": unit * quantity,
                "images": [str(image) for image in images[:8]],
            }
        )
    if len(currencies) != 1:
        raise invalid("All line items must use the same currency.", param="line_items")
    return currencies.pop(), lines


def _expires_at(params: dict[str, Any], created: int) -> int:
    if params.get("expires_at") in (None, ""):
        return created + SESSION_MAX_SECONDS
    expires_at = as_int(params["expires_at"], "expires_at")
    if not created + SESSION_MIN_SECONDS <= expires_at <= created + SESSION_MAX_SECONDS:
        raise invalid(
            "The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout "
            "Session creation.",
            param="expires_at",
        )
    return expires_at


def _shipping_rates(params: dict[str, Any], currency: str) -> list[StripeObject]:
    options = params.get("shipping_options") or []
    if not isinstance(options, list):
        raise invalid("Invalid array", param="shipping_options")
    if len(options) > 5:
        raise invalid("You can have at most 5 shipping options.", param="shipping_options")
    rates = []
    for i, option in enumerate(options):
        here = f"shipping_options[{i}][shipping_rate_data]"
        data = option.get("shipping_rate_data") if isinstance(option, dict) else None
        if not isinstance(data, dict):
            raise invalid(
                "This sandbox takes shipping options as shipping_rate_data.",
                param=here,
                code="parameter_missing",
            )
        fixed = data.get("fixed_amount") if isinstance(data.get("fixed_amount"), dict) else {}
        rate_currency = _currency(fixed.get("currency"), f"{here}[fixed_amount][currency]")
        if rate_currency != currency:
            raise invalid(
                "The shipping rate's currency must match the line items' currency.",
                param=f"{here}[fixed_amount][currency]",
            )
        amount = _amount(fixed.get("amount"), f"{here}[fixed_amount][amount]", currency)
        name = str(data.get("display_name") or "")
        if not name or len(name) > 100:
            raise invalid(
                "display_name is required (at most 100 characters).",
                param=f"{here}[display_name]",
            )
        rate = {
            "id": new_id("shr_1Q"),
            "object": "shipping_rate",
            "active": True,
            "created": now(),
            "delivery_estimate": None,
            "display_name": name,
            "fixed_amount": {"amount": amount, "currency": currency},
            "livemode": False,
            "metadata": metadata_param(data.get("metadata"), f"{here}[metadata]"),
            "tax_behavior": "unspecified",
            "tax_code": None,
            "type": "fixed_amount",
        }
        rates.append(object_create(kind="shipping_rate", data=rate))
    return rates


def _coupon(params: dict[str, Any], currency: str) -> dict[str, Any] | None:
    discounts = params.get("discounts") or []
    if not discounts:
        return None
    if not isinstance(discounts, list) or len(discounts) > 1:
        raise invalid("You may only specify one discount.", param="discounts")
    coupon_id = discounts[0].get("coupon") if isinstance(discounts[0], dict) else None
    if not coupon_id:
        raise invalid(
            "This sandbox takes discounts as coupon ids.",
            param="discounts[0][coupon]",
            code="parameter_missing",
        )
    coupon = object_get(kind="coupon", object_id=str(coupon_id)).data
    if coupon.get("amount_off") is not None and coupon.get("currency") != currency:
        raise invalid("The coupon's currency must match the session's currency.", param="discounts")
    limit = coupon.get("max_redemptions")
    if not coupon.get("valid") or (limit is not None and coupon["times_redeemed"] >= limit):
        raise invalid(
            f"Coupon {coupon_id} is no longer valid.", param="discounts", code="coupon_expired"
        )
    return coupon


def _discount(coupon: dict[str, Any] | None, subtotal: int) -> int:
    if coupon is None:
        return 0
    if coupon.get("amount_off") is not None:
        return min(int(coupon["amount_off"]), subtotal)
    return subtotal * round(float(coupon["percent_off"]) * 100) // 10000


def _totals(session: dict[str, Any], discount: int, shipping: dict[str, Any] | None) -> None:
    """Set ``amount_total``, ``total_details`` and ``shipping_cost`` for the chosen rate."""
    amount_shipping = shipping["fixed_amount"]["amount"] if shipping else 0
    session["amount_total"] = session["amount_subtotal"] - discount + amount_shipping
    session["total_details"] = {
        "amount_discount": discount,
        "amount_shipping": amount_shipping,
        "amount_tax": 0,
    }
    session["shipping_cost"] = (
        {
            "amount_subtotal": amount_shipping,
            "amount_tax": 0,
            "amount_total": amount_shipping,
            "shipping_rate": shipping["id"],
        }
        if shipping
        else None
    )


def hosted_page_url(session_id: str) -> str:
    path = reverse("sandbox:stripe-pay", kwargs={"session_id": session_id})
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


# -- coupons --------------------------------------------------------------------------------------


@transaction.atomic
def coupon_create(*, params: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/coupons``: ``amount_off`` + ``currency`` or ``percent_off``.

    :raises StripeError: missing or conflicting amounts.
    """
    amount_off, percent_off = params.get("amount_off"), params.get("percent_off")
    if (amount_off in (None, "")) == (percent_off in (None, "")):
        raise invalid("You must pass either amount_off or percent_off.", param="amount_off")
    currency = None
    if amount_off not in (None, ""):
        if not params.get("currency"):
            raise invalid(
                "You must pass currency when passing amount_off.",
                param="currency",
                code="parameter_missing",
            )
        currency = _currency(params["currency"], "currency")
        amount_off = _amount(amount_off, "amount_off", currency)
    else:
        try:
            percent_off = float(percent_off)
        except ValueError:
            raise invalid(f"Invalid decimal: {percent_off}", param="percent_off") from None
        if not 0 < percent_off <= 100:
            raise invalid("percent_off must be between 0 and 100.", param="percent_off")
    duration = params.get("duration") or "once"
    if duration not in ("once", "forever", "repeating"):
        raise invalid(f"Invalid duration: {duration}", param="duration")
    limit = params.get("max_redemptions")
    coupon = {
        "id": new_id("", 8),
        "object": "coupon",
        "amount_off": amount_off if currency else None,
        "created": now(),
        "currency": currency,
        "duration": duration,
        "duration_in_months": None,
        "livemode": False,
        "max_redemptions": as_int(limit, "max_redemptions") if limit not in (None, "") else None,
        "metadata": metadata_param(params.get("metadata"), "metadata"),
        "name": (params.get("name") or None),
        "percent_off": percent_off if not currency else None,
        "redeem_by": None,
        "times_redeemed": 0,
        "valid": True,
    }
    return object_create(kind="coupon", data=coupon).data


# -- sessions -------------------------------------------------------------------------------------


@transaction.atomic
def session_create(*, params: dict[str, Any]) -> dict[str, Any]:
    """``POST /v1/checkout/sessions`` (``mode=payment``, ``price_data`` line items).

    Validates like Stripe where a caller could get it wrong (see the module docstring of the
    API); the first shipping option is preselected and counted in ``amount_total``.

    :raises StripeError: 400 for invalid parameters, 404 for an unknown coupon.
    """
    if params.get("mode") != "payment":
        raise invalid("This sandbox supports mode=payment only.", param="mode")
    currency, lines = _line_items(params)
    created = now()
    expires_at = _expires_at(params, created)
    locale = params.get("locale") or "auto"
    if locale not in CHECKOUT_LOCALES:
        raise invalid(f"Invalid locale: {locale}", param="locale")
    email = params.get("customer_email") or None
    if email is not None and not _EMAIL.match(email):
        raise invalid(
            f"Invalid email address: {email}", param="customer_email", code="email_invalid"
        )
    reference = params.get("client_reference_id") or None
    if reference is not None and len(reference) > 200:
        raise invalid(
            "client_reference_id can be at most 200 characters.", param="client_reference_id"
        )
    metadata = metadata_param(params.get("metadata"), "metadata")
    intent_data = params.get("payment_intent_data")
    intent_data = intent_data if isinstance(intent_data, dict) else {}
    intent_metadata = metadata_param(intent_data.get("metadata"), "payment_intent_data[metadata]")
    success_url = _url(params.get("success_url"), "success_url")
    cancel_url = _url(params.get("cancel_url"), "cancel_url")
    coupon = _coupon(params, currency)
    rates = _shipping_rates(params, currency)

    session_id = new_id("cs_test_a1", 56)
    subtotal = sum(line["amount_subtotal"] for line in lines)
    session: dict[str, Any] = {
        "id": session_id,
        "object": SESSION,
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": subtotal,
        "amount_total": subtotal,
        "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": cancel_url,
        "client_reference_id": reference,
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": currency,
        "custom_fields": [],
        "custom_text": {"shipping_address": None, "submit": None},
        "customer": None,
        "customer_creation": "if_required",
        "customer_details": None,
        "customer_email": email,
        "discounts": [{"coupon": coupon["id"], "promotion_code": None}] if coupon else [],
        "expires_at": expires_at,
        "invoice": None,
        "livemode": False,
        "locale": locale,
        "metadata": metadata,
        "mode": "payment",
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_types": ["card"],
        "payment_status": "unpaid",
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_details": None,
        "shipping_options": [
            {"shipping_amount": rate.data["fixed_amount"]["amount"], "shipping_rate": rate.id}
            for rate in rates
        ],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": success_url,
        "ui_mode": "hosted",
        "url": hosted_page_url(session_id),
    }
    _totals(session, _discount(coupon, subtotal), rates[0].data if rates else None)
    private = {
        "line_items": lines,
        "payment_intent_metadata": intent_metadata,
        "coupon": coupon["id"] if coupon else None,
    }
    object_create(kind=SESSION, data=session, private=private)
    transaction.on_commit(lambda: _schedule_expiry(session_id, expires_at - created))
    return session


def expiry_hop_seconds(seconds: float) -> float:
    """The countdown of the next expiry check, ``seconds`` before the session is due: never
    more than half the broker's visibility timeout (Redis hands a message whose countdown
    outlives it to another worker, and the copies pile up), so a session open for hours is
    checked in hops."""
    options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", None) or {}
    cap = int(options.get("visibility_timeout", 3600)) // 2
    return max(0.0, min(float(seconds), float(cap)))


def _schedule_expiry(session_id: str, seconds: float) -> None:
    from sandbox.stripe.tasks import expire_session_when_due

    try:
        expire_session_when_due.apply_async(
            args=[session_id], countdown=expiry_hop_seconds(seconds), retry=False
        )
    except Exception:  # the page and the API expire it lazily anyway
        logger.warning("Could not schedule the expiry of %s.", session_id, exc_info=True)


def session_expire_when_due(*, session_id: str) -> bool:
    """The expiry task's work: expire the session if its time has come, else check again
    later (another hop); True when this call expired it."""
    if session_expire_if_due(session_id=session_id):
        return True
    row = StripeObject.objects.filter(pk=session_id, object=SESSION).first()
    if row is not None and row.data["status"] == "open":
        _schedule_expiry(session_id, row.data["expires_at"] - now())
    return False


def session_line_items(*, session_id: str) -> list[dict[str, Any]]:
    return object_get(kind=SESSION, object_id=session_id).private.get("line_items", [])


def session_read(*, session_id: str) -> StripeObject:
    """The session as it is now, expired first if its time ran out.

    :raises StripeError: 404 for an unknown id.
    """
    session_expire_if_due(session_id=session_id)
    return object_get(kind=SESSION, object_id=session_id)


def _expire_locked(row: StripeObject, *, request_id=None, idempotency_key=None) -> None:
    session = row.data
    session["status"] = "expired"
    session["url"] = None
    intent_id = session.get("payment_intent")
    if intent_id:
        intent_row = object_get(kind="payment_intent", object_id=intent_id, lock=True)
        intent = intent_row.data
        if intent["status"] != "succeeded":
            intent.update(status="canceled", canceled_at=now(), cancellation_reason="abandoned")
            object_save(intent_row)
            event_emit(type="payment_intent.canceled", obj=intent)
    object_save(row)
    event_emit(
        type="checkout.session.expired",
        obj=session,
        request_id=request_id,
        idempotency_key=idempotency_key,
    )


def session_expire(*, session_id: str, request_id=None, idempotency_key=None) -> dict[str, Any]:
    """``POST /v1/checkout/sessions/<id>/expire``: an open session -> ``expired`` + its event.

    :raises StripeError: 404 unknown, 400 when the session is not open any more.
    """
    session_expire_if_due(session_id=session_id)  # ran out before the call: expired by time
    with transaction.atomic():
        row = object_get(kind=SESSION, object_id=session_id, lock=True)
        status = row.data["status"]
        if status != "open":
            raise invalid(
                f'Only Checkout Sessions with a status in ["open"] can be expired. This '
                f"Checkout Session has a status of `{status}`."
            )
        _expire_locked(row, request_id=request_id, idempotency_key=idempotency_key)
        return row.data


def session_expire_if_due(*, session_id: str, force: bool = False) -> bool:
    """Expire an open session whose ``expires_at`` has passed (or any open one, ``force``);
    True when this call expired it."""
    with transaction.atomic():
        row = StripeObject.objects.select_for_update().filter(pk=session_id, object=SESSION).first()
        if row is None or row.data["status"] != "open":
            return False
        if not force and row.data["expires_at"] > now():
            return False
        _expire_locked(row)
        return True


# -- paying on the hosted page --------------------------------------------------------------------


@dataclass(frozen=True)
class PayOutcome:
    """The session after a payment attempt; ``decline`` set when the card was refused."""

    session: dict[str, Any]
    decline: Decline | None
    redirect_url: str | None


def success_redirect(session: dict[str, Any]) -> str | None:
    url = session.get("success_url")
    return url.replace("{CHECKOUT_SESSION_ID}", session["id"]) if url else None


def _charge_data(
    *, intent: dict[str, Any], card: Card, email: str, name: str, decline: Decline | None
) -> dict[str, Any]:
    paid = decline is None
    return {
        "id": new_id("ch_3Q"),
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"] if paid else 0,
        "amount_refunded": 0,
        "balance_transaction": new_id("txn_3Q") if paid else None,
        "billing_details": {"address": None, "email": email, "name": name or None, "phone": None},
        "captured": paid,
        "created": now(),
        "currency": intent["currency"],
        "customer": None,
        "description": None,
        "disputed": False,
        "failure_code": decline.code if decline else None,
        "failure_message": str(decline.message) if decline else None,
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "outcome": {
            "network_status": "approved_by_network" if paid else "declined_by_network",
            "reason": None if paid else decline.decline_code,
            "risk_level": "normal",
            "seller_message": "Payment complete." if paid else "The bank declined the payment.",
            "type": "authorized" if paid else "issuer_declined",
        },
        "paid": paid,
        "payment_intent": intent["id"],
        "payment_method": new_id("pm_1Q"),
        "payment_method_details": {
            "type": "card",
            "card": {
                "brand": card.brand,
                "country": "US",
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
                "funding": card.funding,
                "last4": card.last4,
                "network": card.brand,
            },
        },
        "receipt_email": email,
        "receipt_url": None,
        "refunded": False,
        "status": "succeeded" if paid else "failed",
    }


def _intent_for(row: StripeObject) -> StripeObject:
    session = row.data
    if session.get("payment_intent"):
        return object_get(kind="payment_intent", object_id=session["payment_intent"], lock=True)
    intent = {
        "id": new_id("pi_3Q"),
        "object": "payment_intent",
        "amount": session["amount_total"],
        "amount_capturable": 0,
        "amount_received": 0,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic_async",
        "client_secret": None,
        "confirmation_method": "automatic",
        "created": now(),
        "currency": session["currency"],
        "customer": None,
        "description": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": dict(row.private.get("payment_intent_metadata") or {}),
        "payment_method": None,
        "payment_method_types": ["card"],
        "receipt_email": None,
        "status": "requires_payment_method",
    }
    created = object_create(kind="payment_intent", data=intent)
    session["payment_intent"] = intent["id"]
    event_emit(type="payment_intent.created", obj=intent)
    return created


@transaction.atomic
def session_pay(
    *, session_id: str, card: Card, email: str, name: str = "", shipping_rate: str = ""
) -> PayOutcome:
    """The shopper pressed Pay on the hosted page with a card that passed the form's checks.

    Call after :func:`session_read` (which expires a session whose time ran out).

    :raises SessionClosed: the session expired or was completed meanwhile (nothing changes).
    :raises EmailInvalid: the email is not an address (nothing changes).
    :raises StripeError: 404 for an unknown session.
    """
    row = object_get(kind=SESSION, object_id=session_id, lock=True)
    session = row.data
    if session["status"] == "open" and session["expires_at"] <= now():
        raise SessionClosed("expired")  # the next read expires it (this transaction rolls back)
    if session["status"] != "open":
        raise SessionClosed(session["status"])
    email = (email or "").strip()
    if not _EMAIL.match(email):
        raise EmailInvalid(email)
    rate_ids = [option["shipping_rate"] for option in session["shipping_options"]]
    chosen = shipping_rate if shipping_rate in rate_ids else (rate_ids[0] if rate_ids else None)
    rate = object_get(kind="shipping_rate", object_id=chosen).data if chosen else None
    coupon_id = row.private.get("coupon")
    coupon = object_get(kind="coupon", object_id=coupon_id, lock=True) if coupon_id else None
    _totals(session, session["total_details"]["amount_discount"], rate)

    intent_row = _intent_for(row)
    intent = intent_row.data
    intent["amount"] = session["amount_total"]
    charge = _charge_data(intent=intent, card=card, email=email, name=name, decline=card.decline)
    object_create(kind="charge", data=charge)
    intent["latest_charge"] = charge["id"]
    intent["payment_method"] = charge["payment_method"]
    if card.decline is not None:
        intent["status"] = "requires_payment_method"
        intent["last_payment_error"] = {
            "type": "card_error",
            "code": card.decline.code,
            "decline_code": card.decline.decline_code,
            "message": str(card.decline.message),
            "charge": charge["id"],
        }
        object_save(intent_row)
        object_save(row)
        event_emit(type="charge.failed", obj=charge)
        event_emit(type="payment_intent.payment_failed", obj=intent)
        return PayOutcome(session=session, decline=card.decline, redirect_url=None)

    intent.update(status="succeeded", amount_received=intent["amount"], last_payment_error=None)
    intent["receipt_email"] = email
    object_save(intent_row)
    if coupon is not None:
        coupon.data["times_redeemed"] += 1
        object_save(coupon)
    session.update(
        status="complete",
        payment_status="paid",
        url=None,
        customer_details={
            "address": None,
            "email": email,
            "name": name or None,
            "phone": None,
            "tax_exempt": "none",
            "tax_ids": [],
        },
    )
    object_save(row)
    event_emit(type="charge.succeeded", obj=charge)
    event_emit(type="payment_intent.succeeded", obj=intent)
    event_emit(type="checkout.session.completed", obj=session)
    return PayOutcome(session=session, decline=None, redirect_url=success_redirect(session))
