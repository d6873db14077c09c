"""Figures under concurrency, on real PostgreSQL: simultaneous payments and placements of one
merchant on one day are all counted (the upsert increments the committed value), and a recount
running meanwhile neither loses nor doubles them."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection
from django.db.models import Sum

from commerce.models import Cart, CartLine, DailySales, HourlySales, Order
from commerce.notifications import order_subscribers_clear, order_subscribers_restore
from commerce.services.orders import order_create_from_cart, order_mark_paid
from commerce.services.sales_figures import sales_figures_rebuild
from tests.factories import customer_create, merchant_create, variant_create

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _only_commerce():
    saved = order_subscribers_clear()
    yield
    order_subscribers_clear()
    order_subscribers_restore(saved)


def _together(jobs: list[Callable[[], object]]) -> list[object]:
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def run(index: int, job) -> None:
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
    assert not any(thread.is_alive() for thread in threads)
    return results


def _placed(merchant, price: int) -> Order:
    customer = customer_create(merchant=merchant)
    cart = Cart.objects.create(merchant=merchant, customer=customer)
    variant = variant_create(merchant=merchant, price_minor=price, stock=5)
    CartLine.objects.create(cart=cart, variant=variant, quantity=1)
    return order_create_from_cart(cart=cart)


def _totals(merchant) -> tuple[int, int, int, int]:
    daily = DailySales.objects.filter(merchant=merchant).aggregate(
        placed=Sum("orders_placed"), paid=Sum("orders_paid"), revenue=Sum("revenue_minor")
    )
    hourly = HourlySales.objects.filter(merchant=merchant).aggregate(paid=Sum("orders_paid"))
    return daily["placed"], daily["paid"], daily["revenue"], hourly["paid"]


def test_simultaneous_payments_of_one_merchant_on_one_day_are_all_counted():
    merchant = merchant_create()
    orders = [_placed(merchant, 1000 + n) for n in range(6)]
    results = _together([lambda o=o: order_mark_paid(order=o) for o in orders])
    assert not [r for r in results if isinstance(r, BaseException)]
    assert _totals(merchant) == (6, 6, sum(1000 + n for n in range(6)), 6)


def test_simultaneous_placements_are_all_counted():
    merchant = merchant_create()
    customers = [customer_create(merchant=merchant) for _ in range(5)]
    carts = []
    for customer in customers:
        cart = Cart.objects.create(merchant=merchant, customer=customer)
        CartLine.objects.create(
            cart=cart, variant=variant_create(merchant=merchant, price_minor=500), quantity=1
        )
        carts.append(cart)
    results = _together([lambda c=c: order_create_from_cart(cart=c) for c in carts])
    assert not [r for r in results if isinstance(r, BaseException)]
    assert _totals(merchant)[0] == 5


def test_a_recount_during_payments_neither_loses_nor_doubles_them():
    merchant = merchant_create()
    orders = [_placed(merchant, 2000) for _ in range(4)]
    jobs: list[Callable[[], object]] = [lambda o=o: order_mark_paid(order=o) for o in orders]
    jobs.insert(2, sales_figures_rebuild)
    results = _together(jobs)
    assert not [r for r in results if isinstance(r, BaseException)]
    assert _totals(merchant) == (4, 4, 8000, 4)
