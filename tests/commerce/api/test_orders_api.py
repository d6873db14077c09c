"""Orders over the REST API: filters, the detail with its timeline, and the status actions.

Actions go through the order services, so the API answers what they decide: a shipment and
``fulfilled`` for a paid order, 409 ``invalid_transition`` for a move the status forbids.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from commerce.models import Order, OrderEvent, Shipment
from tests.commerce.api.conftest import order_create
from tests.factories import customer_create

pytestmark = pytest.mark.django_db

Status = Order.Status


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def at(order: Order, when) -> Order:
    Order.objects.filter(pk=order.pk).update(created_at=when)
    return order


@pytest.fixture
def orders(shop_a):
    """Four more orders of shop A, created a day apart (oldest first), of two customers."""
    now = timezone.now()
    other = customer_create(merchant=shop_a.merchant, first_name="Omar")
    made = {}
    for days, (name, status, customer) in enumerate(
        [
            ("pending", Status.PENDING_PAYMENT, shop_a.customer),
            ("fulfilled", Status.FULFILLED, other),
            ("cancelled", Status.CANCELLED, other),
            ("delivered", Status.DELIVERED, shop_a.customer),
        ]
    ):
        order = order_create(
            merchant=shop_a.merchant, customer=customer, variant=shop_a.variant, status=status
        )
        made[name] = at(order, now - timedelta(days=10 - days))
    made["paid"] = at(shop_a.order, now)
    made["other_customer"] = other
    return made


# -- list and filters ---------------------------------------------------------------------------


def test_orders_list_newest_first_with_customer_and_amounts(api, shop_a, orders):
    response = api(shop_a.manager).get("/api/orders/")
    rows = response.json()["results"]
    assert [row["id"] for row in rows] == [
        orders[name].pk for name in ("paid", "delivered", "cancelled", "fulfilled", "pending")
    ]
    first = rows[0]
    assert first["number"] == shop_a.order.number
    assert first["customer"]["id"] == shop_a.customer.pk
    assert first["total"] == {"amount_minor": 3000, "currency": "USD", "formatted": "$30.00"}
    assert "lines" not in first  # the list stays light; the detail has everything


def test_filter_by_several_statuses(api, shop_a, orders):
    response = api(shop_a.manager).get("/api/orders/?status=fulfilled&status=delivered")
    assert set(ids(response)) == {orders["fulfilled"].pk, orders["delivered"].pk}


def test_unknown_status_is_400(api, shop_a, orders):
    response = api(shop_a.manager).get("/api/orders/?status=lost")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert "status" in response.json()["extra"]["fields"]


def test_filter_by_date_range(api, shop_a, orders):
    client = api(shop_a.manager)
    created = {
        name: Order.objects.get(pk=orders[name].pk).created_at
        for name in ("pending", "fulfilled", "cancelled", "delivered", "paid")
    }
    start = created["fulfilled"].isoformat()
    end = created["delivered"].isoformat()
    response = client.get("/api/orders/", {"created_after": start, "created_before": end})
    assert set(ids(response)) == {orders["fulfilled"].pk, orders["cancelled"].pk}
    response = client.get("/api/orders/", {"created_after": created["delivered"].isoformat()})
    assert set(ids(response)) == {orders["delivered"].pk, orders["paid"].pk}


@pytest.mark.parametrize(
    "value",
    ["yesterday", "2025-13-01T00:00:00Z", "2025-01-01T25:00", "9999-12-31T23:59:59-23:00", "1"],
)
@pytest.mark.parametrize("name", ["created_after", "created_before"])
def test_malformed_dates_are_400(api, shop_a, name, value):
    response = api(shop_a.manager).get("/api/orders/", {name: value})
    assert response.status_code == 400, response.content
    assert name in response.json()["extra"]["fields"]


def test_dates_with_offsets_and_plain_dates(api, shop_a, orders):
    client = api(shop_a.manager)
    assert client.get("/api/orders/", {"created_after": "2000-01-01"}).status_code == 200
    response = client.get("/api/orders/", {"created_after": "2000-01-01T00:00:00+04:00"})
    assert len(ids(response)) == 5


def test_filter_by_customer_and_number(api, shop_a, orders):
    client = api(shop_a.manager)
    response = client.get(f"/api/orders/?customer={orders['other_customer'].pk}")
    assert set(ids(response)) == {orders["fulfilled"].pk, orders["cancelled"].pk}
    number = orders["cancelled"].number
    assert ids(client.get(f"/api/orders/?number={number.lower()}")) == [orders["cancelled"].pk]
    assert client.get("/api/orders/?customer=abc").status_code == 400
    assert client.get("/api/orders/?customer=0").status_code == 400


def test_orders_list_queries_do_not_grow(api, shop_a, django_assert_max_num_queries):
    for _ in range(25):
        customer = customer_create(merchant=shop_a.merchant)
        order_create(merchant=shop_a.merchant, customer=customer, variant=shop_a.variant)
    client = api(shop_a.manager)
    # token + group + memberships + count + orders with customers
    with django_assert_max_num_queries(5):
        response = client.get("/api/orders/")
    assert response.json()["count"] == 26


def test_order_detail_queries_are_bounded(api, shop_a, django_assert_max_num_queries):
    for _ in range(5):
        OrderEvent.objects.create(order=shop_a.order, kind="note", actor_user=shop_a.manager)
    client = api(shop_a.manager)
    # token + group + memberships + order + lines + shipments + events with users
    with django_assert_max_num_queries(7):
        assert client.get(f"/api/orders/{shop_a.order.pk}/").status_code == 200


# -- detail -------------------------------------------------------------------------------------


def test_order_detail_has_lines_shipments_and_timeline(api, shop_a):
    OrderEvent.objects.create(
        order=shop_a.order,
        kind=OrderEvent.Kind.NOTE,
        actor=OrderEvent.Actor.STAFF,
        actor_user=shop_a.manager,
        message="Gift wrap",
    )
    body = api(shop_a.manager).get(f"/api/orders/{shop_a.order.pk}/").json()
    assert body["status"] == "paid"
    [line] = body["lines"]
    assert line["sku"] == shop_a.variant.sku and line["quantity"] == 2
    assert line["unit_price"] == {"amount_minor": 1500, "currency": "USD", "formatted": "$15.00"}
    assert line["total"]["amount_minor"] == 3000
    [shipment] = body["shipments"]
    assert shipment["carrier"] == "DHL" and shipment["delivered_at"] is None
    assert [(e["kind"], e["actor"], e["actor_user"]) for e in body["events"]] == [
        ("created", "system", None),
        ("note", "staff", shop_a.manager.username),
    ]
    assert body["events"][1]["message"] == "Gift wrap"
    assert body["customer"]["id"] == shop_a.customer.pk


# -- actions ------------------------------------------------------------------------------------


def test_fulfil_creates_a_shipment_and_the_order_becomes_fulfilled(api, shop_a):
    response = api(shop_a.manager).post(
        f"/api/orders/{shop_a.order.pk}/fulfil/",
        {
            "carrier": "Aramex",
            "tracking_number": "AX123",
            "tracking_url": "https://track.example/AX123",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    shipment = Shipment.objects.get(pk=body["id"])
    assert (shipment.carrier, shipment.tracking_number) == ("Aramex", "AX123")
    assert body["tracking_url"] == "https://track.example/AX123"
    assert shipment.created_by == shop_a.manager
    shop_a.order.refresh_from_db()
    assert shop_a.order.status == Status.FULFILLED
    event = shop_a.order.events.get(kind=OrderEvent.Kind.FULFILLED)
    assert (event.actor, event.actor_user) == (OrderEvent.Actor.STAFF, shop_a.manager)


def test_fulfil_needs_a_carrier(api, shop_a):
    response = api(shop_a.manager).post(
        f"/api/orders/{shop_a.order.pk}/fulfil/", {"tracking_url": "not a url"}, format="json"
    )
    assert response.status_code == 400
    assert set(response.json()["extra"]["fields"]) == {"carrier", "tracking_url"}


def test_fulfil_refuses_a_non_http_tracking_link(api, shop_a):
    response = api(shop_a.manager).post(
        f"/api/orders/{shop_a.order.pk}/fulfil/",
        {"carrier": "DHL", "tracking_url": "ftp://track.example/1"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "shipment_invalid"


@pytest.mark.parametrize(
    ("status", "action", "body"),
    [
        (Status.PENDING_PAYMENT, "fulfil", {"carrier": "DHL"}),
        (Status.CANCELLED, "fulfil", {"carrier": "DHL"}),
        (Status.PAID, "mark-delivered", {}),
        (Status.PAID, "cancel", {}),
        (Status.DELIVERED, "cancel", {"reason": "late"}),
    ],
)
def test_illegal_transition_is_409(api, shop_a, status, action, body):
    Order.objects.filter(pk=shop_a.order.pk).update(status=status)
    response = api(shop_a.manager).post(
        f"/api/orders/{shop_a.order.pk}/{action}/", body, format="json"
    )
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "invalid_transition"
    assert set(response.json()) == {"message", "code", "extra"}
    shop_a.order.refresh_from_db()
    assert shop_a.order.status == status


def test_mark_delivered(api, shop_a):
    client = api(shop_a.manager)
    client.post(f"/api/orders/{shop_a.order.pk}/fulfil/", {"carrier": "DHL"}, format="json")
    response = client.post(f"/api/orders/{shop_a.order.pk}/mark-delivered/", {}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "delivered"
    assert all(shipment["delivered_at"] for shipment in body["shipments"])
    assert body["events"][-1]["kind"] == "delivered"


def test_mark_one_shipment_delivered(api, shop_a):
    client = api(shop_a.manager)
    first = shop_a.shipment
    client.post(f"/api/orders/{shop_a.order.pk}/fulfil/", {"carrier": "DHL"}, format="json")
    url = f"/api/orders/{shop_a.order.pk}/mark-delivered/"
    response = client.post(url, {"shipment": first.pk}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "fulfilled"  # the other parcel is still on its way
    again = client.post(url, {"shipment": first.pk}, format="json")
    assert again.status_code == 409


def test_cancel_pending_order(api, shop_a):
    Order.objects.filter(pk=shop_a.order.pk).update(status=Status.PENDING_PAYMENT)
    response = api(shop_a.manager).post(
        f"/api/orders/{shop_a.order.pk}/cancel/", {"reason": "Customer asked"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "cancelled" and body["closed_at"]
    cancelled = [e for e in body["events"] if e["kind"] == "cancelled"]
    assert [(e["actor"], e["message"]) for e in cancelled] == [("staff", "Customer asked")]


def test_add_note(api, shop_a):
    response = api(shop_a.manager).post(
        f"/api/orders/{shop_a.order.pk}/notes/", {"message": "Called, will pick up"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["kind"], body["actor"], body["actor_user"]) == (
        "note",
        "staff",
        shop_a.manager.username,
    )
    assert shop_a.order.events.filter(kind="note", message="Called, will pick up").exists()


@pytest.mark.parametrize("body", [{}, {"message": ""}, {"message": "x" * 301}])
def test_note_must_have_a_message(api, shop_a, body):
    response = api(shop_a.manager).post(
        f"/api/orders/{shop_a.order.pk}/notes/", body, format="json"
    )
    assert response.status_code == 400
    assert "message" in response.json()["extra"]["fields"]


def test_actions_are_post_only(api, shop_a):
    client = api(shop_a.manager)
    for action in ("fulfil", "mark-delivered", "cancel", "notes"):
        assert client.get(f"/api/orders/{shop_a.order.pk}/{action}/").status_code == 405


def test_orders_cannot_be_created_or_edited_directly(api, shop_a):
    client = api(shop_a.manager)
    before = list(Order.objects.order_by("pk").values_list("pk", "status", "updated_at"))
    assert client.post("/api/orders/", {"status": "paid"}, format="json").status_code == 405
    response = client.patch(f"/api/orders/{shop_a.order.pk}/", {"status": "paid"}, format="json")
    assert response.status_code == 405
    assert list(Order.objects.order_by("pk").values_list("pk", "status", "updated_at")) == before
