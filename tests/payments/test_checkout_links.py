"""Signed checkout links: they name one order, cannot be forged, and expire with its reservation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import signing
from django.utils import timezone

from commerce.models import Cart, CartLine
from commerce.services.orders import order_create_from_cart
from payments.exceptions import CheckoutLinkError
from payments.services.checkout_links import (
    SALT,
    checkout_token_create,
    checkout_token_read,
    checkout_url,
)
from tests.factories import customer_create, merchant_create, variant_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def order():
    merchant = merchant_create()
    customer = customer_create(merchant=merchant, email="layla@example.com")
    cart = Cart.objects.create(merchant=merchant, customer=customer)
    CartLine.objects.create(cart=cart, variant=variant_create(merchant=merchant), quantity=1)
    return order_create_from_cart(cart=cart)


def test_token_names_its_order(order):
    assert checkout_token_read(token=checkout_token_create(order=order)) == order.pk


def test_url_is_the_checkout_page_under_the_public_base_url(order, settings):
    settings.PUBLIC_BASE_URL = "https://shop.example.com/"
    url = checkout_url(order=order)
    prefix, suffix = "https://shop.example.com/checkout/", "/"
    assert url.startswith(prefix) and url.endswith(suffix)
    assert checkout_token_read(token=url[len(prefix) : -len(suffix)]) == order.pk


def test_tampered_token_is_refused(order):
    token = checkout_token_create(order=order)
    other_id = str(order.pk + 1)
    forged = other_id + token[len(str(order.pk)) :]
    with pytest.raises(CheckoutLinkError) as raised:
        checkout_token_read(token=forged)
    assert raised.value.code == "checkout_link_invalid"


@pytest.mark.parametrize("token", ["", "garbage", "1:2:3", "x" * 500])
def test_malformed_token_is_refused(token):
    with pytest.raises(CheckoutLinkError) as raised:
        checkout_token_read(token=token)
    assert raised.value.code == "checkout_link_invalid"


def test_token_signed_for_another_purpose_is_refused(order):
    token = signing.TimestampSigner(salt="another.purpose").sign(str(order.pk))
    with pytest.raises(CheckoutLinkError):
        checkout_token_read(token=token)


def test_token_with_a_non_numeric_payload_is_refused():
    token = signing.TimestampSigner(salt=SALT).sign("abc")
    with pytest.raises(CheckoutLinkError) as raised:
        checkout_token_read(token=token)
    assert raised.value.code == "checkout_link_invalid"


def test_token_expires_with_the_reservation(order, settings):
    settings.STOCK_RESERVATION_MINUTES = 30
    order.reserved_until = timezone.now() + timedelta(minutes=1)
    assert checkout_token_read(token=checkout_token_create(order=order)) == order.pk

    order.reserved_until = timezone.now() - timedelta(seconds=5)
    with pytest.raises(CheckoutLinkError) as raised:
        checkout_token_read(token=checkout_token_create(order=order))
    assert raised.value.code == "checkout_link_expired"


def test_link_made_again_later_still_ends_with_the_reservation(order, settings):
    """A Pay button sent again from "My orders" must not outlive the stock it pays for."""
    settings.STOCK_RESERVATION_MINUTES = 30
    order.reserved_until = timezone.now() + timedelta(minutes=2)
    token = checkout_token_create(order=order)
    assert checkout_token_read(token=token) == order.pk
    # Read 3 minutes later (by shrinking the allowed age by as much): expired.
    with pytest.raises(CheckoutLinkError):
        checkout_token_read(token=token, max_age_seconds=30 * 60 - 3 * 60)


def test_order_without_reservation_gets_a_link_valid_from_now(order):
    order.reserved_until = None
    token = checkout_token_create(order=order)
    assert checkout_token_read(token=token) == order.pk
    with pytest.raises(CheckoutLinkError) as raised:
        checkout_token_read(token=token, max_age_seconds=-1)
    assert raised.value.code == "checkout_link_expired"
