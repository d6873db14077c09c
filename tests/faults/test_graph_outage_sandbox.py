"""The same promise as ``test_graph_outage.py``, against the sandbox's Graph stand-in over HTTP
(``/sandbox/graph/``, the one ``make run`` uses) instead of the test stub: its fault control
makes it answer 500, then 613, then hang past the client's timeout (and fail), and it refuses on
its own grounds a shopper who is not available (551) and one whose 24-hour window it knows has
closed (10/2018278). The outbox must deliver everything else exactly once, in order per shopper.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from django.db import connection
from django.utils import timezone

from messenger import builders
from messenger.models import MessengerPage, OutboundMessage
from messenger.services import outbox
from sandbox.meta.models import GraphMessage
from sandbox.meta.services import graph as sandbox_graph
from sandbox.meta.services.shoppers import sandbox_page_seed, shopper_create
from tests.factories import customer_create, merchant_create
from tests.faults.stack import sessions_ended
from tests.faults.test_graph_outage import Broker

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

Status = OutboundMessage.Status
PAGE_ID = "104499999999901"
TOKEN = "EAAsandboxfaulttoken"


def test_the_sandbox_graph_failing_for_a_while_then_every_message_once_in_order(
    live_server, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.GRAPH_API_BASE = f"{live_server.url}/sandbox/graph"
    # The live server's request threads keep their connections otherwise (CONN_MAX_AGE), and
    # pytest-django could not drop the test database after the session.
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 0)
    settings.GRAPH_API_TIMEOUT = 2.5  # generous: a loaded machine must not time out by itself
    settings.OUTBOX_RETRY_BASE_SECONDS = 0.05
    settings.OUTBOX_RETRY_MAX_SECONDS = 0.5
    broker = Broker()
    monkeypatch.setattr(outbox, "_publish", broker.publish)
    # The stand-in's delivery/read receipts go to its own Celery task: not part of this test.
    monkeypatch.setattr(sandbox_graph, "_receipts_publish", lambda message_pk: None)

    sandbox_page = sandbox_page_seed(page_id=PAGE_ID, token=TOKEN, name="Souq Layla").page
    page = MessengerPage.objects.create(
        merchant=merchant_create(name="Souq Layla"),
        page_id=PAGE_ID,
        name="Souq Layla",
        access_token=TOKEN,
    )
    now = timezone.now()
    shoppers = [shopper_create(page=sandbox_page, first_name=f"Shopper {n}") for n in range(4)]
    for shopper in shoppers:
        shopper.last_message_at = now
    shoppers[2].available = False  # 551: this person isn't available right now
    shoppers[3].last_message_at = now - timedelta(days=2)  # Meta's window closed: 10/2018278
    for shopper in shoppers:
        shopper.save()
    customers = [
        customer_create(
            merchant=page.merchant, page_id=PAGE_ID, psid=shopper.psid, last_interaction_at=now
        )
        for shopper in shoppers
    ]

    written: dict[str, list[str]] = {}
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(3):
            for customer in customers[:2]:
                text = f"{customer.psid} #{n}"
                outbox.outbox_enqueue(customer=customer, page=page, message=builders.text(text))
                written.setdefault(customer.psid, []).append(text)
        for customer in customers[2:]:
            outbox.outbox_enqueue(customer=customer, page=page, message=builders.text("hello"))

    # The two the stand-in refuses for good go first (before any fault could meet them).
    for customer in customers[2:]:
        with django_capture_on_commit_callbacks(execute=True):
            outbox.outbox_deliver_customer(customer_id=customer.pk)

    control = f"{live_server.url}/sandbox/graph/_control/faults"
    for fault in (
        {"path": "/me/messages", "status": 500, "times": 2},
        {"path": "/me/messages", "status": 400, "code": 613, "times": 2},
        {"path": "/me/messages", "status": 500, "delay_ms": 5000, "times": 2},  # timeouts
    ):
        assert requests.post(control, json=fault, timeout=10).status_code in (200, 201)

    broker.work(
        django_capture_on_commit_callbacks,
        until=lambda: not OutboundMessage.objects.filter(status=Status.PENDING).exists(),
        timeout=90,
    )

    assert requests.get(control, timeout=10).json()["faults"] == []  # every fault was used
    # The stand-in is still sleeping on the requests our client gave up on: let it finish.
    assert sessions_ended()
    for customer in customers[:2]:
        rows = list(OutboundMessage.objects.filter(customer=customer).order_by("id"))
        assert {row.status for row in rows} == {Status.SENT}
        received = [
            message.body["message"]["text"]
            for message in GraphMessage.objects.filter(recipient_psid=customer.psid).order_by("id")
        ]
        assert received == written[customer.psid]
    # Each of the six faults cost one try; nothing was sent twice.
    rows = OutboundMessage.objects.filter(customer__in=customers[:2])
    assert sum(row.attempts for row in rows) == len(rows) + 6
    for customer, code in ((customers[2], "551/1545041"), (customers[3], "10/2018278")):
        row = OutboundMessage.objects.get(customer=customer)
        assert (row.status, row.error_code, row.attempts) == (Status.FAILED, code, 1)
        assert not GraphMessage.objects.filter(recipient_psid=customer.psid).exists()
