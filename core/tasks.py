from celery import shared_task
from django.core.cache import cache
from django.utils import timezone


@shared_task(ignore_result=True)
def heartbeat() -> None:
    """Record that beat and a worker are alive (shown by the dashboard, read by operators)."""
    cache.set("worker:heartbeat", timezone.now().isoformat(), timeout=600)
