"""The Messenger webhook inbox: store what arrived, then process it one customer at a time.

Two halves with different budgets:

- **Ingest** (``inbound_events_store``, inside the webhook request): parse and validate the body,
  write one ``InboundEvent`` per ``entry[].messaging[]`` / ``standby[]`` item with a single
  ``INSERT ... ON CONFLICT DO NOTHING`` on the unique ``dedupe_key``, and after commit *nudge* the
  worker. The request's whole budget is about what a no-op Django view costs (the benchmark in
  ``bench/webhook_ingest`` holds it to half the no-op rate), so: no ORM on this path, one
  prepared statement with the rows as one JSON parameter on PostgreSQL, no health-check round
  trip, active page ids remembered per process, and the concurrent requests of a process share
  one INSERT and its commit (group commit, below). The nudge is debounced (``SET inbox:nudge NX
  PX 200`` in Redis; only the request that sets the key publishes ``inbox_drain``, with a
  countdown of the same interval, and each web process skips Redis while it knows the key
  lives), so under load the web processes publish a few tasks per second instead of one per
  request: a Celery publish per request costs more than the whole rest of the ingest. A row
  committed while the key lives is covered by the drain already scheduled, which runs after the
  key expires. Redis being down costs nothing but latency: the request still answers 200 and
  ``inbox_sweep`` picks the rows up.
- **Processing** (``inbound_events_drain`` / ``inbound_event_process``, in the worker): pending
  rows grouped by customer ``(page_id, sender_psid)``, each customer under a lock, its rows in
  ``(timestamp_ms, id)`` order, each row in its own transaction.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import redis
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import Min
from django.utils import timezone

from core.exceptions import ApplicationError
from core.jsonb import UNSTORABLE_ESCAPE, jsonb_storable
from core.locks import try_lock
from messenger import events as ev
from messenger.models import InboundEvent, MessengerPage
from messenger.services.customers import customer_record_referral, customer_touch, customer_upsert

logger = logging.getLogger(__name__)

Status = InboundEvent.Status

# Ingest -------------------------------------------------------------------------------------
NUDGE_KEY = "inbox:nudge"
NUDGE_INTERVAL_MS = 100
# After a Redis error, web processes stop trying for this long (a dead Redis must not cost every
# request a connection attempt); the sweep recovers whatever was stored meanwhile.
_REDIS_BACKOFF_SECONDS = 1.0
# Active page ids seen by this process. Only positive answers are cached, so a newly connected
# page is seen at once; a page deactivated or deleted is still "known" here for up to this long,
# and processing checks the page again (its rows end up ignored there).
_PAGE_CACHE_SECONDS = 30.0

# Processing ---------------------------------------------------------------------------------
MAX_ATTEMPTS = 5
DRAIN_MAX_EVENTS = 1000
DRAIN_MAX_SECONDS = 20.0  # below CELERY_TASK_SOFT_TIME_LIMIT (30 s)
_CUSTOMERS_PER_PASS = 50


class WebhookPayloadError(ApplicationError):
    """The webhook body is not a Messenger page event batch (the view answers 400)."""

    default_code = "invalid_webhook_payload"


@dataclass(frozen=True)
class StoreResult:
    """What one webhook body held. Replayed items are counted too: the single ``INSERT ... ON
    CONFLICT DO NOTHING`` does not say which rows were new, and asking would cost a query."""

    pending: int  # items of known pages, handed to the worker
    ignored: int  # items of unknown or inactive pages, stored as ignored

    @property
    def items(self) -> int:
        return self.pending + self.ignored


# --------------------------------------------------------------------------------------------
# Ingest
# --------------------------------------------------------------------------------------------


def inbound_events_store(*, raw_body: bytes) -> StoreResult:
    """Store every messaging item of a (signature-checked) webhook body, once.

    One ``INSERT`` (all rows or none; outside a transaction it also carries the rows of other
    requests of this process storing at the same moment), committed before this returns; an item
    whose ``dedupe_key`` (``mid``, or a hash for items without one) is already stored is
    skipped. Items of pages that are not connected and active are stored with status
    ``ignored``. After commit the worker is nudged.

    :raises WebhookPayloadError: not JSON, ``object`` other than ``page``, or a malformed
        ``entry`` (nothing is stored).
    """
    if connection.in_atomic_block:  # part of the caller's transaction (tests, ATOMIC_REQUESTS)
        return _store(raw_body, write=_rows_insert)
    with _group_lock:
        _group_state["storing"] += 1
    try:
        return _store(raw_body, write=_rows_insert_grouped)
    finally:
        with _group_lock:
            _group_state["storing"] -= 1
            _group_changed.notify_all()


def _store(raw_body: bytes, *, write: Callable[[list[InboundEvent]], None]) -> StoreResult:
    payload = _payload_parse(raw_body)
    rows = _rows_build(payload, storable=UNSTORABLE_ESCAPE.search(raw_body) is None)
    if not rows:
        return StoreResult(pending=0, ignored=0)
    known = _active_page_ids({row.page_id for row in rows})
    pending = 0
    for row in rows:
        if row.page_id in known:
            pending += 1
        else:
            row.status = Status.IGNORED
            row.error = "unknown or inactive page"
    write(rows)
    if pending:
        transaction.on_commit(inbox_nudge)
    if pending < len(rows):
        logger.info(
            "webhook: %d item(s) for unknown or inactive page(s) %s stored as ignored",
            len(rows) - pending,
            sorted({row.page_id for row in rows} - known),
        )
    return StoreResult(pending=pending, ignored=len(rows) - pending)


# The columns ingest writes, in order (the id is the database's).
_INSERT_FIELDS = (
    "page_id", "sender_psid", "dedupe_key", "kind", "payload", "timestamp_ms", "is_standby",
    "status", "received_at", "attempts", "error",
)  # fmt: skip
# Rows per INSERT statement where each value is a parameter (SQLite).
_INSERT_CHUNK = 500


def _rows_insert(rows: list[InboundEvent]) -> None:
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


def _rows_insert_grouped(rows: list[InboundEvent]) -> None:
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
        _rows_insert([row for waiter in batch for row in waiter.rows])
    except Exception as error:
        if len(batch) == 1:
            batch[0].error = error
        else:  # find the body that cannot be stored; the others still are
            for waiter in batch:
                try:
                    _rows_insert(waiter.rows)
                except Exception as single:
                    waiter.error = single
    finally:
        for waiter in batch:
            waiter.done.set()


def _not_json(constant: str) -> Any:
    """``NaN`` and ``Infinity`` are Python's extensions, not JSON: jsonb refuses them."""
    raise ValueError(f"{constant} is not a JSON value")


def _payload_parse(raw_body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(raw_body, parse_constant=_not_json)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise WebhookPayloadError("The body is not valid JSON.", code="malformed_json") from None
    if not isinstance(payload, dict) or payload.get("object") != "page":
        raise WebhookPayloadError(
            "Only events of the 'page' object are accepted.", code="unsupported_object"
        )
    if not isinstance(payload.get("entry"), list):
        raise WebhookPayloadError("'entry' must be a list.", code="malformed_entry")
    return payload


def _identifier(value: Any, *, max_length: int) -> str | None:
    """A Graph id as text (ids arrive as strings, sometimes as numbers), or None if unusable."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    return text if text.isdigit() and len(text) <= max_length else None


def _rows_build(payload: dict[str, Any], *, storable: bool = True) -> list[InboundEvent]:
    rows: dict[str, InboundEvent] = {}
    for entry in payload["entry"]:
        if not isinstance(entry, dict):
            raise WebhookPayloadError("Each entry must be an object.", code="malformed_entry")
        page_id = _identifier(entry.get("id"), max_length=32)
        if page_id is None:
            raise WebhookPayloadError("Each entry needs a page id.", code="malformed_entry")
        for key, is_standby in (("messaging", False), ("standby", True)):
            items = entry.get(key, [])
            if not isinstance(items, list):
                raise WebhookPayloadError(f"'{key}' must be a list.", code="malformed_entry")
            for item in items:
                row = _row_build(item, page_id=page_id, is_standby=is_standby)
                if not storable:
                    row.payload = jsonb_storable(row.payload)
                rows.setdefault(row.dedupe_key, row)  # a mid twice in one body: stored once
    return list(rows.values())


def _row_build(item: Any, *, page_id: str, is_standby: bool) -> InboundEvent:
    if not isinstance(item, dict):
        raise WebhookPayloadError("Each messaging item must be an object.", code="malformed_item")
    message = item.get("message")
    is_echo = isinstance(message, dict) and bool(message.get("is_echo"))
    # The customer of an echo (a message the page sent) is its recipient.
    party = item.get("recipient" if is_echo else "sender")
    psid = ""
    if party is not None:
        psid = _identifier(party.get("id") if isinstance(party, dict) else None, max_length=64)
        if psid is None:
            raise WebhookPayloadError("A messaging item has a malformed id.", code="malformed_item")
    timestamp = item.get("timestamp")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        timestamp = 0
    dedupe_key = ev.event_dedupe_key(item, page_id=page_id)
    if len(dedupe_key) > 128:  # the column's width; keep it unique, stably
        dedupe_key = "sha256:" + hashlib.sha256(dedupe_key.encode()).hexdigest()
    return InboundEvent(
        page_id=page_id,
        sender_psid=psid,
        dedupe_key=dedupe_key,
        kind=ev.event_kind(item)[:32],
        payload=item,
        timestamp_ms=timestamp,
        is_standby=is_standby,
    )


_page_cache: dict[str, float] = {}  # page id -> monotonic expiry


def _active_page_ids(page_ids: set[str]) -> set[str]:
    now = time.monotonic()
    known = {page_id for page_id in page_ids if _page_cache.get(page_id, 0.0) > now}
    missing = page_ids - known
    if missing:
        found = set(
            MessengerPage.objects.filter(page_id__in=missing, is_active=True).values_list(
                "page_id", flat=True
            )
        )
        for page_id in found:
            _page_cache[page_id] = now + _PAGE_CACHE_SECONDS
        known |= found
    return known


def inbox_page_cache_clear() -> None:
    """Forget the active page ids this process has seen (tests; a page just deactivated)."""
    _page_cache.clear()


# The nudge ----------------------------------------------------------------------------------

_redis_lock = threading.Lock()
_redis_scripts: dict[str, Any] = {}
_nudge_state = {"covered_until": 0.0, "redis_down_until": 0.0}

# One interval of the nudge key: the first commit in it finds no key, sets it to "lead" and
# publishes a drain at once (action 0); the next one turns it into "trail" and publishes a drain
# for when the key expires (action 1), which sees every row committed while the key lived; the
# rest find "trail" and publish nothing (action 2). Answers {action, ms the key still lives}.
_NUDGE_SCRIPT = """
local state = redis.call('GET', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if (not state) or ttl < 0 then
  redis.call('SET', KEYS[1], 'lead', 'PX', ARGV[1])
  return {0, tonumber(ARGV[1])}
end
if state == 'lead' then
  redis.call('SET', KEYS[1], 'trail', 'KEEPTTL')
  return {1, ttl}
end
return {2, ttl}
"""
_NUDGE_NOW, _NUDGE_TRAILING, _NUDGE_COVERED = 0, 1, 2


def _nudge_script() -> Any:
    url = settings.REDIS_URL
    with _redis_lock:
        script = _redis_scripts.get(url)
        if script is None:
            client = redis.Redis.from_url(
                url, socket_connect_timeout=0.25, socket_timeout=0.25, retry_on_timeout=False
            )
            script = _redis_scripts[url] = client.register_script(_NUDGE_SCRIPT)
        return script


def inbox_nudge() -> bool:
    """Make sure a drain runs soon after this commit; publish one only if none is due.

    Called after the commit of stored rows. Returns whether this call published. Never raises:
    a broker or Redis failure is logged and left to ``inbox_sweep``.

    A quiet inbox gets its drain at once (a shopper's tap is answered without waiting); in a
    burst, at most two drains are published per ``NUDGE_INTERVAL_MS`` across all processes: the
    one at once, and one when the interval ends that sees every row committed during it (see
    ``_NUDGE_SCRIPT``). Once a trailing drain is due, every process remembers until when (from
    before its call, so never too late) and skips Redis entirely until then: under load a web
    process talks to Redis about twice per interval, not once per request.
    """
    now = time.monotonic()
    if now < _nudge_state["covered_until"] or now < _nudge_state["redis_down_until"]:
        return False
    try:
        action, remaining_ms = _nudge_script()(keys=[NUDGE_KEY], args=[NUDGE_INTERVAL_MS])
        if action == _NUDGE_COVERED:
            _nudge_state["covered_until"] = now + remaining_ms / 1000
            return False
        from messenger.tasks.inbox import inbox_drain  # the task module imports this one

        if action == _NUDGE_NOW:
            inbox_drain.apply_async(retry=False)
        else:
            _nudge_state["covered_until"] = now + remaining_ms / 1000
            inbox_drain.apply_async(countdown=remaining_ms / 1000, retry=False)
    except Exception:  # Redis or the broker is down: the rows are stored, the sweep finds them
        _nudge_state["redis_down_until"] = now + _REDIS_BACKOFF_SECONDS
        logger.warning("inbox: could not nudge the worker; the sweep will pick the rows up")
        return False
    return True


# --------------------------------------------------------------------------------------------
# Processing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrainResult:
    processed: int  # rows that left `pending` (processed, ignored or failed for good)
    more: bool  # stopped at the per-run bound with rows still waiting


def inbound_events_drain(
    *,
    include_retries: bool = False,
    max_events: int = DRAIN_MAX_EVENTS,
    max_seconds: float = DRAIN_MAX_SECONDS,
) -> DrainResult:
    """Process pending inbox rows, customer by customer, until none is left (or a bound is hit).

    Safe to run in several workers at once: a customer locked by another drain is skipped (that
    drain finishes the customer's rows), and each row is claimed with ``SELECT ... FOR UPDATE
    SKIP LOCKED`` and a status re-check. A customer whose oldest pending row failed before waits
    for a drain with ``include_retries`` (the sweep's), so a failing row is retried about once a
    minute rather than on every nudge, and the customer's later rows stay behind it.
    """
    deadline = time.monotonic() + max_seconds
    processed = 0
    skipped: set[tuple[str, str]] = set()
    while True:
        candidates = [
            (group["page_id"], group["sender_psid"])
            for group in InboundEvent.objects.filter(status=Status.PENDING)
            .values("page_id", "sender_psid")
            .annotate(first=Min("id"))
            .order_by("first")[: _CUSTOMERS_PER_PASS + len(skipped)]
        ]
        candidates = [key for key in candidates if key not in skipped]
        if not candidates:
            return DrainResult(processed=processed, more=False)
        for page_id, psid in candidates:
            if processed >= max_events or time.monotonic() >= deadline:
                return DrainResult(processed=processed, more=True)
            done, finished = _customer_drain(
                page_id=page_id,
                psid=psid,
                include_retries=include_retries,
                budget=max_events - processed,
                deadline=deadline,
            )
            processed += done
            if not finished:
                skipped.add((page_id, psid))
            if processed >= max_events or time.monotonic() >= deadline:
                return DrainResult(processed=processed, more=True)


def _customer_drain(
    *, page_id: str, psid: str, include_retries: bool, budget: int, deadline: float
) -> tuple[int, bool]:
    """Process one customer's pending rows in order. Returns (rows done, whether none is left
    that this drain could take)."""
    done = 0
    with _customer_lock(page_id=page_id, psid=psid) as held:
        if not held:
            return 0, False
        while done < budget and time.monotonic() < deadline:
            head = (
                InboundEvent.objects.filter(
                    page_id=page_id, sender_psid=psid, status=Status.PENDING
                )
                .order_by("timestamp_ms", "id")
                .values_list("id", "attempts")
                .first()
            )
            if head is None:
                return done, True
            event_id, attempts = head
            if attempts and not include_retries:
                return done, False
            try:
                row = inbound_event_process(event_id=event_id)
            except Exception:  # the database itself failed; leave the customer to the sweep
                logger.exception("inbox: could not process event %s", event_id)
                return done, False
            if row is None or row.status == Status.PENDING:
                return done, False  # claimed elsewhere, or failed and waiting for a retry
            done += 1
    return done, False


def _customer_lock(*, page_id: str, psid: str):
    """The per-customer processing lock (``core.locks.try_lock``); yields whether it was held.

    A session-level PostgreSQL advisory lock rather than a Redis lock: it is released the
    moment a killed worker's connection ends, with no TTL that must outlast the slowest handler.
    """
    return try_lock(f"inbox:{page_id}:{psid}")


def inbound_event_process(*, event_id: int) -> InboundEvent | None:
    """Process one pending inbox row in its own transaction; return it, or None if it was not
    pending (done already, or being processed by someone else right now).

    Precondition: the caller holds the row's customer lock (``inbound_events_drain`` does), so
    the customer's rows are handled one at a time and in order.

    The handler's writes (customer, cart, outbox rows...) run in a savepoint: if it raises, they
    are rolled back, ``attempts`` goes up and the error text is kept; the row stays pending for a
    retry and is marked ``failed`` after ``MAX_ATTEMPTS``.
    """
    with transaction.atomic():
        row = (
            InboundEvent.objects.select_for_update(skip_locked=True)
            .filter(pk=event_id, status=Status.PENDING)
            .first()
        )
        if row is None:
            return None
        row.attempts += 1
        now = timezone.now()
        try:
            with transaction.atomic():
                status, note = _dispatch(row, now=now)
        except Exception as exc:
            logger.exception(
                "inbox: event %s (%s) failed, attempt %d", row.pk, row.kind, row.attempts
            )
            row.error = f"{type(exc).__name__}: {exc}"[:2000]
            if row.attempts >= MAX_ATTEMPTS:
                row.status, row.processed_at = Status.FAILED, now
        else:
            row.status, row.error, row.processed_at = status, note, now
        row.save(update_fields=["status", "error", "processed_at", "attempts"])
    return row


# Handlers: each returns the row's final status and a note -----------------------------------

Outcome = tuple[str, str]


def _dispatch(row: InboundEvent, *, now: datetime) -> Outcome:
    page = MessengerPage.objects.select_related("merchant").filter(page_id=row.page_id).first()
    if page is None or not page.is_active:
        return Status.IGNORED, "unknown or inactive page"
    event = ev.event_parse(row.payload, page_id=row.page_id)
    handler = _HANDLERS.get(type(event), _handle_unknown)
    return handler(row=row, page=page, event=event, now=now)


def _event_time(event: Any, *, row: InboundEvent) -> datetime:
    """When the customer acted: the event's timestamp (the 24-hour window counts from the
    message, not from when we got to it), but never after we received it (clocks differ)."""
    if not event.timestamp_ms:
        return row.received_at
    return min(datetime.fromtimestamp(event.timestamp_ms / 1000, tz=UTC), row.received_at)


def _handle_conversation(*, row: InboundEvent, page: MessengerPage, event: Any, now: datetime):
    if isinstance(event, ev.MessageEvent) and event.is_echo:
        return Status.PROCESSED, ""  # what the page itself sent
    if not event.sender_psid:
        return Status.IGNORED, "no sender"
    customer = customer_upsert(page=page, psid=event.sender_psid, now=now)
    customer_touch(customer=customer, at=_event_time(event, row=row))
    referral = getattr(event, "referral", None)
    if referral is not None:
        customer_record_referral(customer=customer, referral=referral)
    if row.is_standby:
        # Another app (a person's inbox) has thread control: we keep the customer up to date
        # but do not answer.
        return Status.PROCESSED, "standby"
    from messenger.conversation.engine import conversation_handle  # imports the flows

    conversation_handle(customer=customer, page=page, event=event, inbound_event_id=row.pk)
    return Status.PROCESSED, ""


def _handle_delivery(*, row: InboundEvent, page: MessengerPage, event: Any, now: datetime):
    from messenger.services.outbox import outbox_mark_delivered

    outbox_mark_delivered(
        page_id=page.page_id, psid=event.sender_psid, mids=event.mids, watermark=event.watermark
    )
    return Status.PROCESSED, ""


def _handle_read(*, row: InboundEvent, page: MessengerPage, event: Any, now: datetime):
    from messenger.services.outbox import outbox_mark_read

    outbox_mark_read(page_id=page.page_id, psid=event.sender_psid, watermark=event.watermark)
    return Status.PROCESSED, ""


def _handle_legacy_payment(*, row: InboundEvent, page: MessengerPage, event: Any, now: datetime):
    """v1.2 buy button: ``payment`` is confirmed here; ``pre_checkout`` / ``checkout_update``
    were answered in the webhook response and are kept for the record. Ignored unless the page
    is in buy-button mode; a transient Stripe failure raises, so the row is retried."""
    from payments.services.buy_button import legacy_payment_process

    return legacy_payment_process(page=page, event=event)


def _handle_unknown(*, row: InboundEvent, page: MessengerPage, event: Any, now: datetime):
    return Status.IGNORED, f"unhandled event kind {row.kind!r}"


_HANDLERS: dict[type, Callable[..., Outcome]] = {
    ev.MessageEvent: _handle_conversation,
    ev.PostbackEvent: _handle_conversation,
    ev.ReferralEvent: _handle_conversation,
    ev.OptinEvent: _handle_conversation,
    ev.DeliveryEvent: _handle_delivery,
    ev.ReadEvent: _handle_read,
    ev.PreCheckoutEvent: _handle_legacy_payment,
    ev.CheckoutUpdateEvent: _handle_legacy_payment,
    ev.PaymentEvent: _handle_legacy_payment,
}


# Sweep --------------------------------------------------------------------------------------


def inbound_events_stale_exist(*, older_than: timedelta = timedelta(seconds=60)) -> bool:
    """Whether some row has been pending longer than ``older_than`` (its nudge was lost: Redis
    was down, a worker died, or it failed and waits for a retry). Uses the partial index on
    pending rows."""
    cutoff = timezone.now() - older_than
    return InboundEvent.objects.filter(status=Status.PENDING, received_at__lt=cutoff).exists()
