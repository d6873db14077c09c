"""Payment gateways: ``gateway_for(name)`` and the types of :mod:`payments.gateways.base`.

Only ``payments/gateways/stripe.py`` imports the ``stripe`` library.
"""

from payments.gateways.base import (
    ChargeInfo,
    CheckoutStarted,
    GatewayError,
    PaymentGateway,
    RefundResult,
    WebhookSignatureError,
    gateway_for,
)

__all__ = [
    "ChargeInfo",
    "CheckoutStarted",
    "GatewayError",
    "PaymentGateway",
    "RefundResult",
    "WebhookSignatureError",
    "gateway_for",
]
