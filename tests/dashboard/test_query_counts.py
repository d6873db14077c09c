"""Every dashboard page makes the same number of queries with a few orders as with many.

Each page is requested once with a small history and once after many more orders, customers,
conversations, problems and figures were added (for every merchant); the query counts must be
equal, as operator and as merchant staff. A page that queries per row fails here.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from commerce.models import DailyFunnel, DailySales, HourlySales, OrderEvent, OrderLine
from commerce.services.sales_figures import hour_of, sales_figures_rebuild
from dashboard.selectors.orders import live_cursor
from messenger.models import InboundEvent, MessengerPage, OutboundMessage
from payments.models import Payment, ProviderEvent
from tests.factories import customer_create

pytestmark = pytest.mark.django_db

_serial = iter(range(1, 1_000_000))


def _grow(merchant, make_order, *, orders: int, page: MessengerPage) -> None:
    """Add ``orders`` orders with lines, events, payments, messages and problems."""
    now = timezone.now()
    for n in range(orders):
        k = next(_serial)
        customer = customer_create(
            merchant=merchant, page_id=page.page_id, first_name="Layla",
            bot_paused_at=now - timedelta(minutes=k) if n % 2 else None,
            last_interaction_at=now - timedelta(minutes=k),
        )  # fmt: skip
        order = make_order(
            merchant=merchant, customer=customer,
            status=["paid", "pending_payment", "delivered", "refunded"][n % 4],
            paid_at=now - timedelta(hours=1), needs_review=n % 3 == 0,
            reserved_until=now - timedelta(minutes=30),
            created_at=now - timedelta(days=n % 40, hours=n % 24),
            referral_source="ADS", referral_ad_id=f"ad-{n % 3}",
            contact_email=f"p{k}@example.com",
        )  # fmt: skip
        OrderLine.objects.create(
            order=order, product_title="Mug", sku=f"M{k}", unit_price_minor=1000, quantity=1,
            total_minor=1000,
        )  # fmt: skip
        OrderEvent.objects.create(order=order, kind="created")
        Payment.objects.create(
            order=order, gateway="stripe_checkout", amount_minor=1000, currency=order.currency,
            idempotency_key=f"qc:{k}", status="succeeded",
        )  # fmt: skip
        OutboundMessage.objects.create(
            page=page, customer=customer, order=order, message={"text": "x"},
            status="failed", error_code="551", error_message="unavailable",
        )  # fmt: skip
        InboundEvent.objects.create(
            page_id=page.page_id, sender_psid=customer.psid, dedupe_key=f"qc-{k}",
            kind="message", payload={"message": {"text": f"hello {k}"}},
            timestamp_ms=int(now.timestamp() * 1000) - k, status="failed", error="boom",
        )  # fmt: skip
        ProviderEvent.objects.create(event_id=f"evt_{k}", type="x", payload={}, status="failed")
        DailyFunnel.objects.update_or_create(
            merchant=merchant, day=timezone.localdate() - timedelta(days=n % 40),
            defaults={"conversations": n, "carts": n, "checkouts": n},
        )  # fmt: skip
    HourlySales.objects.get_or_create(merchant=merchant, hour=hour_of(now), currency="USD")


@pytest.fixture
def world(merchant_a, merchant_b, make_order):
    pages = {
        m.pk: MessengerPage.objects.create(
            merchant=m, page_id=f"77{m.pk}", name=m.name, token_invalid_at=timezone.now()
        )
        for m in (merchant_a, merchant_b)
    }

    def grow(orders: int) -> None:
        for merchant in (merchant_a, merchant_b):
            _grow(merchant, make_order, orders=orders, page=pages[merchant.pk])
        sales_figures_rebuild()

    grow(55)  # more than a page of orders for each merchant
    return grow


def _urls(merchant) -> dict[str, str]:
    from commerce.models import Customer, Order

    order = Order.objects.filter(merchant=merchant).order_by("pk").first()
    customer = Customer.objects.filter(merchant=merchant, bot_paused_at__isnull=False).first()
    since = live_cursor(timezone.now() - timedelta(days=1))
    orders = reverse("dashboard:orders")
    return {
        "orders": orders,
        "orders filtered": f"{orders}?status=paid&source=ADS&sort=total_desc",
        "orders search": f"{orders}?q=Layla",
        "orders page 2": None,  # filled in from page one's next link
        "orders live": f"{reverse('dashboard:orders_live')}?since={since}",
        "orders export": reverse("dashboard:orders_export"),
        "order detail": reverse("dashboard:order_detail", args=[order.pk]),
        "conversations": reverse("dashboard:conversations"),
        "conversation": reverse("dashboard:conversation", args=[customer.pk]),
        "metrics": reverse("dashboard:metrics"),
        "attention": reverse("dashboard:attention"),
    }


def _count(client, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
    return response.status_code, len(queries.captured_queries)


def _next_page(client) -> str:
    import re

    html = client.get(reverse("dashboard:orders")).content.decode()
    match = re.search(r'rel="next" href="([^"]+)"', html)
    return reverse("dashboard:orders") + match.group(1).replace("&amp;", "&") if match else ""


@pytest.mark.parametrize("who", ["operator", "staff_a"])
def test_query_count_of_every_page_does_not_grow_with_the_orders(who, world, request, merchant_a):
    client = request.getfixturevalue(f"{who}_client")
    urls = _urls(merchant_a)
    urls["orders page 2"] = _next_page(client)
    assert urls["orders page 2"], "no second page"
    small = {name: _count(client, url) for name, url in urls.items()}
    assert all(status == 200 for status, _ in small.values()), small
    world(40)
    urls["orders page 2"] = _next_page(client)
    large = {name: _count(client, url) for name, url in urls.items()}
    assert large == small
    assert DailySales.objects.count() > 10  # the figures grew too
