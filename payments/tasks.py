"""Celery tasks of the payments app: thin wrappers around the services, taking ids."""

from __future__ import annotations

import logging

from celery import shared_task

from payments.services.events import (
    ProviderEventRetry,
    provider_event_process,
    provider_events_stale,
)
from payments.services.refund_sending import refund_advance, refunds_due

__all__ = [
    "enqueue_provider_event",
    "process_provider_event",
    "submit_refund",
    "sweep_provider_events",
    "sweep_refunds",
]

logger = logging.getLogger(__name__)


@shared_task(bind=True, ignore_result=True, acks_late=True, max_retries=None)
def process_provider_event(self, event_id: int) -> str:
    """Process one stored webhook event. Safe to run twice and side by side.

    Retries follow the count kept on the event row (``provider_event_process``), so Celery's
    own limit is off; after the last try the event is marked failed and stays visible.
    """
    try:
        return provider_event_process(event_id=event_id)
    except ProviderEventRetry as retry:
        raise self.retry(countdown=retry.countdown, exc=retry) from retry


#: A publish gives up after two quick retries. Not ``retry=False``: that path lets kombu retry
#: the connection with its own defaults, several seconds per call with Redis down, and the
#: webhook calls this before answering Stripe (found by tests/faults/test_redis_outage_stripe).
PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}


def enqueue_provider_event(event_id: int) -> None:
    """Queue the processing of ``event_id`` now; a broker failure is logged, not raised: the
    event is stored, and ``sweep_provider_events`` queues it within a minute or two."""
    try:
        process_provider_event.apply_async(
            args=[event_id], retry=True, retry_policy=PUBLISH_RETRY_POLICY
        )
    except Exception:
        logger.exception("Could not queue provider event %s; the sweep will.", event_id)


@shared_task(ignore_result=True)
def sweep_provider_events() -> int:
    """Every 30 s from beat: queue stored events the worker should have processed by now."""
    stale = provider_events_stale()
    for event_id in stale:
        enqueue_provider_event(event_id)
    if stale:
        logger.info("Re-queued %d pending provider events.", len(stale))
    return len(stale)


@shared_task(ignore_result=True, acks_late=True)
def submit_refund(refund_id: int) -> str:
    """Do what is due for a pending refund: send it again (same idempotency key) or ask the
    provider about it. The service schedules the next try itself; safe to run twice."""
    return refund_advance(refund_id=refund_id)


@shared_task(ignore_result=True)
def sweep_refunds() -> int:
    """Every minute from beat: queue every pending refund whose next try or check is due
    (its own task was lost with Redis, never published, or its retries ran out)."""
    due = refunds_due()
    for refund_id in due:
        try:
            submit_refund.apply_async(
                args=[refund_id], retry=True, retry_policy=PUBLISH_RETRY_POLICY
            )
        except Exception:
            logger.exception("Could not queue refund %s; the next sweep will.", refund_id)
            break
    if due:
        logger.info("Queued %d due refunds.", len(due))
    return len(due)
