"""Fixtures for the REST API tests: two complete shops and token clients for each kind of caller.

``shop_a`` / ``shop_b``: a merchant with a category, a product with a variant and an image, a
customer, an open cart with a line, and a paid order with a line, a shipment and events.
``api`` builds an ``APIClient`` that sends a user's token (or none).
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass

import pytest
from django.core.cache.backends.locmem import LocMemCache
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from rest_framework.test import APIClient

from commerce.api.auth import TokenThrottle
from commerce.models import (
    Cart,
    CartLine,
    Category,
    Customer,
    Merchant,
    MerchantMembership,
    Order,
    OrderEvent,
    OrderLine,
    Product,
    ProductImage,
    Shipment,
    Variant,
)
from core import login_lockout
from tests.factories import (
    api_token_create,
    category_create,
    customer_create,
    merchant_create,
    operator_create,
    product_create,
    staff_create,
    variant_create,
)

Role = MerchantMembership.Role


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def order_create(
    *,
    merchant: Merchant,
    customer: Customer,
    variant: Variant | None = None,
    status: str = Order.Status.PAID,
    quantity: int = 2,
    **fields,
) -> Order:
    """An order written directly as rows (the placement service is tested elsewhere)."""
    order_create.counter += 1
    unit = variant.price_minor if variant else 1000
    order = Order.objects.create(
        merchant=merchant,
        customer=customer,
        number=fields.pop("number", f"T{merchant.pk}-{order_create.counter}"),
        status=status,
        currency=variant.currency if variant else merchant.default_currency,
        subtotal_minor=unit * quantity,
        total_minor=unit * quantity,
        **fields,
    )
    OrderLine.objects.create(
        order=order,
        variant=variant,
        product_title=variant.product.title if variant else "Gone",
        variant_name=variant.name if variant else "",
        sku=variant.sku if variant else "GONE",
        unit_price_minor=unit,
        quantity=quantity,
        total_minor=unit * quantity,
    )
    OrderEvent.objects.create(order=order, kind=OrderEvent.Kind.CREATED)
    return order


order_create.counter = 0


@dataclass
class Shop:
    merchant: Merchant
    category: Category
    product: Product
    variant: Variant
    image: ProductImage
    customer: Customer
    cart: Cart
    order: Order
    shipment: Shipment
    manager: object
    support: object


def shop_create(name: str, currency: str = "USD") -> Shop:
    merchant = merchant_create(name=name, currency=currency)
    category = category_create(merchant=merchant, name=f"{name} shirts")
    product = product_create(merchant=merchant, category=category, title=f"{name} secret tee")
    variant = variant_create(product=product, price_minor=1500, stock=5)
    image = ProductImage.objects.create(
        product=product, image=SimpleUploadedFile("a.png", png_bytes(), "image/png")
    )
    customer = customer_create(
        merchant=merchant, first_name=f"{name}-customer", email=f"{name.lower()}@example.com"
    )
    cart = Cart.objects.create(merchant=merchant, customer=customer)
    CartLine.objects.create(cart=cart, variant=variant, quantity=2)
    order = order_create(merchant=merchant, customer=customer, variant=variant)
    shipment = Shipment.objects.create(order=order, carrier="DHL", shipped_at=order.created_at)
    return Shop(
        merchant=merchant,
        category=category,
        product=product,
        variant=variant,
        image=image,
        customer=customer,
        cart=cart,
        order=order,
        shipment=shipment,
        manager=staff_create(merchant=merchant, role=Role.MANAGER),
        support=staff_create(merchant=merchant, role=Role.SUPPORT),
    )


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture(autouse=True)
def _private_throttle_cache(monkeypatch):
    """Each test counts token attempts from zero, without touching the shared Redis."""
    monkeypatch.setattr(TokenThrottle, "cache", LocMemCache(f"api-tests-{uuid.uuid4()}", {}))
    # The login lockout shared with the dashboard and the admin (core.login_lockout) too.
    monkeypatch.setattr(login_lockout, "cache", LocMemCache(f"api-lockout-{uuid.uuid4()}", {}))


@pytest.fixture
def shop_a(db) -> Shop:
    return shop_create("Alpha")


@pytest.fixture
def shop_b(db) -> Shop:
    return shop_create("Beta", currency="KWD")


@pytest.fixture
def operator(db):
    return operator_create()


@pytest.fixture
def api():
    """``api(user)`` -> an APIClient authenticating with the user's token; ``api()``: anonymous."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user)}")
        return client

    return make
