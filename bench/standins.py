"""Meta's Graph API and Stripe's API for the benchmarks, in a process of their own.

The service calls them over HTTP exactly as it calls the real ones (``GRAPH_API_BASE``,
``STRIPE_API_BASE``). Two ways to run them:

- ``sandbox``: the project's own stand-ins, served by the benchmark's gunicorn under
  ``/sandbox/graph`` (``sandbox.meta``, recording each Send API call as a ``GraphMessage``) and
  ``/sandbox/stripe`` (``sandbox.stripe``); used when they exist (``graph_mode("auto")``).
- ``recorder`` (this module): a small threaded server in a separate process, so it never
  competes with the load client for a GIL. Graph: ``POST /<v>/me/messages`` records
  ``(time received, recipient id, body)`` and answers like Graph; ``GET /<v>/<psid>`` answers a
  profile; anything else under a version answers ``{"success": true}``. Stripe: the test
  suite's Stripe stand-in (``tests/payments/stripe_stub.py``), on a second port.
  Control, for the benchmark only: ``GET /_bench/messages`` (every recorded send, JSON),
  ``POST /_bench/stripe/complete/<session id>`` (the shopper paid: the session as Stripe's
  event would carry it).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import re
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
_VERSIONED = re.compile(r"^/v\d+\.\d+/")


@dataclass(frozen=True)
class Send:
    at: float  # epoch seconds when the Send API call arrived
    psid: str
    body: dict[str, Any]


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    sends: list[tuple[float, str, dict]] = []
    lock = threading.Lock()
    stripe_stub: Any = None

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _answer(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:
        arrived = time.time()
        raw = self._body()
        path = self.path.split("?", 1)[0]
        if path.startswith("/_bench/stripe/complete/"):
            session_id = path.rsplit("/", 1)[1]
            self._answer(200, self.stripe_stub.session_complete(session_id))
            return
        if _VERSIONED.match(path) and path.endswith("/me/messages"):
            try:
                body = json.loads(raw)
            except ValueError:
                body = {}
            psid = str((body.get("recipient") or {}).get("id", ""))
            with self.lock:
                self.sends.append((arrived, psid, body))
                number = len(self.sends)
            answer = {"recipient_id": psid}
            if "message" in body:
                answer["message_id"] = f"m_bench_{number}"
            self._answer(200, answer)
            return
        self._answer(200, {"result": "success"})

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/_bench/messages":
            with self.lock:
                self._answer(200, list(self.sends))
            return
        if _VERSIONED.match(path):
            psid = path.rsplit("/", 1)[1]
            self._answer(
                200,
                {"id": psid, "first_name": "Bench", "last_name": "Shopper", "locale": "en_US",
                 "timezone": 3},
            )  # fmt: skip
            return
        self._answer(404, {"error": {"message": "unknown path", "code": 100}})

    def do_DELETE(self) -> None:
        self._body()
        self._answer(200, {"result": "success"})


def _serve(graph_port: int, stripe_port_out: Any, ready: Any) -> None:
    sys.path.insert(0, str(REPO))
    from tests.payments.stripe_stub import stripe_stub_server

    server = ThreadingHTTPServer(("127.0.0.1", graph_port), _Recorder)
    server.daemon_threads = True
    with stripe_stub_server() as stripe:
        _Recorder.stripe_stub = stripe
        stripe_port_out.value = int(stripe.url.rsplit(":", 1)[1])
        ready.set()
        server.serve_forever(poll_interval=0.1)


@dataclass
class Recorder:
    graph_url: str  # GRAPH_API_BASE for the service
    stripe_url: str  # STRIPE_API_BASE for the service
    port: int

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=60) as answer:
            return json.loads(answer.read())

    def sends(self) -> list[Send]:
        return [Send(at, psid, body) for at, psid, body in self._get("/_bench/messages")]

    def stripe_complete(self, session_id: str) -> dict[str, Any]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/_bench/stripe/complete/{session_id}",
            data=b"",
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (http only)
            return json.loads(answer.read())


@contextlib.contextmanager
def recorder() -> Iterator[Recorder]:
    """The recorder and the Stripe stand-in in a child process, stopped afterwards."""
    from bench.stack import free_port

    context = multiprocessing.get_context("spawn")
    port = free_port()
    stripe_port = context.Value("i", 0)
    ready = context.Event()
    process = context.Process(target=_serve, args=(port, stripe_port, ready), daemon=True)
    process.start()
    try:
        if not ready.wait(30):
            sys.exit("error: the Graph/Stripe stand-ins did not start")
        yield Recorder(
            graph_url=f"http://127.0.0.1:{port}",
            stripe_url=f"http://127.0.0.1:{stripe_port.value}",
            port=port,
        )
    finally:
        process.terminate()
        process.join(10)


def sandbox_graph_available() -> bool:
    """Whether ``sandbox.meta`` records Send API calls (``GraphMessage``) yet."""
    models = REPO / "sandbox" / "meta" / "models.py"
    return models.exists() and "class GraphMessage" in models.read_text()


def graph_mode(requested: str) -> str:
    if requested == "auto":
        return "sandbox" if sandbox_graph_available() else "recorder"
    if requested == "sandbox" and not sandbox_graph_available():
        sys.exit("error: sandbox.meta has no GraphMessage yet: use --graph recorder")
    return requested


SANDBOX_SHOPPERS = """
from django.utils import timezone
from sandbox.meta.models import SandboxPage, SandboxShopper
from sandbox.meta.services.shoppers import shopper_create
page = SandboxPage.objects.get(page_id=PAGE_ID)
known = set(SandboxShopper.objects.filter(page=page).values_list("psid", flat=True))
for psid in PSIDS:
    if psid not in known:
        shopper_create(page=page, first_name="Bench", last_name="Shopper", psid=psid)
# They wrote just now: the 24-hour window is open, as for any shopper the service answers.
SandboxShopper.objects.filter(page=page, psid__in=PSIDS).update(last_message_at=timezone.now())
result = len(PSIDS)
"""


def sandbox_prepare(env: dict[str, str], *, page_id: str, psids: list[str]) -> None:
    """Register the page with ``sandbox.meta`` and make each PSID one of its shoppers (the
    stand-in refuses sends to people it does not know, as Graph does)."""
    from bench.stack import manage, shell

    manage(env, "sandbox_seed", "--page-id", page_id)
    shell(env, f"PAGE_ID = {page_id!r}\nPSIDS = {psids!r}\n{SANDBOX_SHOPPERS}")


def sandbox_sends(env: dict[str, str], *, since: float) -> list[Send]:
    """Send API calls ``sandbox.meta`` recorded (``GraphMessage``) since ``since`` (epoch
    seconds), read straight from its table: polling through ``manage.py`` would load the
    machine being measured."""
    import psycopg

    with psycopg.connect(env["DATABASE_URL"].replace("postgres://", "postgresql://")) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM received_at)::float8, recipient_psid, body"
            " FROM sandbox_meta_graphmessage WHERE received_at >= to_timestamp(%s)",
            (since,),
        ).fetchall()
    return [
        Send(at, psid, body if isinstance(body, dict) else json.loads(body or "{}"))
        for at, psid, body in rows
    ]
