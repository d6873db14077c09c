"""A local Stripe API stand-in for tests: a real HTTP server on 127.0.0.1, one per test.

Only the network boundary is replaced: ``payments/gateways/stripe.py`` makes real requests with
the official ``stripe`` library (``StripeClient`` with ``base_addresses={"api": stub.url}``; the
library appends ``/v1/...``), and this server answers the subset the gateway uses, like Stripe:
form-encoded bodies (``line_items[0][price_data][unit_amount]=1000``), JSON answers, Stripe's
error shape (``{"error": {"type", "code", "message", "param"}}``) and idempotency keys.

Use the ``stripe_stub`` fixture (registered in ``tests/payments/conftest.py``; elsewhere import
it: ``from tests.payments.stripe_stub import stripe_stub  # noqa: F401``), or, outside pytest,
the ``stripe_stub_server()`` context manager and point ``STRIPE_API_BASE`` at ``stub.url``.

Routes:

- ``POST /v1/checkout/sessions`` -> a session (``cs_test_...``, ``status: open``,
  ``payment_status: unpaid``, ``url``, ``amount_subtotal``/``amount_total`` computed from the
  line items, shipping rate and coupon, ``total_details``, ``expires_at``...). Validates like
  Stripe where our code could get it wrong: ``mode``, line items, one currency in lower case,
  ``expires_at`` 30 min..24 h ahead, ``locale`` in Checkout's list, three-decimal amounts
  ending in 0, metadata limits, an existing coupon.
- ``GET /v1/checkout/sessions/<id>`` (``expand[]=payment_intent``,
  ``payment_intent.latest_charge``), ``POST /v1/checkout/sessions/<id>/expire``.
- ``POST /v1/coupons``, ``GET /v1/charges/<id>``, ``GET /v1/payment_intents/<id>``
  (``expand[]=latest_charge``), ``POST /v1/refunds``, ``GET /v1/refunds/<id>``.
- ``GET /c/pay/<id>``: a tiny HTML page standing in for the hosted checkout (the session's
  ``url`` points there, so a browser following the redirect lands somewhere).
- anything else -> 404 ``resource_missing``, like Stripe's "Unrecognized request URL".

Idempotency (POST with ``Idempotency-Key``): the same key with the same method, path and
parameters replays the first answer (header ``Idempotent-Replayed: true``; nothing new is
created); the same key with other parameters -> 400 ``idempotency_error``. Programmed failures
are not remembered under the key (they stand for requests that never got through), so a retry
with the same key goes through.

Programming::

    stub.fail_next()                                   # next request: 500 api_error
    stub.fail_next(2, status=429, type="rate_limit_error", path="/v1/checkout/sessions")
    stub.fail_next(status=400, type="invalid_request_error", code="parameter_invalid_integer")
    stub.fail_next(disconnect=True)                    # drop the connection, no answer
    stub.lose_answers(3, path="/v1/checkout/sessions") # do the work, then drop the connection
    stub.fail_always(status=503)                       # until stub.reset_failures()
    stub.delay(2.5, times=1)                           # sleep before answering
    stub.refund_status = "succeeded"                   # new refunds' status (default pending)

Failures send ``Stripe-Should-Retry: false`` unless ``should_retry=True`` (or ``None``: no
header), so the library's own retries (``max_network_retries``) do not slow tests down unless a
test asks for them. A dropped connection is always retried by the library.

Driving the world as Stripe would (returns the updated objects, for building webhook events)::

    session = stub.session_complete(session_id, card_brand="visa", last4="4242")
    session = stub.session_expire(session_id)
    body, signature = stripe_event("checkout.session.completed", session)

Inspection: ``stub.requests`` (every request, in order, as ``RecordedRequest`` with the decoded
``params`` and lower-cased ``headers``), ``stub.requests_to("/v1/checkout/sessions",
method="POST")``, ``stub.sessions`` / ``charges`` / ``payment_intents`` / ``refunds`` /
``coupons`` (dicts by id).
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.http_stub import stub_server

try:  # the stub also runs outside pytest (stripe_stub_server()); the fixture needs pytest
    import pytest
except ImportError:  # pragma: no cover
    pytest = None

API_VERSION = "2025-03-31.basil"
CHECKOUT_LOCALES = frozenset(
    [
        "auto",
        "bg",
        "cs",
        "da",
        "de",
        "el",
        "en",
        "en-GB",
        "es",
        "es-419",
        "et",
        "fi",
        "fil",
        "fr",
        "fr-CA",
        "hi-IN",
        "hr",
        "hu",
        "id",
        "it",
        "ja",
        "ko",
        "lt",
        "lv",
        "ms",
        "mt",
        "nb",
        "nl",
        "pl",
        "pt",
        "pt-BR",
        "ro",
        "ru",
        "sk",
        "sl",
        "sv",
        "th",
        "tr",
        "vi",
        "zh",
        "zh-HK",
        "zh-TW",
    ]
)
THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])
SESSION_MIN_SECONDS = 30 * 60
SESSION_MAX_SECONDS = 24 * 60 * 60


# -- request decoding -------------------------------------------------------------------------


_KEY_PART = re.compile(r"\[([^\]]*)\]")


def form_decode(pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding -> nested dicts and lists (values stay strings).

    ``a[b][0][c]=1`` -> ``{"a": {"b": [{"c": "1"}]}}``; ``expand[]=x`` -> ``{"expand": ["x"]}``.
    """
    root: dict[str, Any] = {}
    for raw_key, value in pairs:
        head, _sep, rest = raw_key.partition("[")
        parts = [head] + (_KEY_PART.findall("[" + rest) if rest else [])
        node: dict[str, Any] = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":  # "expand[]": append
                part = str(sum(1 for k in node if k.isdigit()))
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _listify(root)


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {k: _listify(v) for k, v in value.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return value


def _int(value: Any, param: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _StripeFailure(
            400,
            "invalid_request_error",
            f"Invalid integer: {value}",
            param=param,
            code="parameter_invalid_integer",
        ) from None


# -- records and failures ---------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stub received, and the status it answered."""

    method: str
    path: str  # without the query string, e.g. "/v1/checkout/sessions"
    params: dict[str, Any]  # the decoded form body (POST) or query string (GET)
    headers: dict[str, str]  # lower-cased names
    status: int

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")

    @property
    def replayed(self) -> bool:
        return bool(self.headers.get("x-stub-replayed"))


class _StripeFailure(Exception):
    def __init__(self, status: int, type_: str, message: str, *, code=None, param=None):
        super().__init__(message)
        self.status, self.type, self.message, self.code, self.param = (
            status,
            type_,
            message,
            code,
            param,
        )

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return {"error": error}


@dataclass
class _Failure:
    status: int
    type: str
    code: str | None
    message: str
    path: str | None
    method: str | None
    should_retry: bool | None
    disconnect: bool
    remaining: int | None  # None: always
    after_answer: bool = False  # the request is carried out, then the answer is lost

    def matches(self, method: str, path: str) -> bool:
        return (self.path is None or self.path in path) and (
            self.method is None or self.method == method
        )


_DEFAULT_TYPES = {429: "rate_limit_error", 401: "authentication_error", 402: "card_error"}


# -- the stub ---------------------------------------------------------------------------------


@dataclass
class StripeStub:
    """State of one stub server; the request handler reads and updates it under ``lock``."""

    url: str = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    session_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    coupons: dict[str, dict[str, Any]] = field(default_factory=dict)
    payment_intents: dict[str, dict[str, Any]] = field(default_factory=dict)
    charges: dict[str, dict[str, Any]] = field(default_factory=dict)
    refunds: dict[str, dict[str, Any]] = field(default_factory=dict)
    refund_status: str = "pending"
    livemode: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _idempotency: dict[str, tuple[str, int, dict[str, Any]]] = field(
        default_factory=dict, repr=False
    )
    _failures: list[_Failure] = field(default_factory=list, repr=False)
    _delay_seconds: float = 0.0
    _delay_remaining: int | None = None
    _counter: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)
    _stopping: threading.Event = field(default_factory=threading.Event, repr=False)

    # ---- programming ------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 500,
        type: str | None = None,
        code: str | None = None,
        message: str | None = None,
        path: str | None = None,
        method: str | None = None,
        should_retry: bool | None = False,
        disconnect: bool = False,
    ) -> None:
        """The next ``n`` requests (matching ``path`` substring / ``method``) fail like this."""
        self._add_failure(n, status, type, code, message, path, method, should_retry, disconnect)

    def fail_always(
        self,
        *,
        status: int = 500,
        type: str | None = None,
        code: str | None = None,
        message: str | None = None,
        path: str | None = None,
        method: str | None = None,
        should_retry: bool | None = False,
        disconnect: bool = False,
    ) -> None:
        """Every later matching request fails, until ``reset_failures()``."""
        self._add_failure(None, status, type, code, message, path, method, should_retry, disconnect)

    def lose_answers(self, n: int = 1, *, path: str | None = None, method: str = "POST") -> None:
        """The next ``n`` matching requests are carried out (objects created, the idempotency
        key remembered) and then the connection drops before the answer: Stripe did the work
        but the caller never heard back. The library retries a dropped connection itself."""
        failure = _Failure(
            0, "api_error", None, "answer lost", path, method, None, True, n, after_answer=True
        )
        with self.lock:
            self._failures.append(failure)

    def reset_failures(self) -> None:
        with self.lock:
            self._failures.clear()
            self._delay_seconds, self._delay_remaining = 0.0, None

    def delay(self, seconds: float, *, times: int | None = None) -> None:
        """Sleep ``seconds`` before answering the next ``times`` requests (all when None)."""
        with self.lock:
            self._delay_seconds, self._delay_remaining = seconds, times

    # ---- driving objects as Stripe would ----------------------------------------------------

    def session_complete(
        self,
        session_id: str,
        *,
        card_brand: str = "visa",
        last4: str = "4242",
        payment_status: str = "paid",
        amount_total: int | None = None,
        currency: str | None = None,
    ) -> dict[str, Any]:
        """The shopper paid: session ``complete``, a payment intent and a succeeded charge.

        ``amount_total`` / ``currency`` override what was charged (to build mismatches).
        Returns a copy of the session (``payment_intent`` as an id, like in webhook events).
        """
        with self.lock:
            session = self.sessions[session_id]
            if amount_total is not None:
                session["amount_total"] = amount_total
            if currency is not None:
                session["currency"] = currency
            amount, cur = session["amount_total"], session["currency"]
            charge_id, intent_id = self._id("ch"), self._id("pi")
            paid = payment_status == "paid"
            self.payment_intents[intent_id] = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": amount,
                "amount_received": amount if paid else 0,
                "currency": cur,
                "status": "succeeded" if paid else "processing",
                "latest_charge": charge_id,
                "metadata": dict(session.get("metadata") or {}),
                "livemode": self.livemode,
            }
            self.charges[charge_id] = {
                "id": charge_id,
                "object": "charge",
                "amount": amount,
                "amount_captured": amount if paid else 0,
                "amount_refunded": 0,
                "currency": cur,
                "paid": paid,
                "captured": paid,
                "refunded": False,
                "status": "succeeded" if paid else "pending",
                "payment_intent": intent_id,
                "payment_method_details": {
                    "type": "card",
                    "card": {
                        "brand": card_brand,
                        "last4": last4,
                        "exp_month": 12,
                        "exp_year": 2030,
                    },
                },
                "metadata": dict(session.get("metadata") or {}),
                "livemode": self.livemode,
                "created": int(time.time()),
            }
            session.update(
                status="complete", payment_status=payment_status, payment_intent=intent_id
            )
            if session.get("customer_email"):
                session["customer_details"] = {"email": session["customer_email"]}
            return copy.deepcopy(session)

    def session_expire(self, session_id: str) -> dict[str, Any]:
        """The session ran out (or was expired): ``status: expired``. Returns a copy."""
        with self.lock:
            session = self.sessions[session_id]
            session["status"] = "expired"
            return copy.deepcopy(session)

    # ---- inspection -------------------------------------------------------------------------

    def requests_to(self, path: str, *, method: str | None = None) -> list[RecordedRequest]:
        """Requests whose path is exactly ``path`` (e.g. ``/v1/checkout/sessions``)."""
        with self.lock:
            return [
                r
                for r in self.requests
                if r.path == path and (method is None or r.method == method)
            ]

    def session_creates(self) -> list[RecordedRequest]:
        """Successful, not replayed ``POST /v1/checkout/sessions`` requests, in order."""
        return [
            r
            for r in self.requests_to("/v1/checkout/sessions", method="POST")
            if r.status == 200 and not r.replayed
        ]

    def clear(self) -> None:
        """Forget recorded requests (objects, programmed failures and delays stay)."""
        with self.lock:
            self.requests.clear()

    # ---- internals --------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}_test_{next(self._counter):04d}{secrets.token_hex(8)}"

    def _add_failure(
        self, n, status, type_, code, message, path, method, should_retry, disconnect
    ) -> None:
        if type_ is None:
            type_ = _DEFAULT_TYPES.get(status) or (
                "api_error" if status >= 500 else "invalid_request_error"
            )
        message = message or f"Stubbed Stripe failure ({status} {type_})."
        failure = _Failure(status, type_, code, message, path, method, should_retry, disconnect, n)
        with self.lock:
            self._failures.append(failure)

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        with self.lock:
            for failure in self._failures:
                if failure.matches(method, path):
                    if failure.remaining is not None:
                        failure.remaining -= 1
                        if failure.remaining <= 0:
                            self._failures.remove(failure)
                    return failure
            return None

    def _take_delay(self) -> float:
        with self.lock:
            if not self._delay_seconds:
                return 0.0
            seconds = self._delay_seconds
            if self._delay_remaining is not None:
                self._delay_remaining -= 1
                if self._delay_remaining <= 0:
                    self._delay_seconds, self._delay_remaining = 0.0, None
            return seconds

    def _expanded(self, obj: dict[str, Any], expand: Sequence[str]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        for path in expand:
            node = obj
            parts = path.split(".")
            for i, part in enumerate(parts):
                value = node.get(part) if isinstance(node, dict) else None
                if isinstance(value, str):
                    target = self._lookup(value)
                    if target is None:
                        break
                    node[part] = copy.deepcopy(target)
                    value = node[part]
                if not isinstance(value, dict) or i == len(parts) - 1:
                    break
                node = value
        return obj

    def _lookup(self, object_id: str) -> dict[str, Any] | None:
        for table in (
            self.payment_intents,
            self.charges,
            self.refunds,
            self.coupons,
            self.sessions,
        ):
            if object_id in table:
                return table[object_id]
        return None

    # ---- routes -----------------------------------------------------------------------------

    def answer(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, Any]:
        """(status, JSON) for a request that is not programmed to fail (under ``lock``)."""
        parts = [p for p in path.split("/") if p]
        expand = params.get("expand") or []
        if isinstance(expand, str):
            expand = [expand]
        if parts[:1] != ["v1"]:
            raise _StripeFailure(404, "invalid_request_error", f"Unrecognized URL {path}")
        route = parts[1:]
        if route == ["checkout", "sessions"] and method == "POST":
            return 200, self._session_create(params)
        if len(route) == 3 and route[:2] == ["checkout", "sessions"] and method == "GET":
            return 200, self._expanded(self._get(self.sessions, route[2], "session"), expand)
        if (
            len(route) == 4
            and route[:2] == ["checkout", "sessions"]
            and route[3] == "expire"
            and method == "POST"
        ):
            session = self._get(self.sessions, route[2], "session")
            if session["status"] != "open":
                raise _StripeFailure(
                    400,
                    "invalid_request_error",
                    f'Only Checkout Sessions with a status in ["open"] can be expired. This '
                    f'Checkout Session has a status of "{session["status"]}".',
                    code="checkout_session_not_open",
                )
            session["status"] = "expired"
            return 200, copy.deepcopy(session)
        if route == ["coupons"] and method == "POST":
            return 200, self._coupon_create(params)
        if len(route) == 2 and route[0] == "charges" and method == "GET":
            return 200, self._expanded(self._get(self.charges, route[1], "charge"), expand)
        if len(route) == 2 and route[0] == "payment_intents" and method == "GET":
            intent = self._get(self.payment_intents, route[1], "payment_intent")
            return 200, self._expanded(intent, expand)
        if route == ["refunds"] and method == "POST":
            return 200, self._refund_create(params)
        if len(route) == 2 and route[0] == "refunds" and method == "GET":
            return 200, copy.deepcopy(self._get(self.refunds, route[1], "refund"))
        raise _StripeFailure(
            404, "invalid_request_error", f"Unrecognized request URL ({method}: {path})."
        )

    @staticmethod
    def _get(table: dict[str, Any], object_id: str, kind: str) -> dict[str, Any]:
        if object_id not in table:
            raise _StripeFailure(
                404,
                "invalid_request_error",
                f"No such {kind}: '{object_id}'",
                code="resource_missing",
                param="id",
            )
        return table[object_id]

    def _session_create(self, params: dict[str, Any]) -> dict[str, Any]:
        def bad(message: str, param: str, code: str = "parameter_invalid") -> _StripeFailure:
            return _StripeFailure(400, "invalid_request_error", message, param=param, code=code)

        if params.get("mode") != "payment":
            raise bad("This stub only plays mode=payment.", "mode")
        line_items = params.get("line_items")
        if not isinstance(line_items, list) or not line_items:
            raise bad("line_items is required in payment mode.", "line_items", "parameter_missing")
        if len(line_items) > 100:
            raise bad("At most 100 line items.", "line_items")
        currencies: set[str] = set()
        subtotal = 0
        for i, item in enumerate(line_items):
            price = item.get("price_data") or {}
            currency = price.get("currency", "")
            if not currency or currency != currency.lower():
                raise bad(
                    "Currency must be a lower-case ISO code.",
                    f"line_items[{i}][price_data][currency]",
                )
            unit = _int(price.get("unit_amount"), f"line_items[{i}][price_data][unit_amount]")
            quantity = _int(item.get("quantity"), f"line_items[{i}][quantity]")
            if unit < 0 or quantity < 1:
                raise bad("Amounts must be positive.", f"line_items[{i}]")
            if currency in THREE_DECIMAL and unit % 10:
                raise bad(
                    "Three-decimal currency amounts must end in 0.",
                    f"line_items[{i}][price_data][unit_amount]",
                    "invalid_amount",
                )
            if not (price.get("product_data") or {}).get("name"):
                raise bad(
                    "product_data.name is required.",
                    f"line_items[{i}][price_data][product_data][name]",
                )
            currencies.add(currency)
            subtotal += unit * quantity
        if len(currencies) != 1:
            raise bad("All line items must share one currency.", "line_items")
        currency = currencies.pop()
        now = int(time.time())
        expires_at = now + SESSION_MAX_SECONDS
        if "expires_at" in params:
            expires_at = _int(params["expires_at"], "expires_at")
            if not now + SESSION_MIN_SECONDS <= expires_at <= now + SESSION_MAX_SECONDS:
                raise bad(
                    "The `expires_at` timestamp must be between 30 minutes and 24 hours from "
                    "Checkout Session creation.",
                    "expires_at",
                )
        locale = params.get("locale", "auto")
        if locale not in CHECKOUT_LOCALES:
            raise bad(f"Invalid locale: {locale}", "locale")
        metadata = params.get("metadata") or {}
        if len(metadata) > 50 or any(len(k) > 40 or len(str(v)) > 500 for k, v in metadata.items()):
            raise bad("Metadata limits exceeded.", "metadata")
        shipping = 0
        shipping_rate = None
        options = params.get("shipping_options") or []
        if options:
            data = options[0].get("shipping_rate_data") or {}
            fixed = data.get("fixed_amount") or {}
            shipping = _int(
                fixed.get("amount"), "shipping_options[0][shipping_rate_data][fixed_amount][amount]"
            )
            if fixed.get("currency") != currency or not data.get("display_name"):
                raise bad(
                    "Shipping rate must be in the session currency, with a name.",
                    "shipping_options",
                )
            if currency in THREE_DECIMAL and shipping % 10:
                raise bad(
                    "Three-decimal currency amounts must end in 0.",
                    "shipping_options",
                    "invalid_amount",
                )
            shipping_rate = self._id("shr")
        discount = 0
        discounts = params.get("discounts") or []
        if discounts:
            coupon_id = discounts[0].get("coupon", "")
            coupon = self._get(self.coupons, coupon_id, "coupon")
            if coupon.get("amount_off") is not None:
                if coupon["currency"] != currency:
                    raise bad("Coupon currency differs from the session's.", "discounts")
                discount = min(coupon["amount_off"], subtotal)
            else:
                discount = subtotal * int(float(coupon["percent_off"]) * 100) // 10000
            if coupon["times_redeemed"] >= (coupon.get("max_redemptions") or 10**9):
                raise bad("This coupon has been used up.", "discounts", "coupon_expired")
            coupon["times_redeemed"] += 1
        session_id = "cs_test_" + secrets.token_urlsafe(24).replace("-", "a").replace("_", "b")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "amount_subtotal": subtotal,
            "amount_total": subtotal - discount + shipping,
            "currency": currency,
            "client_reference_id": params.get("client_reference_id"),
            "customer": None,
            "customer_email": params.get("customer_email"),
            "customer_details": None,
            "metadata": dict(metadata),
            "locale": locale,
            "payment_intent": None,
            "shipping_cost": (
                {"amount_total": shipping, "shipping_rate": shipping_rate} if options else None
            ),
            "total_details": {
                "amount_discount": discount,
                "amount_shipping": shipping,
                "amount_tax": 0,
            },
            "expires_at": expires_at,
            "created": now,
            "livemode": self.livemode,
            "url": f"{self.url}/c/pay/{session_id}",
            "success_url": params.get("success_url"),
            "cancel_url": params.get("cancel_url"),
        }
        self.sessions[session_id] = session
        self.session_params[session_id] = params
        return copy.deepcopy(session)

    def _coupon_create(self, params: dict[str, Any]) -> dict[str, Any]:
        amount_off = params.get("amount_off")
        percent_off = params.get("percent_off")
        if (amount_off is None) == (percent_off is None):
            raise _StripeFailure(
                400, "invalid_request_error", "Pass amount_off or percent_off.", param="amount_off"
            )
        coupon_id = self._id("coupon")
        coupon = {
            "id": coupon_id,
            "object": "coupon",
            "amount_off": _int(amount_off, "amount_off") if amount_off is not None else None,
            "percent_off": float(percent_off) if percent_off is not None else None,
            "currency": params.get("currency"),
            "duration": params.get("duration", "once"),
            "max_redemptions": int(params["max_redemptions"])
            if params.get("max_redemptions")
            else None,
            "name": params.get("name"),
            "metadata": dict(params.get("metadata") or {}),
            "times_redeemed": 0,
            "valid": True,
            "livemode": self.livemode,
        }
        if coupon["amount_off"] is not None and not coupon["currency"]:
            raise _StripeFailure(
                400, "invalid_request_error", "amount_off needs a currency.", param="currency"
            )
        self.coupons[coupon_id] = coupon
        return copy.deepcopy(coupon)

    def _refund_create(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("payment_intent"):
            intent = self._get(self.payment_intents, params["payment_intent"], "payment_intent")
            charge = self._get(self.charges, intent["latest_charge"], "charge")
        elif params.get("charge"):
            charge = self._get(self.charges, params["charge"], "charge")
        else:
            raise _StripeFailure(
                400,
                "invalid_request_error",
                "One of charge or payment_intent is required.",
                code="parameter_missing",
            )
        remaining = charge["amount"] - charge["amount_refunded"]
        amount = _int(params["amount"], "amount") if "amount" in params else remaining
        if charge["refunded"] or remaining <= 0:
            raise _StripeFailure(
                400,
                "invalid_request_error",
                f"Charge {charge['id']} has already been refunded.",
                code="charge_already_refunded",
            )
        if amount <= 0 or amount > remaining:
            raise _StripeFailure(
                400,
                "invalid_request_error",
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining})",
                code="amount_too_large",
                param="amount",
            )
        refund_id = self._id("re")
        refund = {
            "id": refund_id,
            "object": "refund",
            "amount": amount,
            "currency": charge["currency"],
            "charge": charge["id"],
            "payment_intent": charge["payment_intent"],
            "status": self.refund_status,
            "reason": params.get("reason"),
            "metadata": dict(params.get("metadata") or {}),
            "created": int(time.time()),
        }
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        self.refunds[refund_id] = refund
        return copy.deepcopy(refund)


# -- the HTTP server --------------------------------------------------------------------------


def _fingerprint(method: str, path: str, raw: str) -> str:
    canonical = "&".join(sorted(raw.split("&"))) if raw else ""
    return hashlib.sha256(f"{method} {path} {canonical}".encode()).hexdigest()


def _handler_for(stub: StripeStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            return

        def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up
                pass

        def _handle(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode("utf-8", errors="replace") if length else ""
            source = raw if self.command == "POST" else split.query
            params = form_decode(parse_qsl(source, keep_blank_values=True))
            headers = {name.lower(): value for name, value in self.headers.items()}
            seconds = stub._take_delay()
            if seconds and stub._stopping.wait(seconds):
                return

            if split.path.startswith("/c/pay/") and self.command == "GET":
                page = (
                    "<!doctype html><title>Stripe stub checkout</title>"
                    f"<h1>Stripe stub checkout</h1><p>{split.path[7:]}</p>"
                ).encode()
                with stub.lock:
                    stub.requests.append(
                        RecordedRequest(self.command, split.path, params, headers, 200)
                    )
                self._send(200, page, {"Content-Type": "text/html; charset=utf-8"})
                return

            answer_headers = {
                "Content-Type": "application/json",
                "Request-Id": f"req_stub_{secrets.token_hex(6)}",
                "Stripe-Version": headers.get("stripe-version", API_VERSION),
            }
            failure = stub._take_failure(self.command, split.path)
            if failure is not None and failure.after_answer:
                self._answer(split.path, raw, params, headers, answer_headers)
                self.close_connection = True
                with suppress(OSError):
                    self.connection.shutdown(2)
                return
            if failure is not None:
                with stub.lock:
                    stub.requests.append(
                        RecordedRequest(
                            self.command, split.path, params, headers, failure.status or 0
                        )
                    )
                if failure.disconnect:
                    self.close_connection = True
                    with suppress(OSError):
                        self.connection.shutdown(2)
                    return
                if failure.should_retry is not None:
                    answer_headers["Stripe-Should-Retry"] = str(failure.should_retry).lower()
                error = _StripeFailure(
                    failure.status, failure.type, failure.message, code=failure.code
                )
                self._send(failure.status, json.dumps(error.body()).encode(), answer_headers)
                return

            status, body = self._answer(split.path, raw, params, headers, answer_headers)
            self._send(status, json.dumps(body).encode(), answer_headers)

        def _answer(self, path, raw, params, headers, answer_headers) -> tuple[int, Any]:
            auth = headers.get("authorization", "")
            key = headers.get("idempotency-key") if self.command == "POST" else None
            with stub.lock:
                recorded_headers = dict(headers)
                if not auth.startswith("Bearer sk_") and not auth.startswith("Bearer rk_"):
                    status, body = (
                        401,
                        _StripeFailure(
                            401, "invalid_request_error", "Invalid API Key provided."
                        ).body(),
                    )
                elif key and key in stub._idempotency:
                    fingerprint, status, body = stub._idempotency[key]
                    if fingerprint != _fingerprint(self.command, path, raw):
                        status, body = (
                            400,
                            _StripeFailure(
                                400,
                                "idempotency_error",
                                "Keys for idempotent requests can only be used with the same "
                                "parameters they were first used with. Try using a key other "
                                f"than '{key}' if you meant to execute a different request.",
                            ).body(),
                        )
                    else:
                        answer_headers["Idempotent-Replayed"] = "true"
                        recorded_headers["x-stub-replayed"] = "true"
                else:
                    try:
                        status, body = stub.answer(self.command, path, params)
                    except _StripeFailure as failure:
                        status, body = failure.status, failure.body()
                    # Stripe saves the result once the endpoint ran (errors included) but not
                    # for requests refused before running (validation happens here, so
                    # parameter errors are not saved either; close enough for our tests).
                    if key and status == 200:
                        stub._idempotency[key] = (
                            _fingerprint(self.command, path, raw),
                            status,
                            body,
                        )
                stub.requests.append(
                    RecordedRequest(self.command, path, params, recorded_headers, status)
                )
                return status, copy.deepcopy(body)

        do_GET = do_POST = do_DELETE = _handle

    return Handler


@contextmanager
def stripe_stub_server() -> Iterator[StripeStub]:
    """Run a stub server on a free port of 127.0.0.1 for the duration of the ``with`` block."""
    stub = StripeStub()
    with stub_server(stub, _handler_for(stub), name="stripe-stub"):
        yield stub


def _stripe_stub(settings) -> Iterator[StripeStub]:
    """A running Stripe stub; ``settings.STRIPE_API_BASE`` points at it for the test."""
    with stripe_stub_server() as stub:
        settings.STRIPE_API_BASE = stub.url
        if not settings.STRIPE_SECRET_KEY.startswith(("sk_", "rk_")):
            settings.STRIPE_SECRET_KEY = "sk_test_stub"
        yield stub


stripe_stub = pytest.fixture(_stripe_stub, name="stripe_stub") if pytest is not None else None


# -- webhook events ---------------------------------------------------------------------------


def stripe_signature(body: bytes, *, secret: str | Sequence[str], timestamp: int) -> str:
    """A ``Stripe-Signature`` header value: ``t=<unix>,v1=<hex>[,v1=<hex>...]``.

    Several secrets give several ``v1`` values, as Stripe sends while a secret is being rolled.
    """
    secret_list = [secret] if isinstance(secret, str) else list(secret)
    signed = f"{timestamp}.".encode() + body
    parts = [f"t={timestamp}"]
    for one in secret_list:
        digest = hmac.new(one.encode(), signed, hashlib.sha256).hexdigest()
        parts.append(f"v1={digest}")
    return ",".join(parts)


def stripe_event(
    type: str,
    obj: dict[str, Any],
    *,
    secret: str | Sequence[str] | None = None,
    timestamp: int | None = None,
    event_id: str | None = None,
    livemode: bool = False,
) -> tuple[bytes, str]:
    """A Stripe event around ``obj``, signed like Stripe: ``(body bytes, signature header)``.

    ``secret`` defaults to ``settings.STRIPE_WEBHOOK_SECRET`` read now (the first one when it
    lists several); ``timestamp`` to now (pass an old one for a stale signature).
    """
    if secret is None:
        from django.conf import settings

        secret = settings.STRIPE_WEBHOOK_SECRET.split(",")[0].strip()
    now = int(time.time())
    timestamp = now if timestamp is None else timestamp
    event = {
        "id": event_id or f"evt_test_{secrets.token_hex(12)}",
        "object": "event",
        "api_version": API_VERSION,
        "created": timestamp,
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type,
        "data": {"object": obj},
    }
    body = json.dumps(event, separators=(",", ":")).encode()
    return body, stripe_signature(body, secret=secret, timestamp=timestamp)
