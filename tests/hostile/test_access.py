"""Every admin, API and dashboard URL, tried as an anonymous visitor and as another merchant's
staff.

The URLs are not listed by hand: they come from the URL resolver (everything under ``/admin/``,
``/api/`` and ``/dashboard/``), so a page added tomorrow is tried tomorrow. Each pattern is
turned into a concrete URL aimed at merchant A's rows (its order, customer, product, payment,
refund, page...), and then:

- **anonymous**: the admin and the dashboard send the visitor to their login page, the API
  answers 401/403; nothing of merchant A is in any answer;
- **merchant B's owner** (signed in for the admin and the dashboard, by token for the API):
  never a 5xx, and no answer holds merchant A's data (names, emails, order numbers, page name);
  every write (POST/PUT/PATCH/DELETE, admin bulk actions on A's ids, forms naming A's rows)
  leaves every existing row of A as it was and creates nothing that belongs to A.

Merchant A's rows carry the marker ``Qzalpha`` in every text a page could show, so a leak is a
substring search.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from commerce.models import (
    Category,
    Customer,
    Order,
    Product,
    ShippingMethod,
    Variant,
)
from messenger.models import MessengerPage
from payments.models import Payment
from tests.factories import api_token_create
from tests.hostile.tenancy import (
    SEARCH,
    World,
    assert_no_leak,
    assert_untouched,
    rows_of,
    snapshot,
    world,  # noqa: F401  (fixture)
)

pytestmark = [pytest.mark.hostile, pytest.mark.django_db]

AREAS = ("admin/", "api/", "dashboard/")
# Pages meant for visitors who are not signed in (and the API's description of itself).
PUBLIC = {
    "admin:login",
    "admin:logout",
    "api-schema",
    "api-docs",
    "api-token",
    "dashboard:login",
    "dashboard:logout",
}
# Models of the development stand-ins (``SANDBOX_ENABLED``): no merchant data, never deployed.
SANDBOX_APPS = {"sandbox_meta", "sandbox_stripe"}


# -- the routes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    template: str  # "admin/commerce/order/<path:object_id>/change/"
    name: str  # "admin:commerce_order_change"
    pattern: URLPattern

    @property
    def area(self) -> str:
        return self.template.split("/", 1)[0]


def _walk(patterns, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        else:
            name = f"{namespace}{pattern.name}" if pattern.name else ""
            yield Route(prefix + str(pattern.pattern), name, pattern)


def routes() -> list[Route]:
    """Every route of the three areas, the admin's catch-all redirect excluded."""
    found = [r for r in _walk(get_resolver().url_patterns) if r.template.startswith(AREAS)]
    return [r for r in found if "(?P<url>" not in r.template]


# -- concrete URLs ---------------------------------------------------------------------------------

_PARAM = re.compile(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>|\(\?P<(?P<rname>\w+)>(?P<rx>[^)]*)\)")


def _model_of(route: Route) -> type[models.Model] | None:
    """The model a route works on: the admin's ``<app>/<model>/``, a DRF view's queryset, or the
    word before the id (``orders/<id>``, ``conversations/<id>`` is a customer)."""
    parts = route.template.split("/")
    if route.area == "admin" and len(parts) > 3:
        try:
            return apps.get_model(parts[1], parts[2])
        except (LookupError, ValueError):
            pass
    view = getattr(route.pattern.callback, "cls", None)
    queryset = getattr(view, "queryset", None)
    if queryset is not None:
        return queryset.model
    words = {"orders": Order, "conversations": Customer, "customers": Customer}
    for part in parts:
        if part.strip("^$") in words:
            return words[part.strip("^$")]
    return None


def url_for(route: Route, world: World) -> str:
    """``route`` with its parameters filled for merchant A's rows."""
    target = world.object_for(_model_of(route))

    def fill(match: re.Match) -> str:
        name = match.group("name") or match.group("rname")
        rx = match.group("rx") or ""
        if "|" in rx:  # the admin's app index: one of the app labels
            return rx.split("|")[0]
        if name == "content_type_id":
            return str(ContentType.objects.get_for_model(Order).pk)
        if name == "customer_id":
            return str(world.objects[Customer].pk)
        if name == "order_id":
            return str(world.objects[Order].pk)
        if name == "id" and route.area == "admin":  # auth/user/<id>/password/
            return str(world.a_staff.pk)
        return str(target.pk)

    return "/" + _PARAM.sub(fill, route.template).replace("^", "").replace("$", "")


# -- anonymous -------------------------------------------------------------------------------------


def test_the_three_areas_have_routes():
    areas = {route.area for route in routes()}
    assert {"admin", "api", "dashboard"} <= areas
    assert len(routes()) > 50


def test_every_route_turns_anonymous_visitors_away(world):
    client = Client()
    before, owned = snapshot(), rows_of(world.a)
    for route in routes():
        if route.name in PUBLIC:
            continue
        url = url_for(route, world)
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            what = f"anonymous {method.upper()} {url}"
            assert_no_leak(world, response, what)
            if route.area == "api":
                assert response.status_code in (401, 403), what
            elif response.status_code != 405:  # a method the page does not take at all
                assert response.status_code == 302, f"{what}: {response.status_code}"
                assert "login" in response["Location"], what
    assert_untouched(world, before, owned, "anonymous")


# -- merchant B's staff ----------------------------------------------------------------------------


def _form_data(world: World, route: Route, action: str = "") -> dict:
    """A form that names merchant A's rows everywhere a form could."""
    o = world.objects
    target = world.object_for(_model_of(route))
    data = {
        "merchant": world.a.pk,
        "order": o[Order].pk,
        "customer": o[Customer].pk,
        "product": o[Product].pk,
        "variant": o[Variant].pk,
        "payment": o[Payment].pk,
        "category": o[Category].pk,
        "shipping_method": o[ShippingMethod].pk,
        "page": o[MessengerPage].pk,
        "user": world.a_staff.pk,
        "amount": "1.00",
        "amount_minor": 100,
        "quantity": 1,
        "text": "hello",
        "note": "note",
        "reason": "because",
        "carrier": "DHL",
        "tracking_url": "https://track.example.com/1",
        "post": "yes",
        "_selected_action": [target.pk],
        "select_across": "0",
        "index": "0",
    }
    if action:
        data["action"] = action
    return data


def _admin_actions(route: Route) -> list[str]:
    model = _model_of(route)
    model_admin = admin.site._registry.get(model)
    if model_admin is None or not route.name.endswith("_changelist"):
        return [""]
    names = ["delete_selected"]
    for action in model_admin.actions or []:
        names.append(action if isinstance(action, str) else action.__name__)
    return names


@pytest.fixture
def as_b(world) -> dict[str, Client]:
    browser = Client()
    browser.force_login(world.b_owner)
    api = Client(HTTP_AUTHORIZATION=f"Token {api_token_create(user=world.b_owner)}")
    return {"admin": browser, "dashboard": browser, "api": api}


def test_other_merchants_staff_never_read_merchant_a(world, as_b):
    for route in routes():
        if route.name in PUBLIC or (route.template.split("/")[1] in SANDBOX_APPS):
            continue
        url = url_for(route, world)
        client = as_b[route.area]
        assert_no_leak(world, client.get(url), f"B GET {url}")
        if route.name.endswith("_changelist"):
            for query in (f"?q={SEARCH}", f"?merchant__id__exact={world.a.pk}"):
                assert_no_leak(world, client.get(url + query), f"B GET {url}{query}")
        if route.area == "dashboard":
            query = f"?merchant={world.a.slug}"
            assert_no_leak(world, client.get(url + query), f"B GET {url}{query}")
        if route.area == "api" and "(?P<pk>" not in route.template:
            for query in (f"?search={SEARCH}", f"?merchant={world.a.pk}"):
                assert_no_leak(world, client.get(url + query), f"B GET {url}{query}")


def test_other_merchants_staff_never_change_merchant_a(world, as_b):
    before, owned = snapshot(), rows_of(world.a)
    for route in routes():
        if route.name in PUBLIC or (route.template.split("/")[1] in SANDBOX_APPS):
            continue
        url = url_for(route, world)
        client = as_b[route.area]
        if route.area == "api":
            data = _form_data(world, route)
            for method in ("post", "put", "patch", "delete"):
                response = getattr(client, method)(url, data=data, content_type="application/json")
                assert_no_leak(world, response, f"B {method.upper()} {url}")
            continue
        for action in _admin_actions(route):
            response = client.post(url, data=_form_data(world, route, action))
            assert_no_leak(world, response, f"B POST {url} {action}")
    assert_untouched(world, before, owned, "merchant B's owner")


def test_admin_autocomplete_never_offers_merchant_a_rows(world, as_b):
    browser = as_b["admin"]
    tried = 0
    for model, model_admin in admin.site._registry.items():
        for field_name in model_admin.autocomplete_fields:
            tried += 1
            response = browser.get(
                "/admin/autocomplete/",
                {
                    "term": SEARCH,
                    "app_label": model._meta.app_label,
                    "model_name": model._meta.model_name,
                    "field_name": field_name,
                },
            )
            assert_no_leak(world, response, f"autocomplete {model.__name__}.{field_name}")
    assert tried, "no admin uses autocomplete: drop this test"
