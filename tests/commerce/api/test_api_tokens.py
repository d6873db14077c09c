"""API tokens and the one login lockout (issue 12, items 18 and 19).

- Tokens are stored as a hash and shown once; DRF's clear tokens of an existing installation are
  hashed by the migration and keep working until they expire.
- Tokens expire (``API_TOKEN_TTL_DAYS``) and can be revoked in the admin: your own, your staff's
  if you own the shop, anybody's if you are an operator.
- Every way of proving a password (dashboard and admin sign-in, the token endpoint, the admin's
  password change) counts towards, and obeys, one lockout per username and address.
"""

from __future__ import annotations

import hashlib
import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from commerce.models import ApiToken, MerchantMembership
from commerce.services.api_tokens import MAX_LIVE_TOKENS_PER_USER, api_token_issue
from tests.factories import (
    api_token_create,
    api_token_of,
    merchant_create,
    operator_create,
    staff_create,
)

pytestmark = pytest.mark.django_db

Role = MerchantMembership.Role
PASSWORD = "pw-123456789"  # the factories' password
ADDRESS = "203.0.113.9"
TOKEN_URL = "/api/auth/token/"
LOCKED = "Too many failed attempts. Try again in 15 minutes."


def token_post(username: str, password: str, address: str = ADDRESS):
    return APIClient().post(
        TOKEN_URL, {"username": username, "password": password}, format="json", REMOTE_ADDR=address
    )


def api_get(token: str, path: str = "/api/orders/"):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get(path)


def dashboard_login(client: Client, username: str, password: str, address: str = ADDRESS):
    return client.post(
        "/dashboard/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def admin_login(client: Client, username: str, password: str, address: str = ADDRESS):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


def text_in_database(needle: str) -> list[str]:
    """Every ``table.column`` of every installed model whose stored value contains ``needle``."""
    found = []
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        for field in model._meta.concrete_fields:
            if field.get_internal_type() not in {"CharField", "TextField", "JSONField"}:
                continue
            for value in model._default_manager.values_list(field.attname, flat=True):
                if value is not None and needle in str(value):
                    found.append(f"{model._meta.db_table}.{field.column}")
    return found


@pytest.fixture
def merchant(db):
    return merchant_create(name="Souq Token")


@pytest.fixture
def owner(merchant):
    return staff_create(merchant=merchant, role=Role.OWNER)


@pytest.fixture
def manager(merchant):
    return staff_create(merchant=merchant, role=Role.MANAGER)


@pytest.fixture
def support(merchant):
    return staff_create(merchant=merchant, role=Role.SUPPORT)


# -- item 18: hashed, shown once --------------------------------------------------------------


def test_the_token_is_shown_once_and_stored_only_as_its_hash(manager):
    first = token_post(manager.username, PASSWORD)
    second = token_post(manager.username, PASSWORD)

    assert first.status_code == second.status_code == 200, first.content
    token = first.json()["token"]
    assert second.json()["token"] != token  # never handed out again: a new one each time
    assert text_in_database(token) == []
    assert api_token_of(token).digest == hashlib.sha256(token.encode()).hexdigest()
    assert api_get(token).status_code == 200
    assert api_get(second.json()["token"]).status_code == 200


def test_a_clear_token_of_an_existing_installation_keeps_working_after_the_migration(manager):
    """DRF's ``authtoken_token`` rows (key in clear) become hashed tokens with the full
    lifetime from the migration on, and the clear table is dropped."""
    legacy_key = "4f2d8c0b6a1e3f5d7c9b2a4e6f8d0c1b3a5e7f9d"
    quote = connection.ops.quote_name
    with connection.schema_editor() as editor:
        editor.execute(
            f"CREATE TABLE {quote('authtoken_token')} ({quote('key')} varchar(40) PRIMARY KEY,"
            f" {quote('created')} timestamp with time zone NOT NULL,"
            f" {quote('user_id')} integer NOT NULL)"
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, %s, %s)",
            [legacy_key, timezone.now() - timedelta(days=400), manager.pk],
        )
    migration = importlib.import_module("commerce.migrations.0010_api_tokens_hashed")

    with connection.schema_editor() as editor:
        migration.legacy_tokens_hash(apps, editor)

    assert "authtoken_token" not in connection.introspection.table_names()
    assert text_in_database(legacy_key) == []
    assert api_get(legacy_key).status_code == 200
    row = api_token_of(legacy_key)
    assert row.user == manager
    assert row.expires_at > timezone.now() + timedelta(days=29)


def test_staff_issue_a_token_for_themselves_in_the_admin_and_see_it_once(manager):
    client = Client()
    client.force_login(manager)

    response = client.post("/admin/commerce/apitoken/add/", {"label": "Shopify sync"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    row = ApiToken.objects.get(user=manager)
    token = response.context["key"]
    assert token in response.content.decode()
    assert row.label == "Shopify sync" and row.digest == hashlib.sha256(token.encode()).hexdigest()
    listing = client.get("/admin/commerce/apitoken/").content.decode()
    assert row.prefix in listing and token not in listing
    assert token not in client.get(f"/admin/commerce/apitoken/{row.pk}/change/").content.decode()
    assert api_get(token).status_code == 200


# -- item 19: expiry --------------------------------------------------------------------------


def test_a_token_stops_working_when_it_expires(manager, settings):
    settings.API_TOKEN_TTL_DAYS = 30
    fresh = api_token_issue(user=manager, now=timezone.now() - timedelta(days=29)).key
    stale = api_token_issue(user=manager, now=timezone.now() - timedelta(days=31)).key

    refused = api_get(stale)

    assert api_get(fresh).status_code == 200
    assert refused.status_code == 401
    assert refused.json()["code"] == "token_expired"


def test_the_endpoint_says_when_its_token_expires(manager, settings):
    settings.API_TOKEN_TTL_DAYS = 7

    response = token_post(manager.username, PASSWORD)

    expires_at = api_token_of(response.json()["token"]).expires_at
    assert response.json()["expires_at"] == expires_at.isoformat().replace("+00:00", "Z")
    assert timedelta(days=7) - timedelta(minutes=5) < expires_at - timezone.now()
    assert expires_at - timezone.now() <= timedelta(days=7)


def test_an_eleventh_token_revokes_the_oldest(manager):
    keys = [api_token_create(user=manager) for _ in range(MAX_LIVE_TOKENS_PER_USER + 1)]

    assert api_get(keys[0]).status_code == 401
    assert all(api_get(key).status_code == 200 for key in keys[1:])


# -- item 19: revocation ----------------------------------------------------------------------


def revoke_in_admin(user, *tokens: ApiToken):
    client = Client()
    client.force_login(user)
    return client.post(
        "/admin/commerce/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk for token in tokens]},
        follow=True,
    )


def test_staff_revoke_their_own_token_in_the_admin(support):
    key = api_token_create(user=support)

    response = revoke_in_admin(support, api_token_of(key))

    assert "1 token revoked." in response.content.decode()
    assert api_get(key).status_code == 401
    assert api_token_of(key).revoked_by == support


def test_an_owner_revokes_their_staffs_tokens_and_nobody_else_s(owner, manager, merchant):
    staff_key = api_token_create(user=manager)
    stranger = staff_create(merchant=merchant_create(name="Other souq"), role=Role.MANAGER)
    stranger_key = api_token_create(user=stranger)
    operator = operator_create()
    MerchantMembership.objects.create(user=operator, merchant=merchant, role=Role.MANAGER)
    operator_key = api_token_create(user=operator)

    revoke_in_admin(owner, *ApiToken.objects.all())

    assert api_get(staff_key).status_code == 401
    assert api_get(stranger_key).status_code == 200  # another shop's staff
    assert api_get(operator_key).status_code == 200  # an operator's, even in this shop


def test_support_staff_neither_see_nor_revoke_a_colleagues_token(support, manager):
    key = api_token_create(user=manager)
    client = Client()
    client.force_login(support)

    listing = client.get("/admin/commerce/apitoken/").content.decode()
    revoke_in_admin(support, api_token_of(key))

    assert api_token_of(key).prefix not in listing
    assert api_get(key).status_code == 200


def test_an_operator_revokes_anyone_s_token(manager):
    key = api_token_create(user=manager)

    revoke_in_admin(operator_create(), api_token_of(key))

    assert api_get(key).status_code == 401


# -- item 19: one lockout for every password check ---------------------------------------------


def test_a_dashboard_lockout_also_refuses_the_token_endpoint(manager):
    """The reported hole: five failed dashboard sign-ins, then the right password at the API."""
    for _ in range(5):
        dashboard_login(Client(), manager.username, "wrong")

    response = token_post(manager.username, PASSWORD)

    assert response.status_code == 429
    assert response.json()["message"] == LOCKED
    assert not ApiToken.objects.exists()
    # Another address is not locked.
    assert token_post(manager.username, PASSWORD, address="198.51.100.20").status_code == 200


def test_token_endpoint_failures_lock_the_dashboard_and_the_admin(manager):
    for _ in range(5):
        assert token_post(manager.username, "wrong").status_code == 400

    dashboard = dashboard_login(Client(), manager.username, PASSWORD)
    admin = admin_login(Client(), manager.username, PASSWORD)

    assert LOCKED in dashboard.content.decode()
    assert LOCKED in admin.content.decode()


def test_wrong_old_passwords_in_the_admin_password_change_count_towards_the_lockout(manager):
    signed_in = Client()
    signed_in.force_login(manager)
    change = {"old_password": "guess", "new_password1": "N3w-pass-2026!", "new_password2": ""}
    change["new_password2"] = change["new_password1"]
    for _ in range(5):
        signed_in.post("/admin/password_change/", change, REMOTE_ADDR=ADDRESS)

    right_old = signed_in.post(
        "/admin/password_change/", {**change, "old_password": PASSWORD}, REMOTE_ADDR=ADDRESS
    )

    assert LOCKED in right_old.content.decode()
    manager.refresh_from_db()
    assert manager.check_password(PASSWORD)  # not changed
    assert token_post(manager.username, PASSWORD).status_code == 429


def test_a_right_password_in_the_admin_password_change_still_works(manager):
    client = Client()
    client.force_login(manager)

    response = client.post(
        "/admin/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "N3w-pass-2026!",
            "new_password2": "N3w-pass-2026!",
        },
        REMOTE_ADDR=ADDRESS,
    )

    assert response.status_code == 302
    manager.refresh_from_db()
    assert manager.check_password("N3w-pass-2026!")
