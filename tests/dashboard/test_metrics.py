"""The metrics page's figures equal numbers computed independently from the orders.

Orders are placed, paid, refunded, cancelled and expired through the order services at chosen
moments (``timezone.now`` patched), so the figures are the ones the services keep up to date;
each expected number is computed here, in Python, from the orders themselves.
"""

from __future__ import annotations

import re
from collections import defaultdict
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from commerce.exceptions import RefundError
from commerce.models import Cart, CartLine, DailyFunnel, DailySales, HourlySales, Order
from commerce.notifications import order_subscribers_clear, order_subscribers_restore
from commerce.services.orders import (
    order_cancel,
    order_create_from_cart,
    order_expire,
    order_mark_paid,
    order_record_refund,
    order_record_refund_reversal,
)
from commerce.services.sales_figures import day_of, sales_figures_rebuild
from dashboard.selectors.metrics import (
    metrics_funnel,
    metrics_orders_by_hour,
    metrics_referrals,
    metrics_revenue_by_day,
    metrics_summary,
)
from tests.factories import customer_create, variant_create

pytestmark = pytest.mark.django_db

NOW = timezone.now().replace(hour=15, minute=20, second=0, microsecond=0)
TODAY = day_of(NOW)


@pytest.fixture(autouse=True)
def _only_commerce():
    """Only commerce's own work: no receipts (messenger's subscribers) in these tests."""
    saved = order_subscribers_clear()
    yield
    order_subscribers_clear()
    order_subscribers_restore(saved)


@contextmanager
def at(moment: datetime):
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield


def place(merchant, *, when, price=1000, qty=1, currency=None, referral=("", "")) -> Order:
    customer = customer_create(
        merchant=merchant, referral_source=referral[0], referral_ad_id=referral[1]
    )
    variant = variant_create(merchant=merchant, price_minor=price, stock=50, currency=currency)
    with at(when):
        cart = Cart.objects.create(merchant=merchant, customer=customer)
        CartLine.objects.create(cart=cart, variant=variant, quantity=qty)
        return order_create_from_cart(cart=cart)


def pay(order: Order, *, when) -> Order:
    with at(when):
        return order_mark_paid(order=order)


def refund(order: Order, amount: int, *, when) -> Order:
    with at(when):
        return order_record_refund(order=order, amount_minor=amount)


@pytest.fixture
def history(merchant_a, merchant_b):
    """Orders of both merchants over 45 days, two currencies for A, three referrals."""
    ad = ("ADS", "120200000000001")
    link = ("SHORTLINK", "")
    a, b = merchant_a, merchant_b
    made = []

    def story(merchant, days_ago, *, hours_ago=0, pay_after=None, refunded=0, **kw):
        when = NOW - timedelta(days=days_ago, hours=hours_ago)
        order = place(merchant, when=when, **kw)
        if pay_after is not None:
            order = pay(order, when=when + pay_after)
            if refunded:
                order = refund(order, refunded, when=when + pay_after + timedelta(days=1))
        made.append(order)
        return order

    minutes = timedelta(minutes=5)
    story(a, 0, hours_ago=1, price=2500, pay_after=minutes, referral=ad)
    story(a, 0, hours_ago=2, price=1200, qty=2, pay_after=minutes)
    story(a, 0, hours_ago=3, price=999)  # placed today, unpaid
    story(a, 1, price=4000, pay_after=minutes, referral=link)  # yesterday
    story(a, 3, price=3000, pay_after=minutes, refunded=1000, referral=ad)
    story(a, 5, price=1500, pay_after=minutes, refunded=1500)  # fully refunded
    story(a, 6, price=700, currency="EUR", pay_after=minutes, referral=ad)
    story(a, 9, price=5000, pay_after=minutes, referral=ad)  # the 7 days before
    story(a, 12, price=800, pay_after=minutes)
    story(a, 20, price=650, currency="EUR", pay_after=minutes)
    story(a, 35, price=9900, pay_after=minutes, referral=link)  # the 30 days before
    # Placed late in the evening 8 days ago, paid the next morning: counted on each day.
    story(a, 8, hours_ago=-8, price=1800, pay_after=timedelta(hours=10), referral=ad)
    cancelled = story(a, 2, price=600)
    with at(NOW - timedelta(days=2, hours=-1)):
        order_cancel(order=cancelled, reason="changed mind")
    expired = story(a, 4, price=450)
    order_expire(order=expired, now=NOW - timedelta(days=3))
    story(b, 0, hours_ago=1, price=3500, pay_after=minutes, referral=ad)
    story(b, 2, price=1250, pay_after=minutes)
    return [Order.objects.get(pk=o.pk) for o in made]


def expected(orders: list[Order], *, merchant_ids, first: date, last: date) -> dict:
    """Per currency: placed, paid, gross, refunded of ``orders`` in days ``first..last``."""
    figures: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for order in orders:
        if order.merchant_id not in merchant_ids:
            continue
        if first <= day_of(order.created_at) <= last:
            figures[order.currency]["placed"] += 1
        if order.paid_at and first <= day_of(order.paid_at) <= last:
            figures[order.currency]["paid"] += 1
            figures[order.currency]["gross"] += order.total_minor
            figures[order.currency]["refunded"] += order.refunded_minor
    return figures


WINDOWS = {
    "today": ((0, 0), (1, 1)),
    "7d": ((6, 0), (13, 7)),
    "30d": ((29, 0), (59, 30)),
}


class Scope:
    """A DashboardScope stand-in for selector calls: the merchants picked, or all."""

    def __init__(self, merchant=None, is_operator=True):
        self.merchant = merchant
        self.is_operator = is_operator

    def filter(self, queryset, *, merchant_path="merchant"):
        if self.merchant is None:
            return queryset
        return queryset.filter(**{merchant_path: self.merchant.pk})


def _assert_summary_matches(summary, orders, merchant_ids):
    by_currency = {c.currency: c for c in summary}
    for name, (current, previous) in WINDOWS.items():
        for side, (back_first, back_last) in (("current", current), ("previous", previous)):
            want = expected(
                orders,
                merchant_ids=merchant_ids,
                first=TODAY - timedelta(days=back_first),
                last=TODAY - timedelta(days=back_last),
            )
            for currency, numbers in want.items():
                got = getattr(by_currency[currency].periods[name], side)
                assert (
                    got.orders_placed,
                    got.orders_paid,
                    got.gross_minor,
                    got.refunded_minor,
                ) == (
                    numbers["placed"],
                    numbers["paid"],
                    numbers["gross"],
                    numbers["refunded"],
                ), (name, side, currency)
                assert got.net_minor == numbers["gross"] - numbers["refunded"]


def test_summary_per_currency_equals_figures_computed_from_the_orders(history, merchant_a):
    with at(NOW):
        summary = metrics_summary(scope=Scope(merchant_a), today=TODAY)
    assert {c.currency for c in summary} == {"USD", "EUR"}
    _assert_summary_matches(summary, history, {merchant_a.pk})
    usd = {c.currency: c for c in summary}["USD"].periods
    # Spelled out once: today 2 paid orders of 25.00 and 24.00; yesterday one of 40.00.
    assert (usd["today"].current.orders_paid, usd["today"].current.gross_minor) == (2, 4900)
    assert (usd["today"].previous.orders_paid, usd["today"].previous.gross_minor) == (1, 4000)
    assert usd["today"].current.average_minor == 2450
    assert usd["today"].paid_change == 100


def test_operator_summary_covers_every_merchant(history, merchant_a, merchant_b):
    summary = metrics_summary(scope=Scope(), today=TODAY)
    assert {c.currency for c in summary} == {"USD", "EUR", "KWD"}
    _assert_summary_matches(summary, history, {merchant_a.pk, merchant_b.pk})


def test_figures_kept_by_the_services_equal_a_recount_from_the_orders(history):
    def snapshot():
        daily = sorted(
            DailySales.objects.values_list(
                "merchant_id", "day", "currency", "referral_source", "referral_ad_id",
                "orders_placed", "orders_paid", "revenue_minor", "refunded_minor",
            )
        )  # fmt: skip
        hourly = sorted(
            HourlySales.objects.values_list(
                "merchant_id", "hour", "currency", "orders_placed", "orders_paid", "revenue_minor"
            )
        )
        return daily, hourly

    kept = snapshot()
    assert kept[0], "the services wrote no figures"
    sales_figures_rebuild()
    assert snapshot() == kept


def test_cancelled_and_expired_orders_count_as_placed_but_never_as_revenue(merchant_a):
    order = place(merchant_a, when=NOW - timedelta(hours=3), price=5000)
    other = place(merchant_a, when=NOW - timedelta(hours=3), price=7000)
    before = DailySales.objects.get(merchant=merchant_a, day=TODAY)
    assert (before.orders_placed, before.orders_paid, before.revenue_minor) == (2, 0, 0)
    with at(NOW - timedelta(hours=2)):
        order_cancel(order=order)
    order_expire(order=other, now=NOW - timedelta(hours=1))
    after = DailySales.objects.get(merchant=merchant_a, day=TODAY)
    assert (after.orders_placed, after.orders_paid, after.revenue_minor) == (2, 0, 0)


def test_a_refund_is_booked_on_the_day_the_order_was_paid(merchant_a):
    order = place(merchant_a, when=NOW - timedelta(days=10), price=3000)
    order = pay(order, when=NOW - timedelta(days=10))
    refund(order, 1200, when=NOW)
    paid_day = DailySales.objects.get(merchant=merchant_a, day=TODAY - timedelta(days=10))
    assert (paid_day.revenue_minor, paid_day.refunded_minor) == (3000, 1200)
    assert not DailySales.objects.filter(merchant=merchant_a, day=TODAY).exists()


def test_a_refund_taken_back_and_a_duplicate_given_back_keep_net_revenue_true(merchant_a):
    """Net revenue counts only what was given back of what the orders cost: a duplicate payment
    refunded takes nothing off, a refund that failed after succeeding takes its amount back;
    and the kept figures still equal a recount from the orders."""
    paid_day = TODAY - timedelta(days=10)
    then = NOW - timedelta(days=10)
    order = pay(place(merchant_a, when=then, price=3000), when=then)
    twice = pay(place(merchant_a, when=then, price=2000), when=then)
    refund(order, 1200, when=NOW)
    with at(NOW):
        order_record_refund_reversal(order=order, amount_minor=1200, net_paid_minor=3000)
        order_record_refund(order=twice, amount_minor=2000, net_paid_minor=2000)

    row = DailySales.objects.get(merchant=merchant_a, day=paid_day)
    assert (row.revenue_minor, row.refunded_minor) == (5000, 0)
    (figures,) = metrics_summary(scope=Scope(merchant_a), today=paid_day)
    assert figures.periods["today"].current.net_minor == 5000
    kept = sorted(DailySales.objects.values_list("day", "revenue_minor", "refunded_minor"))
    sales_figures_rebuild()
    assert sorted(DailySales.objects.values_list("day", "revenue_minor", "refunded_minor")) == kept


def test_a_failed_transition_leaves_the_figures_unchanged(merchant_a):
    order = pay(place(merchant_a, when=NOW - timedelta(hours=2), price=2000), when=NOW)
    with pytest.raises(RefundError) as refused:
        refund(order, 5000, when=NOW)
    assert refused.value.extra == {"amount_minor": 5000, "remaining_minor": 2000}
    row = DailySales.objects.get(merchant=merchant_a, day=TODAY)
    assert (row.revenue_minor, row.refunded_minor) == (2000, 0)


def test_revenue_by_day_has_every_day_and_equals_the_orders(history, merchant_a):
    series = metrics_revenue_by_day(scope=Scope(merchant_a), today=TODAY)
    assert set(series) == {"USD", "EUR"}
    for currency, points in series.items():
        assert [p[0] for p in points] == [TODAY - timedelta(days=n) for n in range(29, -1, -1)]
        for day, gross, net, paid in points:
            want = expected(history, merchant_ids={merchant_a.pk}, first=day, last=day)[currency]
            assert (gross, net, paid) == (
                want["gross"],
                want["gross"] - want["refunded"],
                want["paid"],
            ), (currency, day)


def test_orders_per_hour_cover_the_last_24_hours(history, merchant_a):
    hours = metrics_orders_by_hour(scope=Scope(merchant_a), now=NOW)
    assert len(hours) == 24
    assert hours[-1][0] == NOW.replace(minute=0)
    for hour, placed, paid in hours:
        end = hour + timedelta(hours=1)
        mine = [o for o in history if o.merchant_id == merchant_a.pk]
        assert placed == sum(hour <= o.created_at < end for o in mine)
        assert paid == sum(bool(o.paid_at) and hour <= o.paid_at < end for o in mine)
    assert sum(p for _h, p, _ in hours) == 3


def test_referrals_rank_what_sells_over_30_days(history, merchant_a):
    rows = metrics_referrals(scope=Scope(merchant_a), today=TODAY)
    got = {
        (r.source, r.ad_id, r.currency): (r.orders_paid, r.gross_minor, r.net_minor) for r in rows
    }
    want: dict = defaultdict(lambda: [0, 0, 0])
    for o in history:
        if (
            o.merchant_id == merchant_a.pk
            and o.paid_at
            and day_of(o.paid_at) > TODAY - timedelta(30)
        ):
            key = (o.referral_source, o.referral_ad_id, o.currency)
            want[key][0] += 1
            want[key][1] += o.total_minor
            want[key][2] += o.total_minor - o.refunded_minor
    assert got == {k: tuple(v) for k, v in want.items()}
    assert rows[0].orders_paid == max(r.orders_paid for r in rows)


def test_funnel_adds_up_the_recounted_steps_and_the_paid_orders(history, merchant_a, merchant_b):
    for back, (conversations, carts, checkouts) in {
        0: (10, 6, 4),
        3: (20, 9, 5),
        15: (7, 3, 2),
    }.items():
        DailyFunnel.objects.create(
            merchant=merchant_a, day=TODAY - timedelta(days=back),
            conversations=conversations, carts=carts, checkouts=checkouts,
        )  # fmt: skip
    DailyFunnel.objects.create(merchant=merchant_b, day=TODAY, conversations=99, carts=9)
    funnel = metrics_funnel(scope=Scope(merchant_a), today=TODAY)
    assert (funnel["today"].conversations, funnel["today"].carts, funnel["today"].checkouts) == (
        10,
        6,
        4,
    )
    assert (funnel["7d"].conversations, funnel["30d"].conversations) == (30, 37)
    for name, ((days_back, _today), _previous) in WINDOWS.items():
        want = expected(
            history,
            merchant_ids={merchant_a.pk},
            first=TODAY - timedelta(days=days_back),
            last=TODAY,
        )
        assert funnel[name].paid == sum(v["paid"] for v in want.values())
    assert funnel["today"].carts_rate == 60


# -- the page ---------------------------------------------------------------------------------


def _cells(html: str, attribute: str) -> list[str]:
    return re.findall(rf'{attribute}="([^"]*)"', html)


def test_page_shows_the_figures_of_the_merchants_in_view(history, staff_a_client, merchant_a):
    with at(NOW):
        response = staff_a_client.get(reverse("dashboard:metrics"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-currency="USD"' in html and 'data-currency="EUR"' in html
    assert 'data-currency="KWD"' not in html  # merchant B's
    want = expected(history, merchant_ids={merchant_a.pk}, first=TODAY, last=TODAY)["USD"]
    usd_table = html.split('data-currency="USD"', 1)[1].split("</table>", 1)[0]
    assert _cells(usd_table, "data-paid")[0] == str(want["paid"])
    assert _cells(usd_table, "data-gross")[0] == str(want["gross"])
    assert "$49.00" in usd_table  # money in the page's language
    assert "120200000000001" in html  # the ad that sells


def test_operator_sees_all_merchants_and_may_narrow_to_one(history, operator_client, merchant_b):
    with at(NOW):
        everything = operator_client.get(reverse("dashboard:metrics")).content.decode()
        only_b = operator_client.get(
            reverse("dashboard:metrics"), {"merchant": merchant_b.slug}
        ).content.decode()
    assert {"USD", "EUR", "KWD"} <= set(_cells(everything, "data-currency"))
    assert 'data-currency="USD"' not in only_b and 'data-currency="KWD"' in only_b


def test_page_in_arabic_is_right_to_left(history, staff_a_client):
    staff_a_client.cookies["django_language"] = "ar"
    with at(NOW):
        response = staff_a_client.get(reverse("dashboard:metrics"))
    html = response.content.decode()
    assert 'dir="rtl"' in html
    assert "الإيرادات" in html


def test_metrics_permissions(anonymous_client, staff_b_client, history):
    url = reverse("dashboard:metrics")
    response = anonymous_client.get(url)
    assert response.status_code == 302 and reverse("dashboard:login") in response["Location"]
    with at(NOW):
        html = staff_b_client.get(url).content.decode()
    assert 'data-currency="KWD"' in html
    assert 'data-currency="USD"' not in html and "120200000000001" in html  # B's own ad order
    with at(NOW):
        assert staff_b_client.get(url, {"merchant": "shop-that-is-not-theirs"}).status_code == 404


def test_metrics_page_refuses_post(staff_a_client):
    assert staff_a_client.post(reverse("dashboard:metrics")).status_code == 405


def test_empty_installation_says_so(operator_client):
    html = operator_client.get(reverse("dashboard:metrics")).content.decode()
    assert "No orders yet in the last 60 days." in html
