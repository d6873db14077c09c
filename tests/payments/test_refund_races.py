"""Races between the refunds sweep and Stripe's webhook, on real PostgreSQL transactions.

A refund being sent again by the sweep (its worker waiting on Stripe, no lock held) can be
finished meanwhile by Stripe's webhook, which finds it by ``metadata.refund_id``; two workers
can pick the same due refund. Whatever the interleaving: Stripe is asked once per due try, the
refund is recorded on the order exactly once, and a finished refund is never abandoned.

Each thread has its own database connection (closed when it ends). Stripe is the HTTP stub; a
test holds one of its answers with an event to fix the interleaving.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from commerce.models import MerchantMembership, Order, OrderEvent
from payments.models import Refund
from payments.services.refund_sending import MAX_ATTEMPTS, refund_advance
from payments.services.refunds import refund_request
from tests.factories import staff_create
from tests.payments.refund_helpers import time_passes
from tests.payments.webhook_helpers import deliver_and_process, pay

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

Status = Order.Status


def _in_thread(job: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    result: list[object] = []

    def run() -> None:
        try:
            result.append(job())
        except BaseException as error:
            result.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def _run_together(jobs: list[Callable[[], object]]) -> list[object]:
    barrier = threading.Barrier(len(jobs))
    results: list[object] = [None] * len(jobs)

    def run(index: int, job: Callable[[], object]) -> None:
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


@pytest.fixture
def unsent(client, monkeypatch, stripe_stub, make_order, broker):
    """A paid 40.00 order and a refund of 10.00 Stripe did not answer; its retry is due."""
    order = make_order(prices=(2500, 1000), shipping_minor=500)
    pay(client, monkeypatch, stripe_stub, order)
    owner = staff_create(merchant=order.merchant, role=MerchantMembership.Role.OWNER)
    stripe_stub.fail_next(status=503, path="/v1/refunds")
    refund = refund_request(order=order, amount_minor=1000, user=owner)
    assert refund.provider_refund_id is None
    time_passes(seconds=60)
    return order, refund


def _stripe_makes(stub, refund: Refund) -> dict:
    """Stripe has this refund (a request of ours reached it; its answer did not reach us)."""
    with stub.lock:
        return stub.answer(
            "POST",
            "/v1/refunds",
            {
                "payment_intent": refund.payment.payment_intent_id,
                "amount": str(refund.amount_minor),
                "metadata": {"refund_id": str(refund.pk)},
            },
        )[1]


def _recorded_once(order: Order, refund: Refund, provider_id: str) -> None:
    refund.refresh_from_db()
    order.refresh_from_db()
    assert (refund.status, refund.provider_refund_id) == (Refund.Status.SUCCEEDED, provider_id)
    assert (order.status, order.refunded_minor) == (Status.PARTIALLY_REFUNDED, 1000)
    assert order.events.filter(kind=OrderEvent.Kind.REFUNDED).count() == 1


def test_the_webhook_finishes_a_refund_while_the_sweep_is_sending_it_again(
    client, monkeypatch, stripe_stub, unsent
):
    order, refund = unsent
    created, answer_now = threading.Event(), threading.Event()
    stripe_answer = stripe_stub.answer

    def answer_late(method, path, params):
        result = stripe_answer(method, path, params)
        if (method, path) == ("POST", "/v1/refunds"):
            created.set()  # Stripe made it; its webhook goes out before the API answer
            answer_now.wait(30)
        return result

    stripe_stub.answer = answer_late
    worker, result = _in_thread(lambda: refund_advance(refund_id=refund.pk))
    assert created.wait(30)
    (made,) = stripe_stub.refunds.values()

    deliver_and_process(client, monkeypatch, "refund.updated", dict(made, status="succeeded"))
    answer_now.set()
    worker.join(60)

    assert result == [Refund.Status.SUCCEEDED]
    _recorded_once(order, refund, made["id"])
    assert len(stripe_stub.refunds) == 1


def test_a_last_try_failing_after_the_webhook_finished_the_refund_does_not_abandon_it(
    client, monkeypatch, stripe_stub, unsent, broker
):
    order, refund = unsent
    stripe_stub.fail_always(status=503, path="/v1/refunds")
    while Refund.objects.get(pk=refund.pk).attempts < MAX_ATTEMPTS - 1:
        time_passes(seconds=3600)
        assert refund_advance(refund_id=refund.pk) == Refund.Status.PENDING
    made = _stripe_makes(stripe_stub, refund)
    arrived, fail_now = threading.Event(), threading.Event()
    take_failure = stripe_stub._take_failure

    def fail_late(method, path):
        if (method, path) == ("POST", "/v1/refunds"):
            arrived.set()
            fail_now.wait(30)
        return take_failure(method, path)

    stripe_stub._take_failure = fail_late
    time_passes(seconds=3600)
    worker, result = _in_thread(lambda: refund_advance(refund_id=refund.pk))
    assert arrived.wait(30)

    deliver_and_process(client, monkeypatch, "refund.updated", dict(made, status="succeeded"))
    fail_now.set()
    worker.join(60)

    assert result == [Refund.Status.SUCCEEDED]
    _recorded_once(order, refund, made["id"])
    assert refund.attempts == MAX_ATTEMPTS - 1  # the try that lost the race is not counted
    assert "could not be sent" not in order.review_reason


def test_two_workers_picking_the_same_due_refund_ask_stripe_once(stripe_stub, unsent):
    _order, refund = unsent
    before = len(stripe_stub.requests_to("/v1/refunds", method="POST"))

    results = _run_together([lambda: refund_advance(refund_id=refund.pk)] * 4)

    assert results == [Refund.Status.PENDING] * 4
    assert len(stripe_stub.requests_to("/v1/refunds", method="POST")) == before + 1
    refund.refresh_from_db()
    assert refund.provider_refund_id in stripe_stub.refunds


def test_giving_up_and_stripes_success_at_the_same_moment_end_recorded(
    client, monkeypatch, stripe_stub, unsent
):
    order, refund = unsent
    stripe_stub.fail_always(status=503, path="/v1/refunds")
    while Refund.objects.get(pk=refund.pk).attempts < MAX_ATTEMPTS - 1:
        time_passes(seconds=3600)
        refund_advance(refund_id=refund.pk)
    made = _stripe_makes(stripe_stub, refund)
    time_passes(seconds=3600)

    results = _run_together(
        [
            lambda: refund_advance(refund_id=refund.pk),
            lambda: deliver_and_process(
                client, monkeypatch, "refund.updated", dict(made, status="succeeded")
            ),
        ]
    )

    assert not [r for r in results if isinstance(r, BaseException)], results
    _recorded_once(order, refund, made["id"])
