"""Celery tasks: the webhook inbox. Thin: each task calls the inbox services."""

from __future__ import annotations

from celery import shared_task

from messenger.services.inbox import inbound_events_drain, inbound_events_stale_exist

__all__ = ["inbox_drain", "inbox_sweep"]


@shared_task(ignore_result=True)
def inbox_drain(include_retries: bool = False) -> int:
    """Process pending inbox rows, one customer at a time, in timestamp order.

    Published by the webhook's nudge (at most two per 100 ms, however many events
    arrive) and by ``inbox_sweep``. Safe to run twice and side by side. When it stops at its
    per-run bound with rows still waiting, it queues its own continuation.
    """
    result = inbound_events_drain(include_retries=include_retries)
    if result.more:
        inbox_drain.apply_async(kwargs={"include_retries": include_retries})
    return result.processed


@shared_task(ignore_result=True)
def inbox_sweep() -> bool:
    """Every 30 s from beat: when a row has been pending for over a minute (its nudge was lost
    with Redis, its worker died, or it failed and waits for a retry), publish one drain that
    also retries failed rows. Returns whether it did."""
    if not inbound_events_stale_exist():
        return False
    inbox_drain.delay(include_retries=True)
    return True
