"""The REST API fuzzed from its OpenAPI schema by callers who must get nothing: anonymous
visitors, and another merchant's owner aiming every id at merchant A's rows.

``tests/commerce/api/test_schema_fuzz.py`` fuzzes every operation as the shop's own staff
(schema conformance, no 5xx). This module adds the two hostile callers, and checks that the
schema, which drives both, documents every route and method the API really serves: an endpoint
missing from the schema would be fuzzed by nobody.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import get_resolver
from hypothesis import HealthCheck, settings

from commerce.models import Cart, Category, Customer, Order, Product, Variant
from tests.factories import api_token_create
from tests.hostile.tenancy import (
    World,
    assert_no_leak,
    assert_untouched,
    rows_of,
    snapshot,
    world,  # noqa: F401  (fixture)
)

pytestmark = [pytest.mark.hostile, pytest.mark.django_db]

schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())
# Random cases only: the boundary values of the coverage phase are tried by the shop's own staff
# in tests/commerce/api/test_schema_fuzz.py; here what matters is who calls, not what is sent.
schema.config.phases.coverage.enabled = False

FUZZ = settings(
    max_examples=4,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
NOT_THE_API = {"api-schema", "api-docs", "api-root"}
COLLECTIONS = {
    "categories": Category,
    "products": Product,
    "variants": Variant,
    "customers": Customer,
    "carts": Cart,
    "orders": Order,
}


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Schemathesis calls the WSGI application in this thread, on the test's connection and
    inside its transaction: keep Django from closing that connection around each request."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def _served() -> set[tuple[str, str]]:
    """(METHOD, /api/path/{}/) for every route and method the URL conf serves under /api/."""
    served = set()

    def walk(patterns, prefix=""):
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
                continue
            template = prefix + str(pattern.pattern)
            if not template.startswith("api/") or pattern.name in NOT_THE_API:
                continue
            path = re.sub(r"<[^>]+>|\(\?P<\w+>[^)]*\)", "{}", template)
            path = "/" + path.replace("^", "").replace("$", "")
            callback = pattern.callback
            if getattr(callback, "actions", None):  # a ViewSet route: method -> action
                methods = set(callback.actions)
            else:
                view = callback.cls
                methods = {m for m in view.http_method_names if hasattr(view, m)}
            served.update((m.upper(), path) for m in methods - {"options", "head"})

    walk(get_resolver().url_patterns)
    return served


def _documented() -> set[tuple[str, str]]:
    return {
        (op.method.upper(), re.sub(r"\{\w+\}", "{}", op.path))
        for op in (result.ok() for result in schema.get_all_operations())
    }


def test_the_schema_documents_every_api_route_and_method():
    served = _served()

    assert served, "no API routes found"
    assert served - _documented() == set(), "served but not in /api/schema/"


@schema.parametrize()
@FUZZ
def test_anonymous_callers_are_refused_by_every_operation(case, world):
    before, owned = _state_if_write(case, world)
    if "{id}" in case.path:
        collection = case.path.split("/")[2]
        case.path_parameters["id"] = world.object_for(COLLECTIONS.get(collection)).pk

    response = case.call()

    what = f"anonymous {case.method} {case.formatted_path}"
    assert response.status_code < 500, what
    if case.path != "/api/auth/token/":
        assert response.status_code in (401, 403), f"{what}: {response.status_code}"
    _no_leak(world, response, what)
    if before is not None:
        assert_untouched(world, before, owned, what)


@schema.parametrize()
@FUZZ
def test_another_merchants_owner_reaches_none_of_merchant_a(case, world):
    """Every id in the path is one of merchant A's rows (of the path's kind): B's owner gets
    404 or 403, lists hold none of A's rows, and nothing of A changes, whatever the body."""
    token = api_token_create(user=world.b_owner)
    before, owned = _state_if_write(case, world)
    aimed = "{id}" in case.path
    if aimed:
        collection = case.path.split("/")[2]
        case.path_parameters["id"] = world.object_for(COLLECTIONS.get(collection)).pk

    response = case.call(headers={"Authorization": f"Token {token}"})

    what = f"B {case.method} {case.formatted_path}"
    assert response.status_code < 500, what
    if aimed:
        assert response.status_code in (400, 403, 404), f"{what}: {response.status_code}"
    _no_leak(world, response, what)
    if before is not None:
        assert_untouched(world, before, owned, what)


def _state_if_write(case, world: World):
    if case.method.upper() == "GET":
        return None, None
    return snapshot(), rows_of(world.a)


class _Answer:
    """What ``assert_no_leak`` reads, from a schemathesis response."""

    def __init__(self, response):
        self.status_code = response.status_code
        self.content = response.content


def _no_leak(world: World, response, what: str) -> None:
    assert_no_leak(world, _Answer(response), what)
