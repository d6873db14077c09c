"""Signed links to an order's checkout page: ``<PUBLIC_BASE_URL>/checkout/<token>/``.

The token is the order id signed with ``django.core.signing.TimestampSigner`` (salt
``payments.checkout``, the project's ``SECRET_KEY``), so it cannot be forged or pointed at
another order, and needs no table. It expires with the order's stock reservation: it is stamped
``STOCK_RESERVATION_MINUTES`` before ``order.reserved_until`` (not with the current time), and
the reader's default ``max_age`` is ``STOCK_RESERVATION_MINUTES``, so a link made at placement
and a link made again later ("My orders", "Try again") both stop working when the reservation
runs out. An order without a reservation gets a link valid for that long from now.

The token only proves that we handed this link out for this order recently; the checkout page
must still check that the order is pending payment and its reservation is still running (an
order paid, cancelled or expired early keeps a valid-looking token).
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.utils.translation import gettext as _

from commerce.models import Order
from payments.exceptions import CheckoutLinkError

SALT = "payments.checkout"


class _StampedSigner(signing.TimestampSigner):
    """A ``TimestampSigner`` that writes a chosen Unix time instead of the current one."""

    def __init__(self, *, at: int, **kwargs):
        super().__init__(**kwargs)
        self._at = at

    def timestamp(self) -> str:
        return signing.b62_encode(self._at)


def _window() -> timedelta:
    return timedelta(minutes=settings.STOCK_RESERVATION_MINUTES)


def checkout_token_create(*, order: Order) -> str:
    """A signed token naming ``order``, valid until ``order.reserved_until`` (see the module)."""
    if order.reserved_until is not None:
        stamp = int((order.reserved_until - _window()).timestamp())
    else:
        stamp = int(time.time())
    return _StampedSigner(at=stamp, salt=SALT).sign(str(order.pk))


def checkout_token_read(*, token: str, max_age_seconds: int | None = None) -> int:
    """The order id in ``token``; it is checked for its signature and its age.

    ``max_age_seconds`` defaults to ``STOCK_RESERVATION_MINUTES`` in seconds (the token then
    expires with the reservation); pass another value to be stricter or more lenient.

    :raises CheckoutLinkError: ``checkout_link_invalid`` for a forged, damaged or malformed
        token, ``checkout_link_expired`` for one past its age.
    """
    if max_age_seconds is None:
        max_age_seconds = int(_window().total_seconds())
    if not isinstance(token, str) or not token or len(token) > 200:
        raise _invalid()
    try:
        value = signing.TimestampSigner(salt=SALT).unsign(token, max_age=max_age_seconds)
    except signing.SignatureExpired:
        raise CheckoutLinkError(
            _("This payment link has expired. Please ask for a new one in Messenger."),
            code="checkout_link_expired",
        ) from None
    except signing.BadSignature:
        raise _invalid() from None
    if not (value.isascii() and value.isdigit()) or len(value) > 18 or int(value) <= 0:
        raise _invalid()
    return int(value)


def checkout_url(*, order: Order) -> str:
    """The absolute URL of ``order``'s checkout page, with a fresh token."""
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    return f"{base}/checkout/{checkout_token_create(order=order)}/"


def _invalid() -> CheckoutLinkError:
    return CheckoutLinkError(
        _("This payment link is not valid. Please open it again from Messenger."),
        code="checkout_link_invalid",
    )
