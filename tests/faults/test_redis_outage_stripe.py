"""Redis is down while Stripe confirms payments (DESIGN.md 8: *both* webhooks store what they
received before answering 200, so Redis being down loses nothing).

The service runs as processes (gunicorn, a Celery worker) on a private Redis and the pytest test
database; Stripe and Graph are the test's stubs. Ten shoppers pay their orders in chat; Redis
dies before Stripe's ``checkout.session.completed`` events arrive, and each is delivered twice
(Stripe retries when it is unsure). Every delivery must be answered 200 and each event stored
once; once Redis is back, the payments sweep (published as beat would) gets every order paid
once, and each shopper receives exactly one receipt.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from commerce.models import Cart, CartLine, Order, OrderEvent
from commerce.services.orders import order_create_from_cart
from messenger.models import MessengerPage, OutboundMessage
from payments.models import ProviderEvent
from tests.conftest import free_port
from tests.factories import customer_create, merchant_create, variant_create
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
from tests.payments.stripe_stub import stripe_event, stripe_signature
from tests.payments.webhook_helpers import WEBHOOK_URL, checkout_start

pytestmark = [pytest.mark.faults, pytest.mark.postgres, pytest.mark.redis]

PAGE_ID = "104412345678901"
ORDERS = 10


def _chat_orders() -> list[Order]:
    page = MessengerPage.objects.create(
        merchant=merchant_create(name="Souq Layla"),
        page_id=PAGE_ID,
        name="Souq Layla",
        access_token="EAAfaulttesttoken",
    )
    variant = variant_create(merchant=page.merchant, price_minor=2500, stock=100)
    orders = []
    for _ in range(ORDERS):
        customer = customer_create(
            merchant=page.merchant,
            page_id=PAGE_ID,
            last_interaction_at=timezone.now() - timedelta(minutes=1),
        )
        cart = Cart.objects.create(merchant=page.merchant, customer=customer)
        CartLine.objects.create(cart=cart, variant=variant, quantity=1)
        orders.append(order_create_from_cart(cart=cart))
    return orders


def _receipts(graph_stub, psid: str) -> int:
    return sum(
        1
        for body in graph_stub.sent_messages(psid=psid)
        if body.get("message", {}).get("attachment", {}).get("payload", {}).get("template_type")
        == "receipt"
    )


@pytest.fixture
def dead_broker(monkeypatch):
    """The test process's Celery app publishes to a Redis address where nothing listens."""
    from config.celery import app

    monkeypatch.setitem(app.conf, "broker_url", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setattr(app, "_pool", None)
    monkeypatch.setattr(app.amqp, "_producer_pool", None)
    yield
    if app._pool is not None:
        app._pool.force_close_all()


@pytest.mark.django_db
def test_with_redis_down_queueing_a_stripe_event_gives_up_at_once(dead_broker, monkeypatch, caplog):
    """The webhook queues the event before it answers Stripe: with the broker gone that must
    cost a moment, not seconds of reconnecting per request (kombu's waits are counted, not
    timed)."""
    from payments.tasks import enqueue_provider_event

    waits: list[float] = []
    monkeypatch.setattr("kombu.utils.functional.sleep", waits.append)
    enqueue_provider_event(12345)  # never raises: the sweep will queue it
    assert sum(waits) < 1, f"kombu meant to wait {sum(waits):.0f} s for a dead broker"
    assert "Could not queue provider event 12345; the sweep will." in caplog.text


@pytest.mark.django_db(transaction=True)
def test_stripe_events_during_a_redis_outage_are_stored_and_pay_each_order_once(
    tmp_path, stripe_stub, graph_stub
):
    orders = _chat_orders()
    deliveries = []
    for order in orders:
        payment = checkout_start(order)
        session = stripe_stub.session_complete(payment.checkout_session_id)
        deliveries.append(stripe_event("checkout.session.completed", session))

    with private_redis(tmp_path) as redis_server:
        env = service_env(
            redis_url=redis_server.url, graph_url=graph_stub.url, stripe_url=stripe_stub.url
        )
        worker = Supervised(lambda n: worker_start(env, tmp_path, name=f"worker.{n}"))
        web = web_start(env, tmp_path)
        try:
            redis_server.stop()
            secret = env["STRIPE_WEBHOOK_SECRET"].split(",")[0].strip()
            answers = []
            for body, _signature in deliveries * 2:  # each event delivered twice
                # Stripe signs every delivery attempt anew.
                signature = stripe_signature(body, secret=secret, timestamp=int(time.time()))
                answers.append(
                    requests.post(
                        web.url + WEBHOOK_URL,
                        data=body,
                        headers={"Content-Type": "application/json", "Stripe-Signature": signature},
                        timeout=30,
                    ).status_code
                )
            assert answers == [200] * (2 * ORDERS)
            pending = ProviderEvent.objects.filter(status=ProviderEvent.Status.PENDING)
            assert pending.count() == ORDERS

            redis_server.start()
            last_tick = [0.0]

            def all_paid_and_told() -> bool:
                done = (
                    Order.objects.filter(status=Order.Status.PAID).count() == ORDERS
                    and not OutboundMessage.objects.exclude(
                        status=OutboundMessage.Status.SENT
                    ).exists()
                )
                if not done and time.monotonic() - last_tick[0] > 10:
                    sweep_delay_passes()  # the sweeps wait a minute before stepping in
                    beat_tick(redis_server.url)
                    last_tick[0] = time.monotonic()
                return done

            wait_until(all_paid_and_told, timeout=180, interval=1, what="every order paid and told")
        finally:
            web.process.stop()
            worker.stop()
            sessions_ended()

    assert ProviderEvent.objects.count() == ORDERS
    assert set(ProviderEvent.objects.values_list("status", flat=True)) == {"processed"}
    for order in orders:
        order.refresh_from_db()
        assert order.status == Order.Status.PAID
        assert order.events.filter(kind=OrderEvent.Kind.PAID).count() == 1
        assert order.payments.filter(status="succeeded").count() == 1
        assert _receipts(graph_stub, order.customer.psid) == 1
