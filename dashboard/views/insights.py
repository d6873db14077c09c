"""The metrics page and "Needs attention": read-only, from bounded or pre-aggregated reads."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import formats
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from dashboard.access import dashboard_view
from dashboard.selectors.attention import COUNT_CAP, attention_problems
from dashboard.selectors.metrics import (
    metrics_funnel,
    metrics_orders_by_hour,
    metrics_referrals,
    metrics_revenue_by_day,
    metrics_summary,
    metrics_today,
)

PERIOD_LABELS = {
    "today": (_("Today"), _("yesterday")),
    "7d": (_("Last 7 days"), _("the 7 days before")),
    "30d": (_("Last 30 days"), _("the 30 days before")),
}


def _period_rows(periods: dict) -> list[dict]:
    return [
        {"label": PERIOD_LABELS[name][0], "previous_label": PERIOD_LABELS[name][1], "f": figures}
        for name, figures in periods.items()
    ]


def _chart_data(revenue_by_day: dict, hours: list) -> dict:
    """What charts.js draws: labels already localized, amounts in minor units + currency."""
    return {
        "revenue": [
            {
                "currency": currency,
                "points": [
                    {
                        "label": formats.date_format(day, "M j"),
                        "gross": gross,
                        "net": net,
                        "paid": paid,
                    }
                    for day, gross, net, paid in points
                ],
            }
            for currency, points in revenue_by_day.items()
        ],
        "hours": [
            {"label": formats.time_format(hour, "H:i"), "placed": placed, "paid": paid}
            for hour, placed, paid in hours
        ],
    }


@require_GET
@dashboard_view
def metrics(request: HttpRequest) -> HttpResponse:
    """Orders, revenue, funnel and referrals of the merchants in view (a handful of queries)."""
    scope = request.dashboard
    today = metrics_today()
    revenue_by_day = metrics_revenue_by_day(scope=scope, today=today)
    hours = metrics_orders_by_hour(scope=scope)
    context = {
        "today": today,
        "summary": [
            {"currency": c.currency, "periods": _period_rows(c.periods)}
            for c in metrics_summary(scope=scope, today=today)
        ],
        "funnel": _period_rows(metrics_funnel(scope=scope, today=today)),
        "referrals": metrics_referrals(scope=scope, today=today),
        "revenue_by_day": revenue_by_day,
        "hours": hours,
        "chart_data": _chart_data(revenue_by_day, hours),
    }
    return render(request, "dashboard/metrics.html", context)


@require_GET
@dashboard_view
def attention(request: HttpRequest) -> HttpResponse:
    """Every kind of problem of the merchants in view, each list bounded."""
    problems = attention_problems(scope=request.dashboard)
    return render(
        request,
        "dashboard/attention.html",
        {"problems": problems, "count_cap": COUNT_CAP},
    )
