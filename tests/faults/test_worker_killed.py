"""A Celery worker killed with SIGKILL mid-task (DESIGN.md 8: idempotent tasks, ``acks_late``).

The real stack runs as processes (gunicorn, a Celery worker with one prefork child, a private
Redis, the pytest test database); Stripe and Graph are the test's stub servers, which can hold
one request so the worker is killed while it waits for the answer. The shopper pays an order in
chat (the second of two checkout links they opened); the worker is then killed three times:

1. the pool child, while processing ``checkout.session.completed`` (fetching the card details,
   before anything is written): the worker's main process sees the child die and gives the
   message back (``reject_on_worker_lost``); a new child processes it;
2. the pool child again, after the paid order was committed (expiring the other open session):
   the redelivered event is found done and changes nothing;
3. the whole worker, main process included, while the receipt is on its way to Graph: nobody
   acknowledges the message, so the broker hands it to the next worker once its visibility
   timeout has passed (``tests/faults/service_settings.py`` shortens it to seconds).

Afterwards the order is paid once, with one payment, and the shopper got exactly one receipt.
"""

from __future__ import annotations

import os
import signal
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from commerce.models import Cart, CartLine, Order, OrderEvent
from commerce.services.orders import order_create_from_cart
from messenger.models import MessengerPage, OutboundMessage
from payments.models import Payment, ProviderEvent
from tests.factories import customer_create, merchant_create, variant_create
from tests.faults.hold import held_stub_server
from tests.faults.stack import (
    private_redis,
    service_env,
    sessions_ended,
    wait_until,
    web_start,
    worker_start,
)
from tests.messenger import graph_stub as graph_stub_module
from tests.payments import stripe_stub as stripe_stub_module
from tests.payments.webhook_helpers import WEBHOOK_URL, checkout_start

pytestmark = [
    pytest.mark.faults,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

PAGE_ID = "104412345678901"


def _chat_order() -> Order:
    page = MessengerPage.objects.create(
        merchant=merchant_create(name="Souq Layla"),
        page_id=PAGE_ID,
        name="Souq Layla",
        access_token="EAAfaulttesttoken",
    )
    customer = customer_create(
        merchant=page.merchant,
        page_id=PAGE_ID,
        last_interaction_at=timezone.now() - timedelta(minutes=1),
    )
    variant = variant_create(merchant=page.merchant, price_minor=2500, stock=3)
    cart = Cart.objects.create(merchant=page.merchant, customer=customer)
    CartLine.objects.create(cart=cart, variant=variant, quantity=1)
    return order_create_from_cart(cart=cart)


def _kill_pool_child(worker) -> int:
    [child] = worker.children()
    os.kill(child, signal.SIGKILL)
    return child


def _last_received(worker, task_name: str) -> str:
    """The id of the last ``task_name`` the worker's log says it received."""
    marker = f"Task {task_name}["
    lines = [line for line in worker.log().splitlines() if marker in line and "received" in line]
    assert lines, f"the worker never received {task_name}"
    return lines[-1].split(marker, 1)[1].split("]", 1)[0]


def test_a_worker_killed_mid_payment_and_mid_receipt_pays_once_and_sends_one_receipt(
    tmp_path, settings
):
    graph = graph_stub_module.GraphStub()
    stripe = stripe_stub_module.StripeStub()
    with (
        held_stub_server(graph, graph_stub_module._handler_for, name="graph") as graph_holds,
        held_stub_server(stripe, stripe_stub_module._handler_for, name="stripe") as stripe_holds,
        private_redis(tmp_path) as redis_server,
    ):
        settings.STRIPE_API_BASE, settings.GRAPH_API_BASE = stripe.url, graph.url
        order = _chat_order()
        first_link = checkout_start(order)  # opened, never paid
        paid_link = checkout_start(order)
        session = stripe.session_complete(paid_link.checkout_session_id)
        body, signature = stripe_stub_module.stripe_event("checkout.session.completed", session)

        env = service_env(redis_url=redis_server.url, graph_url=graph.url, stripe_url=stripe.url)
        workers = [worker_start(env, tmp_path, name="worker-1")]
        web = web_start(env, tmp_path)
        try:
            card_details = stripe_holds.hold("GET", f"/v1/checkout/sessions/{session['id']}")
            expire_other = stripe_holds.hold(
                "POST", f"/v1/checkout/sessions/{first_link.checkout_session_id}/expire"
            )
            receipt_send = graph_holds.hold("POST", "/me/messages")

            answer = requests.post(
                web.url + WEBHOOK_URL,
                data=body,
                headers={"Content-Type": "application/json", "Stripe-Signature": signature},
                timeout=30,
            )
            assert answer.status_code == 200, answer.text

            # 1. Killed while processing the event, before it wrote anything.
            assert card_details.arrived.wait(60), workers[0].log()[-3000:]
            first_child = _kill_pool_child(workers[0])
            card_details.release(drop=True)
            assert Order.objects.get(pk=order.pk).status == Order.Status.PENDING_PAYMENT

            # 2. Redelivered to a new child, which commits the payment; killed after the commit.
            assert expire_other.arrived.wait(60), workers[0].log()[-3000:]
            assert workers[0].children() != [first_child]
            assert Order.objects.get(pk=order.pk).status == Order.Status.PAID
            _kill_pool_child(workers[0])
            expire_other.release(drop=True)

            # 3. The whole worker dies while the receipt waits for Graph's answer.
            assert receipt_send.arrived.wait(60), workers[0].log()[-3000:]
            workers[0].kill_group(signal.SIGKILL)
            receipt_send.release(drop=True)
            receipt = OutboundMessage.objects.get(dedupe_key=f"receipt:{order.pk}")
            assert receipt.status == OutboundMessage.Status.PENDING

            killed_task = _last_received(workers[0], "messenger.tasks.outbox.outbox_deliver")
            workers.append(worker_start(env, tmp_path, name="worker-2"))
            wait_until(
                lambda: OutboundMessage.objects.filter(
                    pk=receipt.pk, status=OutboundMessage.Status.SENT
                ).exists(),
                timeout=90,
                what="the receipt delivered by the next worker",
            )
            # The message the dead worker held comes back to the next one, and changes nothing.
            wait_until(
                lambda: f"{killed_task}] succeeded" in workers[1].log(),
                timeout=90,
                what=f"task {killed_task} redelivered after the broker's visibility timeout",
            )
            event = ProviderEvent.objects.get()
        finally:
            web.process.stop()
            for worker in workers:
                worker.stop()
            sessions_ended()

    # Every kill happened with a request in flight.
    assert len(stripe_holds.dropped) == 2
    assert len(graph_holds.dropped) == 1

    order.refresh_from_db()
    event.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert event.status == ProviderEvent.Status.PROCESSED
    assert order.events.filter(kind=OrderEvent.Kind.PAID).count() == 1
    succeeded = Payment.objects.filter(order=order, status=Payment.Status.SUCCEEDED)
    assert list(succeeded.values_list("pk", flat=True)) == [paid_link.pk]
    assert succeeded.get().card_last4 == "4242"

    psid = order.customer.psid
    receipts = [
        message
        for message in graph.sent_messages(psid=psid)
        if message.get("message", {}).get("attachment", {}).get("payload", {}).get("template_type")
        == "receipt"
    ]
    assert len(receipts) == 1
    receipt_rows = OutboundMessage.objects.filter(order=order, dedupe_key__startswith="receipt:")
    assert receipt_rows.count() == 1
