"""Celery tasks of the Stripe stand-in: event deliveries and session expiry (thin, take ids)."""

from __future__ import annotations

from celery import shared_task

from sandbox.stripe.services.checkout import session_expire_when_due
from sandbox.stripe.services.events import deliveries_deliver_in_order, delivery_attempt


@shared_task(bind=True, ignore_result=True, max_retries=None)
def deliver_event(self, delivery_id: int) -> str:
    """One attempt at delivering an event; again later (1 s, 2 s, 4 s ...) until it is
    answered 2xx or its attempts run out. The count lives on the delivery row."""
    outcome = delivery_attempt(delivery_id=delivery_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.state


@shared_task(ignore_result=True)
def deliver_in_order(delivery_ids: list[int]) -> list[str]:
    """Released deliveries, one after another in the order given."""
    return [outcome.state for outcome in deliveries_deliver_in_order(delivery_ids=delivery_ids)]


@shared_task(ignore_result=True)
def expire_session_when_due(session_id: str) -> bool:
    """Queued at creation for ``expires_at`` (in hops under the broker's visibility timeout):
    expire the session if it is still open by then, else queue the next hop."""
    return session_expire_when_due(session_id=session_id)
