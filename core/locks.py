"""A named lock that never waits: ``with try_lock("inbox:<page>:<psid>") as held: ...``.

Used where one worker at a time must handle something (a customer's inbox events, a customer's
outgoing messages) and any other worker should simply move on.

On PostgreSQL it is a session-level advisory lock (``pg_try_advisory_lock``) on a 64-bit hash of
the name: PostgreSQL releases it the moment the holder's connection ends, so a killed worker
frees its locks at once and there is no timeout that must outlast the slowest holder (which a
Redis lock with a TTL would need). It needs a session per worker, so it does not survive a
transaction-pooling proxy (PgBouncer in transaction mode). A hash collision only makes two names
wait for each other.

On SQLite (development, tests) an ``flock`` on a file per name, or a thread lock for an
in-memory database (which lives in one process).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

logger = logging.getLogger(__name__)

_thread_locks: dict[tuple[str, str], threading.Lock] = {}
_thread_locks_guard = threading.Lock()


@contextmanager
def try_lock(name: str) -> Iterator[bool]:
    """Hold the lock called ``name`` if it is free; yields whether it was acquired."""
    if connection.vendor == "postgresql":
        lock = _advisory_lock(name)
    elif fcntl is not None and not _in_memory_database():
        lock = _file_lock(name)
    else:
        lock = _thread_lock(name)
    with lock as held:
        yield held


def _digest(name: str) -> bytes:
    return hashlib.sha256(name.encode()).digest()


@contextmanager
def _advisory_lock(name: str) -> Iterator[bool]:
    key = int.from_bytes(_digest(name)[:8], "big", signed=True)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s::int8)", [key])
        held = bool(cursor.fetchone()[0])
    try:
        yield held
    finally:
        if held:
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s::int8)", [key])
            except Exception:  # the connection is gone, and the lock with it
                logger.warning("could not release the advisory lock %s", name)


def _in_memory_database() -> bool:
    database = str(connection.settings_dict.get("NAME") or "")
    return database == ":memory:" or "mode=memory" in database


@contextmanager
def _file_lock(name: str) -> Iterator[bool]:
    database = os.path.abspath(str(connection.settings_dict["NAME"]))
    directory = Path(tempfile.gettempdir()) / "chatcommerce-locks"
    directory.mkdir(mode=0o700, exist_ok=True)
    database_digest = hashlib.sha256(database.encode()).hexdigest()[:16]
    path = directory / f"{database_digest}-{_digest(name).hex()[:32]}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def _thread_lock(name: str) -> Iterator[bool]:
    database = str(connection.settings_dict.get("NAME") or "")
    with _thread_locks_guard:
        lock = _thread_locks.setdefault((database, name), threading.Lock())
    held = lock.acquire(blocking=False)
    try:
        yield held
    finally:
        if held:
            lock.release()
