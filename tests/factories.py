"""Small factory functions for tests: explicit keyword arguments, sensible defaults, no magic.

Import them in any test (``from tests.factories import variant_create``). Each call creates rows
with unique slugs/SKUs, so tests can call them as often as they like.
"""

from __future__ import annotations

import itertools

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from commerce.models import (
    ApiToken,
    Category,
    Customer,
    Merchant,
    MerchantMembership,
    Product,
    ShippingMethod,
    Variant,
)

_counter = itertools.count(1)


def _n() -> int:
    return next(_counter)


def merchant_create(*, name: str | None = None, currency: str = "USD", **fields) -> Merchant:
    n = _n()
    return Merchant.objects.create(
        name=name or f"Shop {n}", slug=f"shop-{n}", default_currency=currency, **fields
    )


def category_create(*, merchant: Merchant, name: str | None = None, **fields) -> Category:
    n = _n()
    return Category.objects.create(
        merchant=merchant, name=name or f"Category {n}", slug=f"category-{n}", **fields
    )


def product_create(*, merchant: Merchant, title: str | None = None, **fields) -> Product:
    n = _n()
    return Product.objects.create(
        merchant=merchant, title=title or f"Product {n}", handle=f"product-{n}", **fields
    )


def variant_create(
    *,
    merchant: Merchant | None = None,
    product: Product | None = None,
    price_minor: int = 1000,
    stock: int = 10,
    currency: str | None = None,
    **fields,
) -> Variant:
    """A variant (and its product, and merchant, when not given)."""
    if product is None:
        product = product_create(merchant=merchant or merchant_create())
    n = _n()
    fields.setdefault("name", f"Size {n}")
    fields.setdefault("sku", f"SKU-{n}")
    return Variant.objects.create(
        product=product,
        price_minor=price_minor,
        currency=currency or product.merchant.default_currency,
        stock_on_hand=stock,
        **fields,
    )


def customer_create(*, merchant: Merchant, locale: str = "en_US", **fields) -> Customer:
    n = _n()
    fields.setdefault("page_id", "104412345678901")
    fields.setdefault("psid", f"24012345678{n:05d}")
    fields.setdefault("first_name", "Layla")
    return Customer.objects.create(merchant=merchant, locale=locale, **fields)


def shipping_method_create(
    *, merchant: Merchant, price_minor: int = 500, **fields
) -> ShippingMethod:
    fields.setdefault("name", "Standard")
    fields.setdefault("currency", merchant.default_currency)
    return ShippingMethod.objects.create(merchant=merchant, price_minor=price_minor, **fields)


def staff_create(
    *, merchant: Merchant, role: str = MerchantMembership.Role.MANAGER, username: str | None = None
):
    user = get_user_model().objects.create_user(
        username or f"staff{_n()}", password="pw-123456789", is_staff=True
    )
    MerchantMembership.objects.create(user=user, merchant=merchant, role=role)
    return user


def operator_create(*, username: str | None = None):
    user = get_user_model().objects.create_user(
        username or f"operator{_n()}", password="pw-123456789", is_staff=True
    )
    group, _ = Group.objects.get_or_create(name="operators")
    user.groups.add(group)
    return user


def api_token_create(*, user, label: str = "tests") -> str:
    """A live API token for the staff ``user``, issued by the real service: the clear token
    (only its hash is stored)."""
    from commerce.services.api_tokens import api_token_issue

    return api_token_issue(user=user, label=label).key


def api_token_of(key: str) -> ApiToken:
    """The stored row of a clear token."""
    from commerce.services.api_tokens import token_digest

    return ApiToken.objects.get(digest=token_digest(key))
