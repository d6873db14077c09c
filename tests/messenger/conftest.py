"""Fixtures for messenger tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def media_root(settings, tmp_path) -> Path:
    """A private MEDIA_ROOT, so generated product images never land in the repository."""
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


# --------------------------------------------------------------------------------------------
# Graph API: a local stub server (tests/messenger/graph_stub.py); GRAPH_API_BASE points at it.
# --------------------------------------------------------------------------------------------

from tests.messenger.graph_stub import graph_stub  # noqa: E402, F401

# --------------------------------------------------------------------------------------------
# A Messenger page with a token and a customer of it who wrote a minute ago (inside the
# 24-hour window). The page id is the one tests.factories.customer_create uses by default.
# --------------------------------------------------------------------------------------------

PAGE_ID = "104412345678901"
PAGE_TOKEN = "EAAtestpagetoken0123456789"


@pytest.fixture
def messenger_page(db):
    from messenger.models import MessengerPage
    from tests.factories import merchant_create

    return MessengerPage.objects.create(
        merchant=merchant_create(), page_id=PAGE_ID, name="Test shop", access_token=PAGE_TOKEN
    )


@pytest.fixture
def messenger_customer(messenger_page):
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import customer_create

    return customer_create(
        merchant=messenger_page.merchant,
        page_id=messenger_page.page_id,
        last_interaction_at=timezone.now() - timedelta(minutes=1),
    )
