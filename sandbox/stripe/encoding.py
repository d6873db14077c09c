"""Stripe's request encoding, decoded: pure functions, no Django.

Stripe's libraries send form-encoded bodies (and query strings) with bracketed keys:
``line_items[0][price_data][unit_amount]=1000``, ``expand[0]=payment_intent``, ``expand[]=x``.
Values stay strings, as they arrive; the endpoints convert what they read.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

_KEY_PART = re.compile(r"\[([^\]]*)\]")


def form_decode(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Bracketed form pairs -> nested dicts and lists.

    ``a[b][0][c]=1`` -> ``{"a": {"b": [{"c": "1"}]}}``; ``expand[]=x`` -> ``{"expand": ["x"]}``.
    A dict whose keys are all digits becomes a list in key order.
    """
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        head, _sep, rest = raw_key.partition("[")
        parts = [head] + (_KEY_PART.findall("[" + rest) if rest else [])
        node: dict[str, Any] = root
        for i, part in enumerate(parts):
            if part == "":  # "expand[]": append
                part = str(sum(1 for key in node if key.isdigit()))
            if i == len(parts) - 1:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
    return _listify(root)


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {key: _listify(item) for key, item in value.items()}
        if converted and all(key.isdigit() for key in converted):
            return [converted[key] for key in sorted(converted, key=int)]
        return converted
    return value


def request_fingerprint(*, method: str, path: str, params: dict[str, Any]) -> str:
    """What "the same request" means for an idempotency key: method, path and parameters
    (order of the form fields does not matter)."""
    canonical = json.dumps(params, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{method} {path} {canonical}".encode()).hexdigest()
