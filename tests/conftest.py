"""Fixtures shared by the whole suite. Keep each topic in its own section.

``make test`` runs the suite against a throwaway PostgreSQL (``DATABASE_URL``) and a throwaway
Redis (``REDIS_URL``). Run bare (``pytest``), it falls back to SQLite, and tests marked
``postgres`` or ``redis`` are skipped with a reason when those servers are not there.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# --------------------------------------------------------------------------------------------
# Markers: skip (never silently pass) tests whose server is missing outside `make test`.
# --------------------------------------------------------------------------------------------


def _redis_answers(url: str) -> bool:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def pytest_runtest_setup(item: pytest.Item) -> None:
    from django.conf import settings
    from django.db import connection

    if item.get_closest_marker("postgres") and connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run `make test` or set DATABASE_URL=postgres://...")
    # An explicit REDIS_URL (as `make test` sets) means Redis must be there: fail, don't skip.
    if (
        item.get_closest_marker("redis")
        and "REDIS_URL" not in os.environ
        and not _redis_answers(settings.REDIS_URL)
    ):
        pytest.skip("needs Redis: run `make test` or set REDIS_URL=redis://...")


# --------------------------------------------------------------------------------------------
# Private servers: a redis-server of a test's own, to stop and start at will.
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RedisServer:
    process: subprocess.Popen
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server subprocess on a free port, stopped (if still running) after the test."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.skip("redis-server is not installed (Debian package redis-server)")
    port = free_port()
    command = [executable, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)]
    command += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = RedisServer(process=process, port=port)
    try:
        deadline = time.monotonic() + 10
        while not _redis_answers(server.url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"private redis-server on port {port} did not start")
            time.sleep(0.05)
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# The end of the run: nothing may keep the test database open.
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _test_database_released(django_db_setup, django_db_blocker) -> Iterator[None]:
    """Before pytest-django drops the PostgreSQL test database, end the sessions that threads
    of the run left open on it (a live-server request thread, a connection opened inside
    Playwright's greenlet); otherwise the drop fails with "being accessed by other users" and
    the next run of this worker has to deal with a leftover database."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


# --------------------------------------------------------------------------------------------
# No network call while a transaction is open (the project's rule), checked on every test.
# --------------------------------------------------------------------------------------------


def _open_transactions() -> list[str]:
    """Aliases of the databases on which this thread has a transaction of the code under test
    open (the atomic blocks pytest-django wraps a test in do not count)."""
    from django.db import connections

    return [
        connection.alias
        for connection in connections.all(initialized_only=True)
        if any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)
    ]


@pytest.fixture(autouse=True)
def network_calls_in_transactions(monkeypatch) -> Iterator[list[str]]:
    """Every HTTP request made through ``requests`` (the Graph client, the stripe library, the
    sandbox's webhooks) while a transaction was open in the calling thread; the test fails if
    there was one. A call to Graph or Stripe inside a transaction holds its row locks (and, on
    SQLite, the database's write lock) for as long as the other side takes to answer."""
    import requests

    found: list[str] = []
    real_send = requests.Session.send

    def send(self, request, **kwargs):
        if _open_transactions():
            found.append(f"{request.method} {str(request.url).split('?')[0]}")
        return real_send(self, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", send)
    yield found
    if found:
        pytest.fail(f"HTTP call(s) made inside a database transaction: {found}")
