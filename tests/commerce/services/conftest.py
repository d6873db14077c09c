"""Fixtures for the commerce service tests: one shop, one shopper and their open cart."""

from __future__ import annotations

import pytest

from commerce.models import Cart, Customer, Merchant
from commerce.services.carts import cart_get_open
from tests.factories import customer_create, merchant_create


@pytest.fixture
def merchant(db) -> Merchant:
    return merchant_create(currency="USD", max_line_quantity=10)


@pytest.fixture
def customer(merchant: Merchant) -> Customer:
    return customer_create(merchant=merchant)


@pytest.fixture
def cart(customer: Customer) -> Cart:
    return cart_get_open(customer=customer)
