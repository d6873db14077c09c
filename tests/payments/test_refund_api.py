"""``/api/orders/<id>/refunds/``: owners, managers and operators refund their shops' paid orders;
support staff only list; other shops' orders do not exist; errors are the API's JSON."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command
from rest_framework.test import APIClient

from commerce.models import MerchantMembership, Order
from payments.models import Refund
from tests.factories import api_token_create, merchant_create, operator_create, staff_create
from tests.payments.webhook_helpers import pay

pytestmark = pytest.mark.django_db

Role = MerchantMembership.Role


@pytest.fixture
def paid(client, monkeypatch, stripe_stub, make_order):
    order = make_order(prices=(2500, 1000), shipping_minor=500)
    payment = pay(client, monkeypatch, stripe_stub, order)
    assert order.status == Order.Status.PAID
    return order, payment


def api_as(user=None) -> APIClient:
    api = APIClient()
    if user is not None:
        api.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user)}")
    return api


def url(order) -> str:
    return f"/api/orders/{order.pk}/refunds/"


@pytest.mark.parametrize("role", [Role.OWNER, Role.MANAGER])
def test_owners_and_managers_refund(stripe_stub, paid, role):
    order, payment = paid
    user = staff_create(merchant=order.merchant, role=role)

    response = api_as(user).post(
        url(order), {"amount_minor": 1500, "reason": "Damaged"}, format="json"
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    refund = Refund.objects.get()
    assert body["id"] == refund.pk
    assert body["order"] == order.pk
    assert body["payment"] == payment.pk
    assert body["amount_minor"] == 1500
    assert body["amount"] == {"amount_minor": 1500, "currency": "USD", "formatted": "$15.00"}
    assert body["status"] == "pending"
    assert body["reason"] == "Damaged"
    assert body["requested_by"] == user.username
    assert body["provider_refund_id"].startswith("re_")
    sent = stripe_stub.requests_to("/v1/refunds", method="POST")
    assert [r.headers["idempotency-key"] for r in sent] == [f"refund:{refund.pk}"]


def test_operators_refund_any_shop(stripe_stub, paid):
    order, payment = paid
    operator = operator_create()

    response = api_as(operator).post(url(order), {"amount_minor": 100}, format="json")

    assert response.status_code == 201
    refund = Refund.objects.get()
    assert (refund.order_id, refund.payment_id, refund.amount_minor) == (order.pk, payment.pk, 100)
    assert refund.requested_by == operator
    assert response.json()["id"] == refund.pk
    [sent] = stripe_stub.requests_to("/v1/refunds", method="POST")
    assert sent.params["amount"] == "100"
    assert sent.headers["idempotency-key"] == f"refund:{refund.pk}"


def test_list_shows_the_orders_refunds_to_support_staff_too(stripe_stub, paid):
    order, _payment = paid
    owner = staff_create(merchant=order.merchant, role=Role.OWNER)
    api_as(owner).post(url(order), {"amount_minor": 100}, format="json")
    api_as(owner).post(url(order), {"amount_minor": 200}, format="json")
    support = staff_create(merchant=order.merchant, role=Role.SUPPORT)

    response = api_as(support).get(url(order))

    assert response.status_code == 200
    assert [r["amount_minor"] for r in response.json()] == [100, 200]


def test_support_staff_cannot_refund(stripe_stub, paid):
    order, _payment = paid
    support = staff_create(merchant=order.merchant, role=Role.SUPPORT)

    response = api_as(support).post(url(order), {"amount_minor": 100}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert not Refund.objects.exists()
    assert stripe_stub.requests_to("/v1/refunds") == []


def test_other_merchants_orders_are_not_found(stripe_stub, paid):
    order, _payment = paid
    stranger = staff_create(merchant=merchant_create(), role=Role.OWNER)

    for method in ("get", "post"):
        response = getattr(api_as(stranger), method)(
            url(order), {"amount_minor": 100}, format="json"
        )
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert "Not found." in response.json()["message"]
    assert api_as(stranger).get("/api/orders/999999/refunds/").status_code == 404
    assert not Refund.objects.exists()


def test_anonymous_callers_are_refused(stripe_stub, paid):
    order, _payment = paid
    response = api_as().post(url(order), {"amount_minor": 100}, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert not Refund.objects.exists()
    assert stripe_stub.requests_to("/v1/refunds") == []


@pytest.mark.parametrize("amount", [0, -1, "abc", None, 1.5])
def test_bad_amounts_answer_400(stripe_stub, paid, amount):
    order, _payment = paid
    owner = staff_create(merchant=order.merchant, role=Role.OWNER)
    response = api_as(owner).post(url(order), {"amount_minor": amount}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "amount_minor" in response.json()["extra"]["fields"]
    assert not Refund.objects.exists()
    assert stripe_stub.requests_to("/v1/refunds") == []


def test_refund_over_the_paid_amount_answers_409(stripe_stub, paid):
    order, _payment = paid
    owner = staff_create(merchant=order.merchant, role=Role.OWNER)

    response = api_as(owner).post(url(order), {"amount_minor": 4001}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "refund_exceeds_paid"
    assert response.json()["extra"] == {"amount_minor": 4001, "remaining_minor": 4000}
    assert not Refund.objects.exists()
    assert stripe_stub.requests_to("/v1/refunds") == []
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (Order.Status.PAID, 0)


def test_an_unpaid_order_answers_409(stripe_stub, make_order):
    order = make_order()
    owner = staff_create(merchant=order.merchant, role=Role.OWNER)
    response = api_as(owner).post(url(order), {"amount_minor": 100}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "refund_nothing_paid"
    assert not Refund.objects.exists()
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (Order.Status.PENDING_PAYMENT, 0)


def test_the_endpoint_is_documented_in_the_openapi_schema(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(target), "--validate", "--fail-on-warn")
    schema = yaml.safe_load(target.read_text())
    operations = schema["paths"]["/api/orders/{id}/refunds/"]
    assert set(operations) >= {"get", "post"}
    post = operations["post"]
    assert set(post["responses"]) == {"201", "400", "401", "403", "404", "409", "422"}
    headers = {p["name"] for p in post["parameters"] if p["in"] == "header"}
    assert headers == {"Idempotency-Key"}
    body = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body.endswith("/RefundRequest")
