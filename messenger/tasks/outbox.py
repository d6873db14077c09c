"""Celery tasks: the outbox. Thin: each task calls the outbox services."""

from __future__ import annotations

from celery import shared_task

from messenger.services import outbox as outbox_services

__all__ = ["outbox_deliver", "outbox_sweep"]


@shared_task(ignore_result=True, acks_late=True)
def outbox_deliver(customer_id: int) -> int:
    """Send the customer's due outbox messages in order; return how many were sent.

    Published after the commit that wrote a row, by ``outbox_sweep``, and by the delivery
    itself: when a send fails transiently the service re-publishes this task with a countdown
    to the row's ``next_attempt_at`` (and with none when its run ran out of time). Safe to run
    twice and side by side: a second run for a customer being served returns at once.
    """
    return outbox_services.outbox_deliver_customer(customer_id=customer_id)


@shared_task(ignore_result=True)
def outbox_sweep() -> int:
    """Every 30 s from beat: publish a delivery for each customer whose oldest pending message
    is overdue (its task was lost with Redis or a dead worker). Returns how many."""
    return outbox_services.outbox_sweep()
