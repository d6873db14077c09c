"""Keeping ``DailySales`` and ``HourlySales`` exact: increments in the order's own transaction.

Design (why not a periodic recount): the metrics page is watched live, and a recount of
"today" would scan today's orders every few minutes and still lag. Instead the three services
that change a figure add to it in the same transaction as the change:

* placement (``order_create_from_cart``) -> ``sales_record_placed``: +1 placed on the day/hour
  the order was created;
* payment (``_mark_paid``) -> ``sales_record_paid``: +1 paid, +total revenue on the day/hour
  it was paid;
* refund (``order_record_refund``) -> ``sales_record_refund``: + what the refund took off the
  order's total (``Order.refunded_minor`` grew by), on the day the order was *paid* (so net
  revenue of a period = what its sales finally brought in). Giving back a duplicate payment
  takes nothing off the total: it was never counted as revenue. A refund that fails after it
  had succeeded (``order_record_refund_reversal``) books the same change with a minus sign.

Cancellation, expiry and failed payments change no figure (placed stays placed; nothing was
paid). Each increment is one ``INSERT ... ON CONFLICT DO UPDATE SET n = n + excluded.n``:
atomic on PostgreSQL and SQLite, so two payments of one merchant on the same day at the same
moment both count (the second waits for the first's row lock, then adds to the committed
value), and a rolled-back transition rolls its increment back with it. Call them last in the
transaction: the figure row stays locked until commit, so concurrent payments of one merchant
and day queue on it only for the rest of their transaction. Every transition locks its order
row first and then at most one daily and one hourly row, always in that order: no deadlock.

``sales_figures_rebuild`` recounts a range of days from the orders (after a bulk load such as
``seed_orders``, or to repair). On PostgreSQL it locks both tables against writes for its
duration (``EXCLUSIVE``: readers go on), which waits for every transaction that already
incremented to commit (so the recount sees their orders) and makes later ones wait until the
recount is in (so their increments land on top of it): no change is counted twice or lost.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db import connection, transaction
from django.db.models import BigIntegerField, Count, Max, Min, Sum, Value
from django.db.models.functions import TruncDate, TruncHour
from django.utils import timezone

from commerce.models import DailySales, HourlySales, Order

__all__ = [
    "day_of",
    "hour_of",
    "sales_figures_rebuild",
    "sales_record_paid",
    "sales_record_placed",
    "sales_record_refund",
]


def day_of(moment: datetime) -> date:
    """The day (in ``settings.TIME_ZONE``) figures book ``moment`` on."""
    return timezone.localtime(moment, timezone.get_default_timezone()).date()


def hour_of(moment: datetime) -> datetime:
    """The start of the hour (in ``settings.TIME_ZONE``) figures book ``moment`` on."""
    local = timezone.localtime(moment, timezone.get_default_timezone())
    return local.replace(minute=0, second=0, microsecond=0)


def _upsert(model, key: dict, increments: dict) -> None:
    """``INSERT ... ON CONFLICT (key) DO UPDATE SET col = col + excluded.col`` (one statement)."""
    table = connection.ops.quote_name(model._meta.db_table)
    fields = {model._meta.get_field(name).column: value for name, value in key.items()}
    adds = {model._meta.get_field(name).column: value for name, value in increments.items()}
    columns = [*fields, *adds]
    quoted = [connection.ops.quote_name(c) for c in columns]
    updates = ", ".join(
        f"{connection.ops.quote_name(c)} = {table}.{connection.ops.quote_name(c)}"
        f" + excluded.{connection.ops.quote_name(c)}"
        for c in adds
    )
    conflict = ", ".join(connection.ops.quote_name(c) for c in fields)
    placeholders = ", ".join(["%s"] * len(columns))
    sql = (
        f"INSERT INTO {table} ({', '.join(quoted)}) VALUES ({placeholders}) "  # noqa: S608
        f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    )
    params = []
    for name in [*key, *increments]:
        value = key.get(name, increments.get(name))
        field = model._meta.get_field(name)
        params.append(field.get_db_prep_value(value, connection))
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _daily_key(order: Order, day: date) -> dict:
    return {
        "merchant": order.merchant_id,
        "day": day,
        "currency": order.currency,
        "referral_source": order.referral_source,
        "referral_ad_id": order.referral_ad_id,
    }


def _hourly_key(order: Order, moment: datetime) -> dict:
    return {"merchant": order.merchant_id, "hour": hour_of(moment), "currency": order.currency}


def sales_record_placed(*, order: Order) -> None:
    """Count a just-placed order. Call inside the placement transaction, as late as possible."""
    _upsert(DailySales, _daily_key(order, day_of(order.created_at)), {"orders_placed": 1})
    _upsert(HourlySales, _hourly_key(order, order.created_at), {"orders_placed": 1})


def sales_record_paid(*, order: Order) -> None:
    """Count a just-paid order (``paid_at`` set) and its total. Call under the order lock."""
    revenue = {"orders_paid": 1, "revenue_minor": order.total_minor}
    _upsert(DailySales, _daily_key(order, day_of(order.paid_at)), revenue)
    _upsert(HourlySales, _hourly_key(order, order.paid_at), revenue)


def sales_record_refund(*, order: Order, amount_minor: int) -> None:
    """Book a change of ``order.refunded_minor`` (negative: a refund taken back) on the day the
    order was paid. Call under the order lock."""
    if order.paid_at is None or not amount_minor:  # never paid: nothing counted as revenue
        return
    _upsert(
        DailySales,
        _daily_key(order, day_of(order.paid_at)),
        {"refunded_minor": amount_minor},
    )


def _bounds(first: date, last: date) -> tuple[datetime, datetime]:
    tz = timezone.get_default_timezone()
    start = timezone.make_aware(datetime.combine(first, time.min), tz)
    end = timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min), tz)
    return start, end


def _lock_tables() -> None:
    if connection.vendor == "postgresql":
        tables = ", ".join(
            connection.ops.quote_name(m._meta.db_table) for m in (DailySales, HourlySales)
        )
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {tables} IN EXCLUSIVE MODE")


_DAILY_DIMS = ("d", "merchant_id", "currency", "referral_source", "referral_ad_id")
_HOURLY_DIMS = ("h", "merchant_id", "currency")


def _insert_grouped(model, columns: list[str], dims: tuple[str, ...], parts) -> None:
    """``INSERT INTO model (columns) SELECT dims, SUM(...) FROM (part UNION ALL part) GROUP BY``:
    the recount happens in the database, whatever the number of orders."""
    union = parts[0].union(*parts[1:], all=True)
    sql, params = union.query.sql_with_params()
    quote = connection.ops.quote_name
    measures = columns[len(dims) :]
    select = ", ".join([*(quote(d) for d in dims), *(f"SUM({quote(m)})" for m in measures)])
    group = ", ".join(quote(d) for d in dims)
    target = ", ".join(quote(model._meta.get_field(c).column) for c in columns)
    statement = (
        f"INSERT INTO {quote(model._meta.db_table)} ({target}) "  # noqa: S608
        f"SELECT {select} FROM ({sql}) AS grouped GROUP BY {group}"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def _daily_insert(start: datetime, end: datetime) -> None:
    tz = timezone.get_default_timezone()
    zero = Value(0, output_field=BigIntegerField())
    placed = (
        Order.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(d=TruncDate("created_at", tzinfo=tz))
        .values(*_DAILY_DIMS)
        .annotate(
            orders_placed=Count("id"), orders_paid=zero, revenue_minor=zero, refunded_minor=zero
        )
        .order_by()
    )
    paid = (
        Order.objects.filter(paid_at__gte=start, paid_at__lt=end)
        .annotate(d=TruncDate("paid_at", tzinfo=tz))
        .values(*_DAILY_DIMS)
        .annotate(
            orders_placed=zero,
            orders_paid=Count("id"),
            revenue_minor=Sum("total_minor"),
            refunded_minor=Sum("refunded_minor"),
        )
        .order_by()
    )
    columns = ["day", "merchant", "currency", "referral_source", "referral_ad_id",
               "orders_placed", "orders_paid", "revenue_minor", "refunded_minor"]  # fmt: skip
    _insert_grouped(DailySales, columns, _DAILY_DIMS, [placed, paid])


def _hourly_insert(start: datetime, end: datetime) -> None:
    tz = timezone.get_default_timezone()
    zero = Value(0, output_field=BigIntegerField())
    placed = (
        Order.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(h=TruncHour("created_at", tzinfo=tz))
        .values(*_HOURLY_DIMS)
        .annotate(orders_placed=Count("id"), orders_paid=zero, revenue_minor=zero)
        .order_by()
    )
    paid = (
        Order.objects.filter(paid_at__gte=start, paid_at__lt=end)
        .annotate(h=TruncHour("paid_at", tzinfo=tz))
        .values(*_HOURLY_DIMS)
        .annotate(orders_placed=zero, orders_paid=Count("id"), revenue_minor=Sum("total_minor"))
        .order_by()
    )
    columns = ["hour", "merchant", "currency", "orders_placed", "orders_paid", "revenue_minor"]
    _insert_grouped(HourlySales, columns, _HOURLY_DIMS, [placed, paid])


@transaction.atomic
def sales_figures_rebuild(*, first: date | None = None, last: date | None = None) -> int:
    """Recount the figures of days ``first..last`` (default: all days with orders); return rows.

    Replaces the rows of those days with counts taken from the orders. Safe while orders are
    placed and paid (see the module docstring), but on PostgreSQL those wait until it is done:
    meant for backfills and repairs, not for every request.
    """
    _lock_tables()
    if first is None or last is None:
        bounds = Order.objects.aggregate(first=Min("created_at"), last=Max("created_at"))
        if bounds["first"] is None:
            DailySales.objects.all().delete()
            HourlySales.objects.all().delete()
            return 0
        first = first or day_of(bounds["first"])
        last = last or max(day_of(timezone.now()), day_of(bounds["last"]))
    start, end = _bounds(first, last)
    DailySales.objects.filter(day__gte=first, day__lte=last).delete()
    HourlySales.objects.filter(hour__gte=start, hour__lt=end).delete()
    _daily_insert(start, end)
    _hourly_insert(start, end)
    return (
        DailySales.objects.filter(day__gte=first, day__lte=last).count()
        + HourlySales.objects.filter(hour__gte=start, hour__lt=end).count()
    )
