"""Reads behind the orders list, its live updates and its CSV export.

Written to stay fast at a million orders (the indexes they rely on are listed in
docs/architecture.md, dashboard section):

- every filter is an equality or range on an ``Order`` column (status, merchant, created_at,
  referral_source, referral_ad_id, needs_review); search picks *one* index-friendly lookup from
  the shape of what was typed (an order number prefix, an exact email or phone, a customer name
  prefix) instead of OR-ing ``icontains`` over joined tables;
- pages are keyset pages (``after`` / ``before`` cursors on the sort key and the id), never
  ``OFFSET``: page 2000 costs what page 1 costs;
- the total is counted only up to :data:`COUNT_CAP` ("1,000+ orders"), never ``COUNT(*)`` over
  everything;
- live updates read rows changed since a cursor on ``updated_at``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from commerce.models import Customer, Order
from commerce.selectors.access import scope_queryset

__all__ = [
    "COUNT_CAP",
    "LIVE_OVERLAP",
    "PAGE_SIZE",
    "CursorError",
    "OrderPage",
    "order_count_capped",
    "order_page",
    "orders_changed_since",
    "orders_filtered",
    "orders_for_export",
]

PAGE_SIZE = 50
COUNT_CAP = 1000
LIVE_LIMIT = 100
# A row's updated_at is set when its transaction writes it, but it becomes visible only at
# commit: a live poll also re-reads this much before its cursor so a slow commit is not missed
# (the page keeps each row's version and ignores rows it already shows unchanged).
LIVE_OVERLAP = timedelta(seconds=10)

Status = Order.Status

PAYMENT_STATES: dict[str, Q] = {
    "unpaid": Q(status=Status.PENDING_PAYMENT),
    "paid": Q(status__in=[Status.PAID, Status.FULFILLED, Status.DELIVERED]),
    "refunded": Q(status__in=[Status.PARTIALLY_REFUNDED, Status.REFUNDED]),
    "failed": Q(status=Status.PAYMENT_FAILED),
    "closed": Q(status__in=[Status.EXPIRED, Status.CANCELLED]),
    "review": Q(needs_review=True),
}

# (field, descending) per sort; the id breaks ties so that the order is total.
SORTS: dict[str, tuple[str, bool]] = {
    "newest": ("created_at", True),
    "oldest": ("created_at", False),
    "total_desc": ("total_minor", True),
    "total_asc": ("total_minor", False),
}

_ORDER_NUMBER = re.compile(r"^[A-Za-z0-9]{1,8}-\d*$")
_PHONE = re.compile(r"^\+?[\d\s().-]{7,}$")
_DIGITS = re.compile(r"^\d{1,6}$")
_LIST_FIELDS = [
    "id",
    "number",
    "status",
    "currency",
    "total_minor",
    "refunded_minor",
    "created_at",
    "updated_at",
    "paid_at",
    "needs_review",
    "referral_source",
    "referral_ad_id",
    "contact_email",
    "contact_phone",
    "merchant__id",
    "merchant__name",
    "merchant__slug",
    "customer__id",
    "customer__first_name",
    "customer__last_name",
    "customer__psid",
]


class CursorError(ValueError):
    """A page cursor that is not one we wrote."""


# -- filtering --------------------------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _search(queryset: QuerySet, *, q: str, user) -> QuerySet:
    """Narrow by what was typed, choosing one lookup an index can answer.

    ``A1B2-10`` -> order numbers starting with it; ``1042`` -> the order numbered ``*-1042``;
    ``a@b.c`` -> that contact email; ``+965 5001 2345`` -> that contact phone; words -> customers
    whose first (and last) name start with them.
    """
    if "@" in q:
        return queryset.filter(contact_email__in={q, q.lower()})
    if _ORDER_NUMBER.match(q):
        return queryset.filter(number__startswith=q.upper())
    if _DIGITS.match(q):
        return queryset.filter(number__endswith=f"-{q}")
    if _PHONE.match(q):
        digits = re.sub(r"\D", "", q)
        return queryset.filter(contact_phone__in={q, digits, f"+{digits}"})
    words = q.split()
    names = Q(first_name__istartswith=words[0])
    if len(words) == 1:
        names |= Q(last_name__istartswith=words[0])
    else:
        names &= Q(last_name__istartswith=" ".join(words[1:]))
    customers = scope_queryset(Customer.objects.filter(names), user=user).values("pk")
    return queryset.filter(customer__in=customers)


def orders_filtered(*, scope, filters: dict[str, Any]) -> QuerySet[Order]:
    """The orders the user may see (``scope``: a ``DashboardScope``) matching ``filters``
    (``OrderFilterForm.cleaned_data``), unordered."""
    queryset = scope.filter(Order.objects.all())
    if filters.get("status"):
        queryset = queryset.filter(status=filters["status"])
    if filters.get("payment"):
        queryset = queryset.filter(PAYMENT_STATES[filters["payment"]])
    if filters.get("date_from"):
        queryset = queryset.filter(created_at__gte=_day_start(filters["date_from"]))
    if filters.get("date_to"):
        queryset = queryset.filter(
            created_at__lt=_day_start(filters["date_to"] + timedelta(days=1))
        )
    if filters.get("source"):
        queryset = queryset.filter(referral_source=filters["source"])
    if filters.get("ad"):
        queryset = queryset.filter(referral_ad_id=filters["ad"])
    if filters.get("q"):
        queryset = _search(queryset, q=filters["q"], user=scope.user)
    return queryset


# -- keyset pages -----------------------------------------------------------------------------


def _key_value(order: Order, field: str) -> int:
    value = getattr(order, field)
    if isinstance(value, datetime):
        return _micros(value)
    return int(value)


def _micros(value: datetime) -> int:
    """Microseconds since the epoch: an exact, URL-safe form of a timestamp."""
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(value: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=value)


def cursor_for(order: Order, sort: str) -> str:
    field, _ = SORTS[sort]
    return f"{_key_value(order, field)}_{order.pk}"


def _parse_cursor(cursor: str, field: str) -> tuple[Any, int]:
    try:
        raw_value, raw_id = cursor.split("_")
        value, pk = int(raw_value), int(raw_id)
    except ValueError:
        raise CursorError(cursor) from None
    if field == "created_at":
        try:
            return _from_micros(value), pk
        except OverflowError:
            raise CursorError(cursor) from None
    return value, pk


def _beyond(field: str, value: Any, pk: int, *, descending: bool) -> Q:
    """Rows after (value, pk) in the sort order. The redundant ``lte``/``gte`` gives the index a
    plain range to scan; the OR settles ties on the id."""
    if descending:
        return Q(**{f"{field}__lte": value}) & (
            Q(**{f"{field}__lt": value}) | Q(**{field: value, "pk__lt": pk})
        )
    return Q(**{f"{field}__gte": value}) & (
        Q(**{f"{field}__gt": value}) | Q(**{field: value, "pk__gt": pk})
    )


@dataclass(frozen=True)
class OrderPage:
    rows: list[Order]
    next_cursor: str | None  # "after" of the next (older, for newest first) page
    prev_cursor: str | None  # "before" of the previous page
    is_first: bool


def _ordering(field: str, descending: bool) -> list[str]:
    sign = "-" if descending else ""
    return [f"{sign}{field}", f"{sign}pk"]


def _listed(queryset: QuerySet[Order]) -> QuerySet[Order]:
    return queryset.select_related("merchant", "customer").only(*_LIST_FIELDS)


def order_page(
    *,
    queryset: QuerySet[Order],
    sort: str = "newest",
    after: str = "",
    before: str = "",
    size: int = PAGE_SIZE,
) -> OrderPage:
    """One page of ``queryset`` in ``sort`` order, after or before a cursor (one query).

    :raises CursorError: ``after`` or ``before`` is not a cursor this module wrote.
    """
    field, descending = SORTS[sort]
    queryset = _listed(queryset)
    if before:
        value, pk = _parse_cursor(before, field)
        backwards = queryset.filter(_beyond(field, value, pk, descending=not descending))
        rows = list(backwards.order_by(*_ordering(field, not descending))[: size + 1])
        has_prev = len(rows) > size
        rows = list(reversed(rows[:size]))
        return OrderPage(
            rows=rows,
            next_cursor=cursor_for(rows[-1], sort) if rows else None,
            prev_cursor=cursor_for(rows[0], sort) if rows and has_prev else None,
            is_first=not has_prev,
        )
    if after:
        value, pk = _parse_cursor(after, field)
        queryset = queryset.filter(_beyond(field, value, pk, descending=descending))
    rows = list(queryset.order_by(*_ordering(field, descending))[: size + 1])
    has_next = len(rows) > size
    rows = rows[:size]
    return OrderPage(
        rows=rows,
        next_cursor=cursor_for(rows[-1], sort) if rows and has_next else None,
        prev_cursor=cursor_for(rows[0], sort) if rows and after else None,
        is_first=not after,
    )


def order_count_capped(queryset: QuerySet[Order], *, cap: int | None = None) -> tuple[int, bool]:
    """``(count, capped)``: counts at most ``cap + 1`` rows (default :data:`COUNT_CAP`), so it
    costs about what a page costs however many orders match."""
    cap = COUNT_CAP if cap is None else cap
    count = queryset.order_by()[: cap + 1].count()
    return min(count, cap), count > cap


# -- live updates -----------------------------------------------------------------------------


def live_cursor(moment: datetime) -> str:
    return str(_micros(moment))


def parse_live_cursor(cursor: str) -> datetime:
    """:raises CursorError: not a cursor written by :func:`live_cursor`."""
    try:
        return _from_micros(int(cursor))
    except (ValueError, OverflowError):
        raise CursorError(cursor) from None


@dataclass(frozen=True)
class LiveChanges:
    matching: list[Order]  # changed and still matching the filters, newest change first
    gone: list[int]  # changed and no longer matching (remove them from the page)
    cursor: str  # ``since`` of the next poll


def orders_changed_since(
    *, scope, filtered: QuerySet[Order], since: datetime, limit: int = LIVE_LIMIT
) -> LiveChanges:
    """Orders changed at or after ``since - LIVE_OVERLAP``, split into those that match the
    filters and those that do not any more (two small queries on ``updated_at``)."""
    changed = scope.filter(Order.objects.all()).filter(updated_at__gte=since - LIVE_OVERLAP)
    changed_ids = list(
        changed.order_by("-updated_at", "-pk").values_list("pk", "updated_at")[:limit]
    )
    if not changed_ids:
        return LiveChanges(matching=[], gone=[], cursor=live_cursor(since))
    ids = [pk for pk, _ in changed_ids]
    matching = list(_listed(filtered.filter(pk__in=ids)).order_by("-updated_at", "-pk"))
    matched = {order.pk for order in matching}
    newest = max(updated for _, updated in changed_ids)
    return LiveChanges(
        matching=matching,
        gone=[pk for pk in ids if pk not in matched],
        cursor=live_cursor(max(newest, since)),
    )


# -- export -----------------------------------------------------------------------------------


def orders_for_export(*, queryset: QuerySet[Order], sort: str = "newest", chunk_size: int = 2000):
    """Every row of ``queryset`` in ``sort`` order, streamed in chunks (a server-side cursor on
    PostgreSQL), for the CSV export."""
    field, descending = SORTS[sort]
    ordered = _listed(queryset).order_by(*_ordering(field, descending))
    return ordered.iterator(chunk_size=chunk_size)
