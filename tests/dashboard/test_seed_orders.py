"""``manage.py seed_orders``: a small run is a correct history, reruns and bad arguments are
refused clearly, and on PostgreSQL the fast path (COPY, indexes rebuilt) gives the same."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, Sum
from django.utils import timezone

from commerce.models import Customer, DailyFunnel, DailySales, Merchant, Order, OrderLine
from commerce.services.sales_figures import day_of
from payments.models import Payment, Refund

PAID = {"paid", "fulfilled", "delivered", "partially_refunded", "refunded"}


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_orders", *args, stdout=out)
    return out.getvalue()


def _check_history(orders: int, merchants: int, days: int) -> None:
    assert Order.objects.count() == orders
    shops = Merchant.objects.filter(slug__startswith="seed-shop-")
    assert shops.count() == merchants
    per_shop = dict(Order.objects.values_list("merchant_id").annotate(n=Count("id")))
    assert len(per_shop) == merchants  # every shop sells
    assert max(per_shop.values()) > 3 * min(per_shop.values())  # some shops are much bigger
    statuses = Counter(Order.objects.values_list("status", flat=True))
    assert {"delivered", "expired", "cancelled", "payment_failed", "refunded"} <= set(statuses)
    sources = set(Order.objects.values_list("referral_source", flat=True))
    assert sources == {"ADS", "SHORTLINK", ""}
    assert not Order.objects.filter(referral_source="ADS", referral_ad_id="").exists()
    now = timezone.now()
    first = Order.objects.order_by("created_at").first().created_at
    assert first >= now - timedelta(days=days + 1)
    assert len({day_of(o) for o in Order.objects.values_list("created_at", flat=True)}) > days / 2

    lines = dict(
        OrderLine.objects.values_list("order_id").annotate(total=Sum("total_minor")).order_by()
    )
    for order in Order.objects.all():
        assert lines[order.pk] == order.subtotal_minor
        assert order.total_minor == order.subtotal_minor + order.shipping_minor
        assert (order.paid_at is not None) == (order.status in PAID), order.status
        if order.status == "refunded":
            assert order.refunded_minor == order.total_minor
        elif order.status == "partially_refunded":
            assert 0 < order.refunded_minor < order.total_minor
        else:
            assert order.refunded_minor == 0
    numbers = list(Order.objects.values_list("number", flat=True))
    assert len(set(numbers)) == len(numbers)
    for shop in shops:
        last = Order.objects.filter(merchant=shop).order_by("-created_at", "-id").first()
        assert last.number.endswith(f"-{shop.order_sequence}")

    paid = Order.objects.filter(status__in=PAID)
    assert Payment.objects.filter(order__in=paid, status="succeeded").count() == paid.count()
    refunded = Order.objects.filter(refunded_minor__gt=0).aggregate(s=Sum("refunded_minor"))["s"]
    assert Refund.objects.aggregate(s=Sum("amount_minor"))["s"] == refunded
    assert Customer.objects.filter(merchant__in=shops).exists()

    figures = DailySales.objects.aggregate(
        placed=Sum("orders_placed"), paid=Sum("orders_paid"), revenue=Sum("revenue_minor")
    )
    assert figures == {
        "placed": orders,
        "paid": paid.count(),
        "revenue": paid.aggregate(s=Sum("total_minor"))["s"],
    }
    assert DailyFunnel.objects.filter(merchant__in=shops).exists()
    assert all(
        f.conversations >= f.carts >= f.checkouts
        for f in DailyFunnel.objects.filter(merchant__in=shops)
    )


@pytest.mark.django_db
def test_small_run_is_a_realistic_consistent_history():
    output = seed("--orders", "2000", "--merchants", "6", "--days", "90", "--seed", "7")
    assert "Seeded 2,000 orders" in output
    _check_history(2000, 6, 90)


@pytest.mark.django_db
def test_a_second_run_is_refused_unless_asked_to_replace():
    seed("--orders", "300", "--merchants", "3")
    before = list(Order.objects.order_by("pk").values_list("number", "total_minor"))
    with pytest.raises(CommandError, match="3 seeded shops already exist; run with --replace"):
        seed("--orders", "300", "--merchants", "3")
    assert list(Order.objects.order_by("pk").values_list("number", "total_minor")) == before
    seed("--orders", "400", "--merchants", "4", "--replace")
    assert Order.objects.count() == 400
    assert Merchant.objects.filter(slug__startswith="seed-shop-").count() == 4


@pytest.mark.django_db
def test_same_seed_gives_the_same_shape():
    seed("--orders", "500", "--merchants", "3", "--seed", "11")
    first = Counter(Order.objects.values_list("status", "merchant__slug"))
    seed("--orders", "500", "--merchants", "3", "--seed", "11", "--replace")
    assert Counter(Order.objects.values_list("status", "merchant__slug")) == first


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--orders", "0"], "--orders must be between 1 and"),
        (["--orders", "-5"], "--orders must be between 1 and"),
        (["--orders", "100", "--merchants", "0"], "--merchants must be between 1 and"),
        (["--orders", "10", "--merchants", "11"], "--merchants cannot exceed --orders"),
        (["--orders", "100", "--days", "0"], "--days must be between 1 and 3650"),
        (["--orders", "100", "--days", "4000"], "--days must be between 1 and 3650"),
        (["--orders", "many"], "argument --orders: invalid int value: 'many'"),
        ([], "the following arguments are required: --orders"),
    ],
)
def test_bad_arguments_are_refused_clearly_and_write_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        seed(*args)
    assert not Merchant.objects.exists()
    assert not Order.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgresql_fast_path_gives_the_same_history_and_keeps_every_index():
    def indexes() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename LIKE 'commerce_%%'"
                " OR tablename LIKE 'payments_%%'"
            )
            return {row[0] for row in cursor.fetchall()}

    before = indexes()
    assert "order_number_trgm_idx" in before
    seed("--orders", "3000", "--merchants", "5", "--days", "60")
    _check_history(3000, 5, 60)
    assert indexes() == before
    # Ids continue after the seeded rows.
    merchant = Merchant.objects.first()
    order = Order.objects.create(
        merchant=merchant, customer=Customer.objects.filter(merchant=merchant).first(),
        number="NEW-1", currency="USD", subtotal_minor=1, total_minor=1,
    )  # fmt: skip
    assert order.pk > Order.objects.exclude(pk=order.pk).order_by("-pk").first().pk
