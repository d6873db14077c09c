"""The funnel recount: conversations from the inbox, carts, started checkouts, per merchant/day."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from commerce.models import Cart, DailyFunnel
from dashboard.services.funnel import funnel_recompute
from dashboard.tasks import funnel_refresh
from messenger.models import InboundEvent, MessengerPage
from payments.models import Payment
from tests.factories import customer_create

pytestmark = pytest.mark.django_db

_keys = iter(range(1, 100_000))


def _event(page_id: str, psid: str, *, kind="message", at=None, **fields) -> InboundEvent:
    event = InboundEvent.objects.create(
        page_id=page_id, sender_psid=psid, dedupe_key=f"f-{next(_keys)}", kind=kind,
        payload={}, **fields,
    )  # fmt: skip
    if at is not None:
        InboundEvent.objects.filter(pk=event.pk).update(received_at=at)
    return event


def _at(model, row, moment) -> None:
    model.objects.filter(pk=row.pk).update(created_at=moment)


@pytest.fixture
def day_of_activity(merchant_a, merchant_b, make_order):
    now = timezone.now()
    yesterday = now - timedelta(days=1)
    MessengerPage.objects.create(merchant=merchant_a, page_id="5001", name="A")
    MessengerPage.objects.create(merchant=merchant_a, page_id="5002", name="A too")
    MessengerPage.objects.create(merchant=merchant_b, page_id="6001", name="B")
    # Merchant A today: 3 customers on two pages (one wrote twice, one only tapped a button).
    _event("5001", "p1")
    _event("5001", "p1")
    _event("5001", "p2", kind="postback")
    _event("5002", "p1")  # the same PSID on another page is another customer
    _event("5001", "p9", kind="delivery")  # a delivery receipt is not a conversation
    _event("5001", "p9", kind="echo")
    _event("5001", "p8", is_standby=True)  # another app had the thread
    _event("5001", "p7", at=yesterday)  # yesterday
    _event("6001", "q1")  # merchant B
    _event("9999", "z1")  # a page nobody connected
    for merchant, count in ((merchant_a, 2), (merchant_b, 1)):
        for _ in range(count):
            Cart.objects.create(merchant=merchant, customer=customer_create(merchant=merchant))
    old_cart = Cart.objects.create(
        merchant=merchant_a, customer=customer_create(merchant=merchant_a)
    )
    _at(Cart, old_cart, yesterday)
    order = make_order(merchant=merchant_a, status="pending_payment")
    for attempt in (1, 2):  # a retried payment is one checkout
        Payment.objects.create(
            order=order, gateway="stripe_checkout", attempt=attempt, amount_minor=1000,
            currency="USD", idempotency_key=f"f:{order.pk}:{attempt}",
        )  # fmt: skip
    other = make_order(merchant=merchant_a, status="pending_payment")
    late = Payment.objects.create(
        order=other, gateway="stripe_checkout", amount_minor=1000, currency="USD",
        idempotency_key=f"f:{other.pk}:1",
    )  # fmt: skip
    _at(Payment, late, yesterday)
    return now


def _row(merchant, day):
    row = DailyFunnel.objects.filter(merchant=merchant, day=day).first()
    return (row.conversations, row.carts, row.checkouts) if row else None


def test_recount_counts_each_step_per_merchant_and_day(day_of_activity, merchant_a, merchant_b):
    today = timezone.localdate(day_of_activity)
    yesterday = today - timedelta(days=1)
    funnel_recompute(days=[today, yesterday])
    assert _row(merchant_a, today) == (3, 2, 1)
    assert _row(merchant_b, today) == (1, 1, 0)
    assert _row(merchant_a, yesterday) == (1, 1, 1)
    assert _row(merchant_b, yesterday) is None


def test_recount_is_idempotent_and_drops_rows_that_lost_their_counts(day_of_activity, merchant_b):
    today = timezone.localdate(day_of_activity)
    funnel_recompute(days=[today])
    funnel_recompute(days=[today])
    assert DailyFunnel.objects.filter(day=today).count() == 2
    InboundEvent.objects.filter(page_id="6001").delete()
    Cart.objects.filter(merchant=merchant_b).delete()
    funnel_recompute(days=[today])
    assert _row(merchant_b, today) is None


def test_periodic_task_refreshes_today_and_yesterday(day_of_activity, merchant_a):
    assert funnel_refresh() == 3
    today = timezone.localdate(day_of_activity)
    assert _row(merchant_a, today) == (3, 2, 1)
    assert _row(merchant_a, today - timedelta(days=1)) == (1, 1, 1)


def test_figures_rebuild_command_recounts_sales_and_funnel(day_of_activity, merchant_a):
    from io import StringIO

    from django.core.management import CommandError, call_command

    from commerce.models import DailySales

    DailySales.objects.all().delete()
    out = StringIO()
    call_command("figures_rebuild", "--days", "2", stdout=out)
    assert "Recounted 2 days" in out.getvalue()
    today = timezone.localdate(day_of_activity)
    assert _row(merchant_a, today) == (3, 2, 1)
    placed = DailySales.objects.filter(merchant=merchant_a, day=today).values_list(
        "orders_placed", flat=True
    )
    assert sum(placed) == 2  # the fixture's two unpaid orders
    with pytest.raises(CommandError, match="--days must be between 1 and"):
        call_command("figures_rebuild", "--days", "0")
