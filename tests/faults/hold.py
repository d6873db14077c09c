"""Hold one request at a stub server, so a test can kill the process that made it mid-flight.

``held_stub_server(stub, handler_for, name=...)`` runs a test stub (``tests/messenger/graph_stub``
or ``tests/payments/stripe_stub``) like ``tests.http_stub.stub_server`` does, with one addition:
``control.hold(method, path_part)`` stops the first matching request *before the stub looks at
it*. The test waits for ``hold.arrived``, kills the caller, then ``hold.release(drop=True)``: the
connection is closed without the stub processing the request (it lands in
``control.dropped``), as when a server never got to a request whose client vanished.
``release(drop=False)`` lets it through unchanged. ``control.stall(method, path_part)`` holds
*every* matching request until released: a server that hangs, so callers time out.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.http_stub import stub_server


@dataclass
class Hold:
    method: str
    path_part: str
    arrived: threading.Event = field(default_factory=threading.Event)
    _released: threading.Event = field(default_factory=threading.Event)
    every: bool = False  # a stall: all matching requests until released
    _drop: bool = False
    taken: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self._released.is_set() or (self.taken and not self.every):
            return False
        return method == self.method and self.path_part in path

    def release(self, *, drop: bool) -> None:
        self._drop = drop
        self._released.set()

    def wait(self, stopping: threading.Event) -> bool:
        """Called in the request's thread; returns whether to drop the request."""
        self.arrived.set()
        while not self._released.wait(0.05):
            if stopping.is_set():
                return True
        return self._drop


@dataclass
class HeldRequest:
    method: str
    path: str


@dataclass
class HoldControl:
    """What the test uses: arm holds, see the requests that were dropped."""

    holds: list[Hold] = field(default_factory=list)
    dropped: list[HeldRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hold(self, method: str, path_part: str, *, every: bool = False) -> Hold:
        hold = Hold(method, path_part, every=every)
        with self.lock:
            self.holds.append(hold)
        return hold

    def stall(self, method: str, path_part: str) -> Hold:
        """Hold every matching request until ``release()``: the server hangs."""
        return self.hold(method, path_part, every=True)

    def _take(self, method: str, path: str) -> Hold | None:
        with self.lock:
            for hold in self.holds:
                if hold.matches(method, path):
                    hold.taken = True
                    return hold
        return None


@contextmanager
def held_stub_server(
    stub: Any, handler_for: Callable[[Any], type[BaseHTTPRequestHandler]], *, name: str
) -> Iterator[HoldControl]:
    """Serve ``stub`` (its ``url`` set here) with holds; yields the hold control."""
    control = HoldControl()
    base = handler_for(stub)

    class Handler(base):  # type: ignore[misc, valid-type]
        def _held(self) -> None:
            hold = control._take(self.command, self.path)
            if hold is not None and hold.wait(stub._stopping):
                with control.lock:
                    control.dropped.append(HeldRequest(self.command, self.path))
                self.close_connection = True
                return
            base._handle(self)

        do_GET = do_POST = do_DELETE = _held

    with stub_server(stub, Handler, name=name):
        yield control
