"""Recounting the funnel steps before payment (``commerce.DailyFunnel``) from their sources.

The steps live in three apps: conversations in messenger's inbox, carts in commerce, started
checkouts in payments. Only the dashboard may read all three, so it keeps the figures: a
periodic task (``dashboard.tasks.funnel_refresh``, every few minutes) recounts today and
yesterday, and ``manage.py figures_rebuild`` recounts any range. A recount replaces whole rows
(one upsert per merchant and day) from counts taken in one snapshot per source, so two recounts
running at once write the same numbers and nothing is ever counted twice; the price is that
today's funnel lags by up to one period. Paid orders are not recounted here: they come from
``DailySales``, kept exact by the order services.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from commerce.models import Cart, DailyFunnel
from messenger.models import InboundEvent, MessengerPage
from payments.models import Payment

__all__ = ["CONVERSATION_KINDS", "funnel_recompute", "funnel_refresh_recent"]

# What a shopper does (as opposed to delivery and read receipts, echoes of our own messages).
CONVERSATION_KINDS = ("message", "postback", "referral", "optin")


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    tz = timezone.get_default_timezone()
    start = timezone.make_aware(datetime.combine(day, time.min), tz)
    return start, start + timedelta(days=1)


def _conversations(start: datetime, end: datetime) -> dict[int, int]:
    """Distinct customers (page, PSID) who did something, per merchant of the page."""
    merchant_of_page = dict(MessengerPage.objects.values_list("page_id", "merchant_id"))
    per_page = (
        InboundEvent.objects.filter(
            # Every status, so the (status, received_at) index serves the range.
            status__in=InboundEvent.Status.values,
            received_at__gte=start,
            received_at__lt=end,
            kind__in=CONVERSATION_KINDS,
            is_standby=False,
        )
        .exclude(sender_psid="")
        .values("page_id")
        .annotate(n=Count("sender_psid", distinct=True))
        .order_by()
    )
    counts: dict[int, int] = defaultdict(int)
    for row in per_page:
        merchant_id = merchant_of_page.get(row["page_id"])
        if merchant_id is not None:
            counts[merchant_id] += row["n"]
    return counts


def _carts(start: datetime, end: datetime) -> dict[int, int]:
    rows = (
        Cart.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("merchant_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["merchant_id"]: row["n"] for row in rows}


def _checkouts(start: datetime, end: datetime) -> dict[int, int]:
    """Orders with a payment attempt started that day (a retried attempt counts once)."""
    rows = (
        Payment.objects.filter(created_at__gte=start, created_at__lt=end)
        .values("order__merchant_id")
        .annotate(n=Count("order_id", distinct=True))
        .order_by()
    )
    return {row["order__merchant_id"]: row["n"] for row in rows}


@transaction.atomic
def funnel_recompute(*, days: Iterable[date]) -> int:
    """Replace the funnel rows of ``days`` with fresh counts; return the rows written."""
    written = 0
    for day in sorted(set(days)):
        start, end = _day_bounds(day)
        conversations = _conversations(start, end)
        carts = _carts(start, end)
        checkouts = _checkouts(start, end)
        merchants = set(conversations) | set(carts) | set(checkouts)
        rows = [
            DailyFunnel(
                merchant_id=merchant_id,
                day=day,
                conversations=conversations.get(merchant_id, 0),
                carts=carts.get(merchant_id, 0),
                checkouts=checkouts.get(merchant_id, 0),
            )
            for merchant_id in sorted(merchants)
        ]
        DailyFunnel.objects.filter(day=day).exclude(merchant_id__in=merchants).delete()
        DailyFunnel.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["merchant", "day"],
            update_fields=["conversations", "carts", "checkouts", "computed_at"],
        )
        written += len(rows)
    return written


def funnel_refresh_recent(*, now: datetime | None = None) -> int:
    """Recount today and yesterday (yesterday so its last minutes are not lost at midnight)."""
    today = timezone.localtime(now or timezone.now(), timezone.get_default_timezone()).date()
    return funnel_recompute(days=[today - timedelta(days=1), today])
