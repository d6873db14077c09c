"""Storing and reading Stripe objects: ids, lookups, ``expand``."""

from __future__ import annotations

import copy
import secrets
import string
import time
from collections.abc import Sequence
from typing import Any

from sandbox.stripe.errors import StripeError, missing
from sandbox.stripe.models import StripeObject

#: The API version our objects and events are rendered in (the one of the shared fixtures).
API_VERSION = "2025-03-31.basil"
_ALPHABET = string.ascii_letters + string.digits

#: Object type -> the words Stripe uses in "No such ...".
KIND_NAMES = {
    "checkout.session": "checkout.session",
    "payment_intent": "payment_intent",
    "charge": "charge",
    "refund": "refund",
    "coupon": "coupon",
    "shipping_rate": "shipping_rate",
}


def new_id(prefix: str, length: int = 24) -> str:
    """A Stripe-looking id: ``new_id("pi_3Q")`` -> ``pi_3QxY...`` (``prefix`` + random)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def now() -> int:
    return int(time.time())


def object_create(*, kind: str, data: dict[str, Any], private: dict | None = None) -> StripeObject:
    return StripeObject.objects.create(id=data["id"], object=kind, data=data, private=private or {})


def object_get(*, kind: str, object_id: str, lock: bool = False) -> StripeObject:
    """The stored object, locked for update when ``lock`` (call inside a transaction).

    :raises StripeError: 404 ``resource_missing``.
    """
    queryset = StripeObject.objects.filter(object=kind)
    if lock:
        queryset = queryset.select_for_update()
    row = queryset.filter(pk=object_id).first()
    if row is None:
        raise missing(KIND_NAMES.get(kind, kind), object_id)
    return row


def object_save(row: StripeObject) -> None:
    row.save(update_fields=["data", "private", "updated_at"])


def expanded(data: dict[str, Any], expand: Sequence[str]) -> dict[str, Any]:
    """``data`` with the ids named by ``expand`` paths replaced by their objects.

    ``payment_intent.latest_charge`` expands the intent, then its charge; an empty or missing
    field is left as it is, like Stripe. A path into something that cannot be expanded is
    Stripe's 400.

    :raises StripeError: a path that names no expandable field.
    """
    result = copy.deepcopy(data)
    for path in expand:
        if not isinstance(path, str) or not path:
            raise StripeError("Invalid array", param="expand")
        parts = path.split(".")
        node: Any = result
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                raise StripeError(f"This property cannot be expanded ({part}).", param="expand")
            value = node[part]
            if isinstance(value, str) and value:
                target = StripeObject.objects.filter(pk=value).first()
                if target is not None:
                    node[part] = copy.deepcopy(target.data)
                    value = node[part]
            if value is None:
                break
            node = value
    return result
