"""Schema-driven fuzzing: every operation of /api/schema/, called in-process with a staff token.

Schemathesis generates valid and invalid requests from the OpenAPI document (coverage phase:
boundary and type-confused values; fuzzing phase: random ones) and sends them to the WSGI
application. Whatever it sends, the API must answer without a 5xx, and its answers must match
what the schema documents (status codes, content types and bodies).

Bounded so it suits CI: a few examples per operation, derandomized (the same cases every run),
no deadline. Each operation is its own test with freshly seeded shops, and half of the generated
path ids are swapped for real rows of the caller's shop, so PUT/PATCH/DELETE and the order actions
are tried against existing objects too, not only against 404s.
"""

from __future__ import annotations

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.commerce.api.conftest import order_create, shop_create
from tests.factories import api_token_create

MAX_EXAMPLES = 12

pytestmark = pytest.mark.django_db


@pytest.fixture
def fuzz_shop(db):
    shop = shop_create("Fuzz")
    for status in ("pending_payment", "fulfilled", "cancelled"):
        order_create(
            merchant=shop.merchant, customer=shop.customer, variant=shop.variant, status=status
        )
    shop_create("Other")  # rows the token must never reach
    return shop


@pytest.fixture
def real_ids(fuzz_shop) -> dict[str, list[int]]:
    shop = fuzz_shop
    return {
        "categories": [shop.category.pk],
        "products": [shop.product.pk],
        "variants": [shop.variant.pk],
        "customers": [shop.customer.pk],
        "carts": [shop.cart.pk],
        "orders": list(shop.merchant.orders.values_list("pk", flat=True)),
    }


@pytest.fixture
def token(fuzz_shop) -> str:
    return api_token_create(user=fuzz_shop.manager)


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    """Requests run in this thread on the test's connection, inside its transaction, as with
    Django's test client: keep Django from closing that connection around each request."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


# Loaded when the module is collected (the schema view needs no database). Not through
# ``schemathesis.pytest.from_fixture``: its lazy runner writes ``Item._nodeid``, which pytest 9.2
# no longer has.
schema = schemathesis.openapi.from_wsgi("/api/schema/", WSGIHandler())


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_never_answers_5xx_and_matches_its_schema(case, token, real_ids):
    generated = str((case.path_parameters or {}).get("id", ""))
    if generated.isascii() and generated.isdigit() and int(generated) % 2 == 0:
        ids = real_ids[case.path.split("/")[2]]
        case.path_parameters["id"] = ids[int(generated) // 2 % len(ids)]
    case.call_and_validate(
        headers={"Authorization": f"Token {token}"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
