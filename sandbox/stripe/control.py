"""Test controls of the Stripe stand-in, JSON under ``/sandbox/stripe/_control/``.

Sandbox only (the whole app is mounted only when ``SANDBOX_ENABLED``); no authentication.
Settings live in the database, so they apply to the web and worker processes alike.

``GET  _control/``
    ``{"duplicate", "hold", "fail_next", "webhook_url", "refund_status", "delivering_to",
    "deliveries": {"pending": n, "held": n, "delivered": n, "failed": n}}``.
``POST _control/``  JSON body, any of:
    ``"duplicate": true`` every new event is delivered twice (two deliveries, same event id);
    ``"hold": true`` new events are kept back (deliveries ``held``) until released;
    ``"fail_next": 3`` the next 3 delivery attempts fail without reaching the endpoint (each
    recorded as failed and retried on the usual schedule);
    ``"webhook_url": "http://..."`` deliver there instead of
    ``{PUBLIC_BASE_URL}/payments/stripe/webhook/`` (``""`` restores it);
    ``"refund_status": "pending"`` new refunds wait (``pending``) until settled below
    (``"succeeded"``, the default, completes them at once).
    Answers the settings as ``GET`` does; a wrong name or type is 400 and changes nothing.
``POST _control/release/``  JSON body ``{"order": "fifo" | "reverse" | "shuffle", "seed": 7}``
    (both optional): the held deliveries go out one after another in that order (one task);
    answers ``{"released": [{"delivery": id, "event": "evt_...", "type": "..."}, ...]}`` in
    delivery order. Holding stays on until ``"hold": false``.
``POST _control/reset/``
    everything back to normal, held deliveries released in order; answers like ``GET``.
``POST _control/deliver/``
    one attempt, now and in this request, at every pending delivery (no worker needed);
    answers ``{"attempted": [{"delivery", "event", "type", "state", "status"}, ...]}``.
``GET  _control/events/?type=...&object=...``
    events newest first (at most 200), optionally of one type or about one object id:
    ``{"data": [{"id", "type", "created", "object_id", "deliveries": [{"id", "copy", "state",
    "attempts", "last_status", "log"}]}]}``.
``POST _control/refunds/<id>/``  JSON body ``{"status": "succeeded" | "failed",
    "failure_reason": "expired_or_canceled_card"}``: what the bank does later with a refund: a
    pending one succeeds or fails, a succeeded one fails (the money comes back to the charge).
    Emits ``refund.updated``, ``charge.refund.updated`` (and ``refund.failed``); answers the
    refund; 400 for a move a refund cannot make, 404 for an unknown refund.
``POST _control/sessions/<id>/expire/``
    expire an open Checkout Session now, as if its ``expires_at`` had passed
    (``checkout.session.expired`` follows); ``{"expired": true|false, "status": "..."}``,
    404 for an unknown session.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from django.db.models import Count
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sandbox.stripe.errors import StripeError
from sandbox.stripe.models import Event, EventDelivery, StripeObject
from sandbox.stripe.services.checkout import session_expire_if_due
from sandbox.stripe.services.events import (
    RELEASE_ORDERS,
    control_get,
    control_reset,
    control_update,
    deliveries_deliver_in_order,
    deliveries_pending,
    deliveries_release,
    webhook_url,
)
from sandbox.stripe.services.refunds import refund_settle


def _error(message: str, *, status: int = 400, param: str | None = None) -> JsonResponse:
    return JsonResponse({"error": {"message": message, "param": param}}, status=status)


def _json_body(request: HttpRequest) -> dict[str, Any]:
    """:raises ValueError: the body is not a JSON object."""
    if not request.body:
        return {}
    body = json.loads(request.body)
    if not isinstance(body, dict):
        raise ValueError("The body must be a JSON object.")
    return body


def _state() -> dict[str, Any]:
    control = control_get()
    counts = dict(
        EventDelivery.objects.values_list("state").annotate(n=Count("pk")).values_list("state", "n")
    )
    return {
        "duplicate": control.duplicate,
        "hold": control.hold,
        "fail_next": control.fail_next,
        "webhook_url": control.webhook_url,
        "refund_status": control.refund_status,
        "delivering_to": webhook_url(),
        "deliveries": {state: counts.get(state, 0) for state in EventDelivery.State.values},
    }


def _changes(body: dict[str, Any]) -> dict[str, Any]:
    """:raises ValueError: (message, param) for an unknown name or a wrong value."""
    changes: dict[str, Any] = {}
    for name, value in body.items():
        if name in ("duplicate", "hold"):
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true or false.", name)
        elif name == "fail_next":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
                raise ValueError("fail_next must be an integer from 0 to 1000.", name)
        elif name == "webhook_url":
            parts = urlsplit(value) if isinstance(value, str) else None
            if value != "" and (
                parts is None or parts.scheme not in ("http", "https") or not parts.netloc
            ):
                raise ValueError("webhook_url must be an http(s) URL or empty.", name)
        elif name == "refund_status":
            if value not in ("succeeded", "pending"):
                raise ValueError("refund_status must be succeeded or pending.", name)
        else:
            raise ValueError(
                f"Unknown control {name!r}: use duplicate, hold, fail_next, webhook_url or "
                "refund_status.",
                name,
            )
        changes[name] = value
    return changes


@csrf_exempt
@require_http_methods(["GET", "POST"])
def control(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        try:
            changes = _changes(_json_body(request))
        except ValueError as error:
            message, *param = error.args
            return _error(str(message), param=param[0] if param else None)
        control_update(changes=changes)
    return JsonResponse(_state())


def _delivery_rows(ids: list[int]) -> list[dict[str, Any]]:
    rows = EventDelivery.objects.select_related("event").in_bulk(ids)
    return [
        {"delivery": pk, "event": rows[pk].event_id, "type": rows[pk].event.type}
        for pk in ids
        if pk in rows
    ]


@csrf_exempt
@require_POST
def release(request: HttpRequest) -> JsonResponse:
    try:
        body = _json_body(request)
    except ValueError as error:
        return _error(str(error))
    order = body.get("order", "fifo")
    seed = body.get("seed")
    if order not in RELEASE_ORDERS:
        return _error(f"order must be one of {', '.join(RELEASE_ORDERS)}.", param="order")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        return _error("seed must be an integer.", param="seed")
    return JsonResponse({"released": _delivery_rows(deliveries_release(order=order, seed=seed))})


@csrf_exempt
@require_POST
def reset(request: HttpRequest) -> JsonResponse:
    control_reset()
    return JsonResponse(_state())


@csrf_exempt
@require_POST
def deliver(request: HttpRequest) -> JsonResponse:
    ids = deliveries_pending()
    outcomes = deliveries_deliver_in_order(delivery_ids=ids)
    rows = _delivery_rows(ids)
    for row, outcome in zip(rows, outcomes, strict=False):
        row.update(state=outcome.state, status=outcome.status)
    return JsonResponse({"attempted": rows})


@require_GET
def events(request: HttpRequest) -> JsonResponse:
    queryset = Event.objects.prefetch_related("deliveries").order_by("-created_at", "-pk")
    if request.GET.get("type"):
        queryset = queryset.filter(type=request.GET["type"])
    if request.GET.get("object"):
        queryset = queryset.filter(payload__data__object__id=request.GET["object"])
    data = [
        {
            "id": event.id,
            "type": event.type,
            "created": event.payload["created"],
            "object_id": event.payload["data"]["object"].get("id"),
            "deliveries": [
                {
                    "id": delivery.pk,
                    "copy": delivery.copy,
                    "state": delivery.state,
                    "attempts": delivery.attempts,
                    "last_status": delivery.last_status,
                    "log": delivery.log,
                }
                for delivery in event.deliveries.all()
            ],
        }
        for event in queryset[:200]
    ]
    return JsonResponse({"data": data})


@csrf_exempt
@require_POST
def session_expire_now(request: HttpRequest, session_id: str) -> JsonResponse:
    if not StripeObject.objects.filter(pk=session_id, object="checkout.session").exists():
        return _error(f"No such checkout.session: '{session_id}'", status=404, param="id")
    expired = session_expire_if_due(session_id=session_id, force=True)
    status = StripeObject.objects.get(pk=session_id).data["status"]
    return JsonResponse({"expired": expired, "status": status})


@csrf_exempt
@require_POST
def refund_settle_now(request: HttpRequest, refund_id: str) -> JsonResponse:
    try:
        body = _json_body(request)
    except ValueError as error:
        return _error(str(error))
    status, reason = body.get("status"), body.get("failure_reason", "")
    if not isinstance(status, str) or not isinstance(reason, str):
        return _error("status and failure_reason must be strings.", param="status")
    try:
        refund = refund_settle(refund_id=refund_id, status=status, failure_reason=reason)
    except StripeError as error:
        return JsonResponse(error.body(), status=error.status)
    return JsonResponse(refund)
