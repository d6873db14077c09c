"""No refund stays pending forever: the refunds sweep sends again what Stripe never answered
(the retry task lost with Redis, or never published), gives up after a bounded budget with a
visible state and an alert, and asks Stripe by id about refunds whose webhook never came.

Stripe is the HTTP stub; the broker is the only thing replaced (``broker`` records what would be
published to Redis and ``broker.run_all()`` runs the real ``submit_refund`` task).
"""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from commerce.models import MerchantMembership, Order, OrderEvent
from payments.models import Refund
from payments.services.refund_sending import MAX_ATTEMPTS
from payments.services.refunds import refund_remaining_minor, refund_request
from payments.tasks import sweep_refunds
from tests.factories import staff_create
from tests.payments.refund_helpers import time_passes
from tests.payments.webhook_helpers import deliver_and_process, pay

pytestmark = pytest.mark.django_db

Status = Order.Status


@pytest.fixture
def paid(client, monkeypatch, stripe_stub, make_order):
    order = make_order(prices=(2500, 1000), shipping_minor=500)  # 40.00 USD
    pay(client, monkeypatch, stripe_stub, order)
    owner = staff_create(merchant=order.merchant, role=MerchantMembership.Role.OWNER)
    owner.email = "owner@souq.example"
    owner.save(update_fields=["email"])
    return order, owner


def test_a_refund_whose_retry_was_never_queued_is_sent_by_the_sweep(
    stripe_stub, paid, broker, django_capture_on_commit_callbacks
):
    order, owner = paid
    stripe_stub.fail_next(status=503, path="/v1/refunds")
    broker.down = True  # the retry's publish after commit fails: Redis is down

    with django_capture_on_commit_callbacks(execute=True):
        refund = refund_request(order=order, amount_minor=1500, user=owner)

    assert (refund.status, refund.provider_refund_id) == (Refund.Status.PENDING, None)
    assert broker.countdowns() == []
    broker.down = False
    assert sweep_refunds.apply().get() == 0  # its retry is not due yet

    time_passes(seconds=30)
    assert sweep_refunds.apply().get() == 1
    assert broker.run_all() == [Refund.Status.PENDING]

    refund.refresh_from_db()
    assert refund.provider_refund_id in stripe_stub.refunds
    keys = [r.headers["idempotency-key"] for r in stripe_stub.requests_to("/v1/refunds")]
    assert keys == [f"refund:{refund.pk}"] * 2
    assert refund_remaining_minor(order=order) == 2500


def _drive_until_settled(broker, capture) -> list[float]:
    """Let time pass and run the worker until the refund stops asking for another try (each
    run's after-commit publish happens as the run ends, as it would in a worker)."""
    waits = []
    while broker.ran < len(broker.published):
        _refund_id, countdown = broker.published[broker.ran]
        waits.append(countdown)
        time_passes(seconds=countdown)
        with capture(execute=True):
            broker.run_all()
    return waits


def test_a_refund_stripe_never_answers_is_abandoned_visibly_and_no_longer_counts(
    client, stripe_stub, paid, broker, settings, django_capture_on_commit_callbacks
):
    order, owner = paid
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}
    stripe_stub.fail_always(status=503, path="/v1/refunds")

    with django_capture_on_commit_callbacks(execute=True):
        refund = refund_request(order=order, amount_minor=4000, user=owner)
    waits = _drive_until_settled(broker, django_capture_on_commit_callbacks)

    refund.refresh_from_db()
    order.refresh_from_db()
    # Every countdown ends well before the broker would hand the message out again.
    assert waits and max(waits) <= 300
    assert waits == sorted(waits)
    assert len(stripe_stub.requests_to("/v1/refunds", method="POST")) == MAX_ATTEMPTS
    assert refund.status == Refund.Status.ABANDONED
    assert refund.attempts == MAX_ATTEMPTS
    assert "did not answer" in refund.failure_reason
    # It holds no money any more: the whole payment can be refunded again.
    assert refund_remaining_minor(order=order) == 4000
    assert (order.status, order.refunded_minor) == (Status.PAID, 0)
    # Visible: the order is flagged, the staff are told, the order page says so.
    assert order.needs_review and "could not be sent" in order.review_reason
    assert any(owner.email in m.to and order.number in m.subject for m in mail.outbox)
    assert order.events.filter(kind=OrderEvent.Kind.NOTE, data__refund_id=refund.pk).exists()
    client.force_login(owner)
    page = client.get(reverse("dashboard:order_detail", args=[order.pk])).content.decode()
    assert "Not sent (gave up)" in page
    assert "Up to $40.00 can be refunded." in page
    # Nothing is left for the sweep to do.
    time_passes(seconds=3600)
    assert sweep_refunds.apply().get() == 0


@pytest.mark.parametrize(
    ("visibility", "waits"),
    [
        (3600, [30, 60, 120, 240, 480, 960, 1800]),  # the configured default: an hour
        (600, [30, 60, 120, 240, 300, 300, 300]),
    ],
)
def test_retry_waits_follow_the_configured_visibility_timeout(settings, visibility, waits):
    from payments.services.refund_sending import refund_retry_delay

    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": visibility}
    delays = [refund_retry_delay(n) for n in range(1, MAX_ATTEMPTS)]
    assert delays == waits
    # Every try ends within a few hours: far inside the 24 hours Stripe keeps an idempotency
    # key, so a late retry never makes a second refund.
    assert sum(delays) < 24 * 3600 / 4


def test_an_abandoned_refund_that_stripe_made_after_all_is_recorded(
    client, monkeypatch, stripe_stub, paid, broker, django_capture_on_commit_callbacks
):
    order, owner = paid
    stripe_stub.fail_always(status=503, path="/v1/refunds")
    with django_capture_on_commit_callbacks(execute=True):
        refund = refund_request(order=order, amount_minor=1000, user=owner)
    _drive_until_settled(broker, django_capture_on_commit_callbacks)
    refund.refresh_from_db()
    assert refund.status == Refund.Status.ABANDONED
    stripe_stub.reset_failures()
    # One of those requests did reach Stripe after all: its webhook names our refund.
    made = stripe_stub.answer(
        "POST",
        "/v1/refunds",
        {"payment_intent": refund.payment.payment_intent_id, "amount": "1000",
         "metadata": {"refund_id": str(refund.pk)}},
    )[1]  # fmt: skip

    deliver_and_process(client, monkeypatch, "refund.updated", dict(made, status="succeeded"))

    refund.refresh_from_db()
    order.refresh_from_db()
    assert (refund.status, refund.provider_refund_id) == (Refund.Status.SUCCEEDED, made["id"])
    assert (order.status, order.refunded_minor) == (Status.PARTIALLY_REFUNDED, 1000)
    assert "succeeded after it was given up" in order.review_reason


def test_a_sent_refund_whose_webhook_never_comes_is_asked_about_by_id(stripe_stub, paid, broker):
    order, owner = paid
    refund = refund_request(order=order, amount_minor=1000, user=owner)
    assert refund.provider_refund_id  # Stripe has it, pending; no webhook will come
    assert sweep_refunds.apply().get() == 0

    time_passes(seconds=10 * 60)
    assert sweep_refunds.apply().get() == 1
    assert broker.run_all() == [Refund.Status.PENDING]  # Stripe: still pending
    refund.refresh_from_db()
    first_wait = refund.next_attempt_at - refund.updated_at
    assert sweep_refunds.apply().get() == 0  # asked again later, not every minute

    stripe_stub.refunds[refund.provider_refund_id]["status"] = "succeeded"
    time_passes(seconds=first_wait.total_seconds())
    assert sweep_refunds.apply().get() == 1
    assert broker.run_all() == [Refund.Status.SUCCEEDED]
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (Status.PARTIALLY_REFUNDED, 1000)
    asked = stripe_stub.requests_to(f"/v1/refunds/{refund.provider_refund_id}", method="GET")
    assert len(asked) == 2


def test_a_refund_from_before_the_sweep_existed_is_picked_up(stripe_stub, paid, broker):
    order, owner = paid
    stripe_stub.fail_next(status=503, path="/v1/refunds")
    refund = refund_request(order=order, amount_minor=1000, user=owner)
    Refund.objects.filter(pk=refund.pk).update(next_attempt_at=None, attempts=0)
    time_passes(seconds=6 * 60)

    assert sweep_refunds.apply().get() == 1
    broker.run_all()

    refund.refresh_from_db()
    assert refund.provider_refund_id in stripe_stub.refunds
