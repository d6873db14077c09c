"""Customers of a Messenger page: upserted per (page, PSID), named by the User Profile API
(through the local Graph stub), cached for a day, never blocked by a failing profile call."""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone

from commerce.models import Customer
from messenger.models import MessengerPage
from messenger.services.customers import (
    PROFILE_RETRY_AFTER,
    customer_profile_get,
    customer_record_referral,
    customer_touch,
)
from messenger.services.customers import customer_upsert as _customer_upsert
from tests.factories import customer_create, merchant_create

pytestmark = pytest.mark.django_db

PSID = "2401234567890123"
TOKEN = "EAAsecret-page-token-123"


@pytest.fixture(autouse=True)
def private_cache(settings, tmp_path):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": str(tmp_path),
        }
    }


@pytest.fixture
def page(db) -> MessengerPage:
    return MessengerPage.objects.create(
        merchant=merchant_create(), page_id="104412345678901", name="Shop", access_token=TOKEN
    )


def customer_upsert(*, page, psid, now):
    """What the inbox does for each event: the profile read first, then the customer written."""
    profile = customer_profile_get(page=page, psid=psid, now=now)
    return _customer_upsert(page=page, psid=psid, profile=profile)


def _profile_calls(stub) -> int:
    return len(stub.requests_to(f"/{PSID}"))


def test_a_new_customer_is_named_from_the_profile_api(page, graph_stub):
    graph_stub.set_profile(PSID, first_name="Omar", last_name="Khalil", locale="ar_AR", timezone=3)

    customer = customer_upsert(page=page, psid=PSID, now=timezone.now())

    customer.refresh_from_db()
    assert customer.merchant == page.merchant
    assert (customer.page_id, customer.psid) == (page.page_id, PSID)
    assert (customer.first_name, customer.last_name) == ("Omar", "Khalil")
    assert (customer.locale, customer.timezone_offset) == ("ar_AR", 3)
    assert customer.language == "ar"
    request = graph_stub.requests_to(f"/{PSID}")[0]
    assert request.query["access_token"] == TOKEN
    assert "first_name" in request.query["fields"]


def test_the_same_psid_is_the_same_customer(page, graph_stub):
    now = timezone.now()
    first = customer_upsert(page=page, psid=PSID, now=now)
    again = customer_upsert(page=page, psid=PSID, now=now + timedelta(minutes=1))
    assert first.pk == again.pk
    assert Customer.objects.count() == 1


def test_the_profile_is_fetched_once_a_day(page, graph_stub):
    now = timezone.now()
    customer_upsert(page=page, psid=PSID, now=now)
    customer_upsert(page=page, psid=PSID, now=now + timedelta(hours=23))
    assert _profile_calls(graph_stub) == 1

    graph_stub.set_profile(PSID, first_name="Layla-Renamed")
    customer = customer_upsert(page=page, psid=PSID, now=now + timedelta(days=1, minutes=1))

    assert _profile_calls(graph_stub) == 2
    assert Customer.objects.get(pk=customer.pk).first_name == "Layla-Renamed"


def test_a_known_customer_not_seen_today_is_refreshed(page, graph_stub):
    existing = customer_create(merchant=page.merchant, page_id=page.page_id, psid=PSID)
    graph_stub.set_profile(PSID, first_name="Noor", last_name="Saleh", locale="en_GB")

    customer = customer_upsert(page=page, psid=PSID, now=timezone.now())

    assert customer.pk == existing.pk
    customer.refresh_from_db()
    assert (customer.first_name, customer.last_name, customer.locale) == ("Noor", "Saleh", "en_GB")


def test_a_failing_profile_call_is_logged_without_the_token_and_not_fatal(page, graph_stub, caplog):
    graph_stub.fail_always(status=400, code=190, subcode=460)
    caplog.set_level(logging.DEBUG)

    customer = customer_upsert(page=page, psid=PSID, now=timezone.now())

    customer.refresh_from_db()
    assert (customer.first_name, customer.last_name, customer.locale) == ("", "", "")
    assert "user profile" in caplog.text
    assert TOKEN not in caplog.text


def test_after_a_failure_the_profile_is_tried_again_later_not_on_every_event(page, graph_stub):
    now = timezone.now()
    graph_stub.fail_next(status=500)
    customer_upsert(page=page, psid=PSID, now=now)
    customer_upsert(page=page, psid=PSID, now=now + timedelta(minutes=1))
    assert _profile_calls(graph_stub) == 1

    customer = customer_upsert(page=page, psid=PSID, now=now + PROFILE_RETRY_AFTER)

    assert _profile_calls(graph_stub) == 2
    assert Customer.objects.get(pk=customer.pk).first_name == "Layla"


def test_an_unreachable_graph_api_is_not_fatal(page, settings):
    from tests.conftest import free_port

    settings.GRAPH_API_BASE = f"http://127.0.0.1:{free_port()}"
    customer = customer_upsert(page=page, psid=PSID, now=timezone.now())
    assert Customer.objects.get(pk=customer.pk).first_name == ""


def test_a_page_without_token_asks_nothing(page, graph_stub):
    page.access_token = ""
    page.save()
    customer_upsert(page=page, psid=PSID, now=timezone.now())
    assert graph_stub.requests == []


def test_fields_the_api_withholds_keep_what_is_stored(page, graph_stub):
    customer_create(
        merchant=page.merchant, page_id=page.page_id, psid=PSID, locale="ar_AR", first_name="Old"
    )
    graph_stub.profiles[PSID] = {"first_name": "New"}  # no locale, no timezone

    customer = customer_upsert(page=page, psid=PSID, now=timezone.now())

    customer.refresh_from_db()
    assert (customer.first_name, customer.locale) == ("New", "ar_AR")


def test_a_fractional_timezone_is_rounded_to_hours(page, graph_stub):
    graph_stub.set_profile(PSID, timezone=5.5)
    customer = customer_upsert(page=page, psid=PSID, now=timezone.now())
    assert Customer.objects.get(pk=customer.pk).timezone_offset in {5, 6}


def test_an_unavailable_cache_only_costs_a_fetch(page, graph_stub, settings):
    from tests.conftest import free_port

    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{free_port()}/0",
        }
    }
    customer = customer_upsert(page=page, psid=PSID, now=timezone.now())
    assert Customer.objects.get(pk=customer.pk).first_name == "Layla"


# --------------------------------------------------------------------------------------------
# The 24-hour window and referrals
# --------------------------------------------------------------------------------------------


def test_touch_starts_the_24_hour_window(page):
    customer = customer_create(merchant=page.merchant, psid=PSID)
    at = timezone.now() - timedelta(minutes=3)
    customer_touch(customer=customer, at=at)
    assert customer.last_interaction_at == at
    assert Customer.objects.get(pk=customer.pk).last_interaction_at == at


def test_an_older_event_never_moves_the_window_back(page):
    customer = customer_create(merchant=page.merchant, psid=PSID)
    recent = timezone.now() - timedelta(minutes=1)
    customer_touch(customer=customer, at=recent)
    customer_touch(customer=customer, at=recent - timedelta(hours=2))
    assert Customer.objects.get(pk=customer.pk).last_interaction_at == recent


def test_a_future_timestamp_counts_as_now(page):
    customer = customer_create(merchant=page.merchant, psid=PSID)
    customer_touch(customer=customer, at=timezone.now() + timedelta(days=3))
    assert Customer.objects.get(pk=customer.pk).last_interaction_at <= timezone.now()


def _referral(**fields):
    values = {"ref": "", "source": "", "type": "OPEN_THREAD", "ad_id": "", "ads_context_data": {}}
    return SimpleNamespace(**{**values, **fields})


def test_the_latest_referral_is_kept(page):
    customer = customer_create(merchant=page.merchant, psid=PSID)
    customer_record_referral(
        customer=customer, referral=_referral(ref="product-TEE", source="SHORTLINK")
    )
    customer_record_referral(
        customer=customer, referral=_referral(ref="summer", source="ADS", ad_id="6045246247433")
    )
    customer.refresh_from_db()
    assert (customer.referral_ref, customer.referral_source, customer.referral_ad_id) == (
        "summer",
        "ADS",
        "6045246247433",
    )


def test_a_referral_without_ref_or_ad_changes_nothing(page):
    customer = customer_create(
        merchant=page.merchant, psid=PSID, referral_ref="product-TEE", referral_source="SHORTLINK"
    )
    customer_record_referral(customer=customer, referral=_referral(source="SHORTLINK"))
    customer.refresh_from_db()
    assert customer.referral_ref == "product-TEE"
