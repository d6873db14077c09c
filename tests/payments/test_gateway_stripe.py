"""The Stripe gateway against the local Stripe stub: what reaches Stripe, and what comes back.

Every request goes through the real ``stripe`` library over HTTP to ``tests/payments/stripe_stub``;
the assertions read the requests as the stub decoded them.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from commerce.models import Order
from payments.gateways import (
    ChargeInfo,
    GatewayError,
    RefundResult,
    WebhookSignatureError,
    gateway_for,
)
from payments.gateways.stripe import (
    MAX_NETWORK_RETRIES,
    checkout_expires_at,
    checkout_locale,
    from_stripe_amount,
    to_stripe_amount,
)
from payments.models import Payment, Refund
from tests.payments.stripe_stub import stripe_event, stripe_signature

pytestmark = pytest.mark.django_db

SUCCESS = "https://shop.example/checkout/t/done/"
CANCEL = "https://shop.example/checkout/t/cancel/"


def _payment(order: Order, attempt: int = 1) -> Payment:
    return Payment.objects.create(
        order=order,
        gateway=Payment.Gateway.STRIPE_CHECKOUT,
        attempt=attempt,
        amount_minor=order.total_minor,
        currency=order.currency,
        idempotency_key=f"checkout:{order.pk}:{attempt}",
    )


def _start(order: Order, payment: Payment | None = None, *, locale: str = "en"):
    payment = payment or _payment(order)
    return gateway_for("stripe_checkout").checkout_start(
        order=order, payment=payment, success_url=SUCCESS, cancel_url=CANCEL, locale=locale
    )


def _session_request(stub):
    creates = stub.session_creates()
    assert len(creates) == 1
    return creates[0]


# -- checkout sessions ------------------------------------------------------------------------


def test_usd_session_carries_lines_tax_shipping_and_voucher_so_stripe_total_is_the_order_total(
    make_order, stripe_stub, settings
):
    """10% voucher, 5% exclusive tax and shipping: Stripe's amount_total equals our total."""
    settings.PUBLIC_BASE_URL = "https://shop.example"
    order = make_order(
        prices=[2500, 1000],
        quantities=[1, 2],
        shipping_minor=500,
        tax_rate_bp=500,
        voucher={"kind": "percentage", "percent_bp": 1000},
    )
    # 4500 - 450 + 500 = 4550 taxed at 5% = 227.5 -> 228; total 4778.
    assert (order.subtotal_minor, order.discount_minor, order.tax_minor) == (4500, 450, 228)
    assert order.total_minor == 4778
    payment = _payment(order)

    started = _start(order, payment)

    coupon_requests = stripe_stub.requests_to("/v1/coupons", method="POST")
    assert len(coupon_requests) == 1
    coupon = coupon_requests[0]
    assert coupon.params["amount_off"] == "450"
    assert coupon.params["currency"] == "usd"
    assert coupon.params["duration"] == "once"
    assert coupon.params["max_redemptions"] == "1"
    assert coupon.params["name"] == "Discount EID10"
    assert coupon.idempotency_key == f"checkout:{order.pk}:1:coupon"

    request = _session_request(stripe_stub)
    params = request.params
    assert request.path == "/v1/checkout/sessions"  # the library appended /v1 to the base
    assert request.headers["authorization"] == f"Bearer {settings.STRIPE_SECRET_KEY}"
    assert request.idempotency_key == f"checkout:{order.pk}:1"
    assert params["mode"] == "payment"
    lines = list(order.lines.all())
    assert params["line_items"][:2] == [
        {
            "price_data": {
                "currency": "usd",
                "unit_amount": str(line.unit_price_minor),
                "product_data": {
                    "name": f"{line.product_title} – {line.variant_name}",
                    "metadata": {"sku": line.sku},
                    "images": [line.image_url],
                },
            },
            "quantity": str(line.quantity),
        }
        for line in lines
    ]
    assert lines[0].image_url.startswith("https://shop.example/media/")
    assert params["line_items"][2] == {
        "price_data": {
            "currency": "usd",
            "unit_amount": "228",
            "product_data": {"name": "Tax 5%"},
        },
        "quantity": "1",
    }
    assert params["shipping_options"] == [
        {
            "shipping_rate_data": {
                "type": "fixed_amount",
                "fixed_amount": {"amount": "500", "currency": "usd"},
                "display_name": "Express",
            }
        }
    ]
    assert params["discounts"] == [{"coupon": next(iter(stripe_stub.coupons))}]
    assert params["client_reference_id"] == str(order.pk)
    metadata = {
        "order_id": str(order.pk),
        "order_number": order.number,
        "payment_id": str(payment.pk),
    }
    assert params["metadata"] == metadata
    assert params["payment_intent_data"] == {"metadata": metadata}
    assert params["customer_email"] == "layla@example.com"
    assert params["locale"] == "en"
    assert params["success_url"] == SUCCESS
    assert params["cancel_url"] == CANCEL
    # The 30-minute reservation is shorter than Stripe's minimum: clamped from the row's creation.
    assert int(params["expires_at"]) == int(
        (payment.created_at + timedelta(minutes=35)).timestamp()
    )

    session = stripe_stub.sessions[started.session_id]
    assert session["amount_total"] == order.total_minor == 4778
    assert session["total_details"] == {
        "amount_discount": 450,
        "amount_shipping": 500,
        "amount_tax": 0,
    }
    assert started.url == session["url"]
    assert started.expires_at.timestamp() == session["expires_at"]
    assert started.livemode is False


def test_jpy_amounts_are_whole_yen(make_order, stripe_stub):
    order = make_order(
        currency="JPY", prices=[1500, 800], quantities=[1, 2], shipping_minor=500, tax_rate_bp=1000
    )
    assert order.total_minor == (1500 + 1600 + 500) * 11 // 10  # 10% tax on goods + shipping

    started = _start(order)

    params = _session_request(stripe_stub).params
    assert [item["price_data"]["unit_amount"] for item in params["line_items"]] == [
        "1500",
        "800",
        "360",
    ]
    assert {item["price_data"]["currency"] for item in params["line_items"]} == {"jpy"}
    assert stripe_stub.sessions[started.session_id]["amount_total"] == order.total_minor == 3960


def test_kwd_amounts_are_fils(make_order, stripe_stub):
    order = make_order(
        currency="KWD",
        prices=[2500, 1250],
        quantities=[2, 1],
        shipping_minor=750,
        voucher={"kind": "fixed", "amount_minor": 1000},
    )
    assert order.total_minor == 2500 * 2 + 1250 - 1000 + 750  # 6.000 KWD

    started = _start(order)

    params = _session_request(stripe_stub).params
    assert [item["price_data"]["unit_amount"] for item in params["line_items"]] == [
        "2500",
        "1250",
    ]
    assert stripe_stub.requests_to("/v1/coupons")[0].params["amount_off"] == "1000"
    assert stripe_stub.sessions[started.session_id]["amount_total"] == order.total_minor == 6000


def test_kwd_amount_stripe_cannot_take_is_refused_before_any_request(make_order, stripe_stub):
    """Stripe needs three-decimal amounts to end in 0; we refuse instead of rounding."""
    order = make_order(currency="KWD", prices=[1235], shipping_minor=None)

    with pytest.raises(GatewayError) as caught:
        _start(order)

    assert caught.value.code == "amount_not_supported"
    assert caught.value.transient is False
    assert stripe_stub.requests == []


def test_inclusive_tax_is_not_added_as_a_line(make_order, stripe_stub):
    order = make_order(prices=[2100], shipping_minor=None, tax_rate_bp=500, prices_include_tax=True)
    assert order.tax_minor == 100 and order.total_minor == 2100

    started = _start(order)

    params = _session_request(stripe_stub).params
    assert len(params["line_items"]) == 1
    assert "shipping_options" not in params and "discounts" not in params
    assert stripe_stub.sessions[started.session_id]["amount_total"] == 2100


def test_arabic_shoppers_get_stripe_auto_locale(make_order, stripe_stub):
    """Stripe Checkout has no Arabic: ``auto`` lets it follow the browser."""
    order = make_order(locale="ar_AR")

    _start(order, locale="ar")

    assert _session_request(stripe_stub).params["locale"] == "auto"


@pytest.mark.parametrize(
    ("ours", "stripe_locale"),
    [("en", "en"), ("en_US", "en"), ("ar", "auto"), ("ar_AR", "auto"), ("fr-ca", "fr-CA"),
     ("pt_BR", "pt-BR"), ("", "auto"), ("xx", "auto")],
)  # fmt: skip
def test_checkout_locale(ours, stripe_locale):
    assert checkout_locale(ours) == stripe_locale


def test_expires_at_follows_a_long_reservation_and_is_capped_at_a_day():
    created = timezone.now()
    three_hours = created + timedelta(hours=3)
    assert checkout_expires_at(reserved_until=three_hours, created_at=created) == int(
        three_hours.timestamp()
    )
    capped = checkout_expires_at(reserved_until=created + timedelta(days=3), created_at=created)
    assert capped == int((created + timedelta(hours=24) - timedelta(minutes=5)).timestamp())


@pytest.mark.parametrize(
    ("minor", "currency", "stripe_amount"),
    [(1050, "USD", 1050), (500, "JPY", 500), (1230, "KWD", 1230), (5, "ISK", 500)],
)
def test_stripe_amounts_round_trip(minor, currency, stripe_amount):
    assert to_stripe_amount(minor, currency) == stripe_amount
    assert from_stripe_amount(stripe_amount, currency) == minor


def test_same_payment_twice_gives_the_same_session_and_creates_nothing_new(make_order, stripe_stub):
    """Same row, same key, same parameters: Stripe (the stub) replays the first answer."""
    order = make_order(voucher={"kind": "fixed", "amount_minor": 500})
    payment = _payment(order)

    first = _start(order, payment)
    second = _start(order, payment)

    assert first == second
    assert len(stripe_stub.sessions) == 1 and len(stripe_stub.coupons) == 1
    posts = stripe_stub.requests_to("/v1/checkout/sessions", method="POST")
    assert [r.replayed for r in posts] == [False, True]
    assert {r.idempotency_key for r in posts} == {f"checkout:{order.pk}:1"}


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind", "code", "transient"),
    [
        (500, "api_error", "gateway_unavailable", True),
        (503, "api_error", "gateway_unavailable", True),
        (429, "rate_limit_error", "gateway_unavailable", True),
        (400, "invalid_request_error", "gateway_rejected", False),
        (402, "card_error", "gateway_rejected", False),
        (401, "authentication_error", "gateway_not_authorized", False),
        (403, "invalid_request_error", "gateway_not_authorized", False),
    ],
)
def test_stripe_errors_become_gateway_errors(
    make_order, stripe_stub, status, kind, code, transient
):
    order = make_order(shipping_minor=None)
    stripe_stub.fail_always(status=status, type=kind, path="/v1/checkout/sessions")

    with pytest.raises(GatewayError) as caught:
        _start(order)

    error = caught.value
    assert (error.code, error.transient) == (code, transient)
    assert error.extra["http_status"] == status
    assert error.extra["provider"] == "stripe"
    assert "sk_test" not in str(error.as_dict())


def test_dropped_connections_are_retried_then_reported_as_transient(make_order, stripe_stub):
    order = make_order(shipping_minor=None)
    stripe_stub.fail_always(disconnect=True)

    with pytest.raises(GatewayError) as caught:
        _start(order)

    assert caught.value.transient is True
    assert caught.value.code == "gateway_unavailable"
    posts = stripe_stub.requests_to("/v1/checkout/sessions", method="POST")
    assert len(posts) == 1 + MAX_NETWORK_RETRIES == 3
    assert {r.idempotency_key for r in posts} == {f"checkout:{order.pk}:1"}


def test_a_retryable_failure_is_retried_by_the_library_with_the_same_key(make_order, stripe_stub):
    order = make_order(shipping_minor=None)
    stripe_stub.fail_next(status=500, should_retry=True, path="/v1/checkout/sessions")

    started = _start(order)

    posts = stripe_stub.requests_to("/v1/checkout/sessions", method="POST")
    assert [r.status for r in posts] == [500, 200]
    assert posts[0].idempotency_key == posts[1].idempotency_key == f"checkout:{order.pk}:1"
    assert list(stripe_stub.sessions) == [started.session_id]


# -- expire and retrieve ----------------------------------------------------------------------


def test_expire_closes_an_open_session_and_ignores_a_closed_one(make_order, stripe_stub):
    order = make_order(shipping_minor=None)
    started = _start(order)
    gateway = gateway_for()

    gateway.checkout_expire(session_id=started.session_id)
    assert stripe_stub.sessions[started.session_id]["status"] == "expired"
    gateway.checkout_expire(session_id=started.session_id)  # no error the second time

    expire_posts = stripe_stub.requests_to(
        f"/v1/checkout/sessions/{started.session_id}/expire", method="POST"
    )
    assert [r.status for r in expire_posts] == [200, 400]


def test_session_retrieve_expands_the_payment_intent_and_its_charge(make_order, stripe_stub):
    order = make_order(shipping_minor=None)
    started = _start(order)
    stripe_stub.session_complete(started.session_id, card_brand="mastercard", last4="4444")

    session = gateway_for().session_retrieve(session_id=started.session_id)

    assert session["payment_status"] == "paid"
    charge = session["payment_intent"]["latest_charge"]
    assert charge["payment_method_details"]["card"] == {
        "brand": "mastercard",
        "last4": "4444",
        "exp_month": 12,
        "exp_year": 2030,
    }
    request = stripe_stub.requests_to(f"/v1/checkout/sessions/{started.session_id}")[0]
    assert request.params["expand"] == ["payment_intent.latest_charge"]


def test_charge_retrieve_reports_amount_card_and_refunds(make_order, stripe_stub):
    order = make_order(currency="JPY", prices=[1200], shipping_minor=None)
    started = _start(order)
    session = stripe_stub.session_complete(started.session_id)
    intent = stripe_stub.payment_intents[session["payment_intent"]]

    info = gateway_for().charge_retrieve(charge_id=intent["latest_charge"])

    assert info == ChargeInfo(
        id=intent["latest_charge"],
        amount_minor=1200,
        currency="JPY",
        paid=True,
        refunded=False,
        card_brand="visa",
        card_last4="4242",
        payment_intent_id=intent["id"],
        amount_refunded_minor=0,
        livemode=False,
    )


# -- refunds ----------------------------------------------------------------------------------


def _paid_payment(order, stripe_stub) -> Payment:
    payment = _payment(order)
    started = _start(order, payment)
    session = stripe_stub.session_complete(started.session_id)
    payment.checkout_session_id = started.session_id
    payment.payment_intent_id = session["payment_intent"]
    payment.save()
    return payment


def test_refund_is_requested_with_the_refund_rows_idempotency_key(make_order, stripe_stub):
    order = make_order(prices=[3000], shipping_minor=None)
    payment = _paid_payment(order, stripe_stub)
    refund = Refund.objects.create(
        payment=payment, order=order, amount_minor=1000, currency="USD", reason="Damaged"
    )

    result = gateway_for().refund_create(payment=payment, refund=refund)

    assert result == RefundResult(provider_id=result.provider_id, status=Refund.Status.PENDING)
    request = stripe_stub.requests_to("/v1/refunds", method="POST")[0]
    assert request.idempotency_key == f"refund:{refund.pk}"
    assert request.params["payment_intent"] == payment.payment_intent_id
    assert request.params["amount"] == "1000"
    assert request.params["metadata"]["refund_id"] == str(refund.pk)
    assert stripe_stub.refunds[result.provider_id]["amount"] == 1000

    again = gateway_for().refund_create(payment=payment, refund=refund)
    assert again == result and len(stripe_stub.refunds) == 1


def test_refund_over_what_is_left_is_refused_by_stripe(make_order, stripe_stub):
    order = make_order(prices=[3000], shipping_minor=None)
    payment = _paid_payment(order, stripe_stub)
    refund = Refund.objects.create(payment=payment, order=order, amount_minor=2999, currency="USD")
    gateway_for().refund_create(payment=payment, refund=refund)
    too_much = Refund.objects.create(payment=payment, order=order, amount_minor=2, currency="USD")

    with pytest.raises(GatewayError) as caught:
        gateway_for().refund_create(payment=payment, refund=too_much)

    assert caught.value.code == "gateway_rejected" and caught.value.transient is False
    assert caught.value.extra["provider_code"] == "amount_too_large"


# -- webhooks ---------------------------------------------------------------------------------


def test_webhook_with_a_valid_signature_is_parsed(settings):
    body, signature = stripe_event("checkout.session.completed", {"id": "cs_test_1"})

    event = gateway_for().webhook_parse(payload=body, signature_header=signature)

    assert event["type"] == "checkout.session.completed"
    assert event["data"]["object"]["id"] == "cs_test_1"


@pytest.mark.parametrize("problem", ["tampered", "stale", "missing", "wrong_secret"])
def test_webhook_with_a_bad_signature_is_refused(problem):
    timestamp = int(time.time()) - 301 if problem == "stale" else None
    secret = "whsec_someone_else" if problem == "wrong_secret" else None
    body, signature = stripe_event(
        "charge.refunded", {"id": "ch_1"}, secret=secret, timestamp=timestamp
    )
    if problem == "tampered":
        body = body.replace(b"ch_1", b"ch_2")
    if problem == "missing":
        signature = ""

    with pytest.raises(WebhookSignatureError) as caught:
        gateway_for().webhook_parse(payload=body, signature_header=signature)

    assert caught.value.code == "webhook_signature_invalid"
    assert caught.value.status_code == 400


def test_webhook_signed_during_a_secret_rotation_is_accepted(settings):
    """Stripe sends one v1 per secret while rolling; either may be ours."""
    body, signature = stripe_event(
        "checkout.session.expired",
        {"id": "cs_test_2"},
        secret=["whsec_the_new_one", settings.STRIPE_WEBHOOK_SECRET],
    )
    assert signature.count("v1=") == 2

    assert gateway_for().webhook_parse(payload=body, signature_header=signature)["type"] == (
        "checkout.session.expired"
    )


def test_several_webhook_secrets_may_be_configured(settings):
    settings.STRIPE_WEBHOOK_SECRET = "whsec_current, whsec_previous"
    body, signature = stripe_event("refund.updated", {"id": "re_1"}, secret="whsec_previous")

    assert gateway_for().webhook_parse(payload=body, signature_header=signature)["id"]


def test_signed_body_that_is_not_json_is_refused(settings):
    body = b"not json"
    signature = stripe_signature(
        body, secret=settings.STRIPE_WEBHOOK_SECRET, timestamp=int(time.time())
    )

    with pytest.raises(WebhookSignatureError) as caught:
        gateway_for().webhook_parse(payload=body, signature_header=signature)

    assert caught.value.code == "webhook_payload_invalid"


def test_only_the_stripe_gateway_module_imports_stripe():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = [
        str(path.relative_to(root))
        for package in ("core", "commerce", "payments", "messenger", "sandbox")
        for path in (root / package).rglob("*.py")
        if path != root / "payments/gateways/stripe.py"
        and any(
            line.strip().startswith(("import stripe", "from stripe"))
            for line in path.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert offenders == []
