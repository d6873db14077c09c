"""Failed sign-ins are throttled per username and address, on the dashboard and the admin alike:
after five failures within 15 minutes the form says to wait, even for the right password."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from core import login_lockout as throttle
from tests.factories import staff_create

pytestmark = pytest.mark.django_db

PASSWORD = "pw-123456789"
LOGIN_URLS = {"dashboard": "/dashboard/login/", "admin": "/admin/login/"}


@pytest.fixture
def owner(merchant_a):
    return staff_create(merchant=merchant_a, role="owner", username="amira")


def _try(client: Client, where: str, username: str, password: str, address="203.0.113.7"):
    return client.post(
        LOGIN_URLS[where],
        {"username": username, "password": password, "next": reverse("dashboard:orders")},
        REMOTE_ADDR=address,
    )


def _signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("where", ["dashboard", "admin"])
def test_five_failures_lock_the_username_for_that_address_even_with_the_right_password(
    where, owner
):
    client = Client()
    for _ in range(5):
        response = _try(client, where, "amira", "wrong")
        assert response.status_code == 200
        assert "Too many failed attempts" not in response.content.decode()

    locked = _try(client, where, "amira", PASSWORD)

    assert locked.status_code == 200
    assert "Too many failed attempts. Try again in 15 minutes." in locked.content.decode()
    assert not _signed_in(client)


def test_the_lock_counts_per_username_and_address(owner, merchant_a):
    other = staff_create(merchant=merchant_a, username="basim")
    client = Client()
    for _ in range(5):
        _try(client, "dashboard", "amira", "wrong")

    # Another username from the same address, and the same username from another address.
    assert _try(Client(), "dashboard", "basim", PASSWORD).status_code == 302
    assert _try(Client(), "dashboard", "amira", PASSWORD, address="198.51.100.4").status_code == 302
    assert other.pk


def test_dashboard_and_admin_share_the_count(owner):
    client = Client()
    for _ in range(3):
        _try(client, "dashboard", "amira", "wrong")
    for _ in range(2):
        _try(client, "admin", "amira", "wrong")

    response = _try(client, "dashboard", "amira", PASSWORD)

    assert "Too many failed attempts" in response.content.decode()


def test_username_case_does_not_dodge_the_count(owner):
    client = Client()
    for name in ["amira", "AMIRA", "Amira", "aMira", "amirA"]:
        _try(client, "dashboard", name, "wrong")

    assert (
        "Too many failed attempts" in _try(client, "dashboard", "amira", PASSWORD).content.decode()
    )


def test_a_correct_password_before_the_limit_clears_the_count(owner):
    client = Client()
    for _ in range(4):
        _try(client, "dashboard", "amira", "wrong")
    assert _try(client, "dashboard", "amira", PASSWORD).status_code == 302

    fresh = Client()
    for _ in range(4):
        _try(fresh, "dashboard", "amira", "wrong")
    assert _try(fresh, "dashboard", "amira", PASSWORD).status_code == 302


def test_the_wait_shown_shrinks_as_the_window_runs_out(owner):
    start = 1_000_000.0
    for _ in range(5):
        throttle.login_failure_record(username="amira", address="203.0.113.7", now=start)

    early = throttle.login_lockout(username="amira", address="203.0.113.7", now=start + 1)
    late = throttle.login_lockout(username="amira", address="203.0.113.7", now=start + 600)
    assert (early.minutes, late.minutes) == (15, 5)
    assert throttle.login_lockout(username="amira", address="198.51.100.4", now=start) is None


def test_successful_dashboard_login_lands_on_the_orders(owner):
    client = Client()

    response = _try(client, "dashboard", "amira", PASSWORD)

    assert response.status_code == 302 and response["Location"] == reverse("dashboard:orders")
    assert _signed_in(client)


def test_wrong_password_says_so_without_locking(owner):
    response = _try(Client(), "dashboard", "amira", "wrong")

    assert "Please enter a correct username and password" in response.content.decode()


def test_a_down_cache_does_not_lock_anybody_out(owner, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",  # nothing listens on the discard port
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    client = Client()
    _try(client, "dashboard", "amira", "wrong")

    assert _try(client, "dashboard", "amira", PASSWORD).status_code == 302


@pytest.mark.redis
def test_the_count_lives_in_redis_shared_by_every_web_process(owner):
    """With the real cache: two clients (two processes' worth of sessions) share one count."""
    first, second = Client(), Client()
    try:
        for _ in range(3):
            _try(first, "admin", "amira", "wrong", address="192.0.2.55")
        for _ in range(2):
            _try(second, "dashboard", "amira", "wrong", address="192.0.2.55")

        response = _try(second, "admin", "amira", PASSWORD, address="192.0.2.55")

        assert "Too many failed attempts" in response.content.decode()
    finally:
        throttle.login_failures_clear(username="amira", address="192.0.2.55")


def test_unknown_usernames_are_throttled_too(db):
    client = Client()
    for _ in range(5):
        _try(client, "dashboard", "nobody-here", "x")

    assert (
        "Too many failed attempts" in _try(client, "dashboard", "nobody-here", "x").content.decode()
    )


def test_admin_login_still_signs_staff_in_and_refuses_non_staff(owner, db):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("shopper", password=PASSWORD, is_staff=False)
    staff_client, shopper_client = Client(), Client()

    signed = _try(staff_client, "admin", "amira", PASSWORD)
    refused = _try(shopper_client, "admin", "shopper", PASSWORD)

    assert signed.status_code == 302 and _signed_in(staff_client)
    assert refused.status_code == 200 and not _signed_in(shopper_client)
    assert "Please enter the correct username and password for a staff account" in (
        refused.content.decode()
    )
