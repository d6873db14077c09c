"""Fulfil is idempotent per submission on every surface (ADR 0007): a double click or a resubmit
of the admin's or the dashboard's fulfil form, or an API call repeated with its
``Idempotency-Key``, records one shipment and sends one "has shipped" message, also when the two
requests arrive at the same moment (real threads on PostgreSQL).

The forms' one-time token is read from the page as a browser would submit it; messages are
counted in the outbox (one row per message the shopper gets).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from commerce.models import Cart, CartLine, MerchantMembership, Order, OrderEvent, Shipment
from commerce.services.orders import order_create_from_cart, order_mark_paid
from messenger.models import MessengerPage, OutboundMessage
from tests.factories import customer_create, merchant_create, staff_create, variant_create

ORDERS_ADMIN = "/admin/commerce/order/"
BODY = {
    "carrier": "Aramex",
    "tracking_number": "AX-1042",
    "tracking_url": "https://track.example/AX-1042",
}
_TOKEN = re.compile(r'name="submission_key" value="([0-9a-f]{32})"')


@pytest.fixture
def shop(db):
    """A paid order of a Messenger shopper, and a manager of its shop."""
    merchant = merchant_create(name="Souq Once")
    page = MessengerPage.objects.create(
        merchant=merchant, page_id="104499990000001", name="Souq Once", access_token="EAAtoken"
    )
    customer = customer_create(merchant=merchant, page_id=page.page_id)
    variant = variant_create(merchant=merchant, price_minor=2500, stock=5)
    cart = Cart.objects.create(merchant=merchant, customer=customer)
    CartLine.objects.create(cart=cart, variant=variant, quantity=2)
    order = order_mark_paid(order=order_create_from_cart(cart=cart))
    manager = staff_create(merchant=merchant, role=MerchantMembership.Role.MANAGER)
    return order, manager


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _token(html: bytes) -> str:
    match = _TOKEN.search(html.decode())
    assert match, "the fulfil form carries no submission token"
    return match.group(1)


def _assert_shipped_once(order: Order) -> None:
    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLED
    (shipment,) = Shipment.objects.filter(order=order)
    assert (shipment.carrier, shipment.tracking_number) == ("Aramex", "AX-1042")
    assert order.events.filter(kind=OrderEvent.Kind.FULFILLED).count() == 1
    (message,) = OutboundMessage.objects.filter(order=order, dedupe_key__startswith="shipment:")
    assert "Aramex" in message.message["attachment"]["payload"]["text"]


def _run_together(jobs: list[Callable[[], object]]) -> list[object]:
    """Run each job in its own thread (own database connection), all released at once."""
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


# -- surfaces: one submission as the browser or the API client sends it -----------------------


def _admin_form(order: Order, user) -> tuple[Callable[[], object], Callable[[], object]]:
    """(submit, submit again): the admin's fulfil page read once, its form posted."""
    url = f"{ORDERS_ADMIN}{order.pk}/fulfil/"
    token = _token(_client(user).get(url).content)
    clients = [_client(user), _client(user)]

    def submit(client: Client) -> object:
        response = client.post(url, {**BODY, "submission_key": token})
        assert response.status_code == 302, response.content[:500]
        return response

    return (lambda: submit(clients[0])), (lambda: submit(clients[1]))


def _dashboard_form(order: Order, user) -> tuple[Callable[[], object], Callable[[], object]]:
    page = _client(user).get(reverse("dashboard:order_detail", args=[order.pk]))
    token = _token(page.content)
    url = reverse("dashboard:order_fulfil", args=[order.pk])
    clients = [_client(user), _client(user)]

    def submit(client: Client) -> object:
        response = client.post(url, {**BODY, "submission_key": token})
        assert response.status_code == 302
        return response

    return (lambda: submit(clients[0])), (lambda: submit(clients[1]))


def _api_call(order: Order, user) -> tuple[Callable[[], object], Callable[[], object]]:
    url = f"/api/orders/{order.pk}/fulfil/"
    clients = [APIClient(), APIClient()]
    for client in clients:
        client.force_authenticate(user)

    def submit(client: APIClient) -> object:
        response = client.post(url, BODY, format="json", HTTP_IDEMPOTENCY_KEY="retry-me-7f3a")
        assert response.status_code == 201, response.content
        return response

    return (lambda: submit(clients[0])), (lambda: submit(clients[1]))


SURFACES = {"admin": _admin_form, "dashboard": _dashboard_form, "api": _api_call}


@pytest.mark.django_db
@pytest.mark.parametrize("surface", SURFACES)
def test_submitting_fulfil_twice_ships_once_and_messages_once(shop, surface):
    order, manager = shop
    first, again = SURFACES[surface](order, manager)

    responses = [first(), again()]

    _assert_shipped_once(order)
    if surface == "api":
        shipment = Shipment.objects.get(order=order)
        assert [r.json()["id"] for r in responses] == [shipment.pk, shipment.pk]
        assert [r.headers.get("Idempotent-Replayed") for r in responses] == [None, "true"]
    else:
        (said,) = [str(m) for m in get_messages(responses[1].wsgi_request)]
        assert "already recorded" in said and "nothing was sent again" in said


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("surface", SURFACES)
def test_two_identical_fulfil_submissions_at_once_ship_once_and_message_once(shop, surface):
    order, manager = shop
    first, again = SURFACES[surface](order, manager)

    results = _run_together([first, again])

    assert not [r for r in results if isinstance(r, BaseException)], results
    _assert_shipped_once(order)


@pytest.mark.django_db
def test_the_api_refuses_an_idempotency_key_reused_for_another_parcel(shop):
    order, manager = shop
    client = APIClient()
    client.force_authenticate(manager)
    url = f"/api/orders/{order.pk}/fulfil/"
    client.post(url, BODY, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    response = client.post(
        url, {**BODY, "tracking_number": "AX-2000"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )

    assert response.status_code == 422
    assert response.json()["code"] == "submission_reused"
    assert Shipment.objects.filter(order=order).count() == 1


@pytest.mark.django_db
def test_an_api_retry_without_a_key_cannot_record_the_same_parcel_twice(shop):
    order, manager = shop
    client = APIClient()
    client.force_authenticate(manager)
    url = f"/api/orders/{order.pk}/fulfil/"
    assert client.post(url, BODY, format="json").status_code == 201

    response = client.post(url, BODY, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "shipment_duplicate"
    _assert_shipped_once(order)


@pytest.mark.django_db
def test_the_dashboard_form_sent_again_after_editing_is_refused(shop):
    order, manager = shop
    client = _client(manager)
    token = _token(client.get(reverse("dashboard:order_detail", args=[order.pk])).content)
    url = reverse("dashboard:order_fulfil", args=[order.pk])
    client.post(url, {**BODY, "submission_key": token})

    response = client.post(url, {**BODY, "tracking_number": "AX-2", "submission_key": token})

    follow = client.get(response["Location"]).content.decode()
    assert "already sent with other details" in follow
    assert Shipment.objects.filter(order=order).count() == 1
    # The page after a submission carries a new token, for a further parcel.
    assert _token(follow.encode()) != token
