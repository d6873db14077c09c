"""The Messenger page admin never shows a page access token and is scoped by merchant."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from commerce.models import Merchant, MerchantMembership
from messenger.admin import mask_token
from messenger.models import MessengerPage
from messenger.services.profile import messenger_profile_sync
from tests.html_forms import form_values
from tests.interleave import committed_before_first_write

pytestmark = pytest.mark.django_db

User = get_user_model()
TOKEN = "EAAGm0PX4ZCpsBAKZCZAsecret-page-token-wxyz"


@pytest.fixture
def shop_a():
    return Merchant.objects.create(name="Alpha", slug="alpha")


@pytest.fixture
def page_a(shop_a):
    return MessengerPage.objects.create(
        merchant=shop_a, page_id="111", name="Alpha page", access_token=TOKEN
    )


@pytest.fixture
def page_b():
    merchant = Merchant.objects.create(name="Beta", slug="beta")
    return MessengerPage.objects.create(
        merchant=merchant, page_id="222", name="Beta page", access_token="EAAbeta-token-0000"
    )


@pytest.fixture
def operator_client(client):
    client.force_login(User.objects.create_superuser("root", password="pw-123456789"))
    return client


@pytest.fixture
def owner_client(client, shop_a):
    user = User.objects.create_user("alice", password="pw-123456789", is_staff=True)
    MerchantMembership.objects.create(
        user=user, merchant=shop_a, role=MerchantMembership.Role.OWNER
    )
    client.force_login(user)
    return client


def _form_data(page: MessengerPage, **changes) -> dict:
    data = {
        "merchant": page.merchant_id,
        "name": page.name,
        "page_id": page.page_id,
        "access_token": "",
        "mode": page.mode,
        "greeting_en": page.greeting_en,
        "greeting_ar": page.greeting_ar,
        "is_active": "on",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def _change_url(page: MessengerPage) -> str:
    return reverse("admin:messenger_messengerpage_change", args=[page.pk])


@pytest.mark.parametrize(
    "token, shown",
    [("", "–"), ("short", "••••"), (TOKEN, "•••• wxyz")],
)
def test_mask_token_shows_at_most_the_last_four_characters(token, shown):
    assert mask_token(token) == shown


def test_change_list_shows_the_token_masked(operator_client, page_a):
    response = operator_client.get(reverse("admin:messenger_messengerpage_changelist"))

    assert response.status_code == 200
    content = response.content.decode()
    assert "•••• wxyz" in content
    assert TOKEN not in content


def test_change_form_uses_a_password_input_and_never_renders_the_token(operator_client, page_a):
    response = operator_client.get(_change_url(page_a))

    assert response.status_code == 200
    content = response.content.decode()
    assert 'type="password"' in content
    assert TOKEN not in content
    assert TOKEN[:-4] not in content
    assert "•••• wxyz" in content


def test_saving_with_an_empty_token_keeps_the_stored_one(operator_client, page_a):
    response = operator_client.post(_change_url(page_a), _form_data(page_a, name="Renamed"))

    assert response.status_code == 302
    page_a.refresh_from_db()
    assert page_a.name == "Renamed"
    assert page_a.access_token == TOKEN


def test_a_new_token_replaces_the_old_and_clears_the_rejection(operator_client, page_a):
    MessengerPage.objects.filter(pk=page_a.pk).update(token_invalid_at=timezone.now())

    response = operator_client.post(
        _change_url(page_a), _form_data(page_a, access_token="EAAnew-token-9876")
    )

    assert response.status_code == 302
    page_a.refresh_from_db()
    assert page_a.access_token == "EAAnew-token-9876"
    assert page_a.token_invalid_at is None


def test_the_stored_token_can_be_removed(operator_client, page_a):
    response = operator_client.post(
        _change_url(page_a), _form_data(page_a, clear_access_token="on")
    )

    assert response.status_code == 302
    page_a.refresh_from_db()
    assert page_a.access_token == ""


def test_unknown_greeting_tag_is_refused(operator_client, page_a):
    response = operator_client.post(
        _change_url(page_a), _form_data(page_a, greeting_en="Hi {{first_name}}!")
    )

    assert response.status_code == 200
    assert "{{user_first_name}}" in response.content.decode()
    page_a.refresh_from_db()
    assert page_a.greeting_en == ""


def test_staff_see_only_their_merchants_pages(owner_client, page_a, page_b):
    response = owner_client.get(reverse("admin:messenger_messengerpage_changelist"))

    content = response.content.decode()
    assert "Alpha page" in content
    assert "Beta page" not in content
    assert owner_client.get(_change_url(page_b)).status_code == 302  # "does not exist"
    assert owner_client.get(_change_url(page_a)).status_code == 200


def test_staff_add_a_page_to_their_own_merchant(owner_client, shop_a):
    url = reverse("admin:messenger_messengerpage_add")
    data = {
        "name": "New page",
        "page_id": "333",
        "access_token": "EAAfresh-token-1111",
        "mode": MessengerPage.Mode.CHECKOUT_PAGE,
        "is_active": "on",
    }

    response = owner_client.post(url, data)

    assert response.status_code == 302
    page = MessengerPage.objects.get(page_id="333")
    assert page.merchant == shop_a
    assert page.access_token == "EAAfresh-token-1111"


def test_page_id_must_be_digits(operator_client, page_a):
    response = operator_client.post(_change_url(page_a), _form_data(page_a, page_id="alpha"))

    assert response.status_code == 200
    page_a.refresh_from_db()
    assert page_a.page_id == "111"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_saving_the_page_keeps_a_token_rejection_recorded_while_it_was_saving(
    operator_client, page_a, graph_stub, settings
):
    """Graph rejects the token (a profile push) while staff rename the page: the flag stays, so
    the outbox holds the page's messages and Needs attention lists it (ADR 0004)."""
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "p"}
    }
    graph_stub.fail_next(status=400, code=190, subcode=460, message="Invalid OAuth access token")
    values = form_values(operator_client.get(_change_url(page_a)).content, "messengerpage_form")
    values["name"] = "Alpha shop page"

    def push_profile():
        return messenger_profile_sync(page=MessengerPage.objects.get(pk=page_a.pk))

    with committed_before_first_write("messenger_messengerpage", push_profile) as pushed:
        response = operator_client.post(_change_url(page_a), {**values, "_continue": "1"})

    assert response.status_code == 302
    assert not pushed[0].ok
    page_a.refresh_from_db()
    assert page_a.name == "Alpha shop page"
    assert page_a.token_invalid_at is not None
    assert page_a.profile_sync_error.startswith("Graph API error 190/460")
