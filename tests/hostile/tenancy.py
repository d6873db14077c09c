"""Merchant A's world for the tenancy tests: rows of every kind marked ``Qzalpha``, merchant B
with an owner of its own, and what "B saw nothing of A" and "B changed nothing of A" mean.

Used by ``test_access.py`` (every admin, API and dashboard route) and ``test_api_schema.py``
(the REST API fuzzed from its OpenAPI schema).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import models

from commerce.models import (
    Address,
    ApiToken,
    Category,
    Customer,
    Merchant,
    MerchantMembership,
    Order,
    Product,
    ShippingMethod,
    Variant,
    Voucher,
)
from messenger.models import InboundEvent, MessengerPage, OutboundMessage
from payments.models import Payment, ProviderEvent, Refund
from tests.factories import (
    api_token_create,
    api_token_of,
    category_create,
    customer_create,
    staff_create,
)
from tests.hostile.conftest import OTHER_PAGE_ID, PAGE_ID, order_place, shop_create

MARK = "Qzalpha"
SEARCH = "zalph"  # finds every marked text; an echo of the search term is not a leak
OWNED_APPS = ("commerce", "payments", "messenger")


# -- merchant A's world ----------------------------------------------------------------------------


@dataclass
class World:
    a: Merchant
    b: Merchant
    b_owner: Any
    a_staff: Any
    objects: dict[type[models.Model], models.Model]  # one row of A per model
    markers: list[str]

    def object_for(self, model: type[models.Model] | None) -> models.Model:
        return self.objects.get(model) or self.objects[Order]


@pytest.fixture
def world(db) -> World:
    shop = shop_create(page_id=PAGE_ID, token="EAAqzalphatoken", name=f"{MARK} Souq")
    a = shop.merchant
    shop.page.name = f"{MARK} page"
    shop.page.save()
    product = shop.variant.product
    product.title = f"{MARK} kaftan"
    product.category = category_create(merchant=a, name=f"{MARK} kaftans")
    product.save()
    shop.shipping.name = f"{MARK} courier"
    shop.shipping.save()
    customer = customer_create(
        merchant=a,
        page_id=PAGE_ID,
        first_name=f"{MARK}name",
        last_name=f"{MARK}family",
        email="qzalpha@example.com",
    )
    order = order_place(shop, customer=customer)
    Address.objects.filter(customer=customer).update(line1=f"{MARK} street 7")
    payment = Payment.objects.create(
        order=order,
        gateway=Payment.Gateway.STRIPE_CHECKOUT,
        amount_minor=order.total_minor,
        currency=order.currency,
        idempotency_key=f"checkout:{order.pk}:1",
        status=Payment.Status.SUCCEEDED,
        checkout_session_id="cs_test_qzalpha",
    )
    refund = Refund.objects.create(
        payment=payment,
        order=order,
        amount_minor=100,
        currency=order.currency,
        reason=f"{MARK} refund",
    )
    voucher = Voucher.objects.create(
        merchant=a, code="QZALPHA10", kind="percentage", percent_bp=1000
    )
    event = ProviderEvent.objects.create(
        gateway="stripe",
        event_id="evt_qzalpha",
        type="checkout.session.completed",
        payload={"data": {"object": {"client_reference_id": str(order.pk), "name": MARK}}},
    )
    InboundEvent.objects.create(
        page_id=PAGE_ID,
        sender_psid=customer.psid,
        dedupe_key="message:m_qzalpha",
        kind="message",
        payload={"message": {"mid": "m_qzalpha", "text": f"{MARK} question"}},
        status="processed",
    )
    OutboundMessage.objects.create(
        page=shop.page, customer=customer, order=order, message={"text": f"{MARK} answer"}
    )
    a_staff = staff_create(merchant=a, role=MerchantMembership.Role.OWNER, username="qzalpha_boss")
    a_key = api_token_create(user=a_staff, label=f"{MARK} integration")
    a_token = api_token_of(a_key)

    b_shop = shop_create(page_id=OTHER_PAGE_ID, token="EAAbetatoken", name="Beta Souq")
    b_owner = staff_create(merchant=b_shop.merchant, role=MerchantMembership.Role.OWNER)
    order_place(b_shop)  # B has rows of its own, so its lists are not empty

    objects = {
        Merchant: a,
        Order: order,
        Customer: customer,
        Product: product,
        Variant: shop.variant,
        Category: product.category,
        ShippingMethod: shop.shipping,
        Voucher: voucher,
        MessengerPage: shop.page,
        Payment: payment,
        Refund: refund,
        ProviderEvent: event,
        MerchantMembership: MerchantMembership.objects.get(user=a_staff),
        get_user_model(): a_staff,
        ApiToken: a_token,
        Address: Address.objects.get(customer=customer),
    }
    for model in list(objects):
        if model._meta.proxy is False:
            for proxy in apps.get_models():
                if proxy._meta.proxy and proxy._meta.concrete_model is model:
                    objects[proxy] = proxy._default_manager.get(pk=objects[model].pk)
    markers = [
        MARK,
        MARK.lower(),
        MARK.upper(),
        "qzalpha@example.com",
        order.number,
        a.slug,
        customer.psid,
        a_key,
        a_token.digest,
    ]
    return World(a, b_shop.merchant, b_owner, a_staff, objects, markers)


# -- what "nothing changed" means ----------------------------------------------------------------


def _owned_models() -> list[type[models.Model]]:
    return [
        model
        for model in apps.get_models()
        if model._meta.app_label in OWNED_APPS and not model._meta.proxy
    ]


def _merchant_path(model: type[models.Model], depth: int = 3) -> str | None:
    """How rows of ``model`` lead to their merchant (``order__merchant``), or None."""
    if model is Merchant:
        return "pk"
    if depth == 0:
        return None
    for field in model._meta.concrete_fields:
        if isinstance(field, models.ForeignKey) and field.related_model is Merchant:
            return field.name
    for field in model._meta.concrete_fields:
        if (
            isinstance(field, models.ForeignKey)
            and field.related_model._meta.app_label in OWNED_APPS
        ):
            inner = _merchant_path(field.related_model, depth - 1)
            if inner:
                return f"{field.name}__{'id' if inner == 'pk' else inner}"
    return None


def snapshot() -> dict[tuple[str, Any], dict]:
    """Every row of the three apps, by (model, pk)."""
    rows = {}
    for model in _owned_models():
        for values in model.objects.values():
            rows[(model._meta.label, values["id"] if "id" in values else str(values))] = values
    return rows


def rows_of(merchant: Merchant) -> set[tuple[str, Any]]:
    owned = set()
    for model in _owned_models():
        path = _merchant_path(model)
        if path is None:
            continue
        pks = model.objects.filter(**{path: merchant.pk}).values_list("pk", flat=True)
        owned |= {(model._meta.label, pk) for pk in pks}
    return owned


def assert_untouched(world: World, before: dict, owned_before: set, what: str) -> None:
    after = snapshot()
    for key in owned_before:
        assert key in after, f"{what}: {key} of merchant A was deleted"
        assert after[key] == before[key], f"{what}: {key} of merchant A was changed"
    created = rows_of(world.a) - owned_before
    assert not created, f"{what}: rows created for merchant A: {sorted(created)}"


def assert_no_leak(world: World, response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code}"
    if response.status_code != 200 or getattr(response, "streaming", False):
        return
    body = response.content.decode("utf-8", "replace")
    for marker in world.markers:
        assert marker not in body, f"{what}: merchant A's {marker!r} in the answer"
