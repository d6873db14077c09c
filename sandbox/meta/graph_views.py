"""The Graph API stand-in over HTTP: ``/sandbox/graph/<version>/...``, the address ``make run``
puts into ``GRAPH_API_BASE``.

Endpoints (any ``vNN.N`` version; ``<page-id>`` may replace ``me``)::

    POST   /me/messages                   Send API: {"recipient_id", "message_id"}
    POST   /me/messenger_profile          {"result": "success"}   (fields merged)
    GET    /me/messenger_profile?fields=  {"data": [{...}]}
    DELETE /me/messenger_profile          {"fields": [...]} -> {"result": "success"}
    GET    /<psid>?fields=first_name,...  User Profile API
    POST   /me/pass_thread_control        {"recipient", "target_app_id"} -> {"success": true}
    POST   /me/take_thread_control        {"recipient": {"id"}} -> {"success": true}
    GET    /me/thread_owner?recipient=    {"data": [{"thread_owner": {"app_id"}}]}

Every call needs ``access_token`` (a registered page's; else code 190) and, when
``MESSENGER_APP_SECRET`` is set, ``appsecret_proof`` = hex HMAC-SHA256 of the token keyed with
the app secret (else code 100). Bodies are JSON or form fields. Errors have Graph's shape:
``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``.

Fault control, for tests and demos (no token needed; the sandbox is never mounted in
production)::

    POST   /sandbox/graph/_control/faults   {"path": "/me/messages", "status": 500, "code": 2,
                                             "subcode": null, "message": "...", "times": 2,
                                             "delay_ms": 0}
    GET    /sandbox/graph/_control/faults   the active faults
    DELETE /sandbox/graph/_control/faults   clear them all

``path`` is a substring of the request path (empty: every Graph request); ``times`` null means
until cleared; without ``status`` the fault only delays (``delay_ms``). Without ``code``, a 5xx
fault answers code 2 and others code 100.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from sandbox.meta.errors import GraphApiError
from sandbox.meta.models import GraphFault, SandboxPage
from sandbox.meta.services import graph

_Handler = Callable[[SandboxPage, dict[str, str], Any], dict]


def _request_data(request: HttpRequest) -> tuple[dict[str, str], Any]:
    """``(query parameters, body)``: the body parsed from JSON, or form fields whose values are
    JSON-decoded when they can be (Graph accepts ``recipient={"id": ...}`` as a form field).

    :raises GraphApiError: a JSON body that does not parse.
    """
    query = request.GET.dict()
    raw = request.body
    content_type = request.content_type or ""
    if not raw:
        return query, {}
    if content_type == "application/json" or raw.lstrip()[:1] in (b"{", b"["):
        try:
            return query, json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise GraphApiError.invalid("The request body is not valid JSON") from exc
    form = request.POST.dict() if request.method == "POST" else {}
    body: dict[str, Any] = {}
    for key, value in form.items():
        try:
            body[key] = json.loads(value)
        except ValueError:
            body[key] = value
    return query, body


def _credential(request: HttpRequest, query: dict, body: Any, name: str) -> str:
    if query.get(name):
        return query[name]
    if isinstance(body, dict) and isinstance(body.get(name), str):
        return body[name]
    if name == "access_token":
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            return header[len("Bearer ") :].strip()
    return ""


def _without_credentials(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if k not in ("access_token", "appsecret_proof")}
    return body


# -- routes ------------------------------------------------------------------------------------


def _send(page, query, body):
    return graph.send_accept(page=page, body=body)


def _profile_set(page, query, body):
    return graph.messenger_profile_set(page=page, body=body)


def _profile_get(page, query, body):
    return graph.messenger_profile_get(page=page, fields=query.get("fields"))


def _profile_delete(page, query, body):
    if not body and query.get("fields"):  # fields given as a query parameter
        try:
            body = {"fields": json.loads(query["fields"])}
        except ValueError:
            body = {"fields": query["fields"].split(",")}
    return graph.messenger_profile_delete(page=page, body=body)


def _pass_thread(page, query, body):
    return graph.thread_pass(page=page, body=body)


def _take_thread(page, query, body):
    return graph.thread_take(page=page, body=body)


def _thread_owner(page, query, body):
    return graph.thread_owner(page=page, psid=query.get("recipient"))


_PAGE_EDGES: dict[tuple[str, str], _Handler] = {
    ("messages", "POST"): _send,
    ("messenger_profile", "POST"): _profile_set,
    ("messenger_profile", "GET"): _profile_get,
    ("messenger_profile", "DELETE"): _profile_delete,
    ("pass_thread_control", "POST"): _pass_thread,
    ("take_thread_control", "POST"): _take_thread,
    ("thread_owner", "GET"): _thread_owner,
}


def _unsupported(method: str, node: str) -> GraphApiError:
    return GraphApiError(
        100,
        f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation.",
        subcode=33,
        error_type="GraphMethodException",
    )


def _route(method: str, endpoint: str, page: SandboxPage, query: dict, body: Any) -> dict:
    parts = [part for part in endpoint.split("/") if part]
    if len(parts) == 2:
        node, edge = parts
        if node not in ("me", page.page_id):
            raise _unsupported(method, node)
        handler = _PAGE_EDGES.get((edge, method))
        if handler is None:
            raise GraphApiError.invalid(f"Unknown path components: /{edge}")
        return handler(page, query, body)
    if len(parts) == 1 and method == "GET":
        node = parts[0]
        if node in ("me", page.page_id):
            return {"name": page.name, "id": page.page_id}
        return graph.user_profile(page=page, psid=node, fields=query.get("fields"))
    raise _unsupported(method, parts[0] if parts else "")


@csrf_exempt
def graph_call(request: HttpRequest, version: str, endpoint: str) -> JsonResponse:
    """One Graph API request: injected fault, credentials, then the endpoint's answer."""
    try:
        graph.fault_apply(graph.fault_take(path=request.path))
        query, body = _request_data(request)
        page = graph.page_authenticate(
            access_token=_credential(request, query, body, "access_token"),
            proof=_credential(request, query, body, "appsecret_proof") or None,
        )
        return JsonResponse(
            _route(request.method, endpoint, page, query, _without_credentials(body))
        )
    except GraphApiError as error:
        return error.response()


# -- fault control -----------------------------------------------------------------------------


def _int_or_none(data: dict, name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be a whole number or null")
    return value


def _fault_json(fault: GraphFault) -> dict:
    return {
        "id": fault.pk,
        "path": fault.path,
        "status": fault.status,
        "code": fault.code,
        "subcode": fault.subcode,
        "message": fault.message,
        "times": fault.remaining,
        "delay_ms": fault.delay_ms,
    }


@csrf_exempt
def faults_control(request: HttpRequest) -> JsonResponse:
    """Add (POST), list (GET) or clear (DELETE) injected Graph faults; see the module doc."""
    if request.method == "DELETE":
        return JsonResponse({"cleared": graph.faults_clear()})
    if request.method == "GET":
        return JsonResponse({"faults": [_fault_json(f) for f in GraphFault.objects.all()]})
    if request.method != "POST":
        return JsonResponse({"message": "Use GET, POST or DELETE."}, status=405)
    try:
        data = json.loads(request.body or b"{}")
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        status, times = _int_or_none(data, "status"), _int_or_none(data, "times")
        delay_ms = _int_or_none(data, "delay_ms") or 0
        if status is not None and not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        if status is None and not delay_ms:
            raise ValueError("give a status, a delay_ms, or both")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (null: until cleared)")
        if not 0 <= delay_ms <= 120_000:
            raise ValueError("delay_ms must be between 0 and 120000")
        path, message = data.get("path") or "", data.get("message") or ""
        if not isinstance(path, str) or not isinstance(message, str):
            raise ValueError("path and message must be strings")
        fault = graph.fault_add(
            path=path[:200],
            status=status,
            code=_int_or_none(data, "code"),
            subcode=_int_or_none(data, "subcode"),
            message=message[:500],
            error_type=str(data.get("type") or "OAuthException")[:50],
            times=times,
            delay_ms=delay_ms,
        )
    except ValueError as exc:
        return JsonResponse({"message": f"Bad fault: {exc}"}, status=400)
    return JsonResponse(_fault_json(fault), status=201)
