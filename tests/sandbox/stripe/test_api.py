"""The service's own Stripe gateway against the stand-in over HTTP: it cannot tell the
difference. Plus what the API does with bad keys, unknown URLs and idempotency keys."""

from __future__ import annotations

import pytest
import requests

from commerce.models import Order
from payments.gateways import GatewayError, gateway_for
from payments.models import Payment
from payments.services.checkout import checkout_session_start
from sandbox.stripe.cards import card_check
from sandbox.stripe.models import Event, StripeObject
from sandbox.stripe.services.checkout import session_pay
from tests.sandbox.stripe.conftest import SECRET_KEY

pytestmark = pytest.mark.django_db(transaction=True)

AUTH = {"Authorization": f"Bearer {SECRET_KEY}"}


def _session(stand_in, make_order, **options) -> tuple[Order, Payment]:
    order = make_order(**options)
    payment = checkout_session_start(order=order, locale="en")
    return order, payment


def _pay(session_id: str, number: str = "4242424242424242"):
    from datetime import date

    card = card_check(number=number, expiry="12/40", cvc="123", today=date.today())
    return session_pay(session_id=session_id, card=card, email="layla@example.com")


def test_the_gateway_starts_a_checkout_at_the_stand_in(stand_in, make_order):
    order, payment = _session(
        stand_in, make_order, tax_rate_bp=500, voucher={"kind": "fixed", "amount_minor": 500}
    )

    assert payment.checkout_session_id.startswith("cs_test_")
    assert (
        payment.checkout_url == f"{stand_in.url}/sandbox/stripe/pay/{payment.checkout_session_id}/"
    )
    session = gateway_for("stripe").session_retrieve(session_id=payment.checkout_session_id)
    assert session["object"] == "checkout.session"
    assert session["status"] == "open" and session["payment_status"] == "unpaid"
    assert session["amount_total"] == order.total_minor  # lines + tax - coupon + shipping
    assert session["currency"] == "usd"
    assert session["client_reference_id"] == str(order.pk)
    assert session["metadata"]["order_id"] == str(order.pk)
    assert session["customer_email"] == "layla@example.com"
    assert session["total_details"]["amount_discount"] == 500
    assert session["payment_intent"] is None  # expand of an empty field leaves it empty


def test_retrieve_expands_the_paid_intent_and_its_charge(stand_in, make_order):
    order, payment = _session(stand_in, make_order)
    _pay(payment.checkout_session_id)

    session = gateway_for("stripe").session_retrieve(session_id=payment.checkout_session_id)

    assert session["status"] == "complete" and session["payment_status"] == "paid"
    intent = session["payment_intent"]
    assert intent["object"] == "payment_intent" and intent["status"] == "succeeded"
    assert intent["metadata"]["payment_id"] == str(payment.pk)
    charge = intent["latest_charge"]
    assert charge["object"] == "charge" and charge["paid"] is True
    assert charge["amount"] == order.total_minor
    assert charge["payment_method_details"]["card"] == {
        **charge["payment_method_details"]["card"],
        "brand": "visa",
        "last4": "4242",
    }
    info = gateway_for("stripe").charge_retrieve(charge_id=charge["id"])
    assert (info.amount_minor, info.currency, info.paid) == (order.total_minor, "USD", True)
    assert info.payment_intent_id == intent["id"]


def test_the_gateway_expires_a_session_and_an_expired_one_quietly(stand_in, make_order):
    _order, payment = _session(stand_in, make_order)
    gateway = gateway_for("stripe")

    gateway.checkout_expire(session_id=payment.checkout_session_id)
    gateway.checkout_expire(session_id=payment.checkout_session_id)  # already expired: fine

    session = gateway.session_retrieve(session_id=payment.checkout_session_id, expand=())
    assert session["status"] == "expired" and session["url"] is None
    expired = Event.objects.filter(type="checkout.session.expired")
    assert expired.count() == 1
    assert expired.get().payload["data"]["object"]["id"] == payment.checkout_session_id


def test_expiring_a_completed_session_is_refused_like_stripe(stand_in, make_order):
    _order, payment = _session(stand_in, make_order)
    _pay(payment.checkout_session_id)

    response = requests.post(
        f"{stand_in.api_base}/v1/checkout/sessions/{payment.checkout_session_id}/expire",
        headers=AUTH,
        timeout=10,
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "has a status of `complete`" in error["message"]


def test_the_gateway_refunds_part_of_a_payment(stand_in, make_order):
    from payments.models import Refund

    order, payment = _session(stand_in, make_order)
    _pay(payment.checkout_session_id)
    session = gateway_for("stripe").session_retrieve(session_id=payment.checkout_session_id)
    Payment.objects.filter(pk=payment.pk).update(
        payment_intent_id=session["payment_intent"]["id"], status=Payment.Status.SUCCEEDED
    )
    payment.refresh_from_db()
    refund = Refund.objects.create(
        order=order,
        payment=payment,
        amount_minor=1500,
        currency="USD",
    )

    result = gateway_for("stripe").refund_create(payment=payment, refund=refund)
    again = gateway_for("stripe").refund_create(payment=payment, refund=refund)  # same key

    assert result.provider_id.startswith("re_") and again.provider_id == result.provider_id
    assert result.status == Refund.Status.SUCCEEDED
    stored = StripeObject.objects.get(pk=result.provider_id).data
    assert stored["amount"] == 1500 and stored["metadata"]["refund_id"] == str(refund.pk)
    assert stored["payment_intent"] == payment.payment_intent_id
    info = gateway_for("stripe").charge_retrieve(charge_id=stored["charge"])
    assert info.amount_refunded_minor == 1500 and info.refunded is False
    assert sorted(
        Event.objects.filter(type__in=["refund.created", "charge.refunded"]).values_list(
            "type", flat=True
        )
    ) == ["charge.refunded", "refund.created"]


def test_refunding_more_than_is_left_is_refused(stand_in, make_order):
    order, payment = _session(stand_in, make_order)
    outcome = _pay(payment.checkout_session_id)
    intent = outcome.session["payment_intent"]

    response = requests.post(
        f"{stand_in.api_base}/v1/refunds",
        data={"payment_intent": intent, "amount": order.total_minor + 1},
        headers=AUTH,
        timeout=10,
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "amount_too_large"
    assert not StripeObject.objects.filter(object="refund").exists()


# -- idempotency ----------------------------------------------------------------------------------


def _coupon(stand_in, key: str, amount: int = 500):
    return requests.post(
        f"{stand_in.api_base}/v1/coupons",
        data={"amount_off": amount, "currency": "usd", "duration": "once"},
        headers={**AUTH, "Idempotency-Key": key},
        timeout=10,
    )


def test_same_key_same_parameters_replays_the_first_answer(stand_in):
    first = _coupon(stand_in, "key-1")
    second = _coupon(stand_in, "key-1")

    assert first.status_code == second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Original-Request"] == first.headers["Request-Id"]
    assert StripeObject.objects.filter(object="coupon").count() == 1


def test_same_key_other_parameters_is_an_idempotency_error(stand_in):
    _coupon(stand_in, "key-2", amount=500)

    response = _coupon(stand_in, "key-2", amount=600)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "idempotency_error"
    assert "key-2" in error["message"]
    assert StripeObject.objects.filter(object="coupon").count() == 1


def test_a_refused_request_is_not_remembered_under_its_key(stand_in):
    bad = requests.post(
        f"{stand_in.api_base}/v1/coupons",
        data={"amount_off": 500},  # no currency
        headers={**AUTH, "Idempotency-Key": "key-3"},
        timeout=10,
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "currency"

    good = requests.post(
        f"{stand_in.api_base}/v1/coupons",
        data={"amount_off": 500, "currency": "usd"},
        headers={**AUTH, "Idempotency-Key": "key-3"},
        timeout=10,
    )
    assert good.status_code == 200 and good.json()["object"] == "coupon"


# -- authentication and errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer sk_test_someone_else", "Bearer sk_live_abc", "Basic c2tfdGVzdDo=", "Bearer "],
)
def test_anything_but_our_test_key_is_401(stand_in, authorization):
    headers = {"Authorization": authorization} if authorization else {}

    response = requests.get(
        f"{stand_in.api_base}/v1/charges/ch_nothing", headers=headers, timeout=10
    )

    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.headers["Request-Id"].startswith("req_")


def test_a_live_key_in_the_gateway_is_not_authorized(stand_in, make_order, settings):
    order = make_order()
    settings.STRIPE_SECRET_KEY = "sk_live_not_for_the_sandbox"  # one process: same settings

    with pytest.raises(GatewayError) as caught:
        checkout_session_start(order=order, locale="en")

    assert caught.value.code == "gateway_not_authorized"
    assert not StripeObject.objects.filter(object="checkout.session").exists()


def test_unknown_ids_and_urls_are_404_like_stripe(stand_in):
    missing = requests.get(f"{stand_in.api_base}/v1/charges/ch_nothing", headers=AUTH, timeout=10)
    unknown = requests.get(f"{stand_in.api_base}/v1/customers", headers=AUTH, timeout=10)

    assert missing.status_code == 404
    assert missing.json()["error"] == {
        "type": "invalid_request_error",
        "code": "resource_missing",
        "param": "id",
        "message": "No such charge: 'ch_nothing'",
    }
    assert unknown.status_code == 404
    assert "Unrecognized request URL (GET: /v1/customers)" in unknown.json()["error"]["message"]


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"mode": "subscription"}, "mode"),
        ({"line_items[0][price_data][currency]": "USD"}, "line_items[0][price_data][currency]"),
        ({"line_items[0][quantity]": "zero"}, "line_items[0][quantity]"),
        ({"expires_at": "1"}, "expires_at"),
        ({"locale": "ar"}, "locale"),
        ({"customer_email": "not-an-address"}, "customer_email"),
    ],
)
def test_invalid_session_parameters_are_400_with_the_param(stand_in, change, param):
    data = {
        "mode": "payment",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "1000",
        "line_items[0][price_data][product_data][name]": "Shirt",
        "line_items[0][quantity]": "1",
        "success_url": "https://shop.example/done",
        **change,
    }

    response = requests.post(
        f"{stand_in.api_base}/v1/checkout/sessions", data=data, headers=AUTH, timeout=10
    )

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert not StripeObject.objects.filter(object="checkout.session").exists()


@pytest.mark.postgres
def test_concurrent_requests_with_one_key_create_one_object(stand_in):
    """Stripe answers 409 to a request whose key is still in flight; nothing is created twice."""
    import threading

    barrier = threading.Barrier(4)
    answers: list[requests.Response] = []

    def post() -> None:
        barrier.wait(timeout=30)
        answers.append(_coupon(stand_in, "key-race"))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert StripeObject.objects.filter(object="coupon").count() == 1
    created = {a.json()["id"] for a in answers if a.status_code == 200}
    assert len(created) == 1
    for answer in answers:
        if answer.status_code != 200:
            assert answer.status_code == 409
            assert answer.json()["error"]["type"] == "idempotency_error"
