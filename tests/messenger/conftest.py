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
