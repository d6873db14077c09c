"""Stripe, through the official library's ``StripeClient``: the only module that imports ``stripe``.

A client is built per call from the settings of that moment (``STRIPE_SECRET_KEY``,
``STRIPE_API_BASE``: the sandbox or a test stub serve the same ``/v1/...`` paths), with
``max_network_retries=2``: the library retries connection failures, 409s and 5xx itself,
reusing the request's idempotency key, so a retry can never charge twice.

Checkout Sessions are built from the order's server-side snapshot only:

* one ``price_data`` line per order line (``unit_amount`` in Stripe's minor units, quantity);
* exclusive tax as one more line ("Tax 5%"); inclusive tax is already inside the line prices;
* shipping as a fixed-amount ``shipping_options`` rate (Checkout shows it as shipping and
  reports it in ``total_details.amount_shipping``);
* the voucher discount as a one-off ``amount_off`` coupon (``duration=once``,
  ``max_redemptions=1``) created just before the session with its own idempotency key
  (``<payment key>:coupon``). Stripe has no negative line items, and spreading a discount over
  the lines cannot stay exact once quantities do not divide it; a fixed ``amount_off`` of exactly
  the order's discount applies to the line items (never to shipping, and it never exceeds the
  subtotal), so ``amount_total = lines + tax - discount + shipping = order.total`` to the unit.
  The sum is checked before the call and Stripe's ``amount_total`` after it.

``expires_at`` is the order's ``reserved_until``, clamped to what Stripe accepts: at least
30 minutes after the session is created (plus a 5-minute allowance for a retry and clock skew)
and at most 24 hours. The clamp counts from ``payment.created_at``, not from the clock of the
call, so a retried request sends identical parameters and Stripe replays the first answer. The
floor means a session can outlive a reservation shorter than 35 minutes: a payment completed
after the order expired must be caught by the webhook (flagged for review, never silently paid).

Stripe Checkout has no Arabic locale (its supported list has no ``ar``): Arabic shoppers get
``auto`` (the browser's language where Stripe supports it, else English); our own checkout page
is the Arabic one. Amounts: Stripe's zero-decimal currencies take whole units, ISK takes two
decimals for backwards compatibility, and the three-decimal currencies (BHD, JOD, KWD, OMR, TND)
take fils but require the last digit to be 0: an amount Stripe cannot take exactly is refused
(``amount_not_supported``) rather than rounded.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from commerce.models import Order, OrderLine
from core.currencies import currency_exponent
from payments.gateways.base import (
    ChargeInfo,
    CheckoutStarted,
    GatewayError,
    RefundResult,
    WebhookSignatureError,
)
from payments.models import Payment, Refund

logger = logging.getLogger(__name__)

MAX_NETWORK_RETRIES = 2
DEFAULT_TIMEOUT_SECONDS = 20
WEBHOOK_TOLERANCE_SECONDS = 300
# Stripe: expires_at "can be anywhere from 30 minutes to 24 hours after Checkout Session creation".
# "For `payment` mode, there is a maximum of 100 line items" (the library's
# SessionCreateParams.line_items, stripe 16.1).
LINE_ITEMS_MAX = 100
SESSION_MIN_LIFETIME = timedelta(minutes=30)
SESSION_MAX_LIFETIME = timedelta(hours=24)
# Room between creating the Payment row and Stripe creating the session (retries, clock skew).
SESSION_CLAMP_ALLOWANCE = timedelta(minutes=5)

# Checkout's supported locales (stripe-python's SessionCreateParams, docs "Supported locales").
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
# Stripe's zero-decimal currencies (whole units), and its exceptions to ISO 4217 exponents.
_ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
_STRIPE_EXPONENT_OVERRIDES = {"ISK": 2}
# Three-decimal currencies whose amounts Stripe only takes with a last digit of 0.
_TEN_FILS = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])

_REFUND_STATUSES = {
    "pending": Refund.Status.PENDING,
    "requires_action": Refund.Status.PENDING,
    "succeeded": Refund.Status.SUCCEEDED,
    "failed": Refund.Status.FAILED,
    "canceled": Refund.Status.CANCELED,
}


def _refund_result(refund: dict[str, Any]) -> RefundResult:
    return RefundResult(
        provider_id=refund["id"],
        status=_REFUND_STATUSES.get(refund.get("status") or "", Refund.Status.PENDING),
        failure_reason=str(refund.get("failure_reason") or ""),
    )


# -- amounts ----------------------------------------------------------------------------------


def _stripe_exponent(currency: str) -> int:
    code = currency.upper()
    if code in _ZERO_DECIMAL:
        return 0
    return _STRIPE_EXPONENT_OVERRIDES.get(code, currency_exponent(code))


def to_stripe_amount(amount_minor: int, currency: str) -> int:
    """Our minor units -> Stripe's ``amount``; refuses what Stripe cannot take exactly.

    :raises GatewayError: ``amount_not_supported`` (not transient).
    """
    ours, theirs = currency_exponent(currency), _stripe_exponent(currency)
    if theirs >= ours:
        amount = amount_minor * 10 ** (theirs - ours)
    else:
        amount, rest = divmod(amount_minor, 10 ** (ours - theirs))
        if rest:
            raise _amount_not_supported(amount_minor, currency)
    if currency.upper() in _TEN_FILS and amount % 10:
        raise _amount_not_supported(amount_minor, currency)
    return amount


def from_stripe_amount(amount: int, currency: str) -> int:
    """Stripe's ``amount`` -> our minor units (exact: ours never has fewer digits than needed)."""
    ours, theirs = currency_exponent(currency), _stripe_exponent(currency)
    if ours >= theirs:
        return amount * 10 ** (ours - theirs)
    minor, rest = divmod(amount, 10 ** (theirs - ours))
    if rest:
        raise GatewayError(
            _("The payment service reported an amount we cannot record."),
            code="amount_not_supported",
            extra={"amount": amount, "currency": currency.upper()},
        )
    return minor


#: Our amounts are ``BigIntegerField``s: anything from this up is no amount we can record.
_AMOUNT_LIMIT = 2**63


def _charge_amount(
    charge: dict[str, Any], key: str, currency: str, *, missing_is_zero: bool = False
) -> int:
    """``charge[key]`` in our minor units, read strictly: Stripe's amounts are JSON integers of
    minor units, so a float, a string, a boolean, a negative or absurd number, or an unknown
    currency is never coerced into one (``int("2500")`` would have paid an order).

    :raises GatewayError: ``amount_unreadable`` (not transient).
    """
    value = charge.get(key)
    if value is None and missing_is_zero:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _AMOUNT_LIMIT:
        try:
            minor = from_stripe_amount(value, currency)
        except (GatewayError, LookupError, ValueError):
            minor = -1
        if 0 <= minor < _AMOUNT_LIMIT:
            return minor
    raise GatewayError(
        _("The payment service reported an amount we cannot record."),
        code="amount_unreadable",
        extra={"field": key, "value": repr(value)[:40], "currency": currency},
    )


def _amount_not_supported(amount_minor: int, currency: str) -> GatewayError:
    return GatewayError(
        _("This amount cannot be paid by card online. Please contact the shop."),
        code="amount_not_supported",
        extra={"amount_minor": amount_minor, "currency": currency.upper()},
    )


# -- checkout session parameters (pure) -------------------------------------------------------


def checkout_locale(locale: str) -> str:
    """Our language or locale (``"ar"``, ``"en_US"``, ``"fr-CA"``) -> a Checkout ``locale``."""
    tag = (locale or "").strip().replace("_", "-")
    if not tag:
        return "auto"
    language, _sep, region = tag.partition("-")
    candidate = f"{language.lower()}-{region.upper()}" if region else language.lower()
    if candidate in CHECKOUT_LOCALES:
        return candidate
    if language.lower() in CHECKOUT_LOCALES:
        return language.lower()
    return "auto"


def checkout_expires_at(*, reserved_until: datetime | None, created_at: datetime) -> int:
    """``reserved_until`` clamped into Stripe's window counted from ``created_at`` (Unix time)."""
    earliest = created_at + SESSION_MIN_LIFETIME + SESSION_CLAMP_ALLOWANCE
    latest = created_at + SESSION_MAX_LIFETIME - SESSION_CLAMP_ALLOWANCE
    wanted = reserved_until or earliest
    return int(min(max(wanted, earliest), latest).timestamp())


def _line_name(line: OrderLine) -> str:
    # Stripe refuses an empty product name; a line snapshot may have lost its title.
    name = line.product_title.strip() or line.sku.strip() or _("Item")
    if line.variant_name.strip():
        name = f"{name} – {line.variant_name.strip()}"
    return name[:250]


def _tax_line_name(order: Order) -> str:
    label = (getattr(order.merchant, "tax_label", "") or "").strip() or _("Tax")
    if order.tax_rate_bp:
        whole, rest = divmod(order.tax_rate_bp, 100)
        rate = f"{whole}.{rest:02d}".rstrip("0").rstrip(".")
        return f"{label} {rate}%"
    return label


def checkout_session_params(
    *,
    order: Order,
    lines: Sequence[OrderLine],
    payment: Payment,
    success_url: str,
    cancel_url: str,
    locale: str,
    coupon_id: str | None = None,
) -> dict[str, Any]:
    """The ``POST /v1/checkout/sessions`` parameters for ``order`` (see the module docstring).

    Pure apart from reading the instances given; deterministic for one ``payment`` row.

    :raises GatewayError: ``order_total_inconsistent`` when the order's lines, tax, discount
        and shipping do not add up to its total, ``amount_not_supported`` for an amount Stripe
        cannot take exactly. Neither is transient.
    """
    currency = order.currency
    code = currency.lower()

    def amount(minor: int) -> int:
        return to_stripe_amount(minor, currency)

    line_items: list[dict[str, Any]] = []
    goods = 0
    tax_line = 0 if order.prices_include_tax else order.tax_minor
    # Stripe takes at most 100 line items in payment mode: past that, the last item sums up
    # the remaining lines, so a big order can still be paid (the amounts stay exact).
    room = LINE_ITEMS_MAX - (1 if tax_line else 0)
    rest = list(lines[room - 1 :]) if len(lines) > room else []
    lines = lines[: len(lines) - len(rest)]
    for line in lines:
        product: dict[str, Any] = {"name": _line_name(line), "metadata": {"sku": line.sku}}
        if line.image_url.startswith("https://"):
            product["images"] = [line.image_url]
        line_items.append(
            {
                "price_data": {
                    "currency": code,
                    "unit_amount": amount(line.unit_price_minor),
                    "product_data": product,
                },
                "quantity": line.quantity,
            }
        )
        goods += line.unit_price_minor * line.quantity
    if rest:
        rest_minor = sum(line.unit_price_minor * line.quantity for line in rest)
        line_items.append(
            {
                "price_data": {
                    "currency": code,
                    "unit_amount": amount(rest_minor),
                    "product_data": {
                        "name": ngettext(
                            "and %(count)d more item", "and %(count)d more items", len(rest)
                        )
                        % {"count": len(rest)}
                    },
                },
                "quantity": 1,
            }
        )
        goods += rest_minor
    if tax_line:
        line_items.append(
            {
                "price_data": {
                    "currency": code,
                    "unit_amount": amount(tax_line),
                    "product_data": {"name": _tax_line_name(order)},
                },
                "quantity": 1,
            }
        )
    expected = goods + tax_line - order.discount_minor + order.shipping_minor
    if not line_items or expected != order.total_minor or order.discount_minor > goods + tax_line:
        raise GatewayError(
            _("This order cannot be paid online right now. Please contact the shop."),
            code="order_total_inconsistent",
            extra={
                "order_id": order.pk,
                "computed_minor": expected,
                "total_minor": order.total_minor,
            },
        )
    if order.discount_minor and not coupon_id:
        raise ValueError("An order with a discount needs its coupon id.")

    metadata = {
        "order_id": str(order.pk),
        "order_number": order.number,
        "payment_id": str(payment.pk),
    }
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": line_items,
        "client_reference_id": str(order.pk),
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "locale": checkout_locale(locale),
        "expires_at": checkout_expires_at(
            reserved_until=order.reserved_until, created_at=payment.created_at
        ),
        "success_url": success_url,
        "cancel_url": cancel_url,
    }
    if order.contact_email:
        params["customer_email"] = order.contact_email
    if order.shipping_minor or order.shipping_method_name:
        params["shipping_options"] = [
            {
                "shipping_rate_data": {
                    "type": "fixed_amount",
                    "fixed_amount": {"amount": amount(order.shipping_minor), "currency": code},
                    "display_name": (order.shipping_method_name or _("Shipping"))[:100],
                }
            }
        ]
    if coupon_id:
        params["discounts"] = [{"coupon": coupon_id}]
    return params


def coupon_params(*, order: Order, payment: Payment) -> dict[str, Any]:
    """A one-off coupon worth exactly the order's discount."""
    name = _("Discount")
    if order.voucher_code:
        name = f"{name} {order.voucher_code}"
    return {
        "amount_off": to_stripe_amount(order.discount_minor, order.currency),
        "currency": order.currency.lower(),
        "duration": "once",
        "max_redemptions": 1,
        "name": name[:40],
        "metadata": {"order_id": str(order.pk), "payment_id": str(payment.pk)},
    }


# -- errors -----------------------------------------------------------------------------------


def _gateway_error(exc: stripe.StripeError) -> GatewayError:
    """Stripe's exception -> ours; transient when the same request may succeed later."""
    status = exc.http_status
    transient = isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError) or (
        isinstance(exc, stripe.APIError) and (status is None or status >= 500)
    )
    if not transient and status is not None and status >= 500:
        transient = True
    if transient:
        message, code = _("The payment service is not answering, try again."), "gateway_unavailable"
    elif isinstance(exc, stripe.IdempotencyError):
        message = _("The payment could not be started. Please try again.")
        code = "gateway_idempotency_conflict"
    elif isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        message = _("Card payments are not available right now. Please contact the shop.")
        code = "gateway_not_authorized"
    else:
        message = _("The payment service refused the request. Please contact the shop.")
        code = "gateway_rejected"
    extra = {
        "provider": "stripe",
        "error": type(exc).__name__,
        "provider_code": getattr(exc, "code", None),
        "http_status": status,
        "request_id": exc.request_id,
        "provider_message": (exc.user_message or "")[:300],
    }
    return GatewayError(message, code=code, extra=extra, transient=transient)


def _to_dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


# -- the gateway ------------------------------------------------------------------------------


def _payload_invalid(message: str) -> WebhookSignatureError:
    return WebhookSignatureError(message, code="webhook_payload_invalid")


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON value")


def _event_read(payload: bytes) -> dict[str, Any]:
    """The event in a verified body. ``NaN`` / ``Infinity`` (Python's extensions, refused by
    jsonb) and nesting too deep to parse are invalid JSON like any other.

    :raises WebhookSignatureError: ``webhook_payload_invalid``: not JSON, or not an event.
    """
    try:
        event = json.loads(payload, parse_constant=_not_json)
    except (ValueError, RecursionError):
        raise _payload_invalid(_("The webhook body is not valid JSON.")) from None
    if not isinstance(event, dict) or "id" not in event or "type" not in event:
        raise _payload_invalid(_("The webhook body is not an event."))
    return event


def _refuse_future_timestamp(signature_header: str) -> None:
    """The library refuses signatures older than the tolerance, not ones dated in the future.

    A clock far ahead is as suspicious as one far behind (a replay prepared in advance), so the
    ``t=`` of the header must also be at most the tolerance ahead of our clock.
    """
    for part in signature_header.split(","):
        key, _sep, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise WebhookSignatureError(_("The webhook signature is malformed.")) from None
            if timestamp - time.time() > WEBHOOK_TOLERANCE_SECONDS:
                raise WebhookSignatureError(_("The webhook signature is dated in the future."))
            return


class StripeGateway:
    """:class:`payments.gateways.base.PaymentGateway` for Stripe (Checkout Sessions, refunds)."""

    name = "stripe"

    def _client(self) -> stripe.StripeClient:
        timeout = getattr(settings, "STRIPE_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)
        return stripe.StripeClient(
            api_key=settings.STRIPE_SECRET_KEY,
            base_addresses={"api": settings.STRIPE_API_BASE},
            max_network_retries=MAX_NETWORK_RETRIES,
            http_client=stripe.RequestsClient(timeout=timeout),
        )

    def _call(self, action: str, function, *args, **kwargs):
        try:
            return function(*args, **kwargs)
        except stripe.StripeError as exc:
            error = _gateway_error(exc)
            logger.warning(
                "Stripe %s failed: %s (%s)", action, error.code, error.extra, exc_info=False
            )
            raise error from exc

    # -- checkout -----------------------------------------------------------------------------

    def checkout_start(
        self,
        *,
        order: Order,
        payment: Payment,
        success_url: str,
        cancel_url: str,
        locale: str,
    ) -> CheckoutStarted:
        lines = list(order.lines.all())
        client = self._client()
        coupon_id = None
        if order.discount_minor:
            coupon = self._call(
                "coupon create",
                client.v1.coupons.create,
                params=coupon_params(order=order, payment=payment),
                options={"idempotency_key": f"{payment.idempotency_key}:coupon"},
            )
            coupon_id = coupon["id"]
        params = checkout_session_params(
            order=order,
            lines=lines,
            payment=payment,
            success_url=success_url,
            cancel_url=cancel_url,
            locale=locale,
            coupon_id=coupon_id,
        )
        session = _to_dict(
            self._call(
                "checkout session create",
                client.v1.checkout.sessions.create,
                params=params,
                options={"idempotency_key": payment.idempotency_key},
            )
        )
        expected = to_stripe_amount(order.total_minor, order.currency)
        if session.get("amount_total") != expected or (
            (session.get("currency") or "").lower() != order.currency.lower()
        ):
            logger.error(
                "Stripe session %s totals %s %s, order %s totals %s %s; expiring it.",
                session["id"],
                session.get("amount_total"),
                session.get("currency"),
                order.pk,
                expected,
                order.currency,
            )
            self._expire_quietly(session["id"])
            raise GatewayError(
                _("This order cannot be paid online right now. Please contact the shop."),
                code="gateway_amount_mismatch",
                extra={"session_id": session["id"], "amount_total": session.get("amount_total")},
            )
        return CheckoutStarted(
            session_id=session["id"],
            url=session["url"],
            expires_at=datetime.fromtimestamp(int(session["expires_at"]), tz=UTC),
            livemode=bool(session.get("livemode")),
        )

    def _expire_quietly(self, session_id: str) -> None:
        try:
            self.checkout_expire(session_id=session_id)
        except GatewayError:
            logger.exception("Could not expire Stripe session %s.", session_id)

    def checkout_expire(self, *, session_id: str) -> None:
        client = self._client()
        try:
            client.v1.checkout.sessions.expire(session_id)
        except stripe.InvalidRequestError as exc:
            # Already expired or completed: nothing left to close.
            session = self._call(
                "checkout session retrieve", client.v1.checkout.sessions.retrieve, session_id
            )
            if _to_dict(session).get("status") == "open":
                raise _gateway_error(exc) from exc
        except stripe.StripeError as exc:
            raise _gateway_error(exc) from exc

    def session_retrieve(
        self,
        *,
        session_id: str,
        expand: Sequence[str] = ("payment_intent.latest_charge",),
    ) -> dict[str, Any]:
        session = self._call(
            "checkout session retrieve",
            self._client().v1.checkout.sessions.retrieve,
            session_id,
            params={"expand": list(expand)} if expand else None,
        )
        return _to_dict(session)

    # -- webhooks -----------------------------------------------------------------------------

    def webhook_parse(self, *, payload: bytes, signature_header: str) -> dict[str, Any]:
        """Verify with the library's ``stripe.WebhookSignature.verify_header`` (tolerance 300 s),
        then read the event (:func:`_event_read`).

        The library accepts any of the header's ``v1`` signatures (Stripe signs with the old
        and the new secret while one is being rolled); ``STRIPE_WEBHOOK_SECRET`` may also hold
        several secrets separated by commas (several endpoints, or our side of a rotation):
        the first that verifies wins.
        """
        secrets = [s.strip() for s in settings.STRIPE_WEBHOOK_SECRET.split(",") if s.strip()]
        if not secrets or not signature_header:
            raise WebhookSignatureError(_("Missing webhook signature."))
        _refuse_future_timestamp(signature_header)
        for secret in secrets:
            try:
                # The library's check only: its construct_event also builds a StripeObject, and
                # crashes (AttributeError) on a signed body that is JSON but not an object.
                stripe.WebhookSignature.verify_header(
                    payload, signature_header, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
                )
            except stripe.SignatureVerificationError:
                continue
            except ValueError:  # not UTF-8
                raise _payload_invalid(_("The webhook body is not valid JSON.")) from None
            return _event_read(payload)
        raise WebhookSignatureError(_("The webhook signature does not match."))

    # -- refunds and charges ------------------------------------------------------------------

    def refund_create(self, *, payment: Payment, refund: Refund) -> RefundResult:
        params: dict[str, Any] = {
            "amount": to_stripe_amount(refund.amount_minor, refund.currency),
            "metadata": {
                "refund_id": str(refund.pk),
                "order_id": str(refund.order_id),
                "payment_id": str(payment.pk),
                "reason": (refund.reason or "")[:500],
            },
        }
        if payment.payment_intent_id:
            params["payment_intent"] = payment.payment_intent_id
        elif payment.charge_id:
            params["charge"] = payment.charge_id
        else:
            raise GatewayError(
                _("This payment has not been collected, so it cannot be refunded."),
                code="payment_not_collected",
                extra={"payment_id": payment.pk},
            )
        result = _to_dict(
            self._call(
                "refund create",
                self._client().v1.refunds.create,
                params=params,
                options={"idempotency_key": refund.idempotency_key},
            )
        )
        return _refund_result(result)

    def refund_retrieve(self, *, provider_id: str) -> RefundResult:
        return _refund_result(
            _to_dict(self._call("refund retrieve", self._client().v1.refunds.retrieve, provider_id))
        )

    def charge_retrieve(self, *, charge_id: str) -> ChargeInfo:
        charge = _to_dict(
            self._call("charge retrieve", self._client().v1.charges.retrieve, charge_id)
        )
        currency = charge.get("currency")
        currency = currency.upper() if isinstance(currency, str) else ""
        card = (charge.get("payment_method_details") or {}).get("card") or {}
        payment_intent = charge.get("payment_intent") or ""
        if isinstance(payment_intent, dict):
            payment_intent = payment_intent.get("id", "")
        return ChargeInfo(
            id=charge["id"],
            amount_minor=_charge_amount(charge, "amount", currency),
            currency=currency,
            paid=bool(charge.get("paid")),
            refunded=bool(charge.get("refunded")),
            card_brand=card.get("brand") or "",
            card_last4=card.get("last4") or "",
            payment_intent_id=payment_intent,
            amount_refunded_minor=_charge_amount(
                charge, "amount_refunded", currency, missing_is_zero=True
            ),
            livemode=bool(charge.get("livemode")),
        )
