"""The orders list: filters, search, sort, keyset pages, live updates and the CSV export."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.template.loader import get_template, render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from commerce.models import Order
from core.money import Money
from dashboard.access import dashboard_view
from dashboard.forms import OrderFilterForm
from dashboard.selectors.orders import (
    CursorError,
    live_cursor,
    order_count_capped,
    order_page,
    orders_changed_since,
    orders_filtered,
    orders_for_export,
    parse_live_cursor,
)

LIVE_INTERVAL_MS = 3000
# Query-string keys that are not filters: they never travel into the live and export links.
_NOT_FILTERS = ("after", "before", "since", "merchant")


def _filter_query(request: HttpRequest) -> str:
    params = request.GET.copy()
    for key in _NOT_FILTERS:
        params.pop(key, None)
    merchant = request.dashboard.merchant
    if merchant is not None:
        params["merchant"] = merchant.slug
    return params.urlencode()


def _with_query(url: str, query: str) -> str:
    return f"{url}?{query}" if query else url


@dataclass(frozen=True)
class OrderRow:
    """One line of the list, formatted once in Python: the page is kept open all day and
    re-rendered on every poll, so the template only prints strings."""

    pk: int
    number: str
    url: str
    created: str
    merchant: str
    customer: str
    email: str
    status: str
    status_label: str
    needs_review: bool
    total: str
    source: str
    version: str


def order_rows(orders) -> list[OrderRow]:
    language = get_language() or "en"
    labels = {value: str(label) for value, label in Order.Status.choices}
    detail_url = reverse("dashboard:order_detail", args=[0]).replace("/0/", "/%d/")
    rows = []
    for order in orders:
        customer = order.customer
        name = f"{customer.first_name} {customer.last_name}".strip() or f"PSID {customer.psid}"
        source = " · ".join(p for p in (order.referral_source, order.referral_ad_id) if p)
        rows.append(
            OrderRow(
                pk=order.pk,
                number=order.number,
                url=detail_url % order.pk,
                created=date_format(localtime(order.created_at), "SHORT_DATETIME_FORMAT"),
                merchant=order.merchant.name,
                customer=name,
                email=order.contact_email,
                status=order.status,
                status_label=labels.get(order.status, order.status),
                needs_review=order.needs_review,
                total=Money(order.total_minor, order.currency).format(language),
                source=source,
                version=live_cursor(order.updated_at),
            )
        )
    return rows


def _rows_html(request: HttpRequest, rows: list[OrderRow]) -> list[str]:
    template = get_template("dashboard/_order_row.html")
    shows_merchant = request.dashboard.shows_switcher
    return [template.render({"row": row, "shows_merchant": shows_merchant}) for row in rows]


@require_GET
@dashboard_view
def orders_list(request: HttpRequest) -> HttpResponse:
    form = OrderFilterForm(request.GET)
    context = {"form": form, "rows": [], "page": None, "count": None}
    if not form.is_valid():
        return render(request, "dashboard/orders.html", context, status=400)
    filters = form.cleaned_data
    queryset = orders_filtered(scope=request.dashboard, filters=filters)
    try:
        page = order_page(
            queryset=queryset,
            sort=filters["sort"],
            after=request.GET.get("after", ""),
            before=request.GET.get("before", ""),
        )
    except CursorError:
        context["page_error"] = _("This page link is not valid any more. Start from page one.")
        return render(request, "dashboard/orders.html", context, status=400)
    query = _filter_query(request)
    context.update(
        rows=order_rows(page.rows),
        shows_merchant=request.dashboard.shows_switcher,
        page=page,
        count=order_count_capped(queryset),
        live_url=_with_query(reverse("dashboard:orders_live"), query),
        live_cursor=live_cursor(timezone.now()),
        live_insert=page.is_first and filters["sort"] == "newest",
        live_interval=LIVE_INTERVAL_MS,
        export_url=_with_query(reverse("dashboard:orders_export"), query),
        has_filters=any(
            filters.get(k)
            for k in ("q", "status", "payment", "date_from", "date_to", "source", "ad")
        ),
    )
    return render(request, "dashboard/orders.html", context)


@require_GET
@dashboard_view
def orders_live(request: HttpRequest) -> JsonResponse:
    """Orders changed since ``?since=`` that match the list's filters (``rows``, with their
    rendered table row) and those that stopped matching (``gone``); ``cursor`` is the next
    ``since``."""
    form = OrderFilterForm(request.GET)
    if not form.is_valid():
        return JsonResponse(
            {"message": _("The filters are not valid."), "errors": form.errors}, status=400
        )
    try:
        since = parse_live_cursor(request.GET.get("since", ""))
    except CursorError:
        return JsonResponse(
            {"message": _("'since' must be the cursor of a previous answer.")}, status=400
        )
    scope = request.dashboard
    filtered = orders_filtered(scope=scope, filters=form.cleaned_data)
    changes = orders_changed_since(scope=scope, filtered=filtered, since=since)
    rows = order_rows(changes.matching)
    rows = [
        {"id": row.pk, "version": row.version, "html": html}
        for row, html in zip(rows, _rows_html(request, rows), strict=True)
    ]
    answer = {"cursor": changes.cursor, "rows": rows, "gone": changes.gone}
    if rows or changes.gone:  # the count above the list changes only then: recount only then
        answer["count_html"] = render_to_string(
            "dashboard/_order_count.html", {"count": order_count_capped(filtered)}
        )
    return JsonResponse(answer)


class _Echo:
    """A file-like object whose write returns the line, so csv.writer can feed a stream."""

    def write(self, value: str) -> str:
        return value


CSV_HEADER = [
    "number",
    "merchant",
    "created_at",
    "status",
    "currency",
    "total",
    "refunded",
    "customer",
    "email",
    "phone",
    "referral_source",
    "referral_ad_id",
    "paid_at",
    "needs_review",
]


def csv_safe(value: str) -> str:
    """Keep spreadsheet programs from running a cell as a formula (names come from shoppers)."""
    return f"'{value}" if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _major(amount_minor: int, currency: str) -> str:
    return f"{Money(amount_minor, currency).to_major():f}"


def _csv_row(order: Order) -> list[str]:
    customer = order.customer
    name = f"{customer.first_name} {customer.last_name}".strip()
    return [
        order.number,
        csv_safe(order.merchant.name),
        order.created_at.isoformat(),
        order.status,
        order.currency,
        _major(order.total_minor, order.currency),
        _major(order.refunded_minor, order.currency),
        csv_safe(name),
        csv_safe(order.contact_email),
        csv_safe(order.contact_phone),
        csv_safe(order.referral_source),
        csv_safe(order.referral_ad_id),
        order.paid_at.isoformat() if order.paid_at else "",
        "yes" if order.needs_review else "",
    ]


def _csv_lines(orders) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for order in orders:
        yield writer.writerow(_csv_row(order))


@require_GET
@dashboard_view
def orders_export(request: HttpRequest) -> HttpResponse:
    """Exactly the rows the list's filters select (every page of them), as a streamed CSV."""
    form = OrderFilterForm(request.GET)
    if not form.is_valid():
        messages_text = "; ".join(e for errors in form.errors.values() for e in errors)
        return HttpResponse(messages_text, status=400, content_type="text/plain; charset=utf-8")
    filters = form.cleaned_data
    queryset = orders_filtered(scope=request.dashboard, filters=filters)
    response = StreamingHttpResponse(
        _csv_lines(orders_for_export(queryset=queryset, sort=filters["sort"])),
        content_type="text/csv; charset=utf-8",
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="orders-{stamp}.csv"'
    return response
