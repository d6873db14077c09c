"""Reads behind the metrics page, all from the pre-aggregated figures (never from orders).

``DailySales`` / ``HourlySales`` are exact (kept by the order services in each order's
transaction); ``DailyFunnel`` is recounted every few minutes (``dashboard.services.funnel``).
Each function is one query over at most 60 days of rows per merchant, so the page costs the same
at a thousand orders as at a million.

Revenue: ``gross`` is the total of the orders *paid* in the period; ``refunded`` is what has
been given back so far of those same orders; ``net = gross - refunded``. Average order value is
``gross / paid orders`` (what a paying shopper spends). Amounts stay per currency: they are never
added across currencies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Q, Sum
from django.utils import timezone

from commerce.models import DailyFunnel, DailySales, HourlySales
from core.money import Money

__all__ = [
    "PERIODS",
    "CurrencyFigures",
    "Funnel",
    "PeriodFigures",
    "metrics_funnel",
    "metrics_orders_by_hour",
    "metrics_referrals",
    "metrics_revenue_by_day",
    "metrics_summary",
]

# name -> length in days; "today" compares with yesterday, "7d" with the 7 days before...
PERIODS = {"today": 1, "7d": 7, "30d": 30}
REFERRAL_LIMIT = 25


def metrics_today() -> date:
    return timezone.localtime(timezone.now(), timezone.get_default_timezone()).date()


def _window(today: date, days: int, *, previous: bool) -> tuple[date, date]:
    last = today - timedelta(days=days) if previous else today
    return last - timedelta(days=days - 1), last


@dataclass
class Figures:
    orders_placed: int = 0
    orders_paid: int = 0
    gross_minor: int = 0
    refunded_minor: int = 0

    @property
    def net_minor(self) -> int:
        return self.gross_minor - self.refunded_minor

    @property
    def average_minor(self) -> int | None:
        """Gross per paid order, rounded half up; None without paid orders."""
        if not self.orders_paid:
            return None
        return (2 * self.gross_minor + self.orders_paid) // (2 * self.orders_paid)


@dataclass
class PeriodFigures:
    current: Figures
    previous: Figures

    @staticmethod
    def change(now: int, before: int) -> int | None:
        """Change in whole percent (rounded toward zero); None when there is nothing before."""
        if not before:
            return None
        return int((now - before) * 100 / before)

    @property
    def paid_change(self) -> int | None:
        return self.change(self.current.orders_paid, self.previous.orders_paid)

    @property
    def net_change(self) -> int | None:
        return self.change(self.current.net_minor, self.previous.net_minor)


@dataclass
class CurrencyFigures:
    currency: str
    periods: dict[str, PeriodFigures] = field(default_factory=dict)

    def money(self, amount_minor: int | None) -> Money | None:
        return None if amount_minor is None else Money(amount_minor, self.currency)


_METRICS = ("orders_placed", "orders_paid", "revenue_minor", "refunded_minor")


def metrics_summary(*, scope, today: date | None = None) -> list[CurrencyFigures]:
    """Orders and revenue per currency for today, 7 and 30 days and the periods before them.

    One query: every window is a conditional sum over the last 60 days of ``DailySales``.
    """
    today = today or metrics_today()
    windows: dict[str, tuple[date, date]] = {}
    for name, days in PERIODS.items():
        windows[f"{name}_current"] = _window(today, days, previous=False)
        windows[f"{name}_previous"] = _window(today, days, previous=True)
    earliest = min(first for first, _ in windows.values())
    aggregates = {
        f"{window}__{metric}": Sum(metric, filter=Q(day__gte=first, day__lte=last), default=0)
        for window, (first, last) in windows.items()
        for metric in _METRICS
    }
    rows = (
        scope.filter(DailySales.objects.all())
        .filter(day__gte=earliest, day__lte=today)
        .values("currency")
        .annotate(**aggregates)
        .order_by("currency")
    )
    result = []
    for row in rows:
        figures = CurrencyFigures(currency=row["currency"])
        for name in PERIODS:
            pair = []
            for side in ("current", "previous"):
                key = f"{name}_{side}__"
                pair.append(
                    Figures(
                        orders_placed=row[key + "orders_placed"],
                        orders_paid=row[key + "orders_paid"],
                        gross_minor=row[key + "revenue_minor"],
                        refunded_minor=row[key + "refunded_minor"],
                    )
                )
            figures.periods[name] = PeriodFigures(current=pair[0], previous=pair[1])
        result.append(figures)
    return result


def metrics_revenue_by_day(*, scope, today: date | None = None, days: int = 30) -> dict:
    """``{currency: [(day, gross_minor, net_minor, orders_paid), ...]}`` for every one of the
    last ``days`` days (zeros included), oldest first."""
    today = today or metrics_today()
    first = today - timedelta(days=days - 1)
    rows = (
        scope.filter(DailySales.objects.all())
        .filter(day__gte=first, day__lte=today)
        .values("currency", "day")
        .annotate(
            gross=Sum("revenue_minor"), refunded=Sum("refunded_minor"), paid=Sum("orders_paid")
        )
        .order_by()
    )
    found: dict[str, dict[date, tuple[int, int, int]]] = {}
    for row in rows:
        found.setdefault(row["currency"], {})[row["day"]] = (
            row["gross"],
            row["gross"] - row["refunded"],
            row["paid"],
        )
    series = {}
    for currency in sorted(found):
        by_day = found[currency]
        series[currency] = [
            (day, *by_day.get(day, (0, 0, 0)))
            for day in (first + timedelta(days=n) for n in range(days))
        ]
    return series


def metrics_orders_by_hour(
    *, scope, now: datetime | None = None
) -> list[tuple[datetime, int, int]]:
    """``[(hour, placed, paid), ...]`` for the last 24 hours (this one included), oldest first."""
    now = timezone.localtime(now or timezone.now(), timezone.get_default_timezone())
    this_hour = now.replace(minute=0, second=0, microsecond=0)
    first = this_hour - timedelta(hours=23)
    rows = (
        scope.filter(HourlySales.objects.all())
        .filter(hour__gte=first, hour__lte=this_hour)
        .values("hour")
        .annotate(placed=Sum("orders_placed"), paid=Sum("orders_paid"))
        .order_by()
    )
    found = {row["hour"]: (row["placed"], row["paid"]) for row in rows}
    hours = [first + timedelta(hours=n) for n in range(24)]
    return [(hour, *found.get(hour, (0, 0))) for hour in hours]


@dataclass(frozen=True)
class ReferralRow:
    source: str
    ad_id: str
    currency: str
    orders_paid: int
    gross_minor: int
    refunded_minor: int

    @property
    def net_minor(self) -> int:
        return self.gross_minor - self.refunded_minor


def metrics_referrals(
    *, scope, today: date | None = None, days: int = 30, limit: int = REFERRAL_LIMIT
) -> list[ReferralRow]:
    """Paid orders and revenue per referral (source, ad id) and currency over ``days`` days,
    the best sellers first. Orders without a referral are one row with an empty source."""
    today = today or metrics_today()
    first = today - timedelta(days=days - 1)
    rows = (
        scope.filter(DailySales.objects.all())
        .filter(day__gte=first, day__lte=today)
        .values("referral_source", "referral_ad_id", "currency")
        .annotate(
            paid=Sum("orders_paid"), gross=Sum("revenue_minor"), refunded=Sum("refunded_minor")
        )
        .filter(paid__gt=0)
        .order_by("-paid", "-gross", "referral_source", "referral_ad_id", "currency")[:limit]
    )
    return [
        ReferralRow(
            source=row["referral_source"],
            ad_id=row["referral_ad_id"],
            currency=row["currency"],
            orders_paid=row["paid"],
            gross_minor=row["gross"],
            refunded_minor=row["refunded"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Funnel:
    conversations: int
    carts: int
    checkouts: int
    paid: int

    def rate(self, step: str) -> int | None:
        """Percent of conversations that reached ``step``; None without conversations."""
        if not self.conversations:
            return None
        return int(getattr(self, step) * 100 / self.conversations)

    @property
    def carts_rate(self) -> int | None:
        return self.rate("carts")

    @property
    def checkouts_rate(self) -> int | None:
        return self.rate("checkouts")

    @property
    def paid_rate(self) -> int | None:
        return self.rate("paid")


def metrics_funnel(*, scope, today: date | None = None) -> dict[str, Funnel]:
    """The funnel for each period of :data:`PERIODS` (two queries: funnel and paid orders)."""
    today = today or metrics_today()
    windows = {name: _window(today, days, previous=False) for name, days in PERIODS.items()}
    earliest = min(first for first, _ in windows.values())
    steps = ("conversations", "carts", "checkouts")
    funnel = (
        scope.filter(DailyFunnel.objects.all())
        .filter(day__gte=earliest, day__lte=today)
        .aggregate(
            **{
                f"{name}__{step}": Sum(step, filter=Q(day__gte=first, day__lte=last), default=0)
                for name, (first, last) in windows.items()
                for step in steps
            }
        )
    )
    paid = (
        scope.filter(DailySales.objects.all())
        .filter(day__gte=earliest, day__lte=today)
        .aggregate(
            **{
                name: Sum("orders_paid", filter=Q(day__gte=first, day__lte=last), default=0)
                for name, (first, last) in windows.items()
            }
        )
    )
    return {
        name: Funnel(
            conversations=funnel[f"{name}__conversations"],
            carts=funnel[f"{name}__carts"],
            checkouts=funnel[f"{name}__checkouts"],
            paid=paid[name],
        )
        for name in PERIODS
    }
