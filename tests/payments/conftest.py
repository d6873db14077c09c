"""Fixtures for payments tests.

- ``stripe_stub``: a local Stripe API server (``tests/payments/stripe_stub.py``);
  ``settings.STRIPE_API_BASE`` points at it.
- ``make_order(**options)``: a ``pending_payment`` order placed through
  ``order_create_from_cart`` (server-side pricing, stock reserved), see its docstring.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from commerce.models import Address, Cart, CartLine, Merchant, Order, ProductImage, Voucher
from commerce.services.orders import order_create_from_cart
from tests.factories import (
    customer_create,
    merchant_create,
    product_create,
    shipping_method_create,
    variant_create,
)
from tests.payments.stripe_stub import stripe_stub  # noqa: F401  (fixture)


@pytest.fixture
def make_order(db, settings) -> Callable[..., Order]:
    """Build a shop, a customer and a cart, and place it (``order_create_from_cart``).

    Options (all keyword): ``currency`` ("USD"), ``prices`` (unit prices in minor units, one
    line each, quantity 1 unless ``quantities``), ``quantities``, ``shipping_minor`` (None: no
    shipping method), ``tax_rate_bp`` (0), ``prices_include_tax`` (False), ``voucher`` (a dict
    of ``Voucher`` fields such as ``{"kind": "fixed", "amount_minor": 500}``), ``locale``
    ("en_US"), ``email`` ("layla@example.com"), ``titles`` / ``titles_ar`` (product titles),
    ``with_images`` (True: one image per product, URLs under ``PUBLIC_BASE_URL``).
    """

    def make(
        *,
        currency: str = "USD",
        prices: Sequence[int] = (2500, 1000),
        quantities: Sequence[int] | None = None,
        shipping_minor: int | None = 500,
        tax_rate_bp: int = 0,
        prices_include_tax: bool = False,
        voucher: dict | None = None,
        locale: str = "en_US",
        email: str = "layla@example.com",
        titles: Sequence[str] | None = None,
        titles_ar: Sequence[str] | None = None,
        with_images: bool = True,
        merchant: Merchant | None = None,
    ) -> Order:
        if merchant is None:
            merchant = merchant_create(
                name="Souq Layla",
                currency=currency,
                tax_rate_bp=tax_rate_bp,
                prices_include_tax=prices_include_tax,
            )
        customer = customer_create(merchant=merchant, locale=locale, email=email)
        quantities = quantities or [1] * len(prices)
        cart = Cart.objects.create(merchant=merchant, customer=customer)
        for i, (price, quantity) in enumerate(zip(prices, quantities, strict=True)):
            product = product_create(
                merchant=merchant,
                title=titles[i] if titles else f"Linen shirt {i + 1}",
                title_ar=titles_ar[i] if titles_ar else "",
            )
            if with_images:
                ProductImage.objects.create(
                    product=product,
                    image=f"products/{product.pk}/main.jpg",
                    width=800,
                    height=800,
                )
            variant = variant_create(
                product=product, price_minor=price, stock=20, currency=currency
            )
            CartLine.objects.create(cart=cart, variant=variant, quantity=quantity)
        method = None
        if shipping_minor is not None:
            method = shipping_method_create(
                merchant=merchant,
                price_minor=shipping_minor,
                currency=currency,
                name="Express",
                name_ar="شحن سريع",
            )
        if voucher:
            fields = {"code": "EID10", **voucher}
            if fields.get("kind") == "fixed":
                fields.setdefault("currency", currency)
            Voucher.objects.create(merchant=merchant, **fields)
            cart.voucher_code = fields["code"]
            cart.save(update_fields=["voucher_code"])
        address = Address.objects.create(
            customer=customer,
            name="Layla Haddad",
            line1="Block 3, Street 12",
            city="Salmiya",
            country="KW",
        )
        return order_create_from_cart(cart=cart, shipping_method=method, address=address)

    return make


@pytest.fixture
def broker(monkeypatch):
    """The publish of ``payments.tasks.submit_refund`` recorded instead of sent to Redis (see
    ``tests/payments/refund_helpers.py``); ``broker.run_all()`` runs the real task."""
    from payments.tasks import submit_refund
    from tests.payments.refund_helpers import RefundBroker

    recorder = RefundBroker()
    monkeypatch.setattr(submit_refund, "apply_async", recorder.apply_async)
    return recorder
