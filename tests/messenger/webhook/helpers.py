"""Helpers for webhook and inbox tests: the shared fixtures as bytes, signed like Meta signs."""

from __future__ import annotations

import json
from pathlib import Path

from messenger.webhook.signature import signature_header_value

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PAGE_ID = "104412345678901"
PSID = "2401234567890123"
URL = "/messenger/webhook/"
SECRET = "test-app-secret"


def fixture_bytes(name: str) -> bytes:
    """A shared fixture's bytes exactly as stored (what Meta would have sent)."""
    return (FIXTURES / f"{name}.json").read_bytes()


def fixture_json(name: str) -> dict:
    return json.loads(fixture_bytes(name))


def signed_headers(body: bytes, *, secret: str = SECRET, algorithm: str = "sha256") -> dict:
    """Test-client headers carrying ``body``'s signature (``sha256`` or legacy ``sha1``)."""
    header = "HTTP_X_HUB_SIGNATURE_256" if algorithm == "sha256" else "HTTP_X_HUB_SIGNATURE"
    return {header: signature_header_value(body, secret=secret, algorithm=algorithm)}


def message_item(
    *, mid: str, text: str = "hi", psid: str = PSID, timestamp: int = 1764067200000
) -> dict:
    return {
        "sender": {"id": psid},
        "recipient": {"id": PAGE_ID},
        "timestamp": timestamp,
        "message": {"mid": mid, "text": text},
    }


def body_of(*items: dict, page_id: str = PAGE_ID, standby: tuple[dict, ...] = ()) -> bytes:
    """A webhook body with one entry holding ``items`` (and ``standby`` items)."""
    entry: dict = {"id": page_id, "time": 1764067200000, "messaging": list(items)}
    if standby:
        entry["standby"] = list(standby)
    return json.dumps({"object": "page", "entry": [entry]}).encode()
