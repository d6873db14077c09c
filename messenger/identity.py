"""Who a Messenger conversation is with: a page-scoped id, or a plugin's ``user_ref``.

Messenger names the person behind a webhook item by a page-scoped id (PSID, digits) in
``sender.id``, except for two plugins on the shop's own website: the Chat Plugin sends
``sender.user_ref`` instead, and the Checkbox Plugin's ``messaging_optins`` item has no sender at
all, only ``optin.user_ref``. Such a person is answered with ``recipient.user_ref`` in the Send
API, and has no User Profile (that API takes a PSID). See docs/platform-rules.md, "Messenger
webhooks".

The inbox (``InboundEvent.sender_psid``) and the customers (``Customer.psid``) keep one *key*
per person: the PSID itself, or ``ref:<user_ref>``. A PSID has digits only, so the two never
collide. Pure functions: no database, no settings.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "KEY_MAX_LENGTH",
    "USER_REF_MAX_LENGTH",
    "is_user_ref_key",
    "psid_from",
    "recipient_for",
    "user_ref_key",
]

KEY_MAX_LENGTH = 64  # InboundEvent.sender_psid, Customer.psid
USER_REF_PREFIX = "ref:"
USER_REF_MAX_LENGTH = KEY_MAX_LENGTH - len(USER_REF_PREFIX)


def psid_from(value: Any) -> str | None:
    """``value`` as a PSID (Graph sends ids as strings, sometimes as numbers), or None when it
    is not one: digits only, at most :data:`KEY_MAX_LENGTH` of them."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    if not (text.isascii() and text.isdigit()) or len(text) > KEY_MAX_LENGTH:
        return None
    return text


def user_ref_key(value: Any) -> str | None:
    """The key of a plugin user known by ``user_ref``, or None when ``value`` cannot be one
    (not a string, empty, longer than :data:`USER_REF_MAX_LENGTH`, or not printable ASCII)."""
    if not isinstance(value, str) or not value or len(value) > USER_REF_MAX_LENGTH:
        return None
    if not (value.isascii() and value.isprintable()):
        return None
    return USER_REF_PREFIX + value


def is_user_ref_key(key: str) -> bool:
    return key.startswith(USER_REF_PREFIX)


def recipient_for(key: str) -> dict[str, str]:
    """The Send API ``recipient`` of the person with ``key``: ``{"id": psid}`` or
    ``{"user_ref": ...}``."""
    if is_user_ref_key(key):
        return {"user_ref": key[len(USER_REF_PREFIX) :]}
    return {"id": key}
