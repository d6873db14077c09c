"""Events: signed like Stripe's, accepted by the service's own webhook (which then pays the
order and finishes refunds), retried on failures, and duplicated, held or reordered on request.

Deliveries are made by calling the worker's task functions directly (no worker runs here)."""

from __future__ import annotations

import contextlib
import json
import socket
from datetime import date

import pytest
from celery.exceptions import Retry

from commerce.models import Order
from payments.gateways import WebhookSignatureError, gateway_for
from payments.models import Payment, ProviderEvent, Refund
from payments.services.checkout import checkout_session_start
from payments.services.refunds import refund_request
from payments.tasks import process_provider_event
from sandbox.stripe.models import Event, EventDelivery, StripeObject
from sandbox.stripe.services.checkout import session_expire_if_due
from sandbox.stripe.services.events import MAX_ATTEMPTS, delivery_attempt
from sandbox.stripe.tasks import deliver_event, deliver_in_order, expire_session_when_due
from tests.factories import staff_create
from tests.sandbox.stripe.helpers import card_form, pay_path, session_create

CONTROL = "/sandbox/stripe/_control/"
State = EventDelivery.State


def _control(client, path: str = "", **body):
    response = client.post(CONTROL + path, json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.content
    return response.json()


def _deliver_all() -> None:
    """Every pending delivery once, through the task (``Retry`` when it asks for another try)."""
    for delivery in EventDelivery.objects.filter(state=State.PENDING).order_by("pk"):
        with contextlib.suppress(Retry):
            deliver_event.run(delivery.pk)


def _received_events(receiver) -> list[dict]:
    return [json.loads(item.body) for item in receiver.received]


# -- signatures -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_events_are_signed_so_the_services_gateway_verifies_them(client, receiver):
    _control(client, webhook_url=receiver.url)
    session = session_create(client)
    client.post(pay_path(session), card_form())

    _deliver_all()

    assert len(receiver.received) == Event.objects.count() == 4
    gateway = gateway_for("stripe")
    for item in receiver.received:
        event = gateway.webhook_parse(
            payload=item.body, signature_header=item.headers["stripe-signature"]
        )
        assert Event.objects.filter(pk=event["id"], type=event["type"]).exists()
        assert item.headers["content-type"].startswith("application/json")
        with pytest.raises(WebhookSignatureError):
            gateway.webhook_parse(
                payload=item.body.replace(b'"livemode":false', b'"livemode":true'),
                signature_header=item.headers["stripe-signature"],
            )
    assert set(EventDelivery.objects.values_list("state", flat=True)) == {State.DELIVERED}


# -- the service's webhook, end to end ------------------------------------------------------------


def _process_stored_events() -> list[str]:
    statuses = []
    for event in ProviderEvent.objects.filter(status=ProviderEvent.Status.PENDING).order_by("pk"):
        statuses.append(process_provider_event.run(event.pk))
    return statuses


def _pay_on_the_hosted_page(client, payment: Payment, number: str = "4242424242424242"):
    path = payment.checkout_url.split("/sandbox/", 1)[1]
    return client.post(f"/sandbox/{path}", card_form(number))


def test_paid_on_the_hosted_page_the_order_is_paid_through_the_real_webhook(
    stand_in, make_order, client
):
    order = make_order()
    payment = checkout_session_start(order=order, locale="en")

    response = _pay_on_the_hosted_page(client, payment)
    assert response.status_code == 303 and "/done/" in response["Location"]
    _deliver_all()
    _process_stored_events()

    order.refresh_from_db()
    payment.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert payment.status == Payment.Status.SUCCEEDED
    assert (payment.card_brand, payment.card_last4) == ("visa", "4242")
    assert payment.charge_id.startswith("ch_") and payment.payment_intent_id.startswith("pi_")
    stored = ProviderEvent.objects.get(type="checkout.session.completed")
    assert stored.status == ProviderEvent.Status.PROCESSED
    assert set(ProviderEvent.objects.values_list("event_id", flat=True)) == set(
        Event.objects.values_list("id", flat=True)
    )

    refund = refund_request(
        order=order, amount_minor=1500, user=staff_create(merchant=order.merchant)
    )
    _deliver_all()
    _process_stored_events()

    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert refund.provider_refund_id.startswith("re_")
    assert order.status == Order.Status.PARTIALLY_REFUNDED


def test_a_declined_card_then_4242_pays_the_order_once(stand_in, make_order, client):
    order = make_order()
    payment = checkout_session_start(order=order, locale="en")

    declined = _pay_on_the_hosted_page(client, payment, "4000000000009995")
    paid = _pay_on_the_hosted_page(client, payment)
    _deliver_all()
    _process_stored_events()

    assert declined.status_code == 402 and paid.status_code == 303
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert ProviderEvent.objects.filter(type="payment_intent.payment_failed").exists()


def test_an_expired_session_closes_the_payment_through_the_webhook(stand_in, make_order, client):
    order = make_order()
    payment = checkout_session_start(order=order, locale="en")

    answer = _control(client, f"sessions/{payment.checkout_session_id}/expire/")
    _deliver_all()
    _process_stored_events()

    assert answer == {"expired": True, "status": "expired"}
    payment.refresh_from_db()
    assert payment.status == Payment.Status.EXPIRED
    assert ProviderEvent.objects.get(type="checkout.session.expired").status == "processed"


def test_a_duplicated_event_is_stored_once_by_the_service(stand_in, make_order, client):
    _control(client, duplicate=True)
    order = make_order()
    payment = checkout_session_start(order=order, locale="en")
    _pay_on_the_hosted_page(client, payment)

    _deliver_all()
    _process_stored_events()

    assert EventDelivery.objects.filter(state=State.DELIVERED).count() == 2 * Event.objects.count()
    assert ProviderEvent.objects.count() == Event.objects.count()
    order.refresh_from_db()
    assert order.status == Order.Status.PAID


# -- retries --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_failed_delivery_is_retried_with_growing_delays_until_it_is_accepted(client, receiver):
    _control(client, webhook_url=receiver.url)
    session = session_create(client)
    client.post(
        f"/sandbox/stripe/v1/checkout/sessions/{session['id']}/expire",
        HTTP_AUTHORIZATION="Bearer sk_test_sandbox_suite",
    )
    delivery = EventDelivery.objects.get(event__type="checkout.session.expired")
    receiver.statuses = [500, 503]

    delays = []
    for _attempt in range(2):
        with pytest.raises(Retry):
            deliver_event.run(delivery.pk)
        delivery.refresh_from_db()
        delays.append(round((delivery.next_attempt_at - delivery.created_at).total_seconds()))
    deliver_event.run(delivery.pk)

    delivery.refresh_from_db()
    assert delivery.state == State.DELIVERED and delivery.attempts == 3
    assert [entry["status"] for entry in delivery.log] == [500, 503, 200]
    bodies = {item.body for item in receiver.received}
    assert len(receiver.received) == 3 and len(bodies) == 1  # the same event each time
    assert delays[0] < delays[1]


@pytest.mark.django_db
def test_a_delivery_that_never_succeeds_fails_after_the_last_attempt(client, receiver):
    _control(client, webhook_url=receiver.url)
    session = session_create(client)
    session_expire_if_due(session_id=session["id"], force=True)
    delivery = EventDelivery.objects.get()
    receiver.statuses = [400] * MAX_ATTEMPTS

    outcomes = [delivery_attempt(delivery_id=delivery.pk) for _ in range(MAX_ATTEMPTS)]

    assert [o.retry_in for o in outcomes] == [1, 2, 4, 8, 16, 32, 64, None]
    delivery.refresh_from_db()
    assert delivery.state == State.FAILED and delivery.attempts == MAX_ATTEMPTS
    assert delivery_attempt(delivery_id=delivery.pk).state == State.FAILED  # no more tries
    assert len(receiver.received) == MAX_ATTEMPTS


@pytest.mark.django_db
def test_an_unreachable_endpoint_counts_as_a_failed_attempt(client):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nobody listens there
    _control(client, webhook_url=f"http://127.0.0.1:{port}/hook/")
    session = session_create(client)
    session_expire_if_due(session_id=session["id"], force=True)

    outcome = delivery_attempt(delivery_id=EventDelivery.objects.get().pk)

    assert outcome.status is None and outcome.retry_in == 1
    assert "ConnectionError" in EventDelivery.objects.get().last_error


@pytest.mark.django_db
def test_fail_next_makes_attempts_fail_without_reaching_the_endpoint(client, receiver):
    _control(client, webhook_url=receiver.url, fail_next=2)
    session = session_create(client)
    session_expire_if_due(session_id=session["id"], force=True)
    delivery = EventDelivery.objects.get()

    outcomes = [delivery_attempt(delivery_id=delivery.pk) for _ in range(3)]

    assert [o.state for o in outcomes] == [State.PENDING, State.PENDING, State.DELIVERED]
    assert len(receiver.received) == 1
    assert _control(client)["fail_next"] == 0


# -- duplicates, holding and reordering -----------------------------------------------------------


@pytest.mark.django_db
def test_held_events_are_released_in_reverse_order(client, receiver):
    _control(client, webhook_url=receiver.url, hold=True)
    session = session_create(client)
    client.post(pay_path(session), card_form())
    _deliver_all()
    assert receiver.received == []  # held: nothing goes out
    created = list(Event.objects.order_by("created_at", "pk").values_list("type", flat=True))

    released = _control(client, "release/", order="reverse")["released"]
    deliver_in_order.run([row["delivery"] for row in released])

    assert [row["type"] for row in released] == created[::-1]
    assert [event["type"] for event in _received_events(receiver)] == created[::-1]


@pytest.mark.django_db
def test_shuffled_release_is_a_permutation_repeatable_by_seed(client, receiver):
    _control(client, webhook_url=receiver.url, hold=True)
    session = session_create(client)
    client.post(pay_path(session), card_form())
    held = list(EventDelivery.objects.order_by("pk").values_list("pk", flat=True))

    released = _control(client, "release/", order="shuffle", seed=3)["released"]

    assert sorted(row["delivery"] for row in released) == held
    assert EventDelivery.objects.filter(state=State.HELD).count() == 0


@pytest.mark.django_db
def test_reset_turns_the_controls_off_and_releases_what_was_held(client):
    _control(client, hold=True, duplicate=True, fail_next=4, webhook_url="http://127.0.0.1:9/")
    session = session_create(client)
    session_expire_if_due(session_id=session["id"], force=True)

    state = _control(client, "reset/")

    assert state["hold"] is False and state["duplicate"] is False and state["fail_next"] == 0
    assert state["delivering_to"].endswith("/payments/stripe/webhook/")
    assert state["deliveries"]["held"] == 0 and state["deliveries"]["pending"] == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [{"hold": "yes"}, {"fail_next": -1}, {"webhook_url": "ftp://x"}, {"color": "red"}],
)
def test_bad_control_values_are_400_and_change_nothing(client, body):
    before = client.get(CONTROL).json()

    response = client.post(CONTROL, json.dumps(body), content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"]["message"]
    assert client.get(CONTROL).json() == before


@pytest.mark.django_db
def test_the_events_list_shows_each_event_with_its_deliveries(client):
    session = session_create(client)
    client.post(pay_path(session), card_form("4000000000000002"))

    listed = client.get(CONTROL + "events/", {"type": "payment_intent.payment_failed"}).json()

    assert [event["type"] for event in listed["data"]] == ["payment_intent.payment_failed"]
    assert listed["data"][0]["deliveries"][0]["state"] == "pending"
    assert listed["data"][0]["object_id"].startswith("pi_")


# -- expiry by time -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_session_past_its_expiry_is_expired_when_read_or_by_its_task(client):
    first, second = session_create(client), session_create(client)
    for session in (first, second):
        row = StripeObject.objects.get(pk=session["id"])
        row.data["expires_at"] = int(date.today().strftime("%s")) - 10
        row.save()

    read = client.get(
        f"/sandbox/stripe/v1/checkout/sessions/{first['id']}",
        HTTP_AUTHORIZATION="Bearer sk_test_sandbox_suite",
    ).json()
    by_task = expire_session_when_due.run(second["id"])

    assert read["status"] == "expired" and by_task is True
    assert expire_session_when_due.run(second["id"]) is False  # once only
    assert Event.objects.filter(type="checkout.session.expired").count() == 2


@pytest.fixture
def expiry_hops(monkeypatch) -> list[float]:
    """Countdowns of the expiry task as published (the broker boundary), in order."""
    hops: list[float] = []
    monkeypatch.setattr(
        expire_session_when_due,
        "apply_async",
        lambda args, countdown=None, **options: hops.append(countdown),
    )
    return hops


@pytest.mark.django_db
def test_the_expiry_task_leaves_a_session_that_is_not_due(client, expiry_hops):
    session = session_create(client)

    assert expire_session_when_due.run(session["id"]) is False
    assert StripeObject.objects.get(pk=session["id"]).data["status"] == "open"
    assert 0 < expiry_hops[-1] <= 3600  # checked again when it is due


@pytest.mark.django_db
def test_a_session_open_for_hours_is_checked_in_hops_under_the_visibility_timeout(
    client, expiry_hops, settings, django_capture_on_commit_callbacks
):
    import time

    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}
    with django_capture_on_commit_callbacks(execute=True):
        session = session_create(client, expires_at=str(int(time.time()) + 23 * 3600))

    assert expiry_hops == [300]  # not a 23-hour countdown the broker would hand out again
    assert expire_session_when_due.run(session["id"]) is False
    assert expiry_hops == [300, 300]
    assert StripeObject.objects.get(pk=session["id"]).data["status"] == "open"


# -- lost tasks -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_delivery_whose_task_was_lost_is_queued_again_once(client, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from sandbox.stripe.services import events

    queued: list[int] = []
    monkeypatch.setattr(
        events, "_enqueue", lambda delivery_id, countdown=0: queued.append(delivery_id)
    )
    first, second = session_create(client), session_create(client)
    session_expire_if_due(session_id=first["id"], force=True)
    session_expire_if_due(session_id=second["id"], force=True)
    lost, _fresh = EventDelivery.objects.order_by("pk")
    EventDelivery.objects.filter(pk=lost.pk).update(
        next_attempt_at=timezone.now() - events.OVERDUE_AFTER - timedelta(seconds=1)
    )

    assert events.deliveries_requeue_overdue() == [lost.pk]
    assert events.deliveries_requeue_overdue() == []  # claimed: not queued twice
    assert queued == [lost.pk]


@pytest.mark.django_db
def test_the_admin_lists_events_with_their_deliveries(client, admin_client):
    session = session_create(client)
    session_expire_if_due(session_id=session["id"], force=True)
    event = Event.objects.get()

    listing = admin_client.get("/admin/sandbox_stripe/event/")
    detail = admin_client.get(f"/admin/sandbox_stripe/event/{event.pk}/change/")

    assert listing.status_code == detail.status_code == 200
    assert event.pk in listing.content.decode()
    assert "checkout.session.expired" in detail.content.decode()
    assert "pending" in detail.content.decode()


# -- refunds that wait, and refunds that fail later ----------------------------------------------


def _paid_through_the_sandbox(client, make_order) -> Order:
    order = make_order()
    payment = checkout_session_start(order=order, locale="en")
    _pay_on_the_hosted_page(client, payment)
    _deliver_all()
    _process_stored_events()
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    return order


def test_a_succeeded_refund_that_fails_later_reaches_the_service_and_reopens_the_order(
    stand_in, make_order, client
):
    order = _paid_through_the_sandbox(client, make_order)
    refund = refund_request(
        order=order, amount_minor=order.total_minor, user=staff_create(merchant=order.merchant)
    )
    _deliver_all()
    _process_stored_events()
    order.refresh_from_db()
    assert order.status == Order.Status.REFUNDED

    failed = _control(
        client, f"refunds/{refund.provider_refund_id}/", status="failed",
        failure_reason="lost_or_stolen_card",
    )  # fmt: skip
    _deliver_all()
    _process_stored_events()

    assert (failed["status"], failed["failure_reason"]) == ("failed", "lost_or_stolen_card")
    charge = StripeObject.objects.get(object="charge").data
    assert (charge["amount_refunded"], charge["refunded"]) == (0, False)
    about_it = Event.objects.filter(payload__data__object__id=refund.provider_refund_id)
    assert set(about_it.values_list("type", flat=True)) >= {
        "refund.updated",
        "refund.failed",
        "charge.refund.updated",
    }
    refund.refresh_from_db()
    order.refresh_from_db()
    assert (refund.status, refund.failure_reason) == (Refund.Status.FAILED, "lost_or_stolen_card")
    assert (order.status, order.refunded_minor) == (Order.Status.PAID, 0)
    assert order.needs_review


def test_pending_refunds_wait_until_the_bank_settles_them(stand_in, make_order, client):
    order = _paid_through_the_sandbox(client, make_order)
    _control(client, refund_status="pending")
    refund = refund_request(
        order=order, amount_minor=1000, user=staff_create(merchant=order.merchant)
    )
    _deliver_all()
    _process_stored_events()
    refund.refresh_from_db()
    assert refund.status == Refund.Status.PENDING
    stored = StripeObject.objects.get(pk=refund.provider_refund_id).data
    assert (stored["status"], stored["pending_reason"]) == ("pending", "processing")

    _control(client, f"refunds/{refund.provider_refund_id}/", status="succeeded")
    _deliver_all()
    _process_stored_events()

    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert (order.status, order.refunded_minor) == (Order.Status.PARTIALLY_REFUNDED, 1000)


@pytest.mark.django_db
def test_a_refund_cannot_come_back_from_failed(client):
    from sandbox.stripe.services.objects import object_create

    object_create(
        kind="refund",
        data={"id": "re_done", "object": "refund", "status": "failed", "amount": 100},
    )
    response = client.post(
        CONTROL + "refunds/re_done/", json.dumps({"status": "succeeded"}), "application/json"
    )
    missing = client.post(
        CONTROL + "refunds/re_nope/", json.dumps({"status": "failed"}), "application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["param"] == "status"
    assert missing.status_code == 404
