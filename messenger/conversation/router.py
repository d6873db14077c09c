"""Postback and quick-reply payloads, and the registry of handlers by verb.

A payload is a short string ``VERB`` or ``VERB:arg`` or ``VERB:key=value,key=value`` (for example
``PRODUCT:42``, ``ADD:variant=87,qty=1``, ``CART``, ``CHECKOUT``, ``ORDER:A1B2-1042``). Parsing
is pure and strict: anything malformed becomes ``None`` and the engine answers politely.
Handlers must still validate every id against ``turn.merchant`` (a payload is shopper input).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_PAYLOAD_LENGTH = 1000  # Messenger allows 1000 characters for postback payloads
_VERB = re.compile(r"^[A-Z][A-Z0-9_]{0,31}$")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


@dataclass(frozen=True)
class Payload:
    verb: str
    arg: str = ""
    params: dict[str, str] = field(default_factory=dict)

    def int_param(self, name: str) -> int | None:
        """A positive integer parameter (or the bare ``arg`` when ``name`` is ``"arg"``)."""
        raw = self.arg if name == "arg" else self.params.get(name, "")
        if not raw.isdigit() or len(raw) > 18:
            return None
        value = int(raw)
        return value if value > 0 else None


def payload_build(verb: str, arg: str | int | None = None, **params: str | int) -> str:
    """Inverse of ``payload_parse``: ``payload_build("ADD", variant=87)`` is ``ADD:variant=87``."""
    if not _VERB.match(verb):
        raise ValueError(f"bad verb {verb!r}")
    if arg is not None and params:
        raise ValueError("use either a bare argument or key=value parameters")
    if arg is not None:
        return f"{verb}:{arg}"
    if params:
        return verb + ":" + ",".join(f"{key}={value}" for key, value in params.items())
    return verb


def payload_parse(raw: str | None) -> Payload | None:
    """Parse a payload; ``None`` when it is missing, too long or malformed."""
    if not raw or len(raw) > MAX_PAYLOAD_LENGTH:
        return None
    verb, _, rest = raw.partition(":")
    if not _VERB.match(verb):
        return None
    if not rest:
        return Payload(verb)
    if "=" not in rest:
        return Payload(verb, arg=rest) if "," not in rest else None
    params: dict[str, str] = {}
    for part in rest.split(","):
        key, sep, value = part.partition("=")
        if not sep or not _KEY.match(key) or key in params:
            return None
        params[key] = value
    return Payload(verb, params=params)


Handler = Callable[..., None]  # handler(turn, payload)
_HANDLERS: dict[str, Handler] = {}


def on_payload(*verbs: str) -> Callable[[Handler], Handler]:
    """Register a handler for one or more verbs: ``@on_payload("CART")``."""

    def register(handler: Handler) -> Handler:
        for verb in verbs:
            if verb in _HANDLERS and _HANDLERS[verb] is not handler:
                raise ValueError(f"two handlers for {verb}")
            _HANDLERS[verb] = handler
        return handler

    return register


def handler_for(verb: str) -> Handler | None:
    return _HANDLERS.get(verb)
