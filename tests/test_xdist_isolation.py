"""``make test`` runs the suite in two xdist workers that share one Redis: what one worker's
tests cache must not be read by the other's (issue 12, item 24: the English end-to-end test
read the Arabic one's cached User Profile of the same PSID)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from messenger.models import MessengerPage
from messenger.services.customers import _profile_cache_key, customer_profile_get
from tests.factories import merchant_create
from tests.messenger.graph_stub import graph_stub  # noqa: F401  (fixture)

pytestmark = [pytest.mark.redis, pytest.mark.django_db]

REPO = Path(__file__).resolve().parents[1]
PSID = "2406080000000001"


def _other_worker() -> str:
    return "gw1" if os.environ.get("PYTEST_XDIST_WORKER") == "gw0" else "gw0"


def _cache_as_another_worker(code: str) -> None:
    """Run ``code`` in a Django process configured as the other xdist worker's processes are
    (the test settings, the same Redis)."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "PYTEST_XDIST_WORKER": _other_worker(),
        "REDIS_URL": settings.REDIS_URL,
        "PYTHONPATH": str(REPO),
    }
    subprocess.run(
        [sys.executable, "-c", f"import django; django.setup()\n{code}"],
        cwd=REPO,
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )


def test_a_profile_cached_by_the_other_xdist_worker_is_not_read_here(graph_stub):
    page = MessengerPage.objects.create(
        merchant=merchant_create(), page_id="104412345678901", name="Shop", access_token="EAAt"
    )
    graph_stub.set_profile(PSID, first_name="Emma", locale="en_US")
    now = timezone.now()
    key = _profile_cache_key(page, PSID)
    theirs = {"fetched_at": now.isoformat(), "profile": {"first_name": "Layla", "locale": "ar_AR"}}
    try:
        # The other worker's test fetched this PSID's profile (in Arabic) a moment ago.
        _cache_as_another_worker(
            f"from django.core.cache import cache\ncache.set({key!r}, {theirs!r}, 600)"
        )

        profile = customer_profile_get(page=page, psid=PSID, now=now)

        assert (profile["first_name"], profile["locale"]) == ("Emma", "en_US")
        assert len(graph_stub.requests_to(f"/{PSID}")) == 1
    finally:
        cache.delete(key)
        _cache_as_another_worker(f"from django.core.cache import cache\ncache.delete({key!r})")
