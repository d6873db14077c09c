"""Messenger Profile: the body built from a page's settings, the push through the Graph API
(a local stub server), the 10-calls-per-10-minutes limit, the command, the admin and the task."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.core.management import CommandError, call_command
from django.urls import reverse

from config.celery import app as celery_app
from messenger.models import MessengerPage
from messenger.services.profile import (
    PROFILE_CALLS_PER_WINDOW,
    PROFILE_WINDOW_SECONDS,
    ProfileInvalid,
    ProfileRateLimited,
    ice_breakers_errors,
    messenger_profile_body,
    messenger_profile_sync,
    persistent_menu_errors,
    whitelistable_origin,
)
from messenger.tasks.profile import messenger_profile_sync_task
from tests.factories import merchant_create

pytestmark = pytest.mark.django_db

TOKEN = "EAAGm0PX4ZCpsBAKZCZAprofile-secret-token-7777"
GREETING_EN = "Hi {{user_first_name}}, welcome to Alpha Shop!"
GREETING_AR = "أهلًا {{user_first_name}}، مرحبًا بك في متجر ألفا!"

DEFAULT_MENU = [
    {
        "locale": "default",
        "composer_input_disabled": False,
        "call_to_actions": [
            {"type": "postback", "title": "Shop", "payload": "SHOP"},
            {"type": "postback", "title": "Cart", "payload": "CART"},
            {"type": "postback", "title": "My orders", "payload": "ORDERS"},
            {"type": "postback", "title": "Help", "payload": "HELP"},
            {"type": "postback", "title": "العربية", "payload": "LANG:ar"},
        ],
    },
    {
        "locale": "ar_AR",
        "composer_input_disabled": False,
        "call_to_actions": [
            {"type": "postback", "title": "تسوّق", "payload": "SHOP"},
            {"type": "postback", "title": "السلة", "payload": "CART"},
            {"type": "postback", "title": "طلباتي", "payload": "ORDERS"},
            {"type": "postback", "title": "مساعدة", "payload": "HELP"},
            {"type": "postback", "title": "English", "payload": "LANG:en"},
        ],
    },
]


def _cache_settings(backend: str, redis_url: str) -> dict:
    prefix = f"profile-test-{uuid.uuid4().hex}"  # a cache of the test's own
    if backend == "locmem":
        return {
            "default": {
                "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
                "LOCATION": prefix,
            }
        }
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": prefix,
        }
    }


@pytest.fixture(autouse=True)
def locmem_cache(settings):
    settings.CACHES = _cache_settings("locmem", settings.REDIS_URL)


@pytest.fixture(params=["locmem", pytest.param("redis", marks=pytest.mark.redis)])
def rate_cache(request, settings):
    """The rate limit on local memory, and on the real Redis under ``make test``."""
    settings.CACHES = _cache_settings(request.param, settings.REDIS_URL)
    return request.param


@pytest.fixture
def https_base_url(settings):
    settings.PUBLIC_BASE_URL = "https://shop.example.com"


@pytest.fixture
def page(https_base_url):
    merchant = merchant_create(name="Alpha Shop")
    return MessengerPage.objects.create(
        merchant=merchant,
        page_id="104412345678901",
        name="Alpha Shop",
        access_token=TOKEN,
        greeting_en=GREETING_EN,
        greeting_ar=GREETING_AR,
    )


def _profile_posts(stub):
    return stub.requests_to("/me/messenger_profile", method="POST")


# -- the body --------------------------------------------------------------------------------


def test_body_carries_both_greetings_get_started_defaults_and_our_domain(page):
    assert messenger_profile_body(page=page) == {
        "get_started": {"payload": "GET_STARTED"},
        "greeting": [
            {"locale": "default", "text": GREETING_EN},
            {"locale": "ar_AR", "text": GREETING_AR},
        ],
        "persistent_menu": DEFAULT_MENU,
        "whitelisted_domains": ["https://shop.example.com"],
    }
    # No ice breakers unless the page sets some: Messenger would show them instead of the
    # Get Started button of the welcome screen.
    assert "ice_breakers" not in messenger_profile_body(page=page)


def test_empty_greetings_fall_back_to_the_default_greeting_in_each_language(page):
    page.greeting_en = page.greeting_ar = ""

    greeting = messenger_profile_body(page=page)["greeting"]

    assert greeting == [
        {
            "locale": "default",
            "text": "Hi {{user_first_name}}! Browse our products, ask us anything and order "
            "right here in Messenger.",
        },
        {
            "locale": "ar_AR",
            "text": "مرحبًا {{user_first_name}}! تصفّح منتجاتنا، واسألنا عمّا تريد، "
            "واطلب مباشرةً هنا في ماسنجر.",
        },
    ]


def test_the_pages_own_menu_and_ice_breakers_replace_the_defaults(page):
    page.get_started_payload = "MENU"
    page.persistent_menu = [
        {
            "locale": "default",
            "call_to_actions": [
                {"type": "postback", "title": "Deals", "payload": "CATEGORY:7"},
                {"type": "web_url", "title": "Our site", "url": "https://alpha.example.com/"},
            ],
        }
    ]
    page.ice_breakers = [
        {"locale": "default", "call_to_actions": [{"question": "Deals?", "payload": "SHOP"}]}
    ]

    body = messenger_profile_body(page=page)

    assert body["get_started"] == {"payload": "MENU"}
    assert body["persistent_menu"] == [
        {
            "composer_input_disabled": False,
            "locale": "default",
            "call_to_actions": [
                {"type": "postback", "title": "Deals", "payload": "CATEGORY:7"},
                {"type": "web_url", "title": "Our site", "url": "https://alpha.example.com/"},
            ],
        }
    ]
    assert body["ice_breakers"] == page.ice_breakers


def test_a_greeting_over_160_characters_is_refused_with_a_clear_error(page):
    page.greeting_ar = "م" * 161

    with pytest.raises(ProfileInvalid) as caught:
        messenger_profile_body(page=page)

    assert caught.value.code == "messenger_profile_invalid"
    assert caught.value.extra["errors"] == [
        "The greeting for ar_AR has 161 characters; Messenger allows 160."
    ]


def test_a_greeting_of_exactly_160_characters_is_accepted(page):
    page.greeting_en = "x" * 160

    assert messenger_profile_body(page=page)["greeting"][0]["text"] == "x" * 160


def test_an_unknown_greeting_tag_is_refused(page):
    page.greeting_en = "Hi {{first_name}}"

    with pytest.raises(ProfileInvalid) as caught:
        messenger_profile_body(page=page)

    assert "{{first_name}}" in caught.value.message


def _menu(n: int, **item) -> list[dict]:
    entry = {"type": "postback", "title": "Shop", "payload": "SHOP", **item}
    return [{"locale": "default", "call_to_actions": [dict(entry) for _ in range(n)]}]


def test_menu_limits():
    assert persistent_menu_errors(_menu(20)) == []
    assert persistent_menu_errors(_menu(21)) == ["Menu default has 21 items; Messenger allows 20."]
    assert persistent_menu_errors(_menu(1, title="x" * 31)) == [
        "Menu default item 1: the title is longer than 30 characters."
    ]
    assert persistent_menu_errors(_menu(1, payload="not a payload")) == [
        "Menu default item 1: not a payload is not a payload the shop understands "
        "(e.g. SHOP, CART)."
    ]
    assert persistent_menu_errors(_menu(1, type="nested")) == [
        "Menu default item 1: type must be postback or web_url."
    ]
    assert persistent_menu_errors([{**_menu(1)[0], "locale": "ar_AR"}]) == [
        'The persistent menu needs an entry with "locale": "default" (shown when no locale '
        "matches)."
    ]
    assert persistent_menu_errors({"locale": "default"}) == [
        "The persistent menu must be a list of objects, one per locale."
    ]


def test_ice_breaker_limits():
    five = [{"question": f"Q{n}?", "payload": "SHOP"} for n in range(5)]

    assert ice_breakers_errors([{"locale": "default", "call_to_actions": five[:4]}]) == []
    assert ice_breakers_errors([{"locale": "default", "call_to_actions": five}]) == [
        "Ice breakers default has 5 questions; Messenger allows 4."
    ]
    assert ice_breakers_errors(
        [{"locale": "default", "call_to_actions": [{"question": "", "payload": "SHOP"}]}]
    ) == ["Ice breaker default 1 needs a question."]


def test_a_broken_page_menu_is_refused_by_the_body(page):
    page.persistent_menu = _menu(21)

    with pytest.raises(ProfileInvalid) as caught:
        messenger_profile_body(page=page)

    assert "Messenger allows 20" in caught.value.message


@pytest.mark.parametrize(
    "url, origin",
    [
        ("https://shop.example.com", "https://shop.example.com"),
        ("https://Shop.Example.com:8443/base/", "https://shop.example.com:8443"),
        ("http://shop.example.com", None),
        ("https://127.0.0.1:8000", None),
        ("https://localhost", None),
    ],
)
def test_only_an_https_domain_name_is_whitelisted(url, origin):
    assert whitelistable_origin(url) == origin


def test_a_development_base_url_is_left_out_of_the_body(page, settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"

    assert "whitelisted_domains" not in messenger_profile_body(page=page)


# -- sync ------------------------------------------------------------------------------------


def test_sync_posts_the_body_with_the_token_and_appsecret_proof(page, graph_stub, settings):
    result = messenger_profile_sync(page=page)

    assert result.ok
    assert result.fields == (
        "get_started",
        "greeting",
        "persistent_menu",
        "whitelisted_domains",
    )
    [request] = graph_stub.requests
    assert request.method == "POST"
    assert request.path == f"/{settings.GRAPH_API_VERSION}/me/messenger_profile"
    assert request.body == messenger_profile_body(page=page)
    assert request.query["access_token"] == TOKEN
    expected_proof = hmac.new(
        settings.MESSENGER_APP_SECRET.encode(), TOKEN.encode(), hashlib.sha256
    ).hexdigest()
    assert request.query["appsecret_proof"] == expected_proof
    assert graph_stub.messenger_profile["greeting"][1] == {"locale": "ar_AR", "text": GREETING_AR}
    page.refresh_from_db()
    assert page.profile_synced_at == result.synced_at
    assert page.profile_sync_error == ""


def test_the_eleventh_call_in_ten_minutes_is_refused_without_calling_graph(
    rate_cache, page, graph_stub
):
    for _ in range(PROFILE_CALLS_PER_WINDOW):
        assert messenger_profile_sync(page=page).ok

    with pytest.raises(ProfileRateLimited) as caught:
        messenger_profile_sync(page=page)

    assert len(_profile_posts(graph_stub)) == PROFILE_CALLS_PER_WINDOW
    refusal = caught.value
    assert refusal.code == "messenger_profile_rate_limited"
    assert PROFILE_WINDOW_SECONDS - 30 < refusal.retry_after_seconds <= PROFILE_WINDOW_SECONDS
    assert "10 profile updates per 10 minutes" in refusal.message
    assert "try again in 10 minutes" in refusal.message
    assert refusal.extra["retry_at"] == refusal.retry_at.isoformat()


def test_the_rate_limit_counts_each_page_on_its_own(rate_cache, page, graph_stub):
    other = MessengerPage.objects.create(
        merchant=page.merchant, page_id="104400000000002", name="Beta", access_token=TOKEN
    )
    for _ in range(PROFILE_CALLS_PER_WINDOW):
        messenger_profile_sync(page=page)

    assert messenger_profile_sync(page=other).ok


def test_failed_calls_count_against_the_limit_too(page, graph_stub):
    graph_stub.fail_always(status=500)
    for _ in range(PROFILE_CALLS_PER_WINDOW):
        assert not messenger_profile_sync(page=page).ok

    with pytest.raises(ProfileRateLimited):
        messenger_profile_sync(page=page)
    assert len(graph_stub.requests) == PROFILE_CALLS_PER_WINDOW


def test_a_graph_error_is_recorded_on_the_page(page, graph_stub):
    graph_stub.fail_next(
        status=400, code=100, message="(#100) param whitelisted_domains[0] must be a valid URL"
    )

    result = messenger_profile_sync(page=page)

    assert not result.ok and not result.transient
    page.refresh_from_db()
    assert page.profile_synced_at is None
    assert page.profile_sync_error == (
        "Graph API error 100: (#100) param whitelisted_domains[0] must be a valid URL"
    )
    assert page.token_invalid_at is None


def test_a_5xx_is_recorded_as_transient(page, graph_stub):
    graph_stub.fail_next(status=503)

    result = messenger_profile_sync(page=page)

    assert not result.ok and result.transient


def test_a_rejected_token_flags_the_page_and_is_never_written_down(page, graph_stub):
    graph_stub.fail_next(status=400, code=190, subcode=460, message=f"Bad token {TOKEN}")

    result = messenger_profile_sync(page=page)

    page.refresh_from_db()
    assert TOKEN not in result.error
    assert TOKEN not in page.profile_sync_error
    assert page.profile_sync_error.startswith("Graph API error 190/460: Bad token ")
    assert page.token_invalid_at is not None


def test_a_success_clears_the_previous_error(page, graph_stub):
    graph_stub.fail_next(status=500)
    messenger_profile_sync(page=page)

    assert messenger_profile_sync(page=page).ok
    page.refresh_from_db()
    assert page.profile_sync_error == ""


def test_invalid_settings_are_recorded_without_calling_graph_or_using_the_limit(page, graph_stub):
    page.ice_breakers = [{"locale": "default", "call_to_actions": []}]
    page.save()

    result = messenger_profile_sync(page=page)

    assert not result.ok
    assert graph_stub.requests == []
    page.refresh_from_db()
    assert "Ice breakers default need call_to_actions." in page.profile_sync_error
    page.ice_breakers = []
    for _ in range(PROFILE_CALLS_PER_WINDOW):
        assert messenger_profile_sync(page=page).ok


def test_a_page_without_token_is_not_pushed(page, graph_stub):
    page.access_token = ""
    page.save()

    result = messenger_profile_sync(page=page)

    assert not result.ok
    assert result.error == "The page has no access token: paste one in the page settings."
    assert graph_stub.requests == []


def test_a_development_base_url_is_pushed_without_domain_and_warned_about(
    page, graph_stub, settings
):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"

    result = messenger_profile_sync(page=page)

    assert result.ok
    assert "whitelisted_domains" not in graph_stub.requests[0].body
    assert result.warnings == (
        "PUBLIC_BASE_URL (http://127.0.0.1:8000) is not an https domain name, so it was not "
        "whitelisted.",
    )


# -- the command -----------------------------------------------------------------------------


def _run(*args) -> str:
    out = StringIO()
    call_command("messenger_profile", *args, stdout=out)
    return out.getvalue()


def test_command_syncs_every_active_page(page, graph_stub):
    MessengerPage.objects.create(
        merchant=page.merchant, page_id="200", name="Sleeping", access_token=TOKEN, is_active=False
    )
    MessengerPage.objects.create(
        merchant=page.merchant, page_id="300", name="Gamma", access_token=TOKEN
    )

    output = _run("sync")

    assert output.splitlines() == ["ok    Alpha Shop (104412345678901)", "ok    Gamma (300)"]
    assert len(_profile_posts(graph_stub)) == 2
    assert all(r.query["access_token"] == TOKEN for r in graph_stub.requests)


def test_command_syncs_one_page_by_its_page_id(page, graph_stub):
    MessengerPage.objects.create(
        merchant=page.merchant, page_id="300", name="Gamma", access_token=TOKEN
    )

    output = _run("sync", "--page-id", "300")

    assert output.splitlines() == ["ok    Gamma (300)"]
    assert len(graph_stub.requests) == 1


def test_command_reports_failures_and_exits_non_zero(page, graph_stub):
    MessengerPage.objects.create(merchant=page.merchant, page_id="300", name="Gamma")
    out = StringIO()

    with pytest.raises(CommandError) as caught:
        call_command("messenger_profile", "sync", stdout=out)

    assert caught.value.returncode == 1
    assert str(caught.value) == "1 of 2 pages failed."
    assert out.getvalue().splitlines() == [
        "ok    Alpha Shop (104412345678901)",
        "error Gamma (300): The page has no access token: paste one in the page settings.",
    ]


def test_command_reports_the_rate_limit_as_a_failure(page, graph_stub):
    for _ in range(PROFILE_CALLS_PER_WINDOW):
        messenger_profile_sync(page=page)
    out = StringIO()

    with pytest.raises(CommandError):
        call_command("messenger_profile", "sync", "--page-id", page.page_id, stdout=out)

    assert "profile updates per 10 minutes" in out.getvalue()
    assert len(graph_stub.requests) == PROFILE_CALLS_PER_WINDOW


def test_command_refuses_an_unknown_page_id(page, graph_stub):
    with pytest.raises(CommandError, match="No Messenger page with page id 999"):
        _run("sync", "--page-id", "999")
    assert graph_stub.requests == []


def test_command_says_so_when_there_is_no_active_page(graph_stub):
    assert _run("sync") == "No active Messenger pages.\n"


def test_command_output_never_contains_the_token(page, graph_stub):
    graph_stub.fail_next(status=400, code=190, message=f"Invalid token {TOKEN}")
    out = StringIO()

    with pytest.raises(CommandError):
        call_command("messenger_profile", "sync", stdout=out, stderr=out)

    assert TOKEN not in out.getvalue()


# -- the task --------------------------------------------------------------------------------


def test_task_pushes_the_page(page, graph_stub):
    assert messenger_profile_sync_task.apply(args=[page.pk]).get() is True
    assert len(_profile_posts(graph_stub)) == 1


def test_task_for_a_deleted_page_does_nothing(graph_stub):
    assert messenger_profile_sync_task.apply(args=[987654]).get() is False
    assert graph_stub.requests == []


# -- the admin -------------------------------------------------------------------------------


@pytest.fixture
def operator_client(client):
    client.force_login(get_user_model().objects.create_superuser("root", password="pw-123456789"))
    return client


@pytest.fixture
def eager_celery():
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def _push(client, *pages):
    return client.post(
        reverse("admin:messenger_messengerpage_changelist"),
        {"action": "push_messenger_profile", "_selected_action": [p.pk for p in pages]},
    )


def test_admin_action_pushes_each_page_from_the_worker(
    operator_client, page, graph_stub, eager_celery, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = _push(operator_client, page)

    assert response.status_code == 302
    assert len(callbacks) == 1
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"{page}: the Messenger Profile is being pushed; see its status."
    ]
    assert len(_profile_posts(graph_stub)) == 1
    page.refresh_from_db()
    assert page.profile_synced_at is not None


def test_admin_action_reports_the_rate_limit_at_once(
    operator_client, page, graph_stub, django_capture_on_commit_callbacks
):
    for _ in range(PROFILE_CALLS_PER_WINDOW):
        messenger_profile_sync(page=page)

    with django_capture_on_commit_callbacks() as callbacks:
        response = _push(operator_client, page)

    assert callbacks == []
    [message] = get_messages(response.wsgi_request)
    assert message.level_tag == "warning"
    assert "try again in 10 minutes" in str(message)


def test_admin_action_reports_broken_settings_at_once(
    operator_client, page, django_capture_on_commit_callbacks
):
    page.ice_breakers = [  # saved around the form's checks
        {"locale": "default", "call_to_actions": [{"question": "Q?", "payload": "SHOP"}] * 5}
    ]
    page.save()

    with django_capture_on_commit_callbacks() as callbacks:
        response = _push(operator_client, page)

    assert callbacks == []
    [message] = get_messages(response.wsgi_request)
    assert message.level_tag == "error"
    assert "Ice breakers default has 5 questions; Messenger allows 4." in str(message)


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
        "get_started_payload": page.get_started_payload,
        "persistent_menu": "[]",
        "ice_breakers": "[]",
    }
    data.update(changes)
    return data


def _change_url(page: MessengerPage) -> str:
    return reverse("admin:messenger_messengerpage_change", args=[page.pk])


def test_admin_saves_a_valid_menu_and_ice_breakers(operator_client, page):
    menu = _menu(1, title="Sale", payload="CATEGORY:3")
    breakers = [
        {"locale": "default", "call_to_actions": [{"question": "Sale?", "payload": "SHOP"}]}
    ]

    response = operator_client.post(
        _change_url(page),
        _form_data(
            page,
            persistent_menu=json.dumps(menu),
            ice_breakers=json.dumps(breakers),
            get_started_payload="",
        ),
    )

    assert response.status_code == 302
    page.refresh_from_db()
    assert page.persistent_menu == menu
    assert page.ice_breakers == breakers
    assert page.get_started_payload == "GET_STARTED"
    assert page.access_token == TOKEN


def test_admin_refuses_a_menu_messenger_would_refuse(operator_client, page):
    menu = [{**_menu(1)[0], "locale": "ar_AR"}]

    response = operator_client.post(
        _change_url(page), _form_data(page, persistent_menu=json.dumps(menu))
    )

    assert response.status_code == 200
    assert "needs an entry with" in response.content.decode()
    page.refresh_from_db()
    assert page.persistent_menu == []


def test_admin_refuses_five_ice_breakers(operator_client, page):
    five = [{"question": "Q?", "payload": "SHOP"}] * 5
    breakers = [{"locale": "default", "call_to_actions": five}]

    response = operator_client.post(
        _change_url(page), _form_data(page, ice_breakers=json.dumps(breakers))
    )

    assert response.status_code == 200
    assert "Messenger allows 4" in response.content.decode()


def test_admin_shows_what_will_be_pushed_and_the_sync_status(operator_client, page):
    MessengerPage.objects.filter(pk=page.pk).update(profile_sync_error="Graph API error 2: oops")

    content = operator_client.get(_change_url(page)).content.decode()

    assert "My orders" in content  # the default persistent menu, previewed
    assert "Graph API error 2: oops" in content
    assert TOKEN not in content
    changelist = operator_client.get(reverse("admin:messenger_messengerpage_changelist"))
    assert "error: Graph API error 2: oops" in changelist.content.decode()
