"""Fixtures for the hostile-input tests: a connected shop, the network stubs, bounded hypothesis.

Every test here is marked ``hostile`` (``scripts/test.sh -m hostile`` runs them alone). The
property-based ones use :data:`FUZZ`: a fixed number of examples, no deadline, derandomized
(the same cases on every run, so CI is reproducible) and no example database (nothing is
written into the repository).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings

from commerce.models import (
    Address,
    Cart,
    CartLine,
    Customer,
    Merchant,
    Order,
    ShippingMethod,
    Variant,
)
from commerce.services.orders import order_create_from_cart
from messenger.models import MessengerPage
from messenger.services import inbox
from tests.factories import (
    customer_create,
    merchant_create,
    shipping_method_create,
    variant_create,
)
from tests.messenger.graph_stub import graph_stub  # noqa: F401  (fixture)
from tests.payments.stripe_stub import stripe_stub  # noqa: F401  (fixture)

PAGE_ID = "104412345678901"  # the page id of every shared Messenger fixture
OTHER_PAGE_ID = "104499999999999"
PAGE_TOKEN = "EAAhostilepagetoken0123456789abcdef"
OTHER_PAGE_TOKEN = "EAAotherpagetoken9876543210fedcba"


def fuzz_settings(max_examples: int) -> settings:
    """Hypothesis settings for one property: bounded, derandomized, no deadline, no database.

    Function-scoped fixtures (the test's database transaction, the stubs) are shared by the
    examples of one test on purpose: each example measures what *it* changed.
    """
    return settings(
        max_examples=max_examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )


@dataclass
class Shop:
    """A merchant with a connected page, a product with two sizes and a shipping method."""

    merchant: Merchant
    page: MessengerPage
    variant: Variant
    other_variant: Variant
    shipping: ShippingMethod


def shop_create(*, page_id: str, token: str, name: str) -> Shop:
    merchant = merchant_create(name=name)
    page = MessengerPage.objects.create(
        merchant=merchant, page_id=page_id, name=name, access_token=token
    )
    variant = variant_create(merchant=merchant, price_minor=2500, stock=5)
    other = variant_create(product=variant.product, price_minor=2500, stock=5)
    return Shop(merchant, page, variant, other, shipping_method_create(merchant=merchant))


@pytest.fixture(autouse=True)
def _inbox_state(settings, monkeypatch):
    """A fresh page cache and nudge state; the nudge never reaches a broker (it runs only after
    a real commit, which the tests' transactions never make, but a stray one must stay local)."""
    inbox.inbox_page_cache_clear()
    monkeypatch.setattr(inbox, "_nudge_state", {"covered_until": 0.0, "redis_down_until": 0.0})
    yield
    inbox.inbox_page_cache_clear()


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def shop(db) -> Shop:
    """Merchant A: the shop whose page the shared fixtures write to."""
    return shop_create(page_id=PAGE_ID, token=PAGE_TOKEN, name="Souq A")


@pytest.fixture
def other_shop(db) -> Shop:
    """Merchant B: another tenant whose rows merchant A's shoppers and staff must never reach."""
    return shop_create(page_id=OTHER_PAGE_ID, token=OTHER_PAGE_TOKEN, name="Souq B")


def order_place(shop: Shop, *, customer: Customer | None = None, quantity: int = 1) -> Order:
    """A ``pending_payment`` order of ``shop`` placed the normal way (stock reserved)."""
    customer = customer or customer_create(merchant=shop.merchant, page_id=shop.page.page_id)
    cart = Cart.objects.create(merchant=shop.merchant, customer=customer)
    CartLine.objects.create(cart=cart, variant=shop.variant, quantity=quantity)
    address = Address.objects.create(
        customer=customer, name="Layla Haddad", line1="Block 3", city="Salmiya", country="KW"
    )
    return order_create_from_cart(cart=cart, shipping_method=shop.shipping, address=address)
