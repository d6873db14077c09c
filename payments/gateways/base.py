"""The payment gateway interface: what payments code may ask of a payment provider.

Services never talk to a provider's SDK; they call a :class:`PaymentGateway` (``gateway_for()``)
and get plain dataclasses back. The provider's own errors are turned into :class:`GatewayError`
(network and provider failures; ``transient`` says whether trying again later can help) or
:class:`WebhookSignatureError` (a webhook whose signature or body does not check out), both
``ApplicationError``s with stable codes.

Amounts crossing this interface are always our minor units (``core.currencies`` exponents);
each gateway converts to whatever its provider expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from django.utils.module_loading import import_string

from core.exceptions import ApplicationError

if TYPE_CHECKING:
    from commerce.models import Order
    from payments.models import Payment, Refund

__all__ = [
    "ChargeInfo",
    "CheckoutStarted",
    "GatewayError",
    "PaymentGateway",
    "RefundResult",
    "WebhookSignatureError",
    "gateway_for",
]


class GatewayError(ApplicationError):
    """The provider failed or refused a request. Nothing was changed on our side by it.

    ``transient``: a network failure, timeout, rate limit or provider-side 5xx: the same request
    (same idempotency key) may succeed later. Otherwise the provider rejected the request and
    repeating it unchanged will fail again (bad parameters, authentication, an amount it cannot
    charge). ``extra`` carries provider details for logs (``provider_code``, ``http_status``,
    ``request_id``), never secrets.
    """

    default_code = "gateway_error"
    status_code = 502

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
        transient: bool = False,
    ):
        super().__init__(message, code=code, extra=extra)
        self.transient = transient

    def as_dict(self) -> dict[str, Any]:
        return {**super().as_dict(), "transient": self.transient}


class WebhookSignatureError(ApplicationError):
    """A provider webhook failed verification: missing, forged or stale signature
    (``webhook_signature_invalid``) or a body that is not an event (``webhook_payload_invalid``).
    Answer 400 and store nothing."""

    default_code = "webhook_signature_invalid"
    status_code = 400


@dataclass(frozen=True)
class CheckoutStarted:
    """A hosted checkout page the shopper can be sent to."""

    session_id: str
    url: str
    expires_at: datetime
    livemode: bool = False


@dataclass(frozen=True)
class RefundResult:
    """A refund as the provider accepted it. ``status`` is a ``Refund.Status`` value
    (``pending``, ``succeeded``, ``failed``, ``canceled``)."""

    provider_id: str
    status: str
    failure_reason: str = ""


@dataclass(frozen=True)
class ChargeInfo:
    """A charge as the provider reports it, amounts in our minor units of ``currency``
    (upper-case ISO code)."""

    id: str
    amount_minor: int
    currency: str
    paid: bool
    refunded: bool
    card_brand: str
    card_last4: str
    payment_intent_id: str
    amount_refunded_minor: int = 0
    livemode: bool = False


class PaymentGateway(Protocol):
    """What a payment provider adapter offers. Every method may raise :class:`GatewayError`."""

    name: str

    def checkout_start(
        self,
        *,
        order: Order,
        payment: Payment,
        success_url: str,
        cancel_url: str,
        locale: str,
    ) -> CheckoutStarted:
        """Open a hosted checkout for ``order``'s server-side lines and totals.

        Idempotent per ``payment.idempotency_key``: calling again for the same ``payment`` row
        returns the same session (the parameters are derived from the order and the row only,
        never from the clock of the call).
        """
        ...

    def checkout_expire(self, *, session_id: str) -> None:
        """Close an open checkout so it can no longer be paid; a closed one is left as it is."""
        ...

    def webhook_parse(self, *, payload: bytes, signature_header: str) -> dict[str, Any]:
        """Verify the raw webhook body against its signature header and return the event.

        :raises WebhookSignatureError: the signature is missing, wrong or stale, or the body
            is not JSON.
        """
        ...

    def refund_create(self, *, payment: Payment, refund: Refund) -> RefundResult:
        """Ask the provider to refund ``refund.amount_minor`` of ``payment``; idempotent per
        ``refund.idempotency_key``."""
        ...

    def refund_retrieve(self, *, provider_id: str) -> RefundResult:
        """The provider's refund ``provider_id`` as it stands now (for refunds whose final
        webhook has not come)."""
        ...

    def charge_retrieve(self, *, charge_id: str) -> ChargeInfo: ...

    def session_retrieve(self, *, session_id: str) -> dict[str, Any]:
        """The checkout session as a plain dict, with its payment intent and latest charge
        expanded."""
        ...


_GATEWAYS = {
    "stripe": "payments.gateways.stripe.StripeGateway",
    "stripe_checkout": "payments.gateways.stripe.StripeGateway",
    "stripe_buy_button": "payments.gateways.stripe.StripeGateway",
}


def gateway_for(name: str = "stripe") -> PaymentGateway:
    """The gateway for a provider name or a ``Payment.gateway`` value.

    Imported lazily, so importing this module never imports a provider SDK.
    """
    try:
        path = _GATEWAYS[name]
    except KeyError:
        raise ValueError(f"Unknown payment gateway {name!r}.") from None
    return import_string(path)()
