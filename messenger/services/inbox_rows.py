"""A signed webhook body as inbox rows: one per ``entry[].messaging[]`` / ``standby[]`` item.

Meta answers anything but a 200 by sending the same body again, for hours, and then disables
the app's subscription (docs/platform-rules.md, "Messenger webhooks"). So nothing in a correctly
signed body may make the webhook refuse it: what cannot be used is kept as a row of its own,
``failed`` with the reason in ``error`` and kind ``unusable``, and never stops the usable items
beside it. The smallest part that fails becomes that row: the whole body (not JSON, not a
``page`` object, ``entry`` not a list), one entry (not an object, no page id, ``messaging`` not
a list), or one item (not an object, a sender that names nobody).

No database here: :func:`rows_from_body` builds unsaved ``InboundEvent`` objects; the caller
marks the rows of unknown pages and writes them.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any

from core.jsonb import UNSTORABLE_ESCAPE, jsonb_storable
from messenger import events as ev
from messenger.identity import psid_from, user_ref_key
from messenger.models import InboundEvent

__all__ = ["UNUSABLE", "rows_from_body", "unusable_body_row"]

Status = InboundEvent.Status

UNUSABLE = "unusable"  # InboundEvent.kind of what could not be used
_PAGE_ID_MAX = 32  # InboundEvent.page_id
_KEY_MAX = 128  # InboundEvent.dedupe_key
_ERROR_MAX = 2000


def rows_from_body(raw_body: bytes) -> list[InboundEvent]:
    """The inbox rows of a (signature-checked) webhook body, each dedupe key once. Never
    raises: an unusable part of the body is a ``failed`` row saying why."""
    try:
        payload = json.loads(raw_body, parse_constant=_not_json, parse_float=_finite)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return [unusable_body_row(raw_body, reason="The body is not valid JSON.")]
    if not isinstance(payload, dict) or payload.get("object") != "page":
        found = payload.get("object") if isinstance(payload, dict) else type(payload).__name__
        return [
            unusable_body_row(
                raw_body, reason=f"Only events of the 'page' object are handled, not {found!r}."
            )
        ]
    entries = payload.get("entry")
    if not isinstance(entries, list):
        return [unusable_body_row(raw_body, reason="'entry' must be a list.")]
    storable = UNSTORABLE_ESCAPE.search(raw_body) is None
    rows: dict[str, InboundEvent] = {}
    for entry in entries:
        for row in _entry_rows(entry):
            if not storable:
                row.payload = jsonb_storable(row.payload)
            rows.setdefault(row.dedupe_key, row)  # a mid twice in one body: stored once
    return list(rows.values())


def unusable_body_row(raw_body: bytes, *, reason: str) -> InboundEvent:
    """The whole body as one ``failed`` row, its text kept (the body is size-limited)."""
    text = jsonb_storable(raw_body.decode("utf-8", "replace"))
    return _unusable(
        page_id="",
        payload={"body": text},
        reason=reason,
        dedupe_key="body:" + hashlib.sha256(raw_body).hexdigest(),
    )


# --------------------------------------------------------------------------------------------


def _not_json(constant: str) -> Any:
    """``NaN`` and ``Infinity`` are Python's extensions, not JSON: jsonb refuses them."""
    raise ValueError(f"{constant} is not a JSON value")


def _finite(text: str) -> float:
    """A number too large for a float (``1e999``) reads as infinity, which jsonb refuses."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _entry_rows(entry: Any) -> list[InboundEvent]:
    if not isinstance(entry, dict):
        return [_unusable_part(entry, page_id="", reason="An entry must be an object.")]
    page_id = psid_from(entry.get("id"))
    if page_id is None or len(page_id) > _PAGE_ID_MAX:
        return [_unusable_part(entry, page_id="", reason="The entry has no valid page id.")]
    fallback_ms = ev.milliseconds(entry.get("time")) or int(time.time() * 1000)
    rows = []
    for key, is_standby in (("messaging", False), ("standby", True)):
        items = entry.get(key, [])
        if not isinstance(items, list):
            reason = f"The entry's '{key}' must be a list."
            rows.append(_unusable_part({key: items}, page_id=page_id, reason=reason))
            continue
        for item in items:
            rows.append(
                _item_row(item, page_id=page_id, is_standby=is_standby, fallback_ms=fallback_ms)
            )
    return rows


def _item_row(item: Any, *, page_id: str, is_standby: bool, fallback_ms: int) -> InboundEvent:
    if not isinstance(item, dict):
        return _unusable_part(item, page_id=page_id, reason="A messaging item must be an object.")
    key, problem = _customer_key(item)
    if problem:
        return _unusable_part(item, page_id=page_id, reason=problem)
    dedupe_key = ev.event_dedupe_key(item, page_id=page_id)
    if len(dedupe_key) > _KEY_MAX:  # the column's width; keep it unique, stably
        dedupe_key = "sha256:" + hashlib.sha256(dedupe_key.encode()).hexdigest()
    return InboundEvent(
        page_id=page_id,
        sender_psid=key,
        dedupe_key=dedupe_key,
        kind=ev.event_kind(item)[:32],
        payload=item,
        # A missing or unreadable timestamp: the entry's time, else now (for the order only;
        # the item is kept as it came).
        timestamp_ms=ev.milliseconds(item.get("timestamp")) or fallback_ms,
        is_standby=is_standby,
    )


def _customer_key(item: dict) -> tuple[str, str]:
    """``(key, problem)``: the customer of the item (``messenger.identity``), ``""`` when the
    item names nobody (some item kinds have no sender), or a problem that makes it unusable."""
    message = item.get("message")
    is_echo = isinstance(message, dict) and bool(message.get("is_echo"))
    # The customer of an echo (a message the page sent) is its recipient.
    side = "recipient" if is_echo else "sender"
    party = item.get(side)
    if party is None:
        optin = item.get("optin")
        if not is_echo and isinstance(optin, dict) and "user_ref" in optin:
            key = user_ref_key(optin.get("user_ref"))  # Checkbox Plugin: no sender
            return (key, "") if key else ("", "The opt-in's user_ref is not usable.")
        return "", ""
    if not isinstance(party, dict):
        return "", f"The item's {side} must be an object."
    if "id" in party:
        psid = psid_from(party.get("id"))
        return (psid, "") if psid else ("", f"The item's {side} id is not a page-scoped id.")
    if "user_ref" in party:  # Chat Plugin
        key = user_ref_key(party.get("user_ref"))
        return (key, "") if key else ("", f"The item's {side} user_ref is not usable.")
    return "", f"The item's {side} has neither an id nor a user_ref."


def _unusable_part(part: Any, *, page_id: str, reason: str) -> InboundEvent:
    canonical = ev.canonical_json(part)
    digest = hashlib.sha256(f"{page_id}\n{canonical}".encode("utf-8", "surrogatepass"))
    # An object is kept as it came; anything else (JSON null included, which the column would
    # take for SQL NULL) inside one.
    payload = part if isinstance(part, dict) else {"value": part}
    return _unusable(
        page_id=page_id,
        payload=payload,
        reason=reason,
        dedupe_key=f"{UNUSABLE}:{digest.hexdigest()}",
    )


def _unusable(*, page_id: str, payload: Any, reason: str, dedupe_key: str) -> InboundEvent:
    return InboundEvent(
        page_id=page_id,
        sender_psid="",
        dedupe_key=dedupe_key,
        kind=UNUSABLE,
        payload=payload,
        timestamp_ms=0,
        is_standby=False,
        status=Status.FAILED,
        error=reason[:_ERROR_MAX],
    )
