"""Races on real PostgreSQL: no oversell, and every reservation sold or released exactly once.

Each thread gets its own database connection (Django's connections are per thread) and closes
it when done. A barrier releases the threads together so that they really contend.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from commerce.exceptions import InvalidTransition, OutOfStockError
from commerce.models import Cart, CartLine, Order, OrderEvent, StockReservation, Variant
from commerce.services.orders import (
    order_create_from_cart,
    order_expire_due,
    order_mark_paid,
    order_mark_paid_if_pending,
)
from tests.factories import customer_create, merchant_create, variant_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _run_together(jobs: list[Callable[[], object]]) -> list[object]:
    """Run each job in its own thread, all starting at once; return results or exceptions."""
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def run(index: int, job: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = job()
        except BaseException as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    return results


def _cart(merchant, variant: Variant, quantity: int = 1) -> Cart:
    customer = customer_create(merchant=merchant)
    cart = Cart.objects.create(merchant=merchant, customer=customer)
    CartLine.objects.create(cart=cart, variant=variant, quantity=quantity)
    return cart


def test_fifty_shoppers_racing_for_the_last_ten_units():
    """Exactly 10 orders, 40 out-of-stock refusals, never a negative or oversold stock."""
    merchant = merchant_create()
    variant = variant_create(merchant=merchant, stock=10)
    carts = [_cart(merchant, variant) for _ in range(50)]

    results = _run_together([lambda cart=cart: order_create_from_cart(cart=cart) for cart in carts])

    orders = [r for r in results if isinstance(r, Order)]
    refused = [r for r in results if isinstance(r, OutOfStockError)]
    unexpected = [r for r in results if not isinstance(r, Order | OutOfStockError)]
    assert unexpected == []
    assert (len(orders), len(refused)) == (10, 40)
    assert Order.objects.count() == 10
    assert len({order.number for order in orders}) == 10
    assert StockReservation.objects.filter(status=StockReservation.Status.ACTIVE).count() == 10
    variant.refresh_from_db()
    assert (variant.stock_on_hand, variant.stock_reserved) == (10, 10)
    assert Cart.objects.filter(status=Cart.Status.ORDERED).count() == 10
    assert Cart.objects.filter(status=Cart.Status.OPEN).count() == 40

    paid = _run_together([lambda order=order: order_mark_paid(order=order) for order in orders])

    assert all(isinstance(order, Order) for order in paid), paid
    variant.refresh_from_db()
    assert (variant.stock_on_hand, variant.stock_reserved) == (0, 0)
    assert set(Order.objects.values_list("status", flat=True)) == {Order.Status.PAID}


def test_the_same_cart_placed_twice_at_once_makes_one_order():
    merchant = merchant_create()
    variant = variant_create(merchant=merchant, stock=10)
    cart = _cart(merchant, variant, quantity=2)

    results = _run_together([lambda: order_create_from_cart(cart=cart) for _ in range(5)])

    assert sum(isinstance(r, Order) for r in results) == 1
    assert Order.objects.count() == 1
    variant.refresh_from_db()
    assert variant.stock_reserved == 2


@pytest.mark.parametrize("round_", range(3))
def test_expiry_sweeps_racing_payments_resolve_each_reservation_once(round_):
    """Every order ends paid (stock sold once) or expired (stock released once), never both."""
    merchant = merchant_create()
    variant = variant_create(merchant=merchant, stock=40)
    placed_at = timezone.now() - timedelta(hours=1)  # every reservation has run out
    orders = [
        order_create_from_cart(cart=_cart(merchant, variant), now=placed_at) for _ in range(25)
    ]
    variant.refresh_from_db()
    assert (variant.stock_on_hand, variant.stock_reserved) == (40, 25)

    sweeps: list[Callable[[], object]] = [order_expire_due for _ in range(4)]
    payments: list[Callable[[], object]] = [
        lambda order=order: order_mark_paid_if_pending(order=order) for order in orders
    ]
    # Interleave so that sweeps and payments start side by side.
    jobs = payments[:12] + sweeps[:2] + payments[12:] + sweeps[2:]
    results = _run_together(jobs)

    payment_results = [r for r in results if isinstance(r, bool | InvalidTransition)]
    sweep_results = [r for r in results if isinstance(r, int) and not isinstance(r, bool)]
    errors = [r for r in results if isinstance(r, BaseException) and r not in payment_results]
    assert errors == []
    assert len(payment_results) == 25
    assert len(sweep_results) == 4

    statuses = Counter(Order.objects.values_list("status", flat=True))
    paid_count = statuses[Order.Status.PAID]
    assert paid_count + statuses[Order.Status.EXPIRED] == 25
    assert sum(r is True for r in payment_results) == paid_count
    assert sum(sweep_results) == statuses[Order.Status.EXPIRED]

    for order in Order.objects.all():
        reservation = StockReservation.objects.get(order=order)
        kinds = Counter(order.events.values_list("kind", flat=True))
        if order.status == Order.Status.PAID:
            assert reservation.status == StockReservation.Status.SOLD
            assert (kinds[OrderEvent.Kind.STOCK_SOLD], kinds[OrderEvent.Kind.STOCK_RELEASED]) == (
                1,
                0,
            )
        else:
            assert reservation.status == StockReservation.Status.RELEASED
            assert (kinds[OrderEvent.Kind.STOCK_SOLD], kinds[OrderEvent.Kind.STOCK_RELEASED]) == (
                0,
                1,
            )
    variant.refresh_from_db()
    assert variant.stock_reserved == 0
    assert variant.stock_on_hand == 40 - paid_count


def test_two_payment_events_for_one_order_sell_once():
    merchant = merchant_create()
    variant = variant_create(merchant=merchant, stock=5)
    order = order_create_from_cart(cart=_cart(merchant, variant, quantity=2))

    results = _run_together([lambda: order_mark_paid_if_pending(order=order) for _ in range(8)])

    assert sorted(results) == [False] * 7 + [True]
    variant.refresh_from_db()
    assert (variant.stock_on_hand, variant.stock_reserved) == (3, 0)
