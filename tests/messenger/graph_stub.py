"""A local Graph API stand-in for tests: a real HTTP server on 127.0.0.1, one per test.

Only the network boundary is replaced: ``messenger/client.py`` makes real HTTP requests with
``requests`` to this server, which answers like the Graph API does.

Use the ``graph_stub`` fixture (registered in ``tests/messenger/conftest.py``; elsewhere import
it: ``from tests.messenger.graph_stub import graph_stub  # noqa: F401``) or, outside pytest's
``settings`` fixture, the ``graph_stub_server()`` context manager and set
``settings.GRAPH_API_BASE = stub.url`` yourself.

Routes (any version prefix, e.g. ``/v25.0``):

- ``POST /<v>/me/messages`` -> ``{"recipient_id": <recipient.id>, "message_id": "m_<n>"}``
  (sender actions get ``{"recipient_id": ...}`` only, as Graph does).
- ``GET /<v>/<psid>`` -> the user profile (``stub.profiles[psid]`` or ``stub.default_profile``),
  narrowed to the ``fields`` query parameter when given, plus ``id``.
- ``POST /<v>/me/messenger_profile`` -> ``{"result": "success"}`` (fields kept in
  ``stub.messenger_profile``), ``DELETE`` the same (removes ``fields``),
  ``GET`` -> ``{"data": [...]}``.
- anything else -> 400 with Graph error code 100 (unknown path).

Programming failures (each answers with a Graph error body)::

    stub.fail_next(2, status=500)                         # the next two requests fail
    stub.fail_next(status=400, code=551, subcode=1545041, message="This person isn't available")
    stub.fail_always(status=400, code=190, subcode=460)   # until stub.reset_failures()
    stub.fail_next(code=613, status=400, path="/me/messages")  # only requests to matching paths
    stub.fail_next(status=502, raw="<html>Bad Gateway</html>")  # not a Graph answer at all
    stub.delay(2.5)                                       # every later request sleeps first
    stub.delay(2.5, times=1)                              # only the next one

Inspection: ``stub.requests`` (every request, in arrival order, as ``RecordedRequest``),
``stub.sent_messages()`` (JSON bodies successfully posted to ``/me/messages``, in order),
``stub.requests_to("/me/messages")``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.http_stub import stub_server

DEFAULT_PROFILE: dict[str, Any] = {
    "first_name": "Layla",
    "last_name": "Haddad",
    "locale": "ar_AR",
    "timezone": 3,
    "profile_pic": "https://platform-lookaside.fbsbx.com/platform/profilepic/?psid=1",
}

# Messages Graph sends with the usual codes (what the tests' failures look like by default).
_DEFAULT_MESSAGES = {
    1: "An unknown error occurred",
    2: "An unexpected error has occurred. Please retry your request later.",
    4: "(#4) Application request limit reached",
    10: "(#10) This message is sent outside of allowed window.",
    100: "(#100) No matching user found",
    190: "Error validating access token: The session has been invalidated.",
    551: "(#551) This person isn't available right now.",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    1200: "(#1200) Temporary send message failure. Please try again later",
}


@dataclass(frozen=True)
class RecordedRequest:
    """One request the stub received, and the status it answered."""

    method: str
    path: str  # without the query string, e.g. "/v25.0/me/messages"
    query: dict[str, str]  # last value of each parameter
    body: Any  # parsed JSON, the raw text when it is not JSON, None when empty
    headers: dict[str, str]  # lower-cased names
    status: int
    raw_body: str = ""  # the body as sent, to check exact number formatting

    @property
    def version(self) -> str:
        return self.path.split("/")[1] if self.path.count("/") >= 1 else ""

    @property
    def endpoint(self) -> str:
        """The path without its version: ``/me/messages``, ``/<psid>``."""
        parts = self.path.split("/", 2)
        return "/" + parts[2] if len(parts) > 2 else self.path


@dataclass
class _Failure:
    status: int
    code: int
    subcode: int | None
    message: str
    type: str
    path: str | None
    remaining: int | None  # None: always
    raw: str | None = None  # answer this text (as HTML) instead of a Graph error body

    def matches(self, path: str) -> bool:
        return self.path is None or self.path in path

    def body(self, trace: int) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "code": self.code,
            "fbtrace_id": f"AStub{trace:06d}",
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        return {"error": error}


@dataclass
class GraphStub:
    """State of one stub server; the request handler reads and updates it under ``lock``."""

    url: str = ""
    requests: list[RecordedRequest] = field(default_factory=list)
    default_profile: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PROFILE))
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    messenger_profile: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _failures: list[_Failure] = field(default_factory=list, repr=False)
    _delay_seconds: float = 0.0
    _delay_remaining: int | None = None
    _message_count: int = 0
    _trace_count: int = 0
    _stopping: threading.Event = field(default_factory=threading.Event, repr=False)

    # ---- programming ------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 500,
        code: int | None = None,
        subcode: int | None = None,
        message: str | None = None,
        type: str = "OAuthException",
        path: str | None = None,
        raw: str | None = None,
    ) -> None:
        """The next ``n`` requests (whose path contains ``path``, if given) fail like this.

        Without ``code``: code 2 for a 5xx status (Graph's "unexpected error"), 100 otherwise.
        ``raw`` answers that text as HTML instead (a proxy's error page, no Graph body).
        Queued failures are used first-in first-out.
        """
        self._add_failure(n, status, code, subcode, message, type, path, raw)

    def fail_always(
        self,
        *,
        status: int = 500,
        code: int | None = None,
        subcode: int | None = None,
        message: str | None = None,
        type: str = "OAuthException",
        path: str | None = None,
        raw: str | None = None,
    ) -> None:
        """Every later request (matching ``path``) fails, until ``reset_failures()``."""
        self._add_failure(None, status, code, subcode, message, type, path, raw)

    def reset_failures(self) -> None:
        with self.lock:
            self._failures.clear()
            self._delay_seconds = 0.0
            self._delay_remaining = None

    def delay(self, seconds: float, *, times: int | None = None) -> None:
        """Sleep ``seconds`` before answering the next ``times`` requests (all when None)."""
        with self.lock:
            self._delay_seconds = seconds
            self._delay_remaining = times

    def set_profile(self, psid: str, **fields: Any) -> None:
        """The User Profile API answer for ``psid`` (missing fields come from the default)."""
        with self.lock:
            self.profiles[psid] = {**self.default_profile, **fields}

    # ---- inspection -------------------------------------------------------------------------

    def requests_to(self, endpoint: str, *, method: str | None = None) -> list[RecordedRequest]:
        """Requests whose versionless path is ``endpoint`` (e.g. ``/me/messages``)."""
        with self.lock:
            return [
                r
                for r in self.requests
                if r.endpoint == endpoint and (method is None or r.method == method)
            ]

    def sent_messages(self, *, psid: str | None = None) -> list[dict[str, Any]]:
        """The JSON bodies successfully posted to ``/me/messages`` (sender actions included),
        in the order they arrived; only those to ``psid`` when given."""
        return [
            r.body
            for r in self.requests_to("/me/messages", method="POST")
            if 200 <= r.status < 300
            and (psid is None or (r.body or {}).get("recipient", {}).get("id") == psid)
        ]

    def clear(self) -> None:
        """Forget recorded requests (programmed failures and delays stay)."""
        with self.lock:
            self.requests.clear()

    # ---- internals --------------------------------------------------------------------------

    def _add_failure(self, n, status, code, subcode, message, type_, path, raw) -> None:
        if code is None:
            code = 2 if status >= 500 else 100
        if message is None:
            message = _DEFAULT_MESSAGES.get(code, f"(#{code}) Stubbed Graph API error")
        failure = _Failure(status, code, subcode, message, type_, path, n, raw)
        with self.lock:
            self._failures.append(failure)

    def _take_failure(self, path: str) -> _Failure | None:
        with self.lock:
            for failure in self._failures:
                if failure.matches(path):
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

    def _next_trace(self) -> int:
        with self.lock:
            self._trace_count += 1
            return self._trace_count

    def _answer(self, method: str, path: str, query: dict[str, str], body: Any):
        """The (status, JSON) for a request that is not programmed to fail."""
        parts = [p for p in path.split("/") if p]
        endpoint = parts[1:] if parts else []
        if endpoint == ["me", "messages"] and method == "POST":
            if not isinstance(body, dict) or "recipient" not in body:
                return 400, self._error(100, "(#100) The parameter recipient is required")
            recipient_id = str((body.get("recipient") or {}).get("id", ""))
            if "sender_action" in body and "message" not in body:
                return 200, {"recipient_id": recipient_id}
            with self.lock:
                self._message_count += 1
                mid = f"m_{self._message_count}"
            return 200, {"recipient_id": recipient_id, "message_id": mid}
        if endpoint == ["me", "messenger_profile"]:
            with self.lock:
                if method == "POST" and isinstance(body, dict):
                    self.messenger_profile.update(body)
                    return 200, {"result": "success"}
                if method == "DELETE":
                    fields = body.get("fields", []) if isinstance(body, dict) else []
                    for name in fields:
                        self.messenger_profile.pop(name, None)
                    return 200, {"result": "success"}
                if method == "GET":
                    return 200, {
                        "data": [dict(self.messenger_profile)] if self.messenger_profile else []
                    }
        if len(endpoint) == 1 and endpoint[0] != "me" and method == "GET":
            psid = endpoint[0]
            with self.lock:
                profile = dict(self.profiles.get(psid, self.default_profile))
            if query.get("fields"):
                wanted = {name.strip() for name in query["fields"].split(",")}
                profile = {k: v for k, v in profile.items() if k in wanted}
            return 200, {**profile, "id": psid}
        return 400, self._error(100, f"Unknown path components: {path}")

    def _error(self, code: int, message: str) -> dict[str, Any]:
        return _Failure(400, code, None, message, "OAuthException", None, 1).body(
            self._next_trace()
        )


def _handler_for(stub: GraphStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            return

        def _handle(self) -> None:
            split = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = None
            text = raw.decode("utf-8", errors="replace")
            if raw:
                try:
                    body = json.loads(text)
                except ValueError:
                    body = text
            seconds = stub._take_delay()
            if seconds and stub._stopping.wait(seconds):
                return
            failure = stub._take_failure(split.path)
            content_type = "application/json; charset=UTF-8"
            if failure is not None and failure.raw is not None:
                status, payload = failure.status, failure.raw.encode()
                content_type = "text/html; charset=UTF-8"
            elif failure is not None:
                status = failure.status
                payload = json.dumps(failure.body(stub._next_trace())).encode()
            else:
                status, answer = stub._answer(self.command, split.path, query, body)
                payload = json.dumps(answer).encode()
            headers = {name.lower(): value for name, value in self.headers.items()}
            with stub.lock:
                stub.requests.append(
                    RecordedRequest(self.command, split.path, query, body, headers, status, text)
                )
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                pass

        do_GET = do_POST = do_DELETE = _handle

    return Handler


@contextmanager
def graph_stub_server() -> Iterator[GraphStub]:
    """Run a stub server on a free port of 127.0.0.1 for the duration of the ``with`` block."""
    stub = GraphStub()
    with stub_server(stub, _handler_for(stub), name="graph-stub"):
        yield stub


@pytest.fixture
def graph_stub(settings) -> Iterator[GraphStub]:
    """A running Graph API stub; ``settings.GRAPH_API_BASE`` points at it for the test."""
    with graph_stub_server() as stub:
        settings.GRAPH_API_BASE = stub.url
        yield stub
