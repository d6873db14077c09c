"""Fixtures for order tests: a shop with stock, carts built with the ORM, recorded notices.

- ``shop``: a USD merchant; ``variant`` (10 in stock, 10.00 USD) and ``customer`` (en_US) of it.
- ``make_cart(customer, [(variant, qty), ...], voucher_code="")``: an open cart with those lines.
- ``place(variant=None, qty=1, customer=None, **options)``: an order placed through
  ``order_create_from_cart`` from a fresh cart (the shop's ``variant`` and ``customer`` by
  default).
- ``notices``: the list of ``(notice, order_id, data)`` announced during the test.

Every test here runs with commerce's notice subscribers cleared (and restored afterwards), so
handlers other apps register in ``ready()`` never run in these tests.
"""

from __future__ import annotations

import pytest

from commerce.models import Cart, CartLine, Customer, Merchant, Variant
from commerce.notifications import (
    OrderNotice,
    order_subscribe,
    order_subscribers_clear,
    order_subscribers_restore,
)
from commerce.services.orders import order_create_from_cart
from tests.factories import customer_create, merchant_create, variant_create


@pytest.fixture(autouse=True)
def _only_test_subscribers():
    saved = order_subscribers_clear()
    yield
    order_subscribers_clear()
    order_subscribers_restore(saved)


@pytest.fixture
def notices() -> list[tuple[OrderNotice, int, dict]]:
    received: list[tuple[OrderNotice, int, dict]] = []

    def recorder(notice: OrderNotice):
        def handler(order, **data):
            received.append((notice, order.pk, data))

        return handler

    for notice in OrderNotice:
        order_subscribe(notice, recorder(notice))
    return received


@pytest.fixture
def shop(db) -> Merchant:
    return merchant_create(name="Souq")


@pytest.fixture
def variant(shop) -> Variant:
    return variant_create(merchant=shop, price_minor=1000, stock=10)


@pytest.fixture
def customer(shop) -> Customer:
    return customer_create(merchant=shop, email="layla@example.com", phone="+96550012345")


@pytest.fixture
def make_cart():
    def make(customer: Customer, lines, *, voucher_code: str = "") -> Cart:
        cart = Cart.objects.create(
            merchant=customer.merchant, customer=customer, voucher_code=voucher_code
        )
        CartLine.objects.bulk_create(
            CartLine(cart=cart, variant=variant, quantity=quantity) for variant, quantity in lines
        )
        return cart

    return make


@pytest.fixture
def place(make_cart, variant, customer):
    def place_order(
        *, variant: Variant = variant, qty: int = 1, customer: Customer = customer, **options
    ):
        cart = make_cart(customer, [(variant, qty)])
        return order_create_from_cart(cart=cart, **options)

    return place_order
