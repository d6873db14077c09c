"""Helpers for the refund tests: the broker boundary for ``submit_refund`` and "time passes".

``RefundBroker`` replaces only the publish (``submit_refund.apply_async``: the call that would
reach Redis) with a recorder; ``run_all()`` then runs the real task, as a worker would, for
every message published so far (in order, each once). ``time_passes(seconds=...)`` moves every
refund's stored timestamps back instead of sleeping: what is due after that long is due now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import F

from payments.models import Refund


@dataclass
class RefundBroker:
    published: list[tuple[int, float | None]] = field(default_factory=list)
    ran: int = 0
    down: bool = False

    def apply_async(self, args=(), kwargs=None, countdown=None, **options):
        if self.down:
            raise ConnectionError("Redis is down (test)")
        self.published.append((int(args[0]), countdown))

    def countdowns(self) -> list[tuple[int, float | None]]:
        return list(self.published)

    def run_all(self) -> list[str]:
        """Run ``submit_refund`` for every message not run yet; their results in order."""
        from payments.tasks import submit_refund

        results = []
        while self.ran < len(self.published):
            refund_id, _countdown = self.published[self.ran]
            self.ran += 1
            results.append(submit_refund.apply(args=[refund_id]).get())
        return results


def time_passes(*, seconds: float) -> None:
    """Age every refund by ``seconds``: its next try or check comes that much sooner."""
    shift = timedelta(seconds=seconds)
    Refund.objects.update(created_at=F("created_at") - shift)
    Refund.objects.filter(next_attempt_at__isnull=False).update(
        next_attempt_at=F("next_attempt_at") - shift
    )
