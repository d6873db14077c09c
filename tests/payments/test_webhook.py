"""The Stripe webhook view: real signatures checked with the ``stripe`` library on the raw body;
a bad one answers 400 and stores nothing; a good one is stored once and enqueued after commit."""

from __future__ import annotations

import json
import threading
import time

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.utils import timezone

from payments.models import ProviderEvent
from payments.services.events import provider_events_stale
from payments.tasks import sweep_provider_events
from tests.factories import merchant_create, operator_create, staff_create
from tests.payments.stripe_stub import stripe_event, stripe_signature
from tests.payments.webhook_helpers import (
    WEBHOOK_URL,
    deliver,
    enqueue_recorder,
    fixture_object,
    post_event,
)

pytestmark = pytest.mark.django_db

SECRET = "whsec_current_secret"
OLD_SECRET = "whsec_previous_secret"


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = SECRET


def _completed(**changes):
    return fixture_object("checkout_session_completed", **changes)


def _assert_stored_and_enqueued(delivered) -> None:
    """The event is stored once, pending, and its processing was queued after the commit."""
    assert delivered.body == {"received": True}
    assert delivered.event is not None
    assert delivered.event.status == ProviderEvent.Status.PENDING
    assert ProviderEvent.objects.count() == 1
    assert delivered.enqueued == [delivered.event.pk]


def test_valid_signature_stores_the_event_and_enqueues_it_after_commit(client, monkeypatch):
    delivered = deliver(client, monkeypatch, "checkout.session.completed", _completed())

    assert delivered.status_code == 200
    assert delivered.body == {"received": True}
    event = delivered.event
    assert event is not None
    assert (event.gateway, event.type, event.status) == (
        "stripe",
        "checkout.session.completed",
        ProviderEvent.Status.PENDING,
    )
    assert event.payload["data"]["object"]["id"] == "cs_test_a1B2c3D4e5F6"
    assert event.livemode is False
    assert delivered.enqueued == [event.pk]


def test_the_shared_fixture_bodies_are_accepted_byte_for_byte(client, monkeypatch):
    """The exact bytes are signed and verified, whatever their formatting."""
    raw = (
        __import__("pathlib").Path(__file__).parent / "fixtures" / "charge_refunded.json"
    ).read_bytes()
    signature = stripe_signature(raw, secret=SECRET, timestamp=int(time.time()))
    with enqueue_recorder(monkeypatch):
        response = post_event(client, raw, signature)
    assert response.status_code == 200
    assert ProviderEvent.objects.get().event_id == "evt_1Q0refunded0001"


@pytest.mark.parametrize(
    "case",
    ["tampered", "stale", "future", "missing", "wrong_secret", "garbage_header"],
)
def test_bad_signatures_answer_400_and_store_nothing(client, monkeypatch, case):
    body, signature = stripe_event("checkout.session.completed", _completed())
    if case == "tampered":
        body = body.replace(b'"amount_total":5495', b'"amount_total":1')
    elif case == "stale":
        body, signature = stripe_event(
            "checkout.session.completed", _completed(), timestamp=int(time.time()) - 301
        )
    elif case == "future":
        body, signature = stripe_event(
            "checkout.session.completed", _completed(), timestamp=int(time.time()) + 3600
        )
    elif case == "missing":
        signature = None
    elif case == "wrong_secret":
        body, signature = stripe_event(
            "checkout.session.completed", _completed(), secret="whsec_someone_else"
        )
    elif case == "garbage_header":
        signature = "v1=deadbeef"
    with enqueue_recorder(monkeypatch) as enqueued:
        response = post_event(client, body, signature)

    assert response.status_code == 400
    assert set(response.json()) == {"message", "code"}
    assert response.json()["code"] == "webhook_signature_invalid"
    assert not ProviderEvent.objects.exists()
    assert enqueued == []


def test_a_signature_just_inside_the_tolerance_is_accepted(client, monkeypatch):
    delivered = deliver(
        client,
        monkeypatch,
        "checkout.session.completed",
        _completed(),
        timestamp=int(time.time()) - 290,
    )
    assert delivered.status_code == 200
    _assert_stored_and_enqueued(delivered)


def test_rotated_secret_header_with_two_v1_values_is_accepted(client, monkeypatch):
    """While Stripe rolls the secret it signs with both; we only know the new one."""
    delivered = deliver(
        client,
        monkeypatch,
        "checkout.session.completed",
        _completed(),
        secret=[OLD_SECRET, SECRET],
    )
    assert delivered.status_code == 200
    _assert_stored_and_enqueued(delivered)


def test_rotation_on_our_side_accepts_either_configured_secret(client, monkeypatch, settings):
    settings.STRIPE_WEBHOOK_SECRET = f"{SECRET}, {OLD_SECRET}"
    delivered = deliver(
        client, monkeypatch, "checkout.session.completed", _completed(), secret=OLD_SECRET
    )
    assert delivered.status_code == 200
    _assert_stored_and_enqueued(delivered)


def test_a_replayed_event_id_is_a_no_op(client, monkeypatch):
    first = deliver(
        client, monkeypatch, "checkout.session.completed", _completed(), event_id="evt_replay_1"
    )
    again = [
        deliver(
            client,
            monkeypatch,
            "checkout.session.completed",
            _completed(),
            event_id="evt_replay_1",
        )
        for _ in range(2)
    ]

    assert [d.status_code for d in (first, *again)] == [200, 200, 200]
    assert ProviderEvent.objects.count() == 1
    assert first.enqueued == [first.event.pk]
    assert [d.enqueued for d in again] == [[], []]


def test_a_signed_body_that_is_not_an_event_is_refused(client, monkeypatch):
    body = json.dumps({"object": "event", "data": {}}).encode()
    signature = stripe_signature(body, secret=SECRET, timestamp=int(time.time()))
    with enqueue_recorder(monkeypatch):
        response = post_event(client, body, signature)
    assert response.status_code == 400
    assert response.json()["code"] == "webhook_payload_invalid"
    assert not ProviderEvent.objects.exists()


def test_oversized_bodies_answer_413_before_any_check(client, monkeypatch):
    body = b'{"id": "evt_big", "pad": "' + b"x" * (600 * 1024) + b'"}'
    signature = stripe_signature(body, secret=SECRET, timestamp=int(time.time()))
    with enqueue_recorder(monkeypatch):
        response = post_event(client, body, signature)
    assert response.status_code == 413
    assert response.json()["code"] == "body_too_large"
    assert not ProviderEvent.objects.exists()


def test_only_post_is_allowed(client):
    body, signature = stripe_event("checkout.session.completed", _completed())
    headers = {"HTTP_STRIPE_SIGNATURE": signature}
    assert client.get(WEBHOOK_URL, **headers).status_code == 405
    assert client.put(WEBHOOK_URL, body, "application/json", **headers).status_code == 405
    assert not ProviderEvent.objects.exists()


def test_the_webhook_needs_no_csrf_token(monkeypatch):
    strict = Client(enforce_csrf_checks=True)
    delivered = deliver(strict, monkeypatch, "checkout.session.completed", _completed())
    assert delivered.status_code == 200
    _assert_stored_and_enqueued(delivered)


def test_unknown_event_types_are_stored_and_ignored_by_the_worker(client, monkeypatch):
    from tests.payments.webhook_helpers import process

    delivered = deliver(client, monkeypatch, "customer.created", {"id": "cus_1"})
    assert delivered.status_code == 200
    assert process(delivered.event) == ProviderEvent.Status.IGNORED
    assert "No handler" in delivered.event.error


# -- the sweep -----------------------------------------------------------------------------------


def _stored(event_id: str, *, age_seconds: int, attempts: int = 0, status="pending"):
    event = ProviderEvent.objects.create(
        event_id=event_id,
        type="checkout.session.completed",
        payload={},
        attempts=attempts,
        status=status,
    )
    ProviderEvent.objects.filter(pk=event.pk).update(
        received_at=timezone.now() - timezone.timedelta(seconds=age_seconds)
    )
    return event


def test_the_sweep_requeues_events_whose_enqueue_was_lost(monkeypatch):
    lost = _stored("evt_lost", age_seconds=90)
    _stored("evt_fresh", age_seconds=5)
    waiting = _stored("evt_waiting_retry", age_seconds=120, attempts=2)
    chain_lost = _stored("evt_chain_lost", age_seconds=3600, attempts=3)
    _stored("evt_done", age_seconds=3600, status="processed")
    _stored("evt_failed", age_seconds=3600, attempts=6, status="failed")

    assert provider_events_stale() == [chain_lost.pk, lost.pk]
    assert waiting.pk not in provider_events_stale()

    published = []
    monkeypatch.setattr(
        "payments.tasks.process_provider_event.apply_async",
        lambda args, **options: published.append(args[0]),
    )
    assert sweep_provider_events.apply().get() == 2
    assert sorted(published) == sorted([chain_lost.pk, lost.pk])


def test_a_broker_failure_is_logged_and_the_event_stays_pending(client, monkeypatch, caplog):
    def broker_down(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr("payments.tasks.process_provider_event.apply_async", broker_down)
    body, signature = stripe_event("checkout.session.completed", _completed())
    response = post_event(client, body, signature)

    assert response.status_code == 200
    assert ProviderEvent.objects.get().status == ProviderEvent.Status.PENDING
    assert "the sweep will" in caplog.text


# -- admin ---------------------------------------------------------------------------------------


def test_provider_events_are_for_operators_only(client):
    event = _stored("evt_admin", age_seconds=10)
    staff = staff_create(merchant=merchant_create(), role="owner")
    client.force_login(staff)
    assert client.get("/admin/payments/providerevent/").status_code == 403
    assert client.get(f"/admin/payments/providerevent/{event.pk}/change/").status_code in (
        302,
        403,
    )

    client.force_login(operator_create())
    assert client.get("/admin/payments/providerevent/").status_code == 200
    assert client.get(f"/admin/payments/providerevent/{event.pk}/change/").status_code == 200


def test_operators_reprocess_failed_events(client, monkeypatch):
    failed = _stored("evt_failed_once", age_seconds=600, attempts=6, status="failed")
    ProviderEvent.objects.filter(pk=failed.pk).update(error="Order 99 is not there (yet).")
    done = _stored("evt_done_once", age_seconds=600, status="processed")
    published = []
    monkeypatch.setattr(
        "payments.tasks.process_provider_event.apply_async",
        lambda args, **options: published.append(args[0]),
    )
    client.force_login(get_user_model().objects.create_superuser("root", password="pw"))

    response = client.post(
        "/admin/payments/providerevent/",
        {"action": "reprocess", "_selected_action": [failed.pk, done.pk]},
        follow=True,
    )

    assert response.status_code == 200
    failed.refresh_from_db()
    done.refresh_from_db()
    assert (failed.status, failed.attempts, failed.error) == ("pending", 0, "")
    assert done.status == "processed"
    assert published == [failed.pk]


# -- concurrency ---------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_three_concurrent_deliveries_of_one_event_store_one_row(monkeypatch):
    body, signature = stripe_event("checkout.session.completed", _completed())
    enqueued: list[int] = []
    monkeypatch.setattr("payments.webhooks.enqueue_provider_event", enqueued.append)
    barrier = threading.Barrier(3)
    codes: list[int] = []

    def post() -> None:
        try:
            barrier.wait(timeout=30)
            response = Client().post(
                WEBHOOK_URL,
                data=body,
                content_type="application/json",
                HTTP_STRIPE_SIGNATURE=signature,
            )
            codes.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert codes == [200, 200, 200]
    assert ProviderEvent.objects.count() == 1
    assert enqueued == [ProviderEvent.objects.get().pk]
