"""Helpers for the webhook, confirmation and refund tests: open a Checkout Session against the
Stripe stub, deliver signed events to the real webhook URL, run the worker's processing.

Delivery goes through ``POST /payments/stripe/webhook/`` with a real signature (the stub's
``stripe_event``); the enqueue after commit is replaced by a recorder (the broker boundary) and
the test runs the processing itself with :func:`process`, as the worker would.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db.models import Max
from django.test import TestCase

from commerce.models import Order
from payments.gateways import gateway_for
from payments.models import Payment, ProviderEvent
from payments.services.events import provider_event_process
from tests.payments.stripe_stub import StripeStub, stripe_event

FIXTURES = Path(__file__).parent / "fixtures"
WEBHOOK_URL = "/payments/stripe/webhook/"


def fixture_object(name: str, **changes: Any) -> dict[str, Any]:
    """``data.object`` of ``tests/payments/fixtures/<name>.json`` with ``changes`` applied."""
    event = json.loads((FIXTURES / f"{name}.json").read_text())
    obj = copy.deepcopy(event["data"]["object"])
    obj.update(changes)
    return obj


def checkout_start(order: Order) -> Payment:
    """A new payment attempt for ``order`` with an open session on the Stripe stub."""
    attempt = (order.payments.aggregate(n=Max("attempt"))["n"] or 0) + 1
    payment = Payment.objects.create(
        order=order,
        gateway=Payment.Gateway.STRIPE_CHECKOUT,
        attempt=attempt,
        amount_minor=order.total_minor,
        currency=order.currency,
        idempotency_key=f"checkout:{order.pk}:{attempt}",
        is_test=True,
    )
    started = gateway_for("stripe").checkout_start(
        order=order,
        payment=payment,
        success_url="https://shop.example/checkout/done",
        cancel_url="https://shop.example/checkout/cancel",
        locale="en",
    )
    payment.checkout_session_id = started.session_id
    payment.checkout_url = started.url
    payment.expires_at = started.expires_at
    payment.save(update_fields=["checkout_session_id", "checkout_url", "expires_at"])
    return payment


@dataclass
class Delivered:
    status_code: int
    body: dict[str, Any]
    event: ProviderEvent | None
    enqueued: list[int] = field(default_factory=list)


@contextmanager
def enqueue_recorder(monkeypatch) -> Iterator[list[int]]:
    """Record the webhook's enqueues instead of publishing them to the broker."""
    recorded: list[int] = []
    monkeypatch.setattr("payments.webhooks.enqueue_provider_event", recorded.append)
    yield recorded


def post_event(client, body: bytes, signature: str | None) -> Any:
    """POST ``body`` to the webhook and run what it scheduled after commit (its enqueue)."""
    headers = {} if signature is None else {"HTTP_STRIPE_SIGNATURE": signature}
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post(WEBHOOK_URL, data=body, content_type="application/json", **headers)


def deliver(client, monkeypatch, type_: str, obj: dict[str, Any], **event_options) -> Delivered:
    """POST a signed ``type_`` event around ``obj``; return the response and the stored row."""
    body, signature = stripe_event(type_, obj, **event_options)
    with enqueue_recorder(monkeypatch) as enqueued:
        response = post_event(client, body, signature)
    event_id = json.loads(body)["id"]
    stored = ProviderEvent.objects.filter(event_id=event_id).first()
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    return Delivered(response.status_code, answer, stored, enqueued)


def process(event: ProviderEvent) -> str:
    """Run the worker's processing of ``event`` once; the row is refreshed."""
    status = provider_event_process(event_id=event.pk)
    event.refresh_from_db()
    return status


def deliver_and_process(client, monkeypatch, type_: str, obj: dict[str, Any], **options):
    delivered = deliver(client, monkeypatch, type_, obj, **options)
    assert delivered.status_code == 200, delivered.body
    process(delivered.event)
    return delivered.event


def pay(client, monkeypatch, stub: StripeStub, order: Order, **complete_options) -> Payment:
    """Open a session, complete it on the stub and deliver ``checkout.session.completed``."""
    payment = checkout_start(order)
    session = stub.session_complete(payment.checkout_session_id, **complete_options)
    deliver_and_process(client, monkeypatch, "checkout.session.completed", session)
    payment.refresh_from_db()
    order.refresh_from_db()
    return payment
