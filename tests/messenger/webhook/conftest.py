"""Fixtures for webhook tests: a known app secret, a connected page, a raw-bytes POST."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from messenger.models import MessengerPage
from messenger.services import inbox
from tests.factories import merchant_create
from tests.messenger.webhook.helpers import PAGE_ID, SECRET, URL


@pytest.fixture(autouse=True)
def _inbox_state(settings, monkeypatch):
    """A known app secret, no page ids remembered from earlier tests, a fresh nudge state."""
    settings.MESSENGER_APP_SECRET = SECRET
    inbox.inbox_page_cache_clear()
    monkeypatch.setattr(inbox, "_nudge_state", {"covered_until": 0.0, "redis_down_until": 0.0})
    yield
    inbox.inbox_page_cache_clear()


@pytest.fixture
def page(db) -> MessengerPage:
    return MessengerPage.objects.create(
        merchant=merchant_create(), page_id=PAGE_ID, name="Demo shop", access_token="EAAtoken"
    )


@pytest.fixture
def post() -> Callable[..., object]:
    """``post(body, **headers)``: POST raw bytes to the webhook as Meta does."""
    client = Client()

    def _post(body: bytes, **headers):
        return client.post(URL, data=body, content_type="application/json", **headers)

    return _post
