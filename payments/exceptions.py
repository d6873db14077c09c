"""Anticipated payments errors: each carries a message fit to show the shopper."""

from core.exceptions import ApplicationError


class CheckoutLinkError(ApplicationError):
    """A checkout link is forged, damaged (``checkout_link_invalid``) or too old
    (``checkout_link_expired``)."""

    default_code = "checkout_link_invalid"
