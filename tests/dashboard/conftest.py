"""Fixtures for the dashboard tests (orders, conversations, permissions, metrics...).

People (each a user; ``*_client`` is a logged-in ``django.test.Client`` for them):

- ``operator`` / ``operator_client``: member of the ``operators`` group, sees every merchant;
- ``staff_a`` / ``staff_a_client``: owner of ``merchant_a``;
- ``staff_a_support`` / ``staff_a_support_client``: support role in ``merchant_a`` (ships,
  answers, adds notes; may not cancel or refund);
- ``staff_b`` / ``staff_b_client``: owner of ``merchant_b``;
- ``anonymous_client``: nobody signed in.

Rows:

- ``merchant_a`` ("Souq A", USD) and ``merchant_b`` ("Souq B", KWD);
- ``make_order(merchant=..., status=..., total_minor=..., created_at=..., **fields)``: one
  ``Order`` row written directly (fast, no cart; ``updated_at`` may be given too), with a new
  customer unless ``customer=`` is passed; extra ``fields`` are Order fields;
- ``orders``: three orders of merchant A and two of merchant B in several statuses
  (``orders["a"]`` / ``orders["b"]`` lists, newest first);
- ``placed_order``: a real ``pending_payment`` order of merchant A placed from a cart through
  ``order_create_from_cart`` (stock reserved), for actions that go through the services.

``login(client, user)`` logs a client in. The cache is a local-memory cache for every test here
(the login throttle counts in it) unless a test asks for the real one (``redis`` marker).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

import pytest
from django.test import Client
from django.utils import timezone

from commerce.models import (
    Address,
    Cart,
    CartLine,
    Customer,
    Merchant,
    MerchantMembership,
    Order,
)
from commerce.services.orders import order_create_from_cart
from tests.factories import (
    customer_create,
    merchant_create,
    operator_create,
    shipping_method_create,
    staff_create,
    variant_create,
)

Role = MerchantMembership.Role
_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _local_cache(request, settings):
    """A private in-memory cache per test, unless the test is marked ``redis``."""
    if request.node.get_closest_marker("redis"):
        yield
        return
    from django.core.cache import caches

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"dashboard-tests-{request.node.nodeid}",
        }
    }
    local = caches["default"]
    local.clear()
    yield
    local.clear()


def login(client: Client, user) -> Client:
    client.force_login(user)
    return client


@pytest.fixture
def merchant_a(db) -> Merchant:
    return merchant_create(name="Souq A", currency="USD", order_number_prefix="SA")


@pytest.fixture
def merchant_b(db) -> Merchant:
    return merchant_create(name="Souq B", currency="KWD", order_number_prefix="SB")


@pytest.fixture
def operator(db):
    return operator_create(username="olivia-operator")


@pytest.fixture
def staff_a(merchant_a):
    return staff_create(merchant=merchant_a, role=Role.OWNER, username="amal-owner-a")


@pytest.fixture
def staff_a_support(merchant_a):
    return staff_create(merchant=merchant_a, role=Role.SUPPORT, username="sami-support-a")


@pytest.fixture
def staff_b(merchant_b):
    return staff_create(merchant=merchant_b, role=Role.OWNER, username="basma-owner-b")


@pytest.fixture
def operator_client(operator) -> Client:
    return login(Client(), operator)


@pytest.fixture
def staff_a_client(staff_a) -> Client:
    return login(Client(), staff_a)


@pytest.fixture
def staff_a_support_client(staff_a_support) -> Client:
    return login(Client(), staff_a_support)


@pytest.fixture
def staff_b_client(staff_b) -> Client:
    return login(Client(), staff_b)


@pytest.fixture
def anonymous_client() -> Client:
    return Client()


@pytest.fixture
def make_order(db):
    """Write one Order row directly (see the module docstring)."""

    def make(
        *,
        merchant: Merchant,
        status: str = Order.Status.PAID,
        total_minor: int = 1000,
        created_at: datetime | None = None,
        updated_at: datetime | None = None,
        customer: Customer | None = None,
        first_name: str = "Layla",
        last_name: str = "Haddad",
        **fields,
    ) -> Order:
        n = next(_numbers)
        if customer is None:
            customer = customer_create(
                merchant=merchant, first_name=first_name, last_name=last_name
            )
        fields.setdefault("number", f"{merchant.order_number_prefix or 'T'}-{500000 + n}")
        fields.setdefault("currency", merchant.default_currency)
        fields.setdefault("subtotal_minor", total_minor)
        order = Order.objects.create(
            merchant=merchant, customer=customer, status=status, total_minor=total_minor, **fields
        )
        stamps = {}
        if created_at is not None:
            stamps["created_at"] = created_at
        if updated_at is not None or created_at is not None:
            stamps["updated_at"] = updated_at or created_at
        if stamps:
            Order.objects.filter(pk=order.pk).update(**stamps)
            order.refresh_from_db()
        return order

    return make


@pytest.fixture
def orders(merchant_a, merchant_b, make_order) -> dict[str, list[Order]]:
    now = timezone.now()
    a = [
        make_order(merchant=merchant_a, status="paid", created_at=now - timedelta(hours=1)),
        make_order(
            merchant=merchant_a, status="pending_payment", created_at=now - timedelta(hours=2)
        ),
        make_order(merchant=merchant_a, status="fulfilled", created_at=now - timedelta(days=1)),
    ]
    b = [
        make_order(merchant=merchant_b, status="paid", created_at=now - timedelta(hours=3)),
        make_order(merchant=merchant_b, status="delivered", created_at=now - timedelta(days=2)),
    ]
    return {"a": a, "b": b}


@pytest.fixture
def placed_order(merchant_a) -> Order:
    """A pending_payment order of merchant A (25.00 + 10.00 + 5.00 shipping = 40.00 USD)."""
    customer = customer_create(
        merchant=merchant_a, email="layla@example.com", phone="+96550012345", last_name="Haddad"
    )
    cart = Cart.objects.create(merchant=merchant_a, customer=customer)
    for price in (2500, 1000):
        CartLine.objects.create(
            cart=cart, variant=variant_create(merchant=merchant_a, price_minor=price), quantity=1
        )
    method = shipping_method_create(merchant=merchant_a, price_minor=500)
    address = Address.objects.create(
        customer=customer,
        name="Layla Haddad",
        line1="Block 3, Street 12",
        city="Salmiya",
        country="KW",
    )
    return order_create_from_cart(cart=cart, shipping_method=method, address=address)
