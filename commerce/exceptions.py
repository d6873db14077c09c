"""Anticipated commerce errors: each carries a message fit to show the merchant or shopper.

Codes are stable (``out_of_stock``...) so the messenger and the API can react to them.
"""

from core.exceptions import ApplicationError, ConflictError


class CatalogImportError(ApplicationError):
    """A catalog file could not be imported; ``extra["rows"]`` lists every bad row."""

    default_code = "catalog_import_invalid"


class CartError(ApplicationError):
    """A cart change was refused (inactive variant, other merchant's variant, quantity limit)."""

    default_code = "cart_invalid"


class OutOfStockError(ConflictError):
    """Not enough units available; ``extra`` names the variant and what is left."""

    default_code = "out_of_stock"


class StockChangedError(ConflictError):
    """Stock on hand moved (a sale, another edit) since staff read it; their count was not saved.

    ``extra["variants"]`` lists ``{"variant_id", "sku", "seen", "current", "value"}`` per variant.
    """

    default_code = "stock_changed"


class VoucherError(ApplicationError):
    """The voucher does not apply (unknown, expired, used up, minimum spend not reached)."""

    default_code = "voucher_invalid"


class ShippingError(ApplicationError):
    """The shipping method is unknown, inactive or does not ship to the address."""

    default_code = "shipping_invalid"


class AddressError(ApplicationError):
    """The address or phone number is not valid."""

    default_code = "address_invalid"


class InvalidTransition(ConflictError):
    """The order's current status does not allow the requested change."""

    default_code = "invalid_transition"


class RefundError(ConflictError):
    """The refund is more than what is left to refund, or the order cannot be refunded."""

    default_code = "refund_invalid"


class SubmissionReusedError(ApplicationError):
    """A submission key (form token, ``Idempotency-Key``) came back with different data."""

    default_code = "submission_reused"
    status_code = 422


class ApiTokenError(ApplicationError):
    """An API token was refused (unknown, revoked, expired) or cannot be issued or revoked."""

    default_code = "api_token_invalid"
