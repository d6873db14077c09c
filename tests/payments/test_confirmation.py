"""The worker confirms payments from Stripe's events: paid exactly once, never on a mismatch,
never for an order that is no longer payable, and retried while the order cannot be seen.

Sessions are opened on the Stripe stub through the gateway, completed there as a shopper would,
and the signed events go through the real webhook URL before the worker's processing runs.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.utils import timezone

from commerce.models import (
    MerchantMembership,
    Order,
    OrderEvent,
    StockReservation,
    Variant,
)
from commerce.notifications import OrderNotice, order_subscribe, order_unsubscribe
from commerce.services.orders import order_expire
from payments.models import Payment, ProviderEvent
from payments.services.events import (
    MAX_ATTEMPTS,
    ProviderEventRetry,
    provider_event_process,
    provider_event_store,
)
from payments.tasks import process_provider_event
from tests.factories import customer_create, merchant_create, staff_create
from tests.payments.stripe_stub import stripe_event
from tests.payments.webhook_helpers import (
    checkout_start,
    deliver,
    deliver_and_process,
    fixture_object,
    pay,
    process,
)

pytestmark = pytest.mark.django_db

Status = Order.Status


@pytest.fixture
def notices():
    """Every order notice announced during the test, as ``(notice, order id)``."""
    heard: list[tuple[str, int]] = []
    handlers = {}
    for notice in OrderNotice:

        def handler(order, _notice=notice, **data):
            heard.append((_notice.value, order.pk))

        handlers[notice] = handler
        order_subscribe(notice, handler)
    yield heard
    for notice, handler in handlers.items():
        order_unsubscribe(notice, handler)


@pytest.fixture
def order(make_order):
    return make_order(prices=(2500, 1000), shipping_minor=500)


def _events(order, kind):
    return list(order.events.filter(kind=kind))


# -- paid ----------------------------------------------------------------------------------------


def test_completed_session_marks_the_order_paid_with_ids_and_card(
    client, monkeypatch, stripe_stub, order, notices
):
    payment = checkout_start(order)
    session = stripe_stub.session_complete(
        payment.checkout_session_id, card_brand="mastercard", last4="4444"
    )
    event = deliver_and_process(client, monkeypatch, "checkout.session.completed", session)

    order.refresh_from_db()
    payment.refresh_from_db()
    assert event.status == ProviderEvent.Status.PROCESSED
    assert event.attempts == 1
    assert order.status == Status.PAID
    assert order.paid_at is not None
    assert payment.status == Payment.Status.SUCCEEDED
    assert payment.succeeded_at is not None
    assert payment.payment_intent_id == session["payment_intent"]
    charge_id = stripe_stub.payment_intents[session["payment_intent"]]["latest_charge"]
    assert payment.charge_id == charge_id
    assert (payment.card_brand, payment.card_last4) == ("mastercard", "4444")
    # The reservation became a sale.
    assert set(order.reservations.values_list("status", flat=True)) == {
        StockReservation.Status.SOLD
    }
    paid = _events(order, OrderEvent.Kind.PAID)
    assert len(paid) == 1
    assert paid[0].actor == OrderEvent.Actor.PROVIDER
    assert paid[0].data["session_id"] == payment.checkout_session_id
    assert paid[0].data["payment_intent_id"] == session["payment_intent"]
    assert paid[0].data["event_id"] == event.event_id
    assert notices.count(("paid", order.pk)) == 1
    # The card details were asked for with the latest charge expanded.
    retrieve = stripe_stub.requests_to(
        f"/v1/checkout/sessions/{payment.checkout_session_id}", method="GET"
    )
    assert retrieve and "payment_intent.latest_charge" in str(retrieve[0].params)


def test_the_same_event_processed_again_or_redelivered_changes_nothing(
    client, monkeypatch, stripe_stub, order, notices
):
    payment = checkout_start(order)
    session = stripe_stub.session_complete(payment.checkout_session_id)
    event = deliver_and_process(client, monkeypatch, "checkout.session.completed", session)

    assert process(event) == ProviderEvent.Status.PROCESSED
    # Stripe may also send a second event (another id) for the same session.
    again = deliver_and_process(client, monkeypatch, "checkout.session.completed", session)
    async_ok = deliver_and_process(
        client, monkeypatch, "checkout.session.async_payment_succeeded", session
    )

    order.refresh_from_db()
    assert order.status == Status.PAID
    assert again.status == async_ok.status == ProviderEvent.Status.PROCESSED
    assert "already recorded" in again.error
    assert len(_events(order, OrderEvent.Kind.PAID)) == 1
    assert notices.count(("paid", order.pk)) == 1
    assert Payment.objects.filter(order=order, status=Payment.Status.SUCCEEDED).count() == 1


def test_a_card_detail_failure_does_not_block_marking_paid(client, monkeypatch, stripe_stub, order):
    payment = checkout_start(order)
    session = stripe_stub.session_complete(payment.checkout_session_id)
    stripe_stub.fail_always(status=500, method="GET")

    deliver_and_process(client, monkeypatch, "checkout.session.completed", session)

    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == Status.PAID
    assert payment.status == Payment.Status.SUCCEEDED
    assert payment.payment_intent_id == session["payment_intent"]
    assert (payment.card_brand, payment.card_last4, payment.charge_id) == ("", "", None)


def test_a_delayed_payment_is_paid_on_async_payment_succeeded(
    client, monkeypatch, stripe_stub, order
):
    payment = checkout_start(order)
    session = stripe_stub.session_complete(payment.checkout_session_id, payment_status="unpaid")
    first = deliver_and_process(client, monkeypatch, "checkout.session.completed", session)
    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == Status.PENDING_PAYMENT
    assert payment.status == Payment.Status.PENDING
    assert payment.payment_intent_id == session["payment_intent"]
    assert "not paid yet" in first.error

    session["payment_status"] = "paid"
    deliver_and_process(client, monkeypatch, "checkout.session.async_payment_succeeded", session)

    order.refresh_from_db()
    assert order.status == Status.PAID


def test_expired_arriving_after_completed_leaves_the_order_paid(
    client, monkeypatch, stripe_stub, order, notices
):
    payment = pay(client, monkeypatch, stripe_stub, order)
    assert order.status == Status.PAID
    Order.objects.filter(pk=order.pk).update(reserved_until=timezone.now() - timedelta(hours=1))
    expired = dict(fixture_object("checkout_session_expired"))
    expired.update(
        id=payment.checkout_session_id,
        client_reference_id=str(order.pk),
        metadata={"order_id": str(order.pk)},
    )

    deliver_and_process(client, monkeypatch, "checkout.session.expired", expired)

    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == Status.PAID
    assert payment.status == Payment.Status.SUCCEEDED
    assert ("expired", order.pk) not in notices


# -- mismatches ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"amount_total": 100}, "$1.00"),
        ({"currency": "eur"}, "EUR"),
    ],
    ids=["amount", "currency"],
)
def test_amount_or_currency_mismatch_is_flagged_and_never_paid(
    client,
    monkeypatch,
    stripe_stub,
    order,
    notices,
    changes,
    words,
    django_capture_on_commit_callbacks,
):
    owner = staff_create(merchant=order.merchant, role=MerchantMembership.Role.OWNER)
    owner.email = "owner@example.com"
    owner.save()
    payment = checkout_start(order)
    session = stripe_stub.session_complete(payment.checkout_session_id, **changes)

    with django_capture_on_commit_callbacks(execute=True):
        deliver_and_process(client, monkeypatch, "checkout.session.completed", session)

    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == Status.PENDING_PAYMENT
    assert order.needs_review is True
    assert "mismatch" in order.review_reason.lower()
    assert payment.status == Payment.Status.MISMATCH
    assert words in payment.failure_reason
    assert ("paid", order.pk) not in notices
    assert _events(order, OrderEvent.Kind.REVIEW_FLAGGED)
    # Stock stays reserved for the shopper (nothing sold, nothing released).
    assert set(order.reservations.values_list("status", flat=True)) == {"active"}
    assert [m.to for m in mail.outbox] == [["owner@example.com"]]
    assert order.number in mail.outbox[0].subject


# -- payment for an order that is no longer payable ----------------------------------------------


def test_completed_for_an_expired_order_is_flagged_not_paid(
    client, monkeypatch, stripe_stub, order, notices
):
    payment = checkout_start(order)
    session = stripe_stub.session_complete(payment.checkout_session_id)
    order_expire(order=order, now=order.reserved_until + timedelta(seconds=1))
    assert order.status == Status.EXPIRED

    deliver_and_process(client, monkeypatch, "checkout.session.completed", session)

    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == Status.EXPIRED
    assert order.needs_review is True
    assert "after the order expired" in order.review_reason
    assert "stock is still available for every line" in order.review_reason
    # The money arrived: the payment is recorded, so it can be refunded.
    assert payment.status == Payment.Status.SUCCEEDED
    assert ("paid", order.pk) not in notices
    assert not _events(order, OrderEvent.Kind.PAID)
    # Nothing was re-reserved or sold behind anyone's back.
    assert set(order.reservations.values_list("status", flat=True)) == {"released"}


def test_completed_for_an_expired_order_reports_stock_that_ran_short(
    client, monkeypatch, stripe_stub, order
):
    payment = checkout_start(order)
    session = stripe_stub.session_complete(payment.checkout_session_id)
    order_expire(order=order, now=order.reserved_until + timedelta(seconds=1))
    line = order.lines.order_by("pk").first()
    Variant.objects.filter(pk=line.variant_id).update(stock_on_hand=0)

    deliver_and_process(client, monkeypatch, "checkout.session.completed", session)

    order.refresh_from_db()
    assert order.needs_review is True
    assert f"stock is short: {line.sku} (1 ordered, 0 available)" in order.review_reason


def test_a_second_paid_session_for_a_paid_order_is_flagged(
    client, monkeypatch, stripe_stub, order, notices
):
    first = checkout_start(order)
    second = checkout_start(order)
    one = stripe_stub.session_complete(first.checkout_session_id)
    two = stripe_stub.session_complete(second.checkout_session_id)

    deliver_and_process(client, monkeypatch, "checkout.session.completed", one)
    deliver_and_process(client, monkeypatch, "checkout.session.completed", two)

    order.refresh_from_db()
    assert order.status == Status.PAID
    assert order.needs_review is True
    assert "Paid twice" in order.review_reason
    assert notices.count(("paid", order.pk)) == 1
    assert order.payments.filter(status=Payment.Status.SUCCEEDED).count() == 2


def test_paying_one_session_closes_the_orders_other_open_sessions(
    client, monkeypatch, stripe_stub, order, django_capture_on_commit_callbacks
):
    first = checkout_start(order)
    second = checkout_start(order)
    session = stripe_stub.session_complete(second.checkout_session_id)

    with django_capture_on_commit_callbacks(execute=True):
        deliver_and_process(client, monkeypatch, "checkout.session.completed", session)

    order.refresh_from_db()
    assert order.status == Status.PAID
    assert stripe_stub.sessions[first.checkout_session_id]["status"] == "expired"
    assert stripe_stub.sessions[second.checkout_session_id]["status"] == "complete"
    # Its expired event then closes the first payment and leaves the paid order alone.
    expired = stripe_stub.session_expire(first.checkout_session_id)
    deliver_and_process(client, monkeypatch, "checkout.session.expired", expired)
    first.refresh_from_db()
    order.refresh_from_db()
    assert (first.status, order.status) == (Payment.Status.EXPIRED, Status.PAID)


# -- failed and expired sessions -----------------------------------------------------------------


def test_async_payment_failed_closes_the_order_and_releases_the_stock(
    client, monkeypatch, stripe_stub, order, notices
):
    payment = checkout_start(order)
    session = stripe_stub.session_complete(payment.checkout_session_id, payment_status="unpaid")
    session["payment_status"] = "unpaid"

    deliver_and_process(client, monkeypatch, "checkout.session.async_payment_failed", session)

    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == Status.PAYMENT_FAILED
    assert payment.status == Payment.Status.FAILED
    assert set(order.reservations.values_list("status", flat=True)) == {"released"}
    assert notices.count(("payment_failed", order.pk)) == 1


def test_expired_session_expires_the_order_once_the_reservation_ran_out(
    client, monkeypatch, stripe_stub, order, notices
):
    payment = checkout_start(order)
    session = stripe_stub.session_expire(payment.checkout_session_id)
    Order.objects.filter(pk=order.pk).update(reserved_until=timezone.now() - timedelta(seconds=5))

    deliver_and_process(client, monkeypatch, "checkout.session.expired", session)

    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == Status.EXPIRED
    assert payment.status == Payment.Status.EXPIRED
    assert set(order.reservations.values_list("status", flat=True)) == {"released"}
    assert notices.count(("expired", order.pk)) == 1


def test_expired_session_leaves_an_order_whose_reservation_still_runs(
    client, monkeypatch, stripe_stub, order, notices
):
    """The shopper can still open a new session; the expiry sweep closes the order later."""
    payment = checkout_start(order)
    session = stripe_stub.session_expire(payment.checkout_session_id)

    event = deliver_and_process(client, monkeypatch, "checkout.session.expired", session)

    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == Status.PENDING_PAYMENT
    assert payment.status == Payment.Status.EXPIRED
    assert "still running" in event.error
    assert ("expired", order.pk) not in notices


def test_an_old_session_expiring_does_not_close_an_order_with_a_newer_open_one(
    client, monkeypatch, stripe_stub, order, notices
):
    old = checkout_start(order)
    newer = checkout_start(order)
    session = stripe_stub.session_expire(old.checkout_session_id)
    Order.objects.filter(pk=order.pk).update(reserved_until=timezone.now() - timedelta(seconds=5))

    deliver_and_process(client, monkeypatch, "checkout.session.expired", session)

    order.refresh_from_db()
    old.refresh_from_db()
    newer.refresh_from_db()
    assert order.status == Status.PENDING_PAYMENT
    assert (old.status, newer.status) == (Payment.Status.EXPIRED, Payment.Status.PENDING)
    # ... and the newer session can still be paid.
    paid = stripe_stub.session_complete(newer.checkout_session_id)
    deliver_and_process(client, monkeypatch, "checkout.session.completed", paid)
    order.refresh_from_db()
    assert order.status == Status.PAID


# -- order not found -----------------------------------------------------------------------------


def _direct_order(pk: int) -> Order:
    merchant = merchant_create()
    return Order.objects.create(
        pk=pk,
        merchant=merchant,
        customer=customer_create(merchant=merchant),
        number=f"LATE-{pk}",
        currency="USD",
        subtotal_minor=5000,
        shipping_minor=495,
        total_minor=5495,
        reserved_until=timezone.now() + timedelta(minutes=30),
    )


def test_an_event_for_an_order_not_found_is_retried_then_paid(client, monkeypatch, stripe_stub):
    missing_pk = (Order.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 500
    session = fixture_object(
        "checkout_session_completed",
        client_reference_id=str(missing_pk),
        metadata={"order_id": str(missing_pk)},
    )
    delivered = deliver(client, monkeypatch, "checkout.session.completed", session)
    event = delivered.event

    with pytest.raises(ProviderEventRetry) as retry:
        provider_event_process(event_id=event.pk)
    event.refresh_from_db()
    assert retry.value.countdown == 10
    assert (event.status, event.attempts) == (ProviderEvent.Status.PENDING, 1)
    assert f"Order {missing_pk} is not there" in event.error

    order = _direct_order(missing_pk)
    assert process(event) == ProviderEvent.Status.PROCESSED

    order.refresh_from_db()
    assert order.status == Status.PAID
    payment = order.payments.get()
    # The session was not opened through us: a payment row records it anyway.
    assert payment.checkout_session_id == "cs_test_a1B2c3D4e5F6"
    assert payment.status == Payment.Status.SUCCEEDED
    assert event.attempts == 2


def test_an_order_never_found_fails_visibly_after_the_retries(client, monkeypatch):
    session = fixture_object(
        "checkout_session_completed",
        client_reference_id="987654321",
        metadata={"order_id": "987654321"},
    )
    event = deliver(client, monkeypatch, "checkout.session.completed", session).event
    countdowns = []
    for _ in range(MAX_ATTEMPTS - 1):
        with pytest.raises(ProviderEventRetry) as retry:
            provider_event_process(event_id=event.pk)
        countdowns.append(retry.value.countdown)

    assert provider_event_process(event_id=event.pk) == ProviderEvent.Status.FAILED
    event.refresh_from_db()
    assert countdowns == [10, 20, 40, 80, 160]
    assert (event.status, event.attempts) == (ProviderEvent.Status.FAILED, MAX_ATTEMPTS)
    assert "987654321" in event.error
    # A failed event is not processed again by accident.
    assert provider_event_process(event_id=event.pk) == ProviderEvent.Status.FAILED


def test_the_task_asks_celery_to_retry_with_the_backoff(client, monkeypatch):
    session = fixture_object(
        "checkout_session_completed", client_reference_id="987654322", metadata={}
    )
    event = deliver(client, monkeypatch, "checkout.session.completed", session).event
    retries = []

    def fake_retry(*, countdown, exc):
        retries.append(countdown)
        return RuntimeError("retry scheduled")

    monkeypatch.setattr(process_provider_event, "retry", fake_retry)
    with pytest.raises(RuntimeError, match="retry scheduled"):
        process_provider_event.run(event.pk)
    assert retries == [10]


def test_an_event_without_any_order_reference_fails_at_once(client, monkeypatch):
    session = fixture_object("checkout_session_completed", client_reference_id=None, metadata={})
    event = deliver(client, monkeypatch, "checkout.session.completed", session).event

    assert process(event) == ProviderEvent.Status.FAILED
    assert event.attempts == 1
    assert "names no order" in event.error


# -- concurrency ---------------------------------------------------------------------------------


def _run_together(jobs):
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def run(index, job):
        try:
            barrier.wait(timeout=30)
            results[index] = job()
        except BaseException as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_event_delivered_three_times_concurrently_pays_once(
    monkeypatch, stripe_stub, make_order, notices
):
    """Three deliveries race through the webhook, then three workers race on the event, and
    also on a second event id for the same session: one paid transition, one payment."""
    from django.test import Client

    order = make_order()
    payment = checkout_start(order)
    session = stripe_stub.session_complete(payment.checkout_session_id)
    body, signature = stripe_event("checkout.session.completed", session)
    monkeypatch.setattr("payments.webhooks.enqueue_provider_event", lambda pk: None)

    def post():
        return (
            Client()
            .post(
                "/payments/stripe/webhook/",
                data=body,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=signature,
            )
            .status_code
        )

    assert _run_together([post, post, post]) == [200, 200, 200]
    event = ProviderEvent.objects.get()
    other, _created = provider_event_store(
        gateway="stripe",
        event={
            "id": "evt_same_session_other_id",
            "type": "checkout.session.async_payment_succeeded",
            "data": {"object": session},
        },
    )

    results = _run_together(
        [
            lambda: provider_event_process(event_id=event.pk),
            lambda: provider_event_process(event_id=event.pk),
            lambda: provider_event_process(event_id=event.pk),
            lambda: provider_event_process(event_id=other.pk),
        ]
    )

    assert Counter(map(str, results)) == Counter({"processed": 4})
    order.refresh_from_db()
    assert order.status == Status.PAID
    assert order.events.filter(kind=OrderEvent.Kind.PAID).count() == 1
    assert order.events.filter(kind=OrderEvent.Kind.STOCK_SOLD).count() == 1
    assert notices.count(("paid", order.pk)) == 1
    assert Payment.objects.filter(order=order, status=Payment.Status.SUCCEEDED).count() == 1
    assert Payment.objects.filter(order=order).count() == 1
    assert ProviderEvent.objects.filter(status="processed").count() == 2
