"""The Graph API misbehaves for a while (DESIGN.md 7 and 8): 500s, then rate limits (613), then
it hangs so every call times out; then it recovers. Meanwhile five shoppers have messages
waiting in the outbox.

The outbox is driven the way the worker drives it: every ``outbox_deliver`` publish (after the
enqueue's commit, and the service's own re-publish with a countdown after a transient failure)
is recorded at the broker boundary and run when its countdown is up. Nothing else nudges it, so
a retry the service forgets to schedule leaves the test waiting and failing.

Promises checked: every message is delivered exactly once and each shopper's in the order
written; a message Graph refuses for good (551 "person not available", 10/2018278 "outside
the allowed window") is recorded with Graph's code on the row and never tried again, and the
shopper's next message still goes out.

A timeout here is a call Graph never processed (the stand-in hangs and then drops it). A read
timeout *after* Graph delivered would be sent again on retry: the outbox is at least once
there, as its docstring says (Graph has no idempotency key).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from django.utils import timezone

from messenger import builders
from messenger.models import MessengerPage, OutboundMessage
from messenger.services import outbox
from tests.factories import customer_create, merchant_create
from tests.faults.hold import held_stub_server
from tests.messenger import graph_stub as graph_stub_module

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

Status = OutboundMessage.Status
PAGE_ID = "104412345678901"
MESSAGES_EACH = 4


@dataclass
class Broker:
    """``outbox_deliver`` publishes, as (due at, customer id), run by :meth:`work`."""

    queue: list[tuple[float, int]] = field(default_factory=list)

    def publish(self, customer_id: int, countdown: float | None = None) -> None:
        self.queue.append((time.monotonic() + (countdown or 0.0), customer_id))

    def work(self, run_after_commit: Callable, *, until: Callable[[], bool], timeout=60.0) -> int:
        """Run due deliveries (each as the task would) until ``until()``; return how many ran."""
        ran = 0
        deadline = time.monotonic() + timeout
        while not until():
            now = time.monotonic()
            due = [entry for entry in self.queue if entry[0] <= now]
            if not due and time.monotonic() > deadline:
                pytest.fail("the outbox stopped scheduling its deliveries")
            for entry in due:
                self.queue.remove(entry)
                with run_after_commit(execute=True):
                    outbox.outbox_deliver_customer(customer_id=entry[1])
                ran += 1
                if until():
                    break
            time.sleep(0.02)
        return ran


@pytest.fixture
def graph(settings):
    stub = graph_stub_module.GraphStub()
    with held_stub_server(stub, graph_stub_module._handler_for, name="graph") as holds:
        settings.GRAPH_API_BASE = stub.url
        yield stub, holds


def _shoppers(count: int):
    page = MessengerPage.objects.create(
        merchant=merchant_create(name="Souq Layla"),
        page_id=PAGE_ID,
        name="Souq Layla",
        access_token="EAAfaulttesttoken",
    )
    customers = [
        customer_create(merchant=page.merchant, page_id=PAGE_ID, last_interaction_at=timezone.now())
        for _ in range(count)
    ]
    return page, customers


def _texts(stub, psid: str) -> list[str]:
    return [body["message"]["text"] for body in stub.sent_messages(psid=psid)]


def _attempts_at_graph(stub, psid: str, text: str) -> int:
    return sum(
        1
        for request in stub.requests_to("/me/messages", method="POST")
        if request.body["recipient"]["id"] == psid and request.body["message"]["text"] == text
    )


def test_graph_errors_and_timeouts_for_a_while_then_every_message_once_in_order(
    graph, settings, monkeypatch, django_capture_on_commit_callbacks
):
    stub, holds = graph
    settings.OUTBOX_RETRY_BASE_SECONDS = 0.05  # the backoff's shape, compressed
    settings.OUTBOX_RETRY_MAX_SECONDS = 0.5
    settings.GRAPH_API_TIMEOUT = 2.5  # generous: a loaded machine must not time out by itself
    broker = Broker()
    monkeypatch.setattr(outbox, "_publish", broker.publish)
    page, customers = _shoppers(5)
    unavailable, outside_window = customers[3], customers[4]

    written = {}
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(MESSAGES_EACH):
            for customer in customers:
                text = f"{customer.psid} #{n}"
                outbox.outbox_enqueue(customer=customer, page=page, message=builders.text(text))
                written.setdefault(customer.psid, []).append(text)
    assert len(broker.queue) == MESSAGES_EACH * len(customers)

    def heads_tried(times: int) -> Callable[[], bool]:
        """Every shopper's oldest waiting message has been tried ``times`` times."""

        def check() -> bool:
            heads = [
                OutboundMessage.objects.filter(customer=c, status=Status.PENDING)
                .order_by("id")
                .first()
                for c in customers[:3]
            ]
            return all(head is not None and head.attempts >= times for head in heads)

        return check

    def rows_of(customer):
        return list(OutboundMessage.objects.filter(customer=customer).order_by("id"))

    # Shoppers 4 and 5 first: Graph refuses one message of each for good.
    stub.fail_next(status=400, code=551, subcode=1545041)
    with django_capture_on_commit_callbacks(execute=True):
        outbox.outbox_deliver_customer(customer_id=unavailable.pk)
    stub.fail_next(status=400, code=10, subcode=2018278, type="OAuthException")
    with django_capture_on_commit_callbacks(execute=True):
        outbox.outbox_deliver_customer(customer_id=outside_window.pk)

    # The outage, for the three others: 500s, then rate limits, then a hang (timeouts).
    stub.fail_always(status=500)
    broker.work(django_capture_on_commit_callbacks, until=heads_tried(1))
    stub.reset_failures()
    stub.fail_always(status=400, code=613)
    broker.work(django_capture_on_commit_callbacks, until=heads_tried(2))
    stub.reset_failures()
    hang = holds.stall("POST", "/me/messages")
    broker.work(django_capture_on_commit_callbacks, until=heads_tried(3))
    hang.release(drop=True)

    # Nothing but the head was tried during the outage; nothing was sent out of turn.
    for customer in customers[:3]:
        rows = rows_of(customer)
        assert rows[0].attempts == 3 and rows[0].error_code == "timeout", rows[0].error_code
        assert all(row.attempts == 0 for row in rows[1:])
        assert _texts(stub, customer.psid) == []
    assert len(holds.dropped) == 3

    # Graph is back: every waiting message goes out, once, in order.
    broker.work(
        django_capture_on_commit_callbacks,
        until=lambda: not OutboundMessage.objects.filter(status=Status.PENDING).exists(),
    )
    for customer in customers[:3]:
        assert _texts(stub, customer.psid) == written[customer.psid]
        assert {row.status for row in rows_of(customer)} == {Status.SENT}

    # The refused ones: recorded with Graph's answer, tried once, the rest still delivered.
    for customer, code in ((unavailable, "551/1545041"), (outside_window, "10/2018278")):
        first, *others = rows_of(customer)
        assert first.status == Status.FAILED
        assert first.error_code == code
        assert first.attempts == 1
        assert _attempts_at_graph(stub, customer.psid, written[customer.psid][0]) == 1
        assert [row.status for row in others] == [Status.SENT] * (MESSAGES_EACH - 1)
        assert _texts(stub, customer.psid) == written[customer.psid][1:]
    # Nothing left waiting for a retry that would send a refused message again.
    assert not OutboundMessage.objects.filter(status=Status.PENDING).exists()
