"""Server-side time of the dashboard's pages, measured inside one Django process.

Run by ``bench/dashboard/run.py`` with the service's environment against the seeded database;
prints one JSON object on its last line. Each page is requested through Django's test client
(the whole middleware stack, sessions, templates and every query, but no socket): once to count
its queries, ``--warmup`` rounds over all pages, then ``--runs`` timed rounds over all pages; the
time is ``perf_counter`` around ``client.get``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def _setup() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()


def _users():
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from commerce.models import Merchant, MerchantMembership

    User = get_user_model()
    operator, _ = User.objects.get_or_create(username="bench-operator", defaults={"is_staff": True})
    group, _ = Group.objects.get_or_create(name="operators")
    operator.groups.add(group)
    # Shop 1 is the busiest (seed_history gives shop n a weight of 1/n).
    merchant = Merchant.objects.filter(slug="seed-shop-1").first()
    staff, _ = User.objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    if merchant:
        MerchantMembership.objects.get_or_create(
            user=staff, merchant=merchant, defaults={"role": "manager"}
        )
    return operator, staff, merchant


def _pages(merchant) -> list[tuple[str, str, str]]:
    """(page, variant, url): every list filter, search and sort, order pages, metrics and
    needs attention. URLs with ``merchant=`` pick one merchant in the switcher (remembered in
    the session: the caller gives them a client of their own)."""
    from django.urls import reverse
    from django.utils import timezone

    from commerce.models import Customer, Order

    orders = reverse("dashboard:orders")
    today = timezone.localdate()
    sample = (
        Order.objects.filter(merchant=merchant, referral_source="ADS")
        .exclude(contact_email="")
        .exclude(contact_phone="")
        .order_by("-created_at")
        .select_related("customer")
        .first()
    )
    customer = Customer.objects.filter(merchant=merchant).order_by("pk").first()
    number_prefix, _dash, sequence = sample.number.partition("-")
    pages = [
        ("orders list", "no filter", orders),
        ("orders list", "one merchant", f"{orders}?merchant={merchant.slug}"),
    ]
    for status in ("pending_payment", "paid", "delivered", "cancelled", "payment_failed",
                   "refunded"):  # fmt: skip
        pages.append(("orders list", f"status={status}", f"{orders}?status={status}"))
    for payment in ("unpaid", "paid", "refunded", "failed", "closed", "review"):
        pages.append(("orders list", f"payment={payment}", f"{orders}?payment={payment}"))
    week_ago = today - timezone.timedelta(days=7)
    year_ago = today - timezone.timedelta(days=330)
    pages += [
        ("orders list", "last 7 days", f"{orders}?date_from={week_ago}&date_to={today}"),
        ("orders list", "a week 11 months ago",
         f"{orders}?date_from={year_ago}&date_to={year_ago + timezone.timedelta(days=7)}"),
        ("orders list", "source=ADS", f"{orders}?source=ADS"),
        ("orders list", "source=SHORTLINK", f"{orders}?source=SHORTLINK"),
        ("orders list", f"ad={sample.referral_ad_id}", f"{orders}?ad={sample.referral_ad_id}"),
        ("orders list", "search order number", f"{orders}?q={sample.number}"),
        ("orders list", "search number prefix", f"{orders}?q={number_prefix}-{sequence[:2]}"),
        ("orders list", "search sequence only", f"{orders}?q={sequence}"),
        ("orders list", "search email", f"{orders}?q={sample.contact_email}"),
        ("orders list", "search phone", f"{orders}?q={sample.contact_phone}"),
        ("orders list", "search customer name",
         f"{orders}?q={customer.first_name}+{customer.last_name}"),
        ("orders list", "search first name", f"{orders}?q={customer.first_name}"),
        ("orders list", "sort oldest", f"{orders}?sort=oldest"),
        ("orders list", "sort total high-low", f"{orders}?sort=total_desc"),
        ("orders list", "sort total low-high", f"{orders}?sort=total_asc"),
        ("orders list", "cancelled by total", f"{orders}?status=cancelled&sort=total_desc"),
    ]  # fmt: skip
    from dashboard.selectors.orders import live_cursor

    since = live_cursor(timezone.now() - timezone.timedelta(minutes=1))
    pages.append(
        ("orders list", "live update poll", f"{reverse('dashboard:orders_live')}?since={since}")
    )
    for label, order in (
        ("newest order", Order.objects.order_by("-created_at").first()),
        ("refunded order", Order.objects.filter(status="refunded").order_by("-pk").first()),
        ("oldest order", Order.objects.order_by("created_at").first()),
    ):
        if order is not None:
            pages.append(
                ("order detail", label, reverse("dashboard:order_detail", args=[order.pk]))
            )
    pages += [
        ("metrics", "no filter", reverse("dashboard:metrics")),
        ("metrics", "one merchant", f"{reverse('dashboard:metrics')}?merchant={merchant.slug}"),
        ("attention", "no filter", reverse("dashboard:attention")),
        ("attention", "one merchant", f"{reverse('dashboard:attention')}?merchant={merchant.slug}"),
    ]
    return pages


def _first(client, url: str) -> tuple[int, int]:
    """(status, queries) of one untimed request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    return response.status_code, len(queries.captured_queries)


def _timed(client, url: str) -> tuple[int, float]:
    started = time.perf_counter()
    response = client.get(url)
    return response.status_code, (time.perf_counter() - started) * 1000


def _summary(times: list[float]) -> dict:
    times = sorted(times)
    p95 = times[max(0, -(-95 * len(times) // 100) - 1)]
    return {
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(p95, 1),
        "max_ms": round(times[-1], 1),
    }


def measure(targets: list[tuple], *, runs: int, warmup: int) -> list[dict]:
    """Rounds over every page (not all runs of one page in a row), so that a burst of other
    work on a shared machine spreads over every page instead of sinking one."""
    found = []
    for page, variant, client, url in targets:
        status, queries = _first(client, url)
        found.append({"page": page, "variant": variant, "url": url, "status": status,
                      "queries": queries, "times": []})  # fmt: skip
    for _ in range(warmup):
        for (_page, _variant, client, url), _row in zip(targets, found, strict=True):
            client.get(url)
    for _ in range(runs):
        for (_page, _variant, client, url), row in zip(targets, found, strict=True):
            status, elapsed = _timed(client, url)
            row["times"].append(elapsed)
            if status != 200:
                row["status"] = status
    for row in found:
        row.update(_summary(row.pop("times")))
        print(f"  {row['page']:<13} {row['variant']:<48} {row['median_ms']:7.1f} ms median "
              f"{row['p95_ms']:7.1f} p95  {row['queries']:3d} queries (HTTP {row['status']})",
              flush=True)  # fmt: skip
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    _setup()
    from django.test import Client

    operator, staff, merchant = _users()
    as_operator = Client()
    as_operator.force_login(operator)
    as_staff = Client()
    as_staff.force_login(staff)

    as_operator_picking = Client()  # the switcher's pick lives in the session
    as_operator_picking.force_login(operator)
    targets = []
    for page, variant, url in _pages(merchant):
        if "merchant=" in url:
            targets.append((page, f"operator, {variant}", as_operator_picking, url))
            continue
        targets.append((page, f"operator (all merchants), {variant}", as_operator, url))
        if page in ("orders list", "metrics", "attention"):
            targets.append((page, f"staff of the biggest shop, {variant}", as_staff, url))
    results = measure(targets, runs=args.runs, warmup=args.warmup)
    print("@@RESULT@@" + json.dumps(results))


if __name__ == "__main__":
    main()
