"""Starting a payment holds the stock for as long as the payment page can still be paid."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from commerce.exceptions import InvalidTransition
from commerce.models import Cart, CartLine, OrderEvent, StockReservation
from commerce.services.orders import order_cancel, order_create_from_cart, order_payment_started
from tests.factories import customer_create, merchant_create, variant_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def order():
    merchant = merchant_create()
    variant = variant_create(merchant=merchant, stock=3)
    cart = Cart.objects.create(merchant=merchant, customer=customer_create(merchant=merchant))
    CartLine.objects.create(cart=cart, variant=variant, quantity=1)
    return order_create_from_cart(cart=cart)


def test_reservation_is_extended_to_the_payment_deadline(order):
    later = order.reserved_until + timedelta(minutes=9)
    order_payment_started(order=order, hold_until=later, data={"session_id": "cs_1"})

    order.refresh_from_db()
    assert order.reserved_until == later
    assert set(
        StockReservation.objects.filter(order=order).values_list("expires_at", flat=True)
    ) == {later}
    event = order.events.get(kind=OrderEvent.Kind.PAYMENT_STARTED)
    assert event.actor == OrderEvent.Actor.CUSTOMER
    assert event.data == {"session_id": "cs_1"}


def test_reservation_never_shrinks(order):
    before = order.reserved_until
    order_payment_started(order=order, hold_until=timezone.now() + timedelta(minutes=1))
    order.refresh_from_db()
    assert order.reserved_until == before


def test_a_cancelled_order_cannot_start_paying(order):
    order_cancel(order=order, reason="changed mind")
    with pytest.raises(InvalidTransition) as error:
        order_payment_started(order=order, hold_until=timezone.now() + timedelta(hours=1))
    assert error.value.code == "not_payable"
    assert not order.events.filter(kind=OrderEvent.Kind.PAYMENT_STARTED).exists()
