"""A paid order e-mails the merchant's owners and managers, once the payment has committed."""

from __future__ import annotations

import pytest
from django.core import mail

from commerce.models import Cart, CartLine, MerchantMembership
from commerce.services.orders import order_create_from_cart, order_mark_paid
from commerce.services.staff_alerts import order_paid_alert_staff_send, staff_recipients
from tests.factories import customer_create, merchant_create, staff_create, variant_create

pytestmark = pytest.mark.django_db


def _paid_order(merchant):
    variant = variant_create(merchant=merchant, price_minor=1250, stock=5)
    customer = customer_create(merchant=merchant, first_name="Layla")
    cart = Cart.objects.create(merchant=merchant, customer=customer)
    CartLine.objects.create(cart=cart, variant=variant, quantity=2)
    order = order_create_from_cart(cart=cart)
    return order


def _staff_with_email(merchant, role, email):
    user = staff_create(merchant=merchant, role=role)
    user.email = email
    user.save()
    return user


def test_owners_and_managers_with_an_address_are_recipients():
    merchant = merchant_create()
    _staff_with_email(merchant, MerchantMembership.Role.OWNER, "owner@shop.example")
    _staff_with_email(merchant, MerchantMembership.Role.MANAGER, "manager@shop.example")
    _staff_with_email(merchant, MerchantMembership.Role.SUPPORT, "support@shop.example")
    _staff_with_email(merchant_create(), MerchantMembership.Role.OWNER, "other@shop.example")
    assert staff_recipients(merchant_id=merchant.pk) == [
        "manager@shop.example",
        "owner@shop.example",
    ]


def test_paying_schedules_one_alert_after_commit(django_capture_on_commit_callbacks):
    merchant = merchant_create()
    order = _paid_order(merchant)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        order_mark_paid(order=order)
    assert len(callbacks) == 1


def test_the_alert_names_the_order_lines_and_total():
    merchant = merchant_create()
    _staff_with_email(merchant, MerchantMembership.Role.OWNER, "owner@shop.example")
    order = _paid_order(merchant)
    order_mark_paid(order=order)

    assert order_paid_alert_staff_send(order_id=order.pk) == 1

    [message] = mail.outbox
    assert message.to == ["owner@shop.example"]
    assert order.number in message.subject
    assert "$25.00" in message.subject
    assert "2 × " in message.body
    assert f"/admin/commerce/order/{order.pk}/change/" in message.body


def test_no_staff_address_sends_nothing():
    merchant = merchant_create()
    order = _paid_order(merchant)
    assert order_paid_alert_staff_send(order_id=order.pk) == 0
    assert mail.outbox == []
