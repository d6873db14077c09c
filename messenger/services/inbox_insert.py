"""Writing inbox rows: one ``INSERT ... ON CONFLICT (dedupe_key) DO NOTHING`` per body, shared by
the requests of a web process storing at the same moment (group commit).

The webhook's whole budget is about what a no-op Django view costs (``bench/webhook_ingest``
holds it to half the no-op rate), so: no ORM on this path, one prepared statement with the rows
as one JSON parameter on PostgreSQL, no health-check round trip, and the concurrent requests of
a process share one INSERT and its commit.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from messenger.models import InboundEvent

__all__ = ["rows_insert", "rows_insert_grouped", "storing"]

logger = logging.getLogger(__name__)

# The columns ingest writes, in order (the id is the database's).
_INSERT_FIELDS = (
    "page_id", "sender_psid", "dedupe_key", "kind", "payload", "timestamp_ms", "is_standby",
    "status", "received_at", "attempts", "error",
)  # fmt: skip
# Rows per INSERT statement where each value is a parameter (SQLite).
_INSERT_CHUNK = 500


def rows_insert(rows: list[InboundEvent]) -> None:
    """Write ``rows`` with ``INSERT ... ON CONFLICT (dedupe_key) DO NOTHING``: all or none.

    Not ``bulk_create(ignore_conflicts=True)``: that opens a transaction of its own (BEGIN and
    COMMIT round trips around the statement) and compiles the statement through the ORM on
    every call, which together cost more than the rest of the request (measured by
    ``bench/webhook_ingest``). One statement is atomic by itself. Inside an outer transaction
    (tests, ``ATOMIC_REQUESTS``) it simply joins it.
    """
    if connection.vendor == "postgresql":
        _rows_insert_postgresql(rows)
        return
    now = timezone.now()
    for row in rows:
        row.received_at = now
    fields = [InboundEvent._meta.get_field(name) for name in _INSERT_FIELDS]
    chunks = [rows[i : i + _INSERT_CHUNK] for i in range(0, len(rows), _INSERT_CHUNK)]
    # Beyond one chunk (never seen from Meta, but a body may hold that many items) the
    # statements share a transaction, so the body is still stored all or nothing.
    atomic = transaction.atomic() if len(chunks) > 1 else contextlib.nullcontext()
    with atomic, connection.cursor() as cursor:
        for chunk in chunks:
            params = [
                column.get_db_prep_save(getattr(row, column.attname), connection)
                for row in chunk
                for column in fields
            ]
            cursor.execute(_values_sql(len(chunk)), params)


@functools.lru_cache(maxsize=16)
def _values_sql(count: int) -> str:
    quote = connection.ops.quote_name
    columns = ", ".join(quote(InboundEvent._meta.get_field(name).column) for name in _INSERT_FIELDS)
    one = "(" + ", ".join(["%s"] * len(_INSERT_FIELDS)) + ")"
    table = quote(InboundEvent._meta.db_table)
    # Only model metadata is formatted into the text; every value is a parameter.
    return (
        f"INSERT INTO {table} ({columns}) VALUES {', '.join([one] * count)} "  # noqa: S608
        "ON CONFLICT (dedupe_key) DO NOTHING"
    )


# PostgreSQL: the rows travel as one JSON array parameter, expanded by jsonb_to_recordset, on a
# server-side-binding cursor. The statement text never changes, so psycopg prepares it after a
# few calls (PostgreSQL then skips parsing and planning), and Python neither quotes literals nor
# adapts a parameter per column.
_RECORDSET_COLUMNS = (
    ("page_id", "varchar"), ("sender_psid", "varchar"), ("dedupe_key", "varchar"),
    ("kind", "varchar"), ("payload", "jsonb"), ("timestamp_ms", "bigint"),
    ("is_standby", "boolean"), ("status", "varchar"), ("error", "text"),
)  # fmt: skip


def _rows_insert_postgresql(rows: list[InboundEvent]) -> None:
    data = json.dumps(
        [
            {
                "page_id": row.page_id,
                "sender_psid": row.sender_psid,
                "dedupe_key": row.dedupe_key,
                "kind": row.kind,
                "payload": row.payload,
                "timestamp_ms": row.timestamp_ms,
                "is_standby": row.is_standby,
                "status": row.status,
                "error": row.error,
            }
            for row in rows
        ],
        separators=(",", ":"),
    )
    sql = _recordset_sql()
    for attempt in (1, 2):
        # No health check round trip first (CONN_HEALTH_CHECKS would spend one per request,
        # a third of what the whole insert costs): a connection found dead is replaced and the
        # statement sent again, which ON CONFLICT DO NOTHING makes harmless.
        connection.ensure_connection()
        try:
            with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
                cursor.execute(sql, (data,))
            return
        except (OperationalError, InterfaceError):
            if attempt == 2 or connection.in_atomic_block or connection.is_usable():
                raise
            logger.info("inbox: the database connection was gone; reconnecting")
            connection.close()


@functools.cache
def _recordset_sql() -> str:
    quote = connection.ops.quote_name
    table = quote(InboundEvent._meta.db_table)
    names = [name for name, _ in _RECORDSET_COLUMNS]
    columns = ", ".join(quote(InboundEvent._meta.get_field(n).column) for n in names)
    selected = ", ".join(f"r.{name}" for name in names)
    record = ", ".join(f"{name} {kind}" for name, kind in _RECORDSET_COLUMNS)
    received = quote(InboundEvent._meta.get_field("received_at").column)
    attempts = quote(InboundEvent._meta.get_field("attempts").column)
    # Only model metadata is formatted into the text; the rows are the one parameter. The
    # database's clock stamps received_at (the sweep compares it with the application's: both
    # are NTP-synchronised in any sane deployment, and the sweep's margin is a minute).
    return (
        f"INSERT INTO {table} ({columns}, {received}, {attempts}) "  # noqa: S608
        f"SELECT {selected}, statement_timestamp(), 0 "
        f"FROM jsonb_to_recordset(%s::jsonb) AS r({record}) "
        "ON CONFLICT (dedupe_key) DO NOTHING"
    )


# Group commit ---------------------------------------------------------------------------------
#
# Under load several threads of a web process store at once. The first becomes the leader: it
# waits (at most _GROUP_GATHER_SECONDS) for the other threads already storing to queue their
# rows, then writes them all in one INSERT (one statement, one commit, one WAL flush) on its own
# connection; the others wait for that commit instead of making their own. The commit, not the
# batching, decides the 200: every caller returns after its rows are durable.


@dataclass(eq=False)
class _Waiter:
    rows: list[InboundEvent]
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # promoted to leader by the previous one
    error: BaseException | None = None


_group_lock = threading.Lock()
_group_changed = threading.Condition(_group_lock)  # a waiter queued, or a store finished
_group_queue: list[_Waiter] = []
_group_state = {"leader": False, "storing": 0}
_GROUP_ROUNDS = 2  # batches a leader writes before it hands over (its own answer waits)
_GROUP_GATHER_SECONDS = 0.002
_GROUP_WAIT_SECONDS = 30.0


def rows_insert_grouped(rows: list[InboundEvent]) -> None:
    """Write ``rows`` in autocommit, together with those of concurrent callers; return once
    they are committed. Raises what the write raised (only for the body that caused it)."""
    me = _Waiter(rows)
    with _group_lock:
        _group_queue.append(me)
        lead = not _group_state["leader"]
        _group_state["leader"] = True
        _group_changed.notify_all()
    if not lead:
        if not me.done.wait(_GROUP_WAIT_SECONDS):
            raise TimeoutError("the inbox write did not finish in time")
        lead = me.lead
    if lead:
        _group_lead()
    if me.error is not None:
        raise me.error


def _group_lead() -> None:
    handed_over = False
    try:
        for _ in range(_GROUP_ROUNDS):
            deadline = time.monotonic() + _GROUP_GATHER_SECONDS
            with _group_changed:
                # Threads of this process that are storing right now will queue in a moment.
                while len(_group_queue) < _group_state["storing"]:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not _group_changed.wait(remaining):
                        break
                batch = list(_group_queue)
                _group_queue.clear()
            if not batch:
                break
            _group_write(batch)
    finally:
        with _group_lock:
            if _group_queue:
                successor = _group_queue[0]
                successor.lead = True
                successor.done.set()
                handed_over = True
            if not handed_over:
                _group_state["leader"] = False


def _group_write(batch: list[_Waiter]) -> None:
    try:
        rows_insert([row for waiter in batch for row in waiter.rows])
    except Exception as error:
        if len(batch) == 1:
            batch[0].error = error
        else:  # find the body that cannot be stored; the others still are
            for waiter in batch:
                try:
                    rows_insert(waiter.rows)
                except Exception as single:
                    waiter.error = single
    finally:
        for waiter in batch:
            waiter.done.set()


@contextlib.contextmanager
def storing() -> Iterator[None]:
    """Count the calling thread among this process's threads storing a body right now: a
    group-commit leader waits a moment for them to queue their rows."""
    with _group_lock:
        _group_state["storing"] += 1
    try:
        yield
    finally:
        with _group_lock:
            _group_state["storing"] -= 1
            _group_changed.notify_all()
