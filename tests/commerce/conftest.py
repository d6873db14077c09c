"""Shared fixtures for commerce tests: two merchants, their staff by role, and operators.

- ``merchant_a`` (USD, English) and ``merchant_b`` (EUR, Arabic): two tenants to check that
  neither sees nor changes the other's rows.
- ``owner_a``, ``staff_a`` (manager), ``support_a`` (support: reads the catalog, cannot edit):
  staff users (``is_staff=True``) with one membership in merchant A. ``staff_b``: manager of B.
- ``operator_user``: staff user in the ``operators`` group, no membership; sees every merchant.
- ``superuser``: an operator by being a superuser.
- ``make_staff(merchant, role=..., username=...)``: any other combination, e.g. a user with
  memberships in several merchants (call it twice with the same ``username``).

Every user's password is ``"pw"``; log them in with ``client.force_login(user)``.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from commerce.models import Merchant, MerchantMembership
from commerce.selectors.access import OPERATORS_GROUP

Role = MerchantMembership.Role


@pytest.fixture
def merchant_a(db) -> Merchant:
    return Merchant.objects.create(name="Shop A", slug="shop-a", default_currency="USD")


@pytest.fixture
def merchant_b(db) -> Merchant:
    return Merchant.objects.create(
        name="Shop B", slug="shop-b", default_currency="EUR", default_locale="ar"
    )


@pytest.fixture
def make_staff(db):
    """``make_staff(merchant, role="manager", username=None)`` -> a staff user with that role.

    Reusing a ``username`` adds a membership to the same user.
    """
    user_model = get_user_model()
    counter = iter(range(1, 10_000))

    def make(merchant: Merchant | None, role: str = Role.MANAGER, username: str | None = None):
        username = username or f"staff{next(counter)}"
        user = user_model.objects.filter(username=username).first()
        if user is None:
            user = user_model.objects.create_user(username=username, password="pw", is_staff=True)
        if merchant is not None:
            MerchantMembership.objects.create(user=user, merchant=merchant, role=role)
        return user

    return make


@pytest.fixture
def owner_a(make_staff, merchant_a):
    return make_staff(merchant_a, Role.OWNER, username="owner_a")


@pytest.fixture
def staff_a(make_staff, merchant_a):
    """A manager of merchant A: edits A's catalog, nothing else."""
    return make_staff(merchant_a, Role.MANAGER, username="staff_a")


@pytest.fixture
def support_a(make_staff, merchant_a):
    """Support staff of merchant A: may look at A's catalog but not change it."""
    return make_staff(merchant_a, Role.SUPPORT, username="support_a")


@pytest.fixture
def staff_b(make_staff, merchant_b):
    """A manager of merchant B."""
    return make_staff(merchant_b, Role.MANAGER, username="staff_b")


@pytest.fixture
def operator_user(db):
    """A staff user in the operators group: sees and edits every merchant, not a superuser."""
    user = get_user_model().objects.create_user(username="operator", password="pw", is_staff=True)
    group, _ = Group.objects.get_or_create(name=OPERATORS_GROUP)
    user.groups.add(group)
    return user


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser(username="root", password="pw")
