"""Periodic upkeep of the dashboard's figures (see ``dashboard.services.funnel``)."""

from __future__ import annotations

from celery import shared_task

from dashboard.services.funnel import funnel_refresh_recent


@shared_task(ignore_result=True)
def funnel_refresh() -> int:
    """Recount today's and yesterday's funnel; safe to run twice or concurrently."""
    return funnel_refresh_recent()
