"""A refund is requested once per submission (ADR 0007): the dashboard's and the admin's refund
forms sent twice, an API call repeated with its ``Idempotency-Key``, or two identical
submissions at the same moment (real threads on PostgreSQL) give the money back once: one
Refund row, one refund request to Stripe (the stub at the network boundary)."""

from __future__ import annotations

import re
import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from commerce.models import MerchantMembership, Order
from payments.models import Refund
from tests.factories import staff_create
from tests.payments.webhook_helpers import pay

Role = MerchantMembership.Role


@pytest.fixture
def paid(client, monkeypatch, stripe_stub, make_order):
    order = make_order(prices=(2500, 1000), shipping_minor=500)
    payment = pay(client, monkeypatch, stripe_stub, order)
    assert order.status == Order.Status.PAID
    owner = staff_create(merchant=order.merchant, role=Role.OWNER)
    return order, payment, owner


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _token(html: str, action: str) -> str:
    form = re.search(rf'<form[^>]*action="{re.escape(action)}".*?</form>', html, re.S)
    assert form, f"no form posts to {action}"
    token = re.search(r'name="submission_key" value="([0-9a-f]{32})"', form.group(0))
    assert token, f"the form posting to {action} carries no submission token"
    return token.group(1)


def _refunded_once(stripe_stub, order: Order, amount_minor: int) -> None:
    (refund,) = Refund.objects.filter(order=order)
    assert refund.amount_minor == amount_minor
    (sent,) = stripe_stub.requests_to("/v1/refunds", method="POST")
    assert sent.headers["idempotency-key"] == f"refund:{refund.pk}"


@pytest.mark.django_db
def test_the_dashboard_refund_form_sent_twice_refunds_once(stripe_stub, paid):
    order, _payment, owner = paid
    client = _client(owner)
    url = reverse("dashboard:order_refund", args=[order.pk])
    html = client.get(reverse("dashboard:order_detail", args=[order.pk])).content.decode()
    form = {"amount": "15.00", "reason": "Damaged", "submission_key": _token(html, url)}

    client.post(url, form)
    client.post(url, form)

    _refunded_once(stripe_stub, order, 1500)


@pytest.mark.django_db
def test_the_admin_refund_form_sent_twice_refunds_once(stripe_stub, paid):
    order, payment, owner = paid
    client = _client(owner)
    url = f"/admin/payments/payment/{payment.pk}/refund/"
    page = client.get(url)
    assert page.status_code == 200
    token = re.search(r'name="submission_key" value="([0-9a-f]{32})"', page.content.decode()).group(
        1
    )
    form = {"amount": "15.00", "reason": "Damaged", "submission_key": token}

    first, again = client.post(url, form), client.post(url, form)

    assert (first.status_code, again.status_code) == (302, 302)
    _refunded_once(stripe_stub, order, 1500)


@pytest.mark.django_db
def test_an_api_refund_retried_with_its_idempotency_key_refunds_once(stripe_stub, paid):
    order, _payment, owner = paid
    api = APIClient()
    api.force_authenticate(owner)
    url = f"/api/orders/{order.pk}/refunds/"
    body = {"amount_minor": 1500, "reason": "Damaged"}

    first = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="refund-A1")
    again = api.post(url, body, format="json", HTTP_IDEMPOTENCY_KEY="refund-A1")
    other = api.post(
        url, {**body, "amount_minor": 500}, format="json", HTTP_IDEMPOTENCY_KEY="refund-A1"
    )

    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert (other.status_code, other.json()["code"]) == (422, "submission_reused")
    _refunded_once(stripe_stub, order, 1500)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_identical_refund_submissions_at_once_refund_once(stripe_stub, paid):
    order, _payment, owner = paid
    url = reverse("dashboard:order_refund", args=[order.pk])
    html = _client(owner).get(reverse("dashboard:order_detail", args=[order.pk])).content.decode()
    form = {"amount": "15.00", "reason": "Damaged", "submission_key": _token(html, url)}
    clients = [_client(owner), _client(owner)]
    barrier = threading.Barrier(2)
    statuses: list[object] = [None, None]

    def submit(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            statuses[index] = clients[index].post(url, form).status_code
        except BaseException as error:
            statuses[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert statuses == [302, 302]
    _refunded_once(stripe_stub, order, 1500)
