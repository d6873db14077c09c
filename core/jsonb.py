"""JSON that PostgreSQL's ``jsonb`` accepts.

``jsonb`` refuses two things Python's ``json`` reads happily from a body: the NUL character
(``\\u0000``) and UTF-16 surrogates that are not in a pair (``\\ud800`` alone). A webhook body
holding one would fail to store, answer 5xx and be redelivered forever, so the stores replace
them instead (NUL with U+FFFD, a lone surrogate with "?").
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["UNSTORABLE_ESCAPE", "jsonb_storable"]

#: JSON escapes of what jsonb refuses: search the raw body to skip the walk when there are none.
UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def jsonb_storable(value: Any) -> Any:
    """``value`` with NUL characters (U+FFFD) and lone surrogates ("?") replaced, in keys and
    values alike."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [jsonb_storable(item) for item in value]
    if isinstance(value, dict):
        return {jsonb_storable(key): jsonb_storable(item) for key, item in value.items()}
    return value
