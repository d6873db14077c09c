"""Fixtures for the Stripe stand-in's tests.

- ``stand_in``: the live server, with the service pointed at the stand-in the way ``make run``
  does it (``STRIPE_API_BASE = <server>/sandbox/stripe``, ``PUBLIC_BASE_URL = <server>``), so
  the real gateway talks to it over HTTP.
- ``make_order``: the payments tests' order factory (a ``pending_payment`` order).
- ``receiver``: a small local webhook endpoint that answers the statuses it is told to.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest

from commerce.notifications import order_subscribers_clear, order_subscribers_restore
from tests.http_stub import stub_server
from tests.payments.conftest import make_order  # noqa: F401  (fixture)

SECRET_KEY = "sk_test_sandbox_suite"
WEBHOOK_SECRET = "whsec_sandbox_suite"


@pytest.fixture(autouse=True)
def _stripe_settings(settings):
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET


@pytest.fixture(autouse=True)
def _no_order_notice_subscribers():
    """Orders paid here must not reach the messenger's handlers (not under test here)."""
    saved = order_subscribers_clear()
    yield
    order_subscribers_clear()
    order_subscribers_restore(saved)


@dataclass
class StandIn:
    url: str  # the live server

    @property
    def api_base(self) -> str:
        return f"{self.url}/sandbox/stripe"


@pytest.fixture
def stand_in(live_server, transactional_db, settings) -> StandIn:
    settings.PUBLIC_BASE_URL = live_server.url
    settings.STRIPE_API_BASE = f"{live_server.url}/sandbox/stripe"
    return StandIn(url=live_server.url)


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """What the local endpoint answers (``statuses`` in turn, then 200) and what it got."""

    url: str = ""
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # quiet
            return

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            with state.lock:
                state.received.append(
                    Received(body=body, headers={k.lower(): v for k, v in self.headers.items()})
                )
                status = state.statuses.pop(0) if state.statuses else 200
            payload = b'{"received": true}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    with stub_server(state, Handler, name="webhook-receiver"):
        yield state
