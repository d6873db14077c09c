"""Small helpers shared by the fault tests: what a beat tick does, and "a minute passes"."""

from __future__ import annotations

from datetime import timedelta

from celery import Celery
from django.db.models import F

SWEEPS = (
    "messenger.tasks.inbox.inbox_sweep",
    "messenger.tasks.outbox.outbox_sweep",
    "payments.tasks.sweep_provider_events",
    "payments.tasks.sweep_refunds",
)


def beat_tick(broker_url: str, *task_names: str) -> None:
    """Publish the periodic sweeps to ``broker_url`` as ``celery beat`` would on its schedule.

    A client app of its own: the test process's Celery app is bound to the suite's Redis.
    """
    client = Celery("fault-tests-beat", broker=broker_url, set_as_current=False)
    try:
        for name in task_names or SWEEPS:
            client.send_task(name)
    finally:
        client.close()


def sweep_delay_passes(minutes: int = 2) -> None:
    """Age what is still waiting as if ``minutes`` had passed: the sweeps leave rows alone for a
    minute (inbox, Stripe events) or ten seconds past due (outbox) before they step in, and a
    test should not sleep through that. Only timestamps move; nothing is marked done."""
    from messenger.models import InboundEvent, OutboundMessage
    from payments.models import ProviderEvent

    shift = timedelta(minutes=minutes)
    InboundEvent.objects.filter(status=InboundEvent.Status.PENDING).update(
        received_at=F("received_at") - shift
    )
    pending = OutboundMessage.objects.filter(status=OutboundMessage.Status.PENDING)
    pending.update(created_at=F("created_at") - shift)
    pending.filter(next_attempt_at__isnull=False).update(
        next_attempt_at=F("next_attempt_at") - shift
    )
    ProviderEvent.objects.filter(status=ProviderEvent.Status.PENDING).update(
        received_at=F("received_at") - shift
    )
    from payments.models import Refund

    Refund.objects.filter(status=Refund.Status.PENDING, next_attempt_at__isnull=False).update(
        next_attempt_at=F("next_attempt_at") - shift
    )
