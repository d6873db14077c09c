"""The Stripe API subset at ``/sandbox/stripe/v1/...``, the address ``STRIPE_API_BASE`` names.

Requests come as Stripe's libraries send them (form-encoded, bracketed keys, ``expand[]``) and
get Stripe's answers: objects as JSON, or ``{"error": {"type", "code", "message", "param"}}``
with Stripe's status. Every answer carries ``Request-Id``.

======  ==========================================  ===============================
POST    ``/v1/checkout/sessions``                   create (``mode=payment``)
GET     ``/v1/checkout/sessions/<id>``              retrieve (``expand[]``)
POST    ``/v1/checkout/sessions/<id>/expire``       expire an open session
GET     ``/v1/checkout/sessions/<id>/line_items``   the session's line items
GET     ``/v1/payment_intents/<id>``                retrieve (``expand[]=latest_charge``)
GET     ``/v1/charges/<id>``                        retrieve
POST    ``/v1/refunds``                             create (``payment_intent`` or ``charge``)
GET     ``/v1/refunds/<id>``                        retrieve
POST    ``/v1/coupons``                             create (``amount_off`` or ``percent_off``)
GET     ``/v1/coupons/<id>``                        retrieve
======  ==========================================  ===============================

Authentication: ``Authorization: Bearer sk_test_...`` (or ``rk_test_...``); when
``STRIPE_SECRET_KEY`` is a test key, only that key. Anything else is 401, like Stripe.

Idempotency (POST with ``Idempotency-Key``, kept 24 hours): the same key with the same
parameters replays the first answer (``Idempotent-Replayed: true``, ``Original-Request``); the
same key with other parameters is 400 ``idempotency_error``; a key whose first request is still
running is 409 ``idempotency_error`` (Stripe's libraries retry that). Like Stripe, only answers
of requests that ran are kept: a refused request (400, 404) can be retried with its key.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from sandbox.stripe.encoding import form_decode, request_fingerprint
from sandbox.stripe.errors import StripeError
from sandbox.stripe.models import IdempotencyRecord
from sandbox.stripe.services.checkout import (
    coupon_create,
    session_create,
    session_expire,
    session_expire_if_due,
    session_line_items,
    session_read,
)
from sandbox.stripe.services.events import deliveries_sweep_lazily
from sandbox.stripe.services.objects import API_VERSION, expanded, object_get
from sandbox.stripe.services.refunds import refund_create

IDEMPOTENCY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Call:
    """One API request as the endpoints see it."""

    params: dict[str, Any]
    object_id: str
    request_id: str
    idempotency_key: str | None


def _retrieve(kind: str) -> Callable[[Call], dict[str, Any]]:
    def retrieve(call: Call) -> dict[str, Any]:
        return object_get(kind=kind, object_id=call.object_id).data

    return retrieve


def _line_items(call: Call) -> dict[str, Any]:
    session_read(session_id=call.object_id)
    return {
        "object": "list",
        "data": session_line_items(session_id=call.object_id),
        "has_more": False,
        "url": f"/v1/checkout/sessions/{call.object_id}/line_items",
    }


_ID = r"(?P<id>[A-Za-z0-9_]+)"
ROUTES: list[tuple[str, re.Pattern[str], Callable[[Call], dict[str, Any]]]] = [
    ("POST", re.compile(r"checkout/sessions"), lambda call: session_create(params=call.params)),
    (
        "GET",
        re.compile(rf"checkout/sessions/{_ID}"),
        lambda call: session_read(session_id=call.object_id).data,
    ),
    (
        "POST",
        re.compile(rf"checkout/sessions/{_ID}/expire"),
        lambda call: session_expire(
            session_id=call.object_id,
            request_id=call.request_id,
            idempotency_key=call.idempotency_key,
        ),
    ),
    ("GET", re.compile(rf"checkout/sessions/{_ID}/line_items"), _line_items),
    ("GET", re.compile(rf"payment_intents/{_ID}"), _retrieve("payment_intent")),
    ("GET", re.compile(rf"charges/{_ID}"), _retrieve("charge")),
    (
        "POST",
        re.compile(r"refunds"),
        lambda call: refund_create(
            params=call.params, request_id=call.request_id, idempotency_key=call.idempotency_key
        ),
    ),
    ("GET", re.compile(rf"refunds/{_ID}"), _retrieve("refund")),
    ("POST", re.compile(r"coupons"), lambda call: coupon_create(params=call.params)),
    ("GET", re.compile(rf"coupons/{_ID}"), _retrieve("coupon")),
]


def _route(method: str, path: str) -> tuple[Callable[[Call], dict[str, Any]], str]:
    for route_method, pattern, handler in ROUTES:
        match = pattern.fullmatch(path.strip("/"))
        if match and route_method == method:
            return handler, match.groupdict().get("id") or ""
    raise StripeError(f"Unrecognized request URL ({method}: /v1/{path}).", status=404)


def _mask(key: str) -> str:
    return key[:8] + "*" * max(len(key) - 12, 4) + key[-4:] if len(key) > 12 else "*" * len(key)


def _authenticate(request: HttpRequest) -> None:
    """:raises StripeError: 401 unless a Bearer test secret key (the configured one) is given."""
    header = request.headers.get("Authorization", "")
    scheme, _sep, key = header.partition(" ")
    key = key.strip()
    if not header or scheme.lower() != "bearer" or not key:
        raise StripeError(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
            "YOUR_SECRET_KEY').",
            status=401,
        )
    expected = settings.STRIPE_SECRET_KEY
    fixed = expected.startswith(("sk_test_", "rk_test_"))
    if not key.startswith(("sk_test_", "rk_test_")) or (fixed and key != expected):
        raise StripeError(f"Invalid API Key provided: {_mask(key)}", status=401)


def _params(request: HttpRequest) -> dict[str, Any]:
    source = request.META.get("QUERY_STRING", "")
    if request.method == "POST":
        source = request.body.decode("utf-8", errors="replace")
        query = request.META.get("QUERY_STRING", "")
        source = f"{source}&{query}" if query and source else (source or query)
    return form_decode(parse_qsl(source, keep_blank_values=True))


def _run(handler: Callable[[Call], dict[str, Any]], call: Call) -> dict[str, Any]:
    body = handler(call)
    expand = call.params.get("expand") or []
    return expanded(body, [expand] if isinstance(expand, str) else expand)


def _idempotent(
    handler: Callable[[Call], dict[str, Any]], call: Call, *, method: str, path: str
) -> tuple[dict[str, Any], IdempotencyRecord | None]:
    """Run once per key; ``(body, record)`` with ``record`` set when this was a replay."""
    key = call.idempotency_key or ""
    if len(key) > 255:
        raise StripeError("Idempotency-Key must be at most 255 characters long.")
    fingerprint = request_fingerprint(method=method, path=path, params=call.params)
    IdempotencyRecord.objects.filter(
        key=key, created_at__lt=timezone.now() - IDEMPOTENCY_WINDOW
    ).delete()
    try:
        with transaction.atomic():
            record = IdempotencyRecord.objects.create(
                key=key, fingerprint=fingerprint, request_id=call.request_id
            )
    except IntegrityError:
        first = IdempotencyRecord.objects.filter(key=key).first()
        if first is not None and first.fingerprint != fingerprint:
            raise StripeError(
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{key}' if you meant to "
                "execute a different request.",
                type="idempotency_error",
            ) from None
        if first is None or first.status is None:
            raise StripeError(
                "There is currently another in-progress request using this Idempotent Key "
                "(that probably means you submitted twice, and the other request is still "
                f"going through): {key}. Please try again later.",
                status=409,
                type="idempotency_error",
            ) from None
        return first.body, first
    try:
        with transaction.atomic():
            body = _run(handler, call)
            record.status, record.body = 200, body
            record.save(update_fields=["status", "body"])
    except BaseException:
        IdempotencyRecord.objects.filter(pk=record.pk, status__isnull=True).delete()
        raise
    return body, None


@csrf_exempt
def api(request: HttpRequest, path: str) -> JsonResponse:
    """Every ``/v1/...`` request: authenticate, route, run (idempotently), answer like Stripe."""
    request_id = "req_" + secrets.token_hex(7)
    headers = {
        "Request-Id": request_id,
        "Stripe-Version": request.headers.get("Stripe-Version") or API_VERSION,
        "Cache-Control": "no-cache, no-store",
    }
    key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
    if key:
        headers["Idempotency-Key"] = key
    try:
        _authenticate(request)
        handler, object_id = _route(request.method or "GET", path)
        call = Call(
            params=_params(request),
            object_id=object_id,
            request_id=request_id,
            idempotency_key=key or None,
        )
        if object_id.startswith("cs_"):
            # Lazy expiry first, in its own transaction: a refused call must not undo it.
            session_expire_if_due(session_id=object_id)
        if key:
            body, replayed = _idempotent(handler, call, method=request.method, path=path)
            if replayed is not None:
                headers["Idempotent-Replayed"] = "true"
                headers["Original-Request"] = replayed.request_id
        else:
            body = _run(handler, call)
        status = 200
    except StripeError as error:
        status, body = error.status, error.body()
    deliveries_sweep_lazily()
    return JsonResponse(body, status=status, headers=headers)
