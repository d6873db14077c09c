"""Run a test stand-in for an outside HTTP API (Graph, Stripe) on a free port of 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@contextmanager
def stub_server(stub: Any, handler: type[BaseHTTPRequestHandler], *, name: str) -> Iterator[Any]:
    """Serve ``handler`` in a background thread while the ``with`` block runs.

    ``stub`` is the test's view of the server: its ``url`` is set here, and its ``_stopping``
    event is set before shutdown so handlers that sleep (programmed delays) return promptly.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True
    )
    thread.start()
    try:
        yield stub
    finally:
        stub._stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
