"""PostgreSQL restarts while shoppers are placing orders (DESIGN.md 8: store then process; every
task idempotent; no half-written order).

The service runs as processes (gunicorn and a Celery worker) on a PostgreSQL cluster of this
test's own, with a private Redis; Graph is the test's stub. Twenty shoppers each go from *Buy
now* to a placed order in four signed webhooks (buy, e-mail, phone, address), delivered as Meta
delivers them: in parallel, and again after any answer other than 200. A third of the way in,
PostgreSQL is stopped (``pg_ctl stop -m fast``: open connections are cut) and started again.

While it is down: a webhook is answered with a 5xx (Meta will retry: never a 200 for an event
that was not stored) and ``/readyz/`` is red and names the database. Afterwards, with no process
restarted by hand: ``/readyz/`` is green, every event is processed, every shopper has exactly
one order, and every order is whole: its lines, totals and stock reservations agree, and the
stock counters agree with the reservations.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection

from tests.faults.stack import (
    REPO_DIR,
    private_postgres,
    private_redis,
    service_env,
    wait_until,
    web_start,
    worker_start,
)
from tests.faults.support import beat_tick
from tests.messenger.webhook.helpers import URL, body_of, signed_headers

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db]

PAGE_ID = "104412345678901"
SHOPPERS = 20
ADDRESS = "Layla Haddad, 12 Gulf Road, Kuwait City, Kuwait"


def _shopper_webhooks(variant_id: int) -> list[list[bytes]]:
    """Per step (buy, e-mail, phone, address), every shopper's signed body."""
    clock = itertools.count(int(time.time() * 1000), 7)
    steps: list[list[bytes]] = [[], [], [], []]
    for n in range(SHOPPERS):
        psid = f"66000000000{n:03d}"
        contents = [
            {"postback": {"mid": f"m_pg_{n}_0", "title": "Buy now",
                          "payload": f"BUY:variant={variant_id}"}},
            {"message": {"mid": f"m_pg_{n}_1", "text": f"shopper{n}@example.com",
                         "quick_reply": {"payload": f"shopper{n}@example.com"}}},
            {"message": {"mid": f"m_pg_{n}_2", "text": f"+965500{n:05d}",
                         "quick_reply": {"payload": f"+965500{n:05d}"}}},
            {"message": {"mid": f"m_pg_{n}_3", "text": ADDRESS}},
        ]  # fmt: skip
        for step, content in enumerate(contents):
            item = {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, **content}
            item["timestamp"] = next(clock)
            steps[step].append(body_of(item, page_id=PAGE_ID))
    return steps


class Meta:
    """Delivers webhooks like Meta: several at once, again (after a pause) until answered 200."""

    def __init__(self, url: str) -> None:
        self.url = url + URL
        self.statuses: list[int] = []  # every answer, 0 for a refused connection
        self.lock = threading.Lock()

    def deliver(self, body: bytes) -> None:
        headers = {"Content-Type": "application/json"}
        for name, value in signed_headers(body).items():
            headers[name.removeprefix("HTTP_").replace("_", "-")] = value
        deadline = time.monotonic() + 120
        while True:
            try:
                status = requests.post(self.url, data=body, headers=headers, timeout=30).status_code
            except requests.RequestException:
                status = 0
            with self.lock:
                self.statuses.append(status)
            if status == 200 or time.monotonic() > deadline:
                return
            time.sleep(0.3)

    def deliver_all(self, bodies: list[bytes]) -> None:
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(self.deliver, bodies))


def _probe(env: dict[str, str], *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tests.faults.pg_probe", *args],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _readyz(url: str) -> tuple[int, dict]:
    try:
        response = requests.get(url + "/readyz/", timeout=10)
    except requests.RequestException:
        return 0, {}
    return response.status_code, response.json()


def test_a_postgres_restart_under_load_recovers_by_itself_without_half_written_orders(
    tmp_path, graph_stub
):
    test_database = dict(connection.settings_dict)
    with private_postgres() as postgres, private_redis(tmp_path) as redis_server:
        postgres.load_schema_of(test_database)
        env = service_env(
            redis_url=redis_server.url,
            database=postgres.url,
            graph_url=graph_stub.url,
            MEDIA_ROOT=str(tmp_path / "media"),
        )
        variant_id = _probe(env, "setup", PAGE_ID)["variant_id"]
        steps = _shopper_webhooks(variant_id)
        worker = worker_start(env, tmp_path)
        web = web_start(env, tmp_path)
        meta = Meta(web.url)
        try:
            assert _readyz(web.url)[0] == 200
            meta.deliver_all(steps[0])  # every shopper taps Buy now
            load = threading.Thread(
                target=lambda: [meta.deliver_all(step) for step in steps[1:]], name="meta"
            )
            load.start()
            wait_until(lambda: len(meta.statuses) >= SHOPPERS + 10, what="the next steps going")

            postgres.stop(mode="fast")
            extra = body_of(
                {
                    "sender": {"id": "66000000000999"},
                    "recipient": {"id": PAGE_ID},
                    "timestamp": int(time.time() * 1000),
                    "message": {"mid": "m_pg_down", "text": "hi"},
                },
                page_id=PAGE_ID,
            )
            headers = {
                "Content-Type": "application/json",
                "X-Hub-Signature-256": signed_headers(extra)["HTTP_X_HUB_SIGNATURE_256"],
            }
            down_answer = requests.post(web.url + URL, data=extra, headers=headers, timeout=30)
            down_ready, down_body = _readyz(web.url)
            postgres.start()

            load.join(timeout=180)
            assert not load.is_alive()
            meta.deliver(extra)  # Meta's retry of the webhook refused during the outage
            wait_until(lambda: _readyz(web.url)[0] == 200, timeout=60, what="/readyz/ green")

            def all_processed() -> bool:
                pending = postgres.psql(
                    "shop", "SELECT count(*) FROM messenger_inboundevent WHERE status='pending'"
                )
                if pending != "0":
                    # Beat's sweeps (rows a failed drain left behind wait a minute for them).
                    postgres.psql(
                        "shop",
                        "UPDATE messenger_inboundevent SET received_at = received_at"
                        " - interval '2 minutes' WHERE status='pending'",
                    )
                    beat_tick(redis_server.url, "messenger.tasks.inbox.inbox_sweep")
                    return False
                return True

            wait_until(all_processed, timeout=120, interval=3, what="every inbox event processed")
            report = _probe(env, "report")
            statuses = postgres.psql(
                "shop", "SELECT status, count(*) FROM messenger_inboundevent GROUP BY status"
            )
        finally:
            web.process.stop()
            worker.stop()

    # During the outage: a 5xx (Meta retries), never a 200 for an event that was not stored.
    assert 500 <= down_answer.status_code < 600, down_answer.status_code
    assert down_ready == 503 and "database" in down_body["failed"]
    assert all(status == 200 or status >= 500 or status == 0 for status in meta.statuses)

    # Afterwards: everything processed, one whole order per shopper.
    assert statuses == f"processed|{4 * SHOPPERS + 1}", statuses
    orders = report["orders"]
    assert sorted(order["psid"] for order in orders) == sorted(
        f"66000000000{n:03d}" for n in range(SHOPPERS)
    )
    for order in orders:
        assert order["status"] == "pending_payment", order
        assert order["lines"] == 1 and order["lines_right"], order
        assert order["subtotal_right"] and order["total_right"], order
        assert order["reserved"] == order["ordered"] == 1, order
    for variant in report["variants"]:
        assert variant["reserved"] == variant["held"], variant
