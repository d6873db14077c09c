"""Catalog, customers and carts over the REST API; the token endpoint; schema and docs pages."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from commerce.api.views import TokenThrottle
from commerce.models import (
    ApiToken,
    Cart,
    CartLine,
    Category,
    Order,
    Product,
    ProductImage,
    StockReservation,
    Variant,
    Voucher,
)
from commerce.selectors.carts import cart_price
from tests.commerce.api.conftest import order_create, png_bytes
from tests.factories import (
    api_token_of,
    category_create,
    customer_create,
    product_create,
    variant_create,
)

pytestmark = pytest.mark.django_db


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def ids(response) -> list[int]:
    return [row["id"] for row in results(response)]


# -- products -----------------------------------------------------------------------------------


def test_product_detail_nests_variants_with_prices_and_absolute_image_urls(api, shop_a):
    body = api(shop_a.manager).get(f"/api/products/{shop_a.product.pk}/").json()
    assert body["merchant"] == shop_a.merchant.pk
    assert body["category"] == shop_a.category.pk
    [variant] = body["variants"]
    assert variant["sku"] == shop_a.variant.sku
    assert variant["price_minor"] == 1500
    assert variant["price"] == {"amount_minor": 1500, "currency": "USD", "formatted": "$15.00"}
    assert variant["stock_available"] == 5
    [image] = body["images"]
    assert image["url"].startswith("http://testserver/media/products/")
    assert (image["width"], image["height"]) == (8, 8)


def test_price_is_formatted_in_the_requested_language(api, shop_b):
    client = api(shop_b.manager)
    response = client.get(f"/api/variants/{shop_b.variant.pk}/", HTTP_ACCEPT_LANGUAGE="ar")
    price = response.json()["price"]
    assert price["amount_minor"] == 1500 and price["currency"] == "KWD"
    assert "1.500" in price["formatted"] or "١٫٥٠٠" in price["formatted"]


def test_product_filters(api, shop_a):
    merchant = shop_a.merchant
    shoes = category_create(merchant=merchant, name="Shoes")
    boot = product_create(merchant=merchant, category=shoes, title="Boot")
    variant_create(product=boot, stock=3)
    sold_out = product_create(merchant=merchant, category=shoes, title="Sandal")
    variant_create(product=sold_out, stock=2, stock_reserved=2)
    hidden = product_create(merchant=merchant, title="Hidden", is_active=False)
    client = api(shop_a.manager)

    assert set(ids(client.get(f"/api/products/?category={shoes.pk}"))) == {boot.pk, sold_out.pk}
    assert ids(client.get("/api/products/?is_active=false")) == [hidden.pk]
    assert set(ids(client.get("/api/products/?in_stock=true"))) == {shop_a.product.pk, boot.pk}
    assert set(ids(client.get("/api/products/?in_stock=false"))) == {sold_out.pk, hidden.pk}
    assert ids(client.get(f"/api/products/?category={shoes.pk}&in_stock=true")) == [boot.pk]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Boot", "boot"),
        ("حذاء", "boot"),  # title_ar
        ("leather-boot", "boot"),  # handle
        ("SKU-BOOT-42", "boot"),  # a variant's SKU
        ("Hidden", "hidden"),
    ],
)
def test_product_search(api, shop_a, query, expected):
    boot = Product.objects.create(
        merchant=shop_a.merchant, title="Boot", title_ar="حذاء جلد", handle="leather-boot"
    )
    variant_create(product=boot, sku="SKU-BOOT-42")
    variant_create(product=boot, sku="SKU-BOOT-43")
    hidden = product_create(merchant=shop_a.merchant, title="Hidden")
    products = {"boot": boot, "hidden": hidden}
    assert ids(api(shop_a.manager).get(f"/api/products/?search={query}")) == [products[expected].pk]


def test_product_ordering(api, shop_a):
    shop_a.product.delete()
    for title in ("b", "c", "a"):
        product_create(merchant=shop_a.merchant, title=title)
    client = api(shop_a.manager)
    titles = [row["title"] for row in results(client.get("/api/products/?ordering=-title"))]
    assert titles == ["c", "b", "a"]
    titles = [row["title"] for row in results(client.get("/api/products/?ordering=title"))]
    assert titles == ["a", "b", "c"]


def test_products_list_queries_do_not_grow_with_the_catalog(
    api, shop_a, django_assert_max_num_queries
):
    for _ in range(30):
        product = product_create(merchant=shop_a.merchant, category=shop_a.category)
        variant_create(product=product)
        variant_create(product=product)
        ProductImage.objects.create(
            product=product, image=SimpleUploadedFile("a.png", png_bytes(), "image/png")
        )
    client = api(shop_a.manager)
    # token + operator group + memberships + count + products + variants + images
    with django_assert_max_num_queries(7):
        response = client.get("/api/products/")
    assert response.json()["count"] == 31
    assert sum(len(row["variants"]) for row in response.json()["results"]) == 61


def test_pagination_defaults_to_50_and_page_size_is_capped_at_200(api, shop_a):
    Product.objects.bulk_create(
        Product(merchant=shop_a.merchant, title=f"P{i}", handle=f"p-{i}") for i in range(249)
    )
    client = api(shop_a.manager)
    first = client.get("/api/products/").json()
    assert first["count"] == 250 and len(first["results"]) == 50 and first["next"]
    assert len(client.get("/api/products/?page_size=10").json()["results"]) == 10
    assert len(client.get("/api/products/?page_size=1000").json()["results"]) == 200
    assert client.get("/api/products/?page=99").json()["code"] == "not_found"


def test_create_update_and_delete_a_product(api, shop_a):
    client = api(shop_a.manager)
    response = client.post(
        "/api/products/",
        {"title": "Linen shirt", "handle": "linen-shirt", "category": shop_a.category.pk},
        format="json",
    )
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["merchant"] == shop_a.merchant.pk
    assert created["variants"] == [] and created["images"] == []

    url = f"/api/products/{created['id']}/"
    response = client.put(
        url, {"title": "Linen shirt II", "handle": "linen-shirt", "category": None}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["category"] is None
    response = client.patch(url, {"is_active": False}, format="json")
    assert response.json()["is_active"] is False and response.json()["title"] == "Linen shirt II"
    assert client.delete(url).status_code == 204
    assert not Product.objects.filter(pk=created["id"]).exists()


def test_duplicate_handle_is_400_with_its_code(api, shop_a, shop_b):
    client = api(shop_a.manager)
    response = client.post(
        "/api/products/", {"title": "x", "handle": shop_a.product.handle}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "duplicate_handle"
    assert "handle" in response.json()["extra"]["fields"]
    # Another shop's handle is free to reuse (and saying otherwise would leak it).
    response = client.post(
        "/api/products/", {"title": "x", "handle": shop_b.product.handle}, format="json"
    )
    assert response.status_code == 201


def test_merchant_of_a_product_cannot_change(api, operator, shop_a, shop_b):
    response = api(operator).patch(
        f"/api/products/{shop_a.product.pk}/", {"merchant": shop_b.merchant.pk}, format="json"
    )
    assert response.status_code == 400
    assert "merchant" in response.json()["extra"]["fields"]


def test_product_with_category_of_another_shop_is_refused_even_for_operators(
    api, operator, shop_a, shop_b
):
    response = api(operator).post(
        "/api/products/",
        {
            "title": "x",
            "handle": "x",
            "merchant": shop_a.merchant.pk,
            "category": shop_b.category.pk,
        },
        format="json",
    )
    assert response.status_code == 400
    assert "category" in response.json()["extra"]["fields"]


def test_deleting_a_product_with_reserved_stock_is_409(api, shop_a):
    StockReservation.objects.create(
        variant=shop_a.variant,
        order=shop_a.order,
        quantity=1,
        expires_at=timezone.now() + timedelta(minutes=5),
    )
    response = api(shop_a.manager).delete(f"/api/products/{shop_a.product.pk}/")
    assert response.status_code == 409
    assert response.json()["code"] == "protected"
    assert Product.objects.filter(pk=shop_a.product.pk).exists()


# -- variants -----------------------------------------------------------------------------------


def _variant_body(shop, **overrides) -> dict:
    return {
        "product": shop.product.pk,
        "name": "L",
        "sku": "TEE-L",
        "price_minor": 2500,
    } | overrides


def test_create_variant_defaults_to_the_shop_currency(api, shop_b):
    response = api(shop_b.manager).post("/api/variants/", _variant_body(shop_b), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["currency"] == "KWD" and body["merchant"] == shop_b.merchant.pk
    assert body["price"]["amount_minor"] == 2500 and body["price"]["currency"] == "KWD"
    assert Variant.objects.get(pk=body["id"]).merchant == shop_b.merchant


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"price_minor": -1}, "price_minor"),
        ({"stock_on_hand": -1}, "stock_on_hand"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "usd"}, "currency"),
        ({"price_minor": "12.50"}, "price_minor"),
        ({"price_minor": 2**63}, "price_minor"),
        ({"options": ["M"]}, "options"),
        ({"options": {"size": 3}}, "options"),
        ({"options": {"size": "M\x00"}}, "options"),
        ({"sku": ""}, "sku"),
    ],
)
def test_invalid_variant_is_400(api, shop_a, overrides, field):
    response = api(shop_a.manager).post(
        "/api/variants/", _variant_body(shop_a, **overrides), format="json"
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["extra"]["fields"]


def test_duplicate_sku_within_the_shop_is_400_with_code(api, shop_a, shop_b):
    client = api(shop_a.manager)
    response = client.post(
        "/api/variants/", _variant_body(shop_a, sku=shop_a.variant.sku), format="json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "duplicate_sku"
    assert "sku" in response.json()["extra"]["fields"]
    # The same SKU in another shop is fine.
    response = client.post(
        "/api/variants/", _variant_body(shop_a, sku=shop_b.variant.sku), format="json"
    )
    assert response.status_code == 201
    # Saving a variant with its own SKU is not a duplicate.
    response = client.put(
        f"/api/variants/{shop_a.variant.pk}/",
        _variant_body(shop_a, sku=shop_a.variant.sku, price_minor=99),
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["price"]["amount_minor"] == 99


def test_stock_reserved_is_read_only(api, shop_a):
    response = api(shop_a.manager).patch(
        f"/api/variants/{shop_a.variant.pk}/",
        {"stock_reserved": 4, "stock_on_hand": 7},
        format="json",
    )
    assert response.status_code == 200
    shop_a.variant.refresh_from_db()
    assert (shop_a.variant.stock_on_hand, shop_a.variant.stock_reserved) == (7, 0)


def test_variant_filters(api, shop_a):
    other = variant_create(product=shop_a.product, stock=0, is_active=False)
    client = api(shop_a.manager)
    assert ids(client.get("/api/variants/?in_stock=true")) == [shop_a.variant.pk]
    assert ids(client.get("/api/variants/?is_active=false")) == [other.pk]
    assert ids(client.get(f"/api/variants/?sku={other.sku}")) == [other.pk]
    assert client.get("/api/variants/?product=abc").status_code == 400


# -- categories ---------------------------------------------------------------------------------


def test_category_crud_and_cycles(api, shop_a):
    client = api(shop_a.manager)
    parent = client.post("/api/categories/", {"name": "Men", "slug": "men"}, format="json").json()
    child = client.post(
        "/api/categories/",
        {"name": "Shirts", "slug": "men-shirts", "parent": parent["id"]},
        format="json",
    ).json()
    assert child["parent"] == parent["id"]
    response = client.patch(
        f"/api/categories/{parent['id']}/", {"parent": child["id"]}, format="json"
    )
    assert response.status_code == 400 and "parent" in response.json()["extra"]["fields"]
    response = client.patch(
        f"/api/categories/{parent['id']}/", {"parent": parent["id"]}, format="json"
    )
    assert response.status_code == 400
    response = client.post("/api/categories/", {"name": "Again", "slug": "men"}, format="json")
    assert response.json()["code"] == "duplicate_slug"
    assert client.delete(f"/api/categories/{parent['id']}/").status_code == 204
    assert Category.objects.get(pk=child["id"]).parent is None


# -- customers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["Layla", "Haddad", "layla@example.com", "+96550012345"])
def test_customer_search(api, shop_a, query):
    layla = customer_create(
        merchant=shop_a.merchant,
        first_name="Layla",
        last_name="Haddad",
        email="layla@example.com",
        phone="+96550012345",
    )
    assert ids(api(shop_a.manager).get(f"/api/customers/?search={query}")) == [layla.pk]


def test_customers_are_read_only(api, shop_a):
    client = api(shop_a.manager)
    count = type(shop_a.customer).objects.count()
    assert client.post("/api/customers/", {}, format="json").status_code == 405
    url = f"/api/customers/{shop_a.customer.pk}/"
    assert client.patch(url, {"email": "x@example.com"}, format="json").status_code == 405
    assert type(shop_a.customer).objects.count() == count
    email = shop_a.customer.email
    shop_a.customer.refresh_from_db()
    assert shop_a.customer.email == email != "x@example.com"


# -- carts --------------------------------------------------------------------------------------


def test_cart_detail_has_lines_and_a_computed_price(api, shop_a):
    body = api(shop_a.manager).get(f"/api/carts/{shop_a.cart.pk}/").json()
    [line] = body["lines"]
    assert line["sku"] == shop_a.variant.sku and line["quantity"] == 2
    assert line["unit_price"]["amount_minor"] == 1500
    assert line["total"]["amount_minor"] == 3000
    assert body["price"]["total"] == {
        "amount_minor": 3000,
        "currency": "USD",
        "formatted": "$30.00",
    }
    assert body["price"]["voucher_code"] is None
    assert body["customer"]["id"] == shop_a.customer.pk


def test_empty_cart_has_no_price(api, shop_a):
    shop_a.cart.lines.all().delete()
    client = api(shop_a.manager)
    assert client.get(f"/api/carts/{shop_a.cart.pk}/").json()["price"] is None
    assert results(client.get("/api/carts/"))[0]["price"] is None


def test_cart_list_and_detail_agree(api, shop_a):
    """The list prices carts from rows loaded in bulk; the detail uses ``cart_price``."""
    merchant = shop_a.merchant
    merchant.tax_rate_bp = 500
    merchant.save(update_fields=["tax_rate_bp"])
    Voucher.objects.create(merchant=merchant, code="TEN", kind="percentage", percent_bp=1000)
    Voucher.objects.create(
        merchant=merchant, code="OLD", kind="percentage", percent_bp=1000, is_active=False
    )
    for code in ("TEN", "OLD", "GONE"):
        cart = Cart.objects.create(
            merchant=merchant, customer=customer_create(merchant=merchant), voucher_code=code
        )
        CartLine.objects.create(cart=cart, variant=shop_a.variant, quantity=3)
        inactive = variant_create(product=shop_a.product, is_active=False)
        CartLine.objects.create(cart=cart, variant=inactive, quantity=1)
    client = api(shop_a.manager)
    listed = {row["id"]: row["price"] for row in results(client.get("/api/carts/"))}
    assert len(listed) == 4
    for cart in Cart.objects.filter(merchant=merchant):
        assert client.get(f"/api/carts/{cart.pk}/").json()["price"] == listed[cart.pk]
        assert listed[cart.pk]["total"]["amount_minor"] == cart_price(cart=cart).total.amount_minor
    ten = Cart.objects.get(voucher_code="TEN")
    assert listed[ten.pk]["voucher_code"] == "TEN"
    assert listed[ten.pk]["discount"]["amount_minor"] == 450


def test_carts_list_queries_do_not_grow(api, shop_a, django_assert_max_num_queries):
    for i in range(20):
        cart = Cart.objects.create(
            merchant=shop_a.merchant,
            customer=customer_create(merchant=shop_a.merchant),
            voucher_code="TEN" if i % 2 else "",
        )
        CartLine.objects.create(
            cart=cart, variant=variant_create(product=shop_a.product), quantity=1
        )
        CartLine.objects.create(cart=cart, variant=shop_a.variant, quantity=1)
    Voucher.objects.create(merchant=shop_a.merchant, code="TEN", kind="percentage", percent_bp=1000)
    client = api(shop_a.manager)
    # token + group + memberships + count + carts + lines + vouchers
    with django_assert_max_num_queries(7):
        response = client.get("/api/carts/")
    assert response.json()["count"] == 21


def test_customers_list_queries(api, shop_a, django_assert_max_num_queries):
    for _ in range(20):
        customer_create(merchant=shop_a.merchant)
    client = api(shop_a.manager)
    # token + group + memberships + count + customers
    with django_assert_max_num_queries(5):
        assert client.get("/api/customers/").json()["count"] == 21


# -- tokens -------------------------------------------------------------------------------------


def test_staff_gets_a_token_that_authenticates(api, shop_a):
    response = api().post(
        "/api/auth/token/",
        {"username": shop_a.manager.username, "password": "pw-123456789"},
        format="json",
    )
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    assert api_token_of(token).user == shop_a.manager
    client = api()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/products/").status_code == 200


@pytest.mark.parametrize("case", ["wrong_password", "not_staff", "inactive", "unknown"])
def test_token_is_refused_with_one_answer(api, shop_a, django_user_model, case):
    user = shop_a.manager
    password = "pw-123456789"
    if case == "wrong_password":
        password = "nope"
    elif case == "not_staff":
        user.is_staff = False
        user.save()
    elif case == "inactive":
        user.is_active = False
        user.save()
    username = "nobody" if case == "unknown" else user.username
    response = api().post(
        "/api/auth/token/", {"username": username, "password": password}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "message": "Unable to log in with these credentials.",
        "code": "invalid_credentials",
        "extra": {},
    }
    assert not ApiToken.objects.exists()


def test_token_endpoint_locks_a_username_and_address_after_five_failures(api, shop_a):
    """The shared login lockout (5 failures) comes before the endpoint's own rate limit (10 a
    minute): the sixth try is refused even with the right password, and no token is issued."""
    client = api()
    body = {"username": shop_a.manager.username, "password": "wrong"}
    statuses = [client.post("/api/auth/token/", body, format="json").status_code for _ in range(5)]
    assert statuses == [400] * 5

    response = client.post("/api/auth/token/", {**body, "password": "pw-123456789"}, format="json")

    assert response.status_code == 429
    assert response.json()["code"] == "locked_out"
    assert response.json()["message"] == "Too many failed attempts. Try again in 15 minutes."
    assert 0 < int(response["Retry-After"]) <= 15 * 60
    assert not ApiToken.objects.exists()


def test_token_throttle_ignores_forged_forwarded_for(api, shop_a):
    client = api()
    body = {"username": "someone", "password": "wrong"}
    statuses = [
        client.post(
            "/api/auth/token/",
            {**body, "username": f"user{i}"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"10.0.0.{i}",
        ).status_code
        for i in range(11)
    ]
    assert statuses == [400] * 10 + [429]


def test_token_throttle_per_username_across_addresses(api, shop_a):
    client = api()
    body = {"username": shop_a.manager.username, "password": "wrong"}
    statuses = [
        client.post("/api/auth/token/", body, format="json", REMOTE_ADDR=f"10.0.0.{i}").status_code
        for i in range(11)
    ]
    assert statuses == [400] * 10 + [429]


def test_token_throttle_fails_open_without_its_cache(api, shop_a, monkeypatch):
    class Down:
        def get(self, *args, **kwargs):
            raise ConnectionError("redis is down")

        set = get

    monkeypatch.setattr(TokenThrottle, "cache", Down())
    response = api().post(
        "/api/auth/token/",
        {"username": shop_a.manager.username, "password": "pw-123456789"},
        format="json",
    )
    assert response.status_code == 200


def test_token_endpoint_malformed_json_is_400(api):
    response = api().post("/api/auth/token/", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_token_endpoint_missing_fields_is_400(api):
    response = api().post("/api/auth/token/", {"username": "x"}, format="json")
    assert response.status_code == 400
    assert "password" in response.json()["extra"]["fields"]


# -- schema and docs ----------------------------------------------------------------------------


def test_schema_lists_every_endpoint(api):
    response = api().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    assert set(paths) == {
        "/api/auth/token/",
        "/api/categories/",
        "/api/categories/{id}/",
        "/api/products/",
        "/api/products/{id}/",
        "/api/variants/",
        "/api/variants/{id}/",
        "/api/customers/",
        "/api/customers/{id}/",
        "/api/carts/",
        "/api/carts/{id}/",
        "/api/orders/",
        "/api/orders/{id}/",
        "/api/orders/{id}/fulfil/",
        "/api/orders/{id}/mark-delivered/",
        "/api/orders/{id}/cancel/",
        "/api/orders/{id}/notes/",
        "/api/orders/{id}/refunds/",
    }
    error_ref = {"$ref": "#/components/schemas/Error"}
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            errors = [code for code in responses if code.startswith("4")]
            assert errors, (path, method)
            for code in errors:
                assert responses[code]["content"]["application/json"]["schema"] == error_ref
            if path != "/api/auth/token/":
                assert {"401", "403"} <= set(responses), (path, method)
            if "{id}" in path:
                assert "404" in responses, (path, method)


def test_docs_render_from_local_assets_only(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    external = re.findall(r"""(?:src|href)=["'](https?:)?//""", html)
    assert external == [], external
    assert "cdn" not in html.lower()
    for asset in re.findall(r"""(?:src|href)=["']([^"']+)["']""", html):
        if asset.startswith("/static/"):
            assert client.get(asset).status_code == 200, asset


def test_orders_are_visible_to_staff_with_money(api, shop_a):
    order_create(merchant=shop_a.merchant, customer=shop_a.customer, variant=shop_a.variant)
    rows = results(api(shop_a.manager).get("/api/orders/"))
    assert rows[0]["total"]["currency"] == "USD"
    assert Order.objects.filter(merchant=shop_a.merchant).count() == 2


def test_product_image_upload_is_not_part_of_the_api(api, shop_a):
    """Images are managed in the admin; the API shows their URLs."""
    response = api(shop_a.manager).patch(
        f"/api/products/{shop_a.product.pk}/",
        {"images": [{"url": "http://evil.example/x.png"}], "png": png_bytes().hex()[:10]},
        format="json",
    )
    assert response.status_code == 200
    assert ProductImage.objects.filter(product=shop_a.product).count() == 1


@pytest.mark.parametrize("resource", ["variants", "categories"])
def test_variants_and_categories_lists_queries_do_not_grow(
    api, shop_a, resource, django_assert_max_num_queries
):
    for _ in range(25):
        category = category_create(merchant=shop_a.merchant, parent=shop_a.category)
        variant_create(product=product_create(merchant=shop_a.merchant, category=category))
    client = api(shop_a.manager)
    # token + group + memberships + count + rows
    with django_assert_max_num_queries(5):
        assert client.get(f"/api/{resource}/").json()["count"] == 26
