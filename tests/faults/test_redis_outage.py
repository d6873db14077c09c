"""Redis dies in the middle of a burst of Messenger webhooks (DESIGN.md 8, "store, then process").

The real stack runs as processes: gunicorn serving the webhook and a Celery worker, both on a
private Redis (broker, cache, the inbox nudge) and the pytest test database; the Graph API is the
test's stub server. 500 signed webhooks from 50 shoppers arrive; after the first 200 Redis is
killed (no persistence: what it held is gone) and the other 300 arrive while it is down. Every
request must still be answered 200 with its event stored; once Redis is back, the periodic
sweeps (published as beat would) must get every event processed exactly once: each event
answered, each answer sent to Graph once, in order per shopper.
"""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from messenger.models import InboundEvent, MessengerPage, OutboundMessage
from tests.factories import merchant_create
from tests.faults.stack import (
    Supervised,
    private_redis,
    service_env,
    sessions_ended,
    wait_until,
    web_start,
    worker_start,
)
from tests.faults.support import beat_tick, sweep_delay_passes
from tests.messenger.webhook.helpers import URL, body_of, message_item, signed_headers

pytestmark = [
    pytest.mark.faults,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

PAGE_ID = "104412345678901"
SHOPPERS = 50
MESSAGES_EACH = 10
UP_FIRST = 200  # webhooks answered while Redis is up; the rest arrive while it is down


def _bodies() -> list[tuple[str, bytes]]:
    """(psid, signed body) for 500 single-message webhooks, shoppers interleaved as in real
    traffic; each shopper's messages in timestamp order."""
    start_ms = int(time.time() * 1000)
    clock = itertools.count(start_ms)
    bodies = []
    for n in range(MESSAGES_EACH):
        for shopper in range(SHOPPERS):
            psid = f"77000000000{shopper:03d}"
            item = message_item(
                mid=f"m_burst_{shopper}_{n}", text="help", psid=psid, timestamp=next(clock)
            )
            bodies.append((psid, body_of(item, page_id=PAGE_ID)))
    return bodies


def _post_all(url: str, bodies: list[tuple[str, bytes]]) -> list[int]:
    """POST every body (8 at a time, as Meta's delivery does in parallel); the status codes."""

    def post(body: bytes) -> int:
        headers = {"Content-Type": "application/json"}
        for name, value in signed_headers(body).items():
            headers[name.removeprefix("HTTP_").replace("_", "-")] = value
        return requests.post(url + URL, data=body, headers=headers, timeout=30).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(post, [body for _psid, body in bodies]))


def test_webhooks_during_a_redis_outage_are_all_answered_and_processed_once(
    tmp_path, settings, graph_stub
):
    MessengerPage.objects.create(
        merchant=merchant_create(name="Souq Layla"),
        page_id=PAGE_ID,
        name="Souq Layla",
        access_token="EAAfaulttesttoken",
    )
    bodies = _bodies()

    with private_redis(tmp_path) as redis_server:
        env = service_env(redis_url=redis_server.url, graph_url=graph_stub.url)
        # Known (kombu 5.7): a worker holding unacknowledged tasks when Redis drops exits with
        # "Unrecoverable error" instead of reconnecting; the process manager starts it again.
        worker = Supervised(lambda n: worker_start(env, tmp_path, name=f"worker.{n}"))
        web = web_start(env, tmp_path)
        try:
            before = _post_all(web.url, bodies[:UP_FIRST])
            redis_server.stop()
            during = _post_all(web.url, bodies[UP_FIRST:])

            # Every request answered 200, every event stored, although Redis is gone.
            assert before == [200] * UP_FIRST
            assert during == [200] * (len(bodies) - UP_FIRST)
            assert InboundEvent.objects.count() == len(bodies)

            redis_server.start()  # empty: tasks queued before the crash are lost
            sweep_delay_passes()
            beat_tick(redis_server.url)

            last_tick = [time.monotonic()]

            def all_answered() -> bool:
                waiting = (
                    InboundEvent.objects.exclude(status=InboundEvent.Status.PROCESSED).exists()
                    or OutboundMessage.objects.exclude(status=OutboundMessage.Status.SENT).exists()
                )
                if waiting and time.monotonic() - last_tick[0] > 10:
                    # Beat keeps ticking while work is left (every 30 s, compressed here).
                    sweep_delay_passes()
                    beat_tick(redis_server.url)
                    last_tick[0] = time.monotonic()
                return not waiting

            wait_until(all_answered, timeout=180, interval=2, what="every event answered")
        finally:
            web.process.stop()
            worker.stop()
            sessions_ended()

    events = list(InboundEvent.objects.order_by("id"))
    assert {event.status for event in events} == {InboundEvent.Status.PROCESSED}
    replies = list(OutboundMessage.objects.select_related("customer").order_by("id"))
    # Each event answered exactly once (the engine's reply keys: reply:<event id>:<n>).
    answered = {row.dedupe_key.split(":")[1] for row in replies}
    assert answered == {str(event.pk) for event in events}
    assert len([row for row in replies if row.dedupe_key.endswith(":0")]) == len(events)

    # Graph got every reply exactly once, each shopper's in the order they were written.
    sent = [
        body
        for body in graph_stub.sent_messages()
        if "message" in body  # typing indicators are not messages
    ]
    assert len(sent) == len(replies)
    for shopper in range(SHOPPERS):
        psid = f"77000000000{shopper:03d}"
        expected = [row.message for row in replies if row.customer.psid == psid]
        got = [body["message"] for body in sent if body["recipient"]["id"] == psid]
        assert len(expected) >= MESSAGES_EACH
        assert got == expected, f"shopper {psid}: Graph got {len(got)} of {len(expected)}"
