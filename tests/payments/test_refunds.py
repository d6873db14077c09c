"""Refunds: requested by staff, sent to the Stripe stub with ``Idempotency-Key: refund:<id>``,
pending until Stripe's webhook confirms them, recorded on the order exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from commerce.exceptions import RefundError
from commerce.models import MerchantMembership, Order, OrderEvent
from commerce.notifications import OrderNotice, order_subscribe, order_unsubscribe
from commerce.services.orders import order_expire
from payments.models import Payment, ProviderEvent, Refund
from payments.services.refunds import (
    refund_complete,
    refund_remaining_minor,
    refund_request,
)
from payments.tasks import sweep_refunds
from tests.factories import merchant_create, staff_create
from tests.payments.refund_helpers import time_passes
from tests.payments.webhook_helpers import (
    checkout_start,
    deliver_and_process,
    pay,
)

pytestmark = pytest.mark.django_db

Role = MerchantMembership.Role
Status = Order.Status


@pytest.fixture
def refunded_notices():
    heard: list[dict] = []

    def handler(order, **data):
        heard.append({"order": order.pk, **data})

    order_subscribe(OrderNotice.REFUNDED, handler)
    yield heard
    order_unsubscribe(OrderNotice.REFUNDED, handler)


@pytest.fixture
def paid(client, monkeypatch, stripe_stub, make_order):
    """A paid order of 40.00 USD (25.00 + 10.00 + 5.00 shipping) and its payment."""
    order = make_order(prices=(2500, 1000), shipping_minor=500)
    payment = pay(client, monkeypatch, stripe_stub, order)
    assert order.status == Status.PAID
    assert order.total_minor == 4000
    return order, payment


@pytest.fixture
def owner(paid):
    order, _payment = paid
    return staff_create(merchant=order.merchant, role=Role.OWNER)


def _refund_event(client, monkeypatch, stub, refund: Refund, status: str, type_="refund.updated"):
    obj = dict(stub.refunds[refund.provider_refund_id], status=status)
    return deliver_and_process(client, monkeypatch, type_, obj)


def _charge_refunded(client, monkeypatch, stub, payment: Payment):
    charge = dict(stub.charges[payment.charge_id])
    return deliver_and_process(client, monkeypatch, "charge.refunded", charge)


def test_partial_then_full_refund(client, monkeypatch, stripe_stub, paid, owner, refunded_notices):
    order, payment = paid

    first = refund_request(order=order, amount_minor=1500, user=owner, reason="Shirt too small")

    assert first.status == Refund.Status.PENDING
    assert first.provider_refund_id.startswith("re_")
    assert first.requested_by == owner
    sent = stripe_stub.requests_to("/v1/refunds", method="POST")
    assert len(sent) == 1
    assert sent[0].headers["idempotency-key"] == f"refund:{first.pk}"
    assert sent[0].params["amount"] == "1500"
    assert sent[0].params["payment_intent"] == payment.payment_intent_id
    assert sent[0].params["metadata"]["refund_id"] == str(first.pk)
    requested = order.events.get(kind=OrderEvent.Kind.REFUND_REQUESTED)
    assert (requested.actor, requested.actor_user, requested.message) == (
        OrderEvent.Actor.STAFF,
        owner,
        "Shirt too small",
    )
    assert requested.data["amount_minor"] == 1500
    order.refresh_from_db()
    assert order.status == Status.PAID  # pending until the webhook confirms

    _refund_event(client, monkeypatch, stripe_stub, first, "succeeded")

    first.refresh_from_db()
    order.refresh_from_db()
    assert first.status == Refund.Status.SUCCEEDED
    assert first.completed_at is not None
    assert (order.status, order.refunded_minor) == (Status.PARTIALLY_REFUNDED, 1500)
    refunded = order.events.get(kind=OrderEvent.Kind.REFUNDED)
    assert refunded.actor_user == owner  # the timeline shows who refunded what
    assert refunded.data["amount_minor"] == 1500
    assert refunded.data["reference"] == first.provider_refund_id

    second = refund_request(order=order, amount_minor=2500, user=owner)
    _refund_event(client, monkeypatch, stripe_stub, second, "succeeded")

    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (Status.REFUNDED, 4000)
    assert [n["amount_minor"] for n in refunded_notices] == [1500, 2500]
    assert [n["fully_refunded"] for n in refunded_notices] == [False, True]
    assert refund_remaining_minor(order=order) == 0


def test_refund_over_the_paid_amount_is_refused(stripe_stub, paid, owner):
    order, _payment = paid

    with pytest.raises(RefundError) as refused:
        refund_request(order=order, amount_minor=4001, user=owner)

    assert refused.value.code == "refund_exceeds_paid"
    assert refused.value.extra == {"amount_minor": 4001, "remaining_minor": 4000}
    assert not Refund.objects.exists()
    assert not stripe_stub.requests_to("/v1/refunds")


def test_pending_refunds_count_against_what_is_left(stripe_stub, paid, owner):
    order, _payment = paid
    refund_request(order=order, amount_minor=3000, user=owner)

    with pytest.raises(RefundError) as refused:
        refund_request(order=order, amount_minor=1001, user=owner)

    assert refused.value.extra["remaining_minor"] == 1000
    assert Refund.objects.count() == 1
    assert refund_request(order=order, amount_minor=1000, user=owner).amount_minor == 1000


@pytest.mark.parametrize("amount", [0, -5, 10.5, True, "100"])
def test_refund_amount_must_be_a_positive_integer(stripe_stub, paid, owner, amount):
    order, _payment = paid
    with pytest.raises(RefundError) as refused:
        refund_request(order=order, amount_minor=amount, user=owner)
    assert refused.value.code == "refund_amount_invalid"


def test_nothing_paid_nothing_to_refund(stripe_stub, make_order):
    order = make_order()
    checkout_start(order)  # a pending payment is not money received
    with pytest.raises(RefundError) as refused:
        refund_request(order=order, amount_minor=100, user=None)
    assert refused.value.code == "refund_nothing_paid"


def test_repeated_and_reordered_refund_webhooks_record_the_refund_once(
    client, monkeypatch, stripe_stub, paid, owner, refunded_notices
):
    order, payment = paid
    refund = refund_request(order=order, amount_minor=1000, user=owner)

    _refund_event(client, monkeypatch, stripe_stub, refund, "succeeded", "refund.updated")
    _refund_event(client, monkeypatch, stripe_stub, refund, "succeeded", "refund.updated")
    _charge_refunded(client, monkeypatch, stripe_stub, payment)
    # refund.created, sent first but delivered last, still says "pending": it undoes nothing.
    _refund_event(client, monkeypatch, stripe_stub, refund, "pending", "refund.created")

    order.refresh_from_db()
    refund.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert order.refunded_minor == 1000
    assert order.events.filter(kind=OrderEvent.Kind.REFUNDED).count() == 1
    assert len(refunded_notices) == 1


def test_charge_refunded_alone_completes_the_pending_refund_by_asking_stripe_for_it(
    client, monkeypatch, stripe_stub, paid, owner, broker
):
    """The charge does not name its refunds (Stripe dropped the list): the refunds sweep asks
    Stripe for each pending refund of that payment, by id, and applies what Stripe says."""
    order, payment = paid
    refund = refund_request(order=order, amount_minor=4000, user=owner)
    stripe_stub.refunds[refund.provider_refund_id]["status"] = "succeeded"

    event = _charge_refunded(client, monkeypatch, stripe_stub, payment)

    refund.refresh_from_db()
    assert event.status == ProviderEvent.Status.PROCESSED
    assert refund.status == Refund.Status.PENDING  # nothing decided from amounts
    assert sweep_refunds.apply().get() == 1
    assert broker.run_all() == [Refund.Status.SUCCEEDED]
    asked = stripe_stub.requests_to(f"/v1/refunds/{refund.provider_refund_id}", method="GET")
    assert len(asked) == 1
    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == Refund.Status.SUCCEEDED
    assert (order.status, order.refunded_minor) == (Status.REFUNDED, 4000)


def test_a_failed_refund_frees_the_amount_and_leaves_the_order(
    client, monkeypatch, stripe_stub, paid, owner
):
    order, _payment = paid
    refund = refund_request(order=order, amount_minor=4000, user=owner)

    _refund_event(client, monkeypatch, stripe_stub, refund, "failed", "refund.failed")

    refund.refresh_from_db()
    order.refresh_from_db()
    assert refund.status == Refund.Status.FAILED
    assert order.status == Status.PAID
    assert order.refunded_minor == 0
    assert refund_remaining_minor(order=order) == 4000
    assert order.events.filter(kind=OrderEvent.Kind.NOTE, data__refund_id=refund.pk).exists()


def test_a_refund_the_provider_refuses_fails_at_once(stripe_stub, paid, owner):
    order, _payment = paid
    stripe_stub.fail_next(
        status=400,
        type="invalid_request_error",
        code="charge_disputed",
        message="This charge is disputed.",
        path="/v1/refunds",
    )

    with pytest.raises(RefundError) as refused:
        refund_request(order=order, amount_minor=1000, user=owner)

    assert refused.value.code == "refund_refused"
    refund = Refund.objects.get()
    assert refund.status == Refund.Status.FAILED
    assert refund.failure_reason
    assert refund_remaining_minor(order=order) == 4000


def test_a_provider_that_does_not_answer_is_retried_with_the_same_key(
    stripe_stub, paid, owner, broker, django_capture_on_commit_callbacks
):
    order, _payment = paid
    stripe_stub.fail_next(status=503, path="/v1/refunds")

    with django_capture_on_commit_callbacks(execute=True):
        refund = refund_request(order=order, amount_minor=1000, user=owner)

    assert refund.status == Refund.Status.PENDING
    assert refund.provider_refund_id is None
    assert broker.countdowns() == [(refund.pk, 30)]

    time_passes(seconds=30)
    assert broker.run_all() == [Refund.Status.PENDING]
    refund.refresh_from_db()
    assert refund.provider_refund_id.startswith("re_")
    keys = [r.headers["idempotency-key"] for r in stripe_stub.requests_to("/v1/refunds")]
    assert keys == [f"refund:{refund.pk}", f"refund:{refund.pk}"]
    assert len(stripe_stub.refunds) == 1


def test_a_refund_made_in_the_stripe_dashboard_is_recorded(client, monkeypatch, stripe_stub, paid):
    order, payment = paid
    charge = stripe_stub.charges[payment.charge_id]
    dashboard_refund = {
        "id": "re_dashboard_1",
        "object": "refund",
        "amount": 500,
        "currency": "usd",
        "charge": charge["id"],
        "payment_intent": charge["payment_intent"],
        "status": "succeeded",
        "metadata": {},
    }

    deliver_and_process(client, monkeypatch, "refund.created", dashboard_refund)
    deliver_and_process(client, monkeypatch, "refund.updated", dashboard_refund)

    refund = Refund.objects.get()
    order.refresh_from_db()
    assert (refund.provider_refund_id, refund.status, refund.requested_by) == (
        "re_dashboard_1",
        Refund.Status.SUCCEEDED,
        None,
    )
    assert (order.status, order.refunded_minor) == (Status.PARTIALLY_REFUNDED, 500)


def test_a_refund_of_someone_elses_charge_is_ignored(client, monkeypatch, stripe_stub):
    event = deliver_and_process(
        client,
        monkeypatch,
        "refund.updated",
        {"id": "re_x", "object": "refund", "charge": "ch_unknown", "status": "succeeded"},
    )
    assert event.status == ProviderEvent.Status.IGNORED
    assert not Refund.objects.exists()


def test_money_received_after_expiry_can_be_refunded(
    client, monkeypatch, stripe_stub, make_order, refunded_notices
):
    order = make_order()
    payment = checkout_start(order)
    session = stripe_stub.session_complete(payment.checkout_session_id)
    order_expire(order=order, now=order.reserved_until + timedelta(seconds=1))
    deliver_and_process(client, monkeypatch, "checkout.session.completed", session)
    owner = staff_create(merchant=order.merchant, role=Role.OWNER)

    refund = refund_request(order=order, amount_minor=order.total_minor, user=owner)
    refund_complete(refund=refund, status="succeeded")

    order.refresh_from_db()
    assert order.status == Status.EXPIRED  # no status to move to
    event = order.events.get(kind=OrderEvent.Kind.REFUNDED)
    assert event.actor_user == owner
    assert event.data["amount_minor"] == order.total_minor
    assert refunded_notices[0]["fully_refunded"] is True


# -- admin ---------------------------------------------------------------------------------------


def _refund_url(payment):
    return f"/admin/payments/payment/{payment.pk}/refund/"


def test_owners_refund_from_the_payment_page(client, stripe_stub, paid, owner):
    _order, payment = paid
    client.force_login(owner)

    page = client.get(f"/admin/payments/payment/{payment.pk}/change/")
    assert page.status_code == 200
    assert _refund_url(payment).encode() in page.content

    form = client.get(_refund_url(payment))
    assert form.status_code == 200
    assert b"$40.00" in form.content

    response = client.post(_refund_url(payment), {"amount": "12.50", "reason": "Late"})

    assert response.status_code == 302
    refund = Refund.objects.get()
    assert (refund.amount_minor, refund.reason, refund.requested_by) == (1250, "Late", owner)
    assert refund.payment == payment


@pytest.mark.parametrize(("amount", "error"), [("40.01", b"At most"), ("1.005", b"decimal")])
def test_the_admin_refund_form_refuses_bad_amounts(client, stripe_stub, paid, owner, amount, error):
    _order, payment = paid
    client.force_login(owner)
    response = client.post(_refund_url(payment), {"amount": amount})
    assert response.status_code == 200
    assert error in response.content
    assert not Refund.objects.exists()


def test_support_staff_and_other_merchants_cannot_refund(client, stripe_stub, paid):
    order, payment = paid
    support = staff_create(merchant=order.merchant, role=Role.SUPPORT)
    client.force_login(support)
    assert client.get(f"/admin/payments/payment/{payment.pk}/change/").status_code == 200
    assert client.get(_refund_url(payment)).status_code == 403
    assert client.post(_refund_url(payment), {"amount": "1.00"}).status_code == 403

    stranger = staff_create(merchant=merchant_create(), role=Role.OWNER)
    client.force_login(stranger)
    assert client.get(f"/admin/payments/payment/{payment.pk}/change/").status_code == 302
    assert client.post(_refund_url(payment), {"amount": "1.00"}).status_code == 302
    assert client.get("/admin/payments/payment/").context["cl"].result_count == 0
    assert not Refund.objects.exists()


def test_payments_and_refunds_are_read_only_in_the_admin(client, stripe_stub, paid, owner):
    order, payment = paid
    refund_request(order=order, amount_minor=100, user=owner)
    client.force_login(owner)
    assert client.get("/admin/payments/payment/add/").status_code == 403
    assert client.get(f"/admin/payments/payment/{payment.pk}/delete/").status_code == 403
    assert client.get("/admin/payments/refund/").status_code == 200
    refund = Refund.objects.get()
    page = client.get(f"/admin/payments/refund/{refund.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
