"""Tenancy of the REST API: a merchant's token never sees, changes or learns of another's rows.

Merchant A's staff get 404 for every id of merchant B on every endpoint and method, exactly as
for an id that was never used; B's rows never appear in A's lists, filters or searches. Operators
see both. Support staff read but never write (403). Anonymous callers get 401 with
``WWW-Authenticate: Token``; users without a shop get 403. Every error is {message, code, extra}.
"""

from __future__ import annotations

import pytest

from commerce.models import Category, Order, OrderEvent, Product, Shipment, Variant
from tests.factories import staff_create

pytestmark = pytest.mark.django_db

CRUD = ["categories", "products", "variants"]
READ_ONLY = ["customers", "carts", "orders"]
ALL = CRUD + READ_ONLY
ORDER_ACTIONS = {
    "fulfil": {"carrier": "Aramex", "tracking_number": "X1"},
    "mark-delivered": {},
    "cancel": {"reason": "asked"},
    "notes": {"message": "called the customer"},
}
NOT_FOUND_FOR_ANY_ID = 987654321


def object_id(shop, resource: str) -> int:
    return {
        "categories": shop.category.pk,
        "products": shop.product.pk,
        "variants": shop.variant.pk,
        "customers": shop.customer.pk,
        "carts": shop.cart.pk,
        "orders": shop.order.pk,
    }[resource]


def valid_body(shop, resource: str) -> dict:
    """A body that would be accepted for ``shop``'s own object (so only tenancy can refuse)."""
    return {
        "categories": {"name": "Renamed", "slug": "renamed"},
        "products": {"title": "Renamed", "handle": "renamed"},
        "variants": {
            "product": shop.product.pk,
            "name": "L",
            "sku": "RENAMED-1",
            "price_minor": 100,
        },
    }[resource]


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"message", "code", "extra"}
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["extra"], dict)
    if code is not None:
        assert body["code"] == code
    return body


def list_ids(client, resource: str, query: str = "") -> set[int]:
    response = client.get(f"/api/{resource}/{query}")
    assert response.status_code == 200, response.content
    return {row["id"] for row in response.json()["results"]}


# -- 404 for other merchants' objects -----------------------------------------------------------


@pytest.mark.parametrize("resource", ALL)
def test_detail_of_other_merchants_object_is_404_like_an_unknown_id(api, shop_a, shop_b, resource):
    client = api(shop_a.manager)
    other = assert_error(client.get(f"/api/{resource}/{object_id(shop_b, resource)}/"), 404)
    unknown = assert_error(client.get(f"/api/{resource}/{NOT_FOUND_FOR_ANY_ID}/"), 404)
    assert other == unknown == {"message": other["message"], "code": "not_found", "extra": {}}
    assert client.get(f"/api/{resource}/{object_id(shop_a, resource)}/").status_code == 200


@pytest.mark.parametrize("resource", CRUD)
@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_writes_to_other_merchants_object_are_404_and_change_nothing(
    api, shop_a, shop_b, resource, method
):
    client = api(shop_a.manager)
    url = f"/api/{resource}/{object_id(shop_b, resource)}/"
    kwargs = {} if method == "delete" else {"data": valid_body(shop_a, resource), "format": "json"}
    assert_error(getattr(client, method)(url, **kwargs), 404, "not_found")
    assert Category.objects.filter(pk=shop_b.category.pk, name=shop_b.category.name).exists()
    assert Product.objects.filter(pk=shop_b.product.pk, title=shop_b.product.title).exists()
    assert Variant.objects.filter(pk=shop_b.variant.pk, sku=shop_b.variant.sku).exists()


@pytest.mark.parametrize("resource", READ_ONLY)
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_read_only_endpoints_refuse_writes_the_same_way_for_any_id(
    api, shop_a, shop_b, resource, method
):
    client = api(shop_a.manager)
    if method == "post":
        assert_error(client.post(f"/api/{resource}/", {}, format="json"), 405)
        return
    for shop in (shop_a, shop_b):
        url = f"/api/{resource}/{object_id(shop, resource)}/"
        assert_error(getattr(client, method)(url, {}, format="json"), 405)


@pytest.mark.parametrize("action", ORDER_ACTIONS)
def test_order_actions_on_other_merchants_order_are_404_and_change_nothing(
    api, shop_a, shop_b, action
):
    client = api(shop_a.manager)
    events_before = OrderEvent.objects.filter(order=shop_b.order).count()
    response = client.post(
        f"/api/orders/{shop_b.order.pk}/{action}/", ORDER_ACTIONS[action], format="json"
    )
    assert_error(response, 404, "not_found")
    shop_b.order.refresh_from_db()
    assert shop_b.order.status == Order.Status.PAID
    assert OrderEvent.objects.filter(order=shop_b.order).count() == events_before
    assert Shipment.objects.filter(order=shop_b.order).count() == 1


def test_mark_delivered_with_other_merchants_shipment_is_refused(api, shop_a, shop_b):
    shop_a.order.status = Order.Status.FULFILLED
    shop_a.order.save(update_fields=["status"])
    response = api(shop_a.manager).post(
        f"/api/orders/{shop_a.order.pk}/mark-delivered/",
        {"shipment": shop_b.shipment.pk},
        format="json",
    )
    assert_error(response, 400, "invalid")
    shop_b.shipment.refresh_from_db()
    assert shop_b.shipment.delivered_at is None


# -- lists, filters and search never show other merchants' rows ---------------------------------


@pytest.mark.parametrize("resource", ALL)
def test_lists_show_only_own_rows(api, shop_a, shop_b, resource):
    assert list_ids(api(shop_a.manager), resource) == {object_id(shop_a, resource)}
    assert list_ids(api(shop_b.manager), resource) == {object_id(shop_b, resource)}


@pytest.mark.parametrize(
    ("resource", "query"),
    [
        ("products", "?search=Beta"),
        ("products", "?category={b.category.pk}"),
        ("variants", "?product={b.product.pk}"),
        ("variants", "?sku={b.variant.sku}"),
        ("categories", "?search=Beta"),
        ("customers", "?search=beta@example.com"),
        ("carts", "?customer={b.customer.pk}"),
        ("orders", "?customer={b.customer.pk}"),
        ("orders", "?number={b.order.number}"),
        ("orders", "?search={b.order.number}"),
    ],
)
def test_filters_and_search_never_reach_other_merchants_rows(api, shop_a, shop_b, resource, query):
    assert list_ids(api(shop_a.manager), resource, query.format(b=shop_b)) == set()
    assert list_ids(api(shop_b.manager), resource, query.format(b=shop_b)) != set()


def test_nested_rows_of_a_product_belong_to_its_merchant(api, shop_a, shop_b):
    rows = api(shop_a.manager).get("/api/products/").json()["results"]
    assert [v["id"] for row in rows for v in row["variants"]] == [shop_a.variant.pk]
    assert [i["id"] for row in rows for i in row["images"]] == [shop_a.image.pk]


# -- references to other merchants' rows in request bodies --------------------------------------


def test_variant_for_other_merchants_product_does_not_exist(api, shop_a, shop_b):
    response = api(shop_a.manager).post(
        "/api/variants/",
        {"product": shop_b.product.pk, "name": "M", "sku": "NEW-1", "price_minor": 100},
        format="json",
    )
    body = assert_error(response, 400, "invalid")
    assert "does not exist" in body["extra"]["fields"]["product"][0]
    unknown = api(shop_a.manager).post(
        "/api/variants/",
        {"product": NOT_FOUND_FOR_ANY_ID, "name": "M", "sku": "NEW-1", "price_minor": 100},
        format="json",
    )
    # Same words as for an id never used, apart from the id itself.
    assert unknown.json()["message"].replace(str(NOT_FOUND_FOR_ANY_ID), "<id>") == body[
        "message"
    ].replace(str(shop_b.product.pk), "<id>")
    assert not Variant.objects.filter(sku="NEW-1").exists()


@pytest.mark.parametrize(
    ("resource", "body"),
    [
        ("products", lambda b: {"title": "T", "handle": "t", "category": b.category.pk}),
        ("categories", lambda b: {"name": "N", "slug": "n", "parent": b.category.pk}),
        ("products", lambda b: {"title": "T", "handle": "t", "merchant": b.merchant.pk}),
        ("categories", lambda b: {"name": "N", "slug": "n", "merchant": b.merchant.pk}),
    ],
)
def test_create_referring_to_other_merchant_is_400_does_not_exist(
    api, shop_a, shop_b, resource, body
):
    response = api(shop_a.manager).post(f"/api/{resource}/", body(shop_b), format="json")
    payload = assert_error(response, 400, "invalid")
    assert "does not exist" in payload["message"]


def test_moving_own_variant_to_other_merchants_product_does_not_exist(api, shop_a, shop_b):
    response = api(shop_a.manager).patch(
        f"/api/variants/{shop_a.variant.pk}/", {"product": shop_b.product.pk}, format="json"
    )
    assert_error(response, 400, "invalid")
    shop_a.variant.refresh_from_db()
    assert shop_a.variant.product_id == shop_a.product.pk


# -- operators ----------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", ALL)
def test_operator_sees_every_merchant(api, operator, shop_a, shop_b, resource):
    client = api(operator)
    expected = {object_id(shop_a, resource), object_id(shop_b, resource)}
    assert list_ids(client, resource) == expected
    for shop in (shop_a, shop_b):
        assert client.get(f"/api/{resource}/{object_id(shop, resource)}/").status_code == 200


def test_operator_edits_any_merchant_and_must_name_it_on_create(api, operator, shop_a, shop_b):
    client = api(operator)
    response = client.patch(
        f"/api/products/{shop_b.product.pk}/", {"title": "By operator"}, format="json"
    )
    assert response.status_code == 200, response.content
    missing = client.post("/api/categories/", {"name": "N", "slug": "n"}, format="json")
    assert "merchant" in assert_error(missing, 400, "invalid")["extra"]["fields"]
    created = client.post(
        "/api/categories/",
        {"name": "N", "slug": "n", "merchant": shop_b.merchant.pk},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert Category.objects.get(pk=created.json()["id"]).merchant == shop_b.merchant


# -- roles --------------------------------------------------------------------------------------


@pytest.mark.parametrize("resource", ALL)
def test_support_reads(api, shop_a, resource):
    client = api(shop_a.support)
    assert list_ids(client, resource) == {object_id(shop_a, resource)}
    assert client.get(f"/api/{resource}/{object_id(shop_a, resource)}/").status_code == 200


@pytest.mark.parametrize("resource", CRUD)
@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_support_cannot_write_catalog(api, shop_a, resource, method):
    client = api(shop_a.support)
    if method == "post":
        response = client.post(f"/api/{resource}/", valid_body(shop_a, resource), format="json")
    else:
        url = f"/api/{resource}/{object_id(shop_a, resource)}/"
        kwargs = {} if method == "delete" else {"data": valid_body(shop_a, resource)}
        response = getattr(client, method)(url, format="json", **kwargs)
    assert_error(response, 403, "permission_denied")
    assert Product.objects.filter(pk=shop_a.product.pk, title=shop_a.product.title).exists()
    assert Variant.objects.filter(pk=shop_a.variant.pk, sku=shop_a.variant.sku).exists()


def test_support_cannot_cancel_orders(api, shop_a):
    response = api(shop_a.support).post(
        f"/api/orders/{shop_a.order.pk}/cancel/", ORDER_ACTIONS["cancel"], format="json"
    )
    assert_error(response, 403, "permission_denied")
    shop_a.order.refresh_from_db()
    assert shop_a.order.status == Order.Status.PAID


def test_support_ships_orders_and_adds_notes_like_in_the_admin(api, shop_a):
    client = api(shop_a.support)
    response = client.post(
        f"/api/orders/{shop_a.order.pk}/fulfil/", ORDER_ACTIONS["fulfil"], format="json"
    )
    assert response.status_code == 201, response.json()
    shop_a.order.refresh_from_db()
    assert shop_a.order.status == Order.Status.FULFILLED
    response = client.post(
        f"/api/orders/{shop_a.order.pk}/notes/", ORDER_ACTIONS["notes"], format="json"
    )
    assert response.status_code == 201, response.json()


def test_role_is_checked_per_merchant(api, shop_a, shop_b):
    """A manager of A who is support in B edits A but only reads B."""
    user = shop_a.manager
    shop_b.merchant.memberships.create(user=user, role="support")
    client = api(user)
    assert client.get(f"/api/products/{shop_b.product.pk}/").status_code == 200
    response = client.patch(f"/api/products/{shop_b.product.pk}/", {"title": "x"}, format="json")
    assert_error(response, 403, "permission_denied")
    response = client.post(
        "/api/categories/",
        {"name": "N", "slug": "n", "merchant": shop_b.merchant.pk},
        format="json",
    )
    assert_error(response, 403, "permission_denied")
    response = client.patch(f"/api/products/{shop_a.product.pk}/", {"title": "x"}, format="json")
    assert response.status_code == 200
    shop_a.product.refresh_from_db()
    title_b = type(shop_b.product).objects.get(pk=shop_b.product.pk).title
    assert (shop_a.product.title, title_b) == ("x", shop_b.product.title)
    assert not shop_b.merchant.categories.filter(slug="n").exists()


def test_staff_of_several_merchants_must_name_the_merchant(api, shop_a, shop_b):
    user = shop_a.manager
    shop_b.merchant.memberships.create(user=user, role="manager")
    client = api(user)
    missing = client.post("/api/products/", {"title": "T", "handle": "t"}, format="json")
    assert "merchant" in assert_error(missing, 400)["extra"]["fields"]
    response = client.post(
        "/api/products/",
        {"title": "T", "handle": "t", "merchant": shop_b.merchant.pk},
        format="json",
    )
    assert response.status_code == 201, response.content


# -- anonymous and shopless callers -------------------------------------------------------------


def _every_request(shop):
    for resource in ALL:
        yield "get", f"/api/{resource}/"
        yield "get", f"/api/{resource}/{object_id(shop, resource)}/"
    for resource in CRUD:
        yield "post", f"/api/{resource}/"
        for method in ("put", "patch", "delete"):
            yield method, f"/api/{resource}/{object_id(shop, resource)}/"
    for action in ORDER_ACTIONS:
        yield "post", f"/api/orders/{shop.order.pk}/{action}/"


def test_anonymous_gets_401_with_token_challenge_everywhere(api, shop_a):
    client = api()
    for method, url in _every_request(shop_a):
        response = getattr(client, method)(url, {}, format="json")
        assert_error(response, 401, "not_authenticated")
        assert response["WWW-Authenticate"] == "Token", (method, url)


def test_bad_token_gets_401(api, shop_a):
    client = api()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = client.get("/api/products/")
    assert_error(response, 401, "authentication_failed")
    assert response["WWW-Authenticate"] == "Token"


def test_user_without_shop_gets_403_everywhere(api, shop_a):
    user = staff_create(merchant=shop_a.merchant)
    user.memberships.all().delete()
    client = api(user)
    for method, url in _every_request(shop_a):
        response = getattr(client, method)(url, {}, format="json")
        assert_error(response, 403, "permission_denied")


def test_staff_of_inactive_merchant_gets_403(api, shop_a):
    shop_a.merchant.is_active = False
    shop_a.merchant.save(update_fields=["is_active"])
    assert_error(api(shop_a.manager).get("/api/products/"), 403, "permission_denied")


def test_not_found_message_is_plain(api, shop_a, shop_b):
    response = api(shop_a.manager).get(f"/api/products/{shop_b.product.pk}/")
    assert response.status_code == 404
    assert response.json()["message"] == "Not found."
