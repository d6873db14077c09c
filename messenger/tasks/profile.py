"""Celery tasks: the Messenger Profile. Thin: the task calls ``messenger_profile_sync``."""

from __future__ import annotations

import logging

from celery import shared_task

from messenger.models import MessengerPage
from messenger.services.profile import ProfileRateLimited, messenger_profile_sync

__all__ = ["messenger_profile_sync_task"]

logger = logging.getLogger(__name__)

TRANSIENT_RETRY_SECONDS = 60


@shared_task(bind=True, ignore_result=True, max_retries=3)
def messenger_profile_sync_task(self, page_id: int) -> bool:
    """Push the Messenger Profile of the page whose primary key is ``page_id``.

    Enqueued by the admin action after commit. Safe to run twice: the profile is rebuilt from the
    page's current settings at run time, so the last push carries the latest ones. Waits for the
    rate limit (10 calls per 10 minutes per page) and retries a transient Graph failure a few
    times; permanent failures are recorded on the page by the service. Returns whether it pushed.
    """
    page = MessengerPage.objects.select_related("merchant").filter(pk=page_id).first()
    if page is None:
        logger.info("messenger profile: page %s no longer exists", page_id)
        return False
    try:
        result = messenger_profile_sync(page=page)
    except ProfileRateLimited as exc:
        raise self.retry(countdown=exc.retry_after_seconds) from exc
    if not result.ok and result.transient:
        raise self.retry(countdown=TRANSIENT_RETRY_SECONDS)
    return result.ok
