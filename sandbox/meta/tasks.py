"""Celery tasks of the Messenger stand-in."""

from __future__ import annotations

from celery import shared_task

from sandbox.meta.services.webhooks import message_receipts_post


@shared_task(ignore_result=True)
def message_receipts(message_pk: int) -> None:
    """Post the delivery and read events of one accepted Send API message (safe to repeat)."""
    message_receipts_post(message_pk=message_pk)
