"""The Messenger webhook inbox: store what arrived, then process it one customer at a time.

Two halves with different budgets:

- **Ingest** (``inbound_events_store``, inside the webhook request): turn the body into rows
  (``inbox_rows``: one per ``entry[].messaging[]`` / ``standby[]`` item; a part of the body that
  cannot be used becomes a ``failed`` row with its reason, so a correctly signed body is always
  stored and answered 200), write them with a single ``INSERT ... ON CONFLICT DO NOTHING`` on
  the unique ``dedupe_key`` (``inbox_insert``: one prepared statement, concurrent requests of a
  process sharing one INSERT and its commit), and after commit *nudge* the worker. The request's
  whole budget is about what a no-op Django view costs (``bench/webhook_ingest``), so: no ORM
  on this path, no health-check round trip, active page ids remembered per process. The nudge
  is debounced (``SET inbox:nudge NX PX 100`` in Redis; only the request that sets the key
  publishes ``inbox_drain``, see ``_NUDGE_SCRIPT``), so under load the web processes publish a
  few tasks per second instead of one per request. Redis being down costs nothing but
  latency: the request still answers 200 and ``inbox_sweep`` picks the rows up.
- **Processing** (``inbox_drain``: ``inbound_events_drain`` / ``inbound_event_process``, in the
  worker): pending rows grouped by customer, each customer under a lock, its rows in
  ``(timestamp_ms, id)`` order, each row prepared outside any transaction (the network calls)
  and applied in a short transaction of its own.

This module is the inbox's public face: it re-exports the processing half.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import DataError, IntegrityError, connection, transaction

from messenger.models import InboundEvent, MessengerPage
from messenger.services.inbox_drain import (
    DRAIN_MAX_EVENTS,
    DRAIN_MAX_SECONDS,
    MAX_ATTEMPTS,
    DrainResult,
    inbound_event_process,
    inbound_events_drain,
    inbound_events_stale_exist,
)
from messenger.services.inbox_insert import rows_insert, rows_insert_grouped, storing
from messenger.services.inbox_rows import rows_from_body, unusable_body_row

__all__ = [
    "DRAIN_MAX_EVENTS",
    "DRAIN_MAX_SECONDS",
    "MAX_ATTEMPTS",
    "NUDGE_INTERVAL_MS",
    "NUDGE_KEY",
    "DrainResult",
    "StoreResult",
    "inbound_event_process",
    "inbound_events_drain",
    "inbound_events_stale_exist",
    "inbound_events_store",
    "inbox_nudge",
    "inbox_page_cache_clear",
]

logger = logging.getLogger(__name__)

Status = InboundEvent.Status

NUDGE_KEY = "inbox:nudge"
NUDGE_INTERVAL_MS = 100
# After a Redis error, web processes stop trying for this long (a dead Redis must not cost every
# request a connection attempt); the sweep recovers whatever was stored meanwhile.
_REDIS_BACKOFF_SECONDS = 1.0
# Active page ids seen by this process. Only positive answers are cached, so a newly connected
# page is seen at once; a page deactivated or deleted is still "known" here for up to this long,
# and processing checks the page again (its rows end up ignored there).
_PAGE_CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class StoreResult:
    """What one webhook body held. Replayed items are counted too: the single ``INSERT ... ON
    CONFLICT DO NOTHING`` does not say which rows were new, and asking would cost a query."""

    pending: int  # items of known pages, handed to the worker
    ignored: int  # items of unknown or inactive pages, stored as ignored
    unusable: int = 0  # parts of the body that could not be used, stored failed with a reason

    @property
    def items(self) -> int:
        return self.pending + self.ignored + self.unusable


def inbound_events_store(*, raw_body: bytes) -> StoreResult:
    """Store every messaging item of a (signature-checked) webhook body, once.

    One ``INSERT`` (all rows or none; outside a transaction it also carries the rows of other
    requests of this process storing at the same moment), committed before this returns; an item
    whose ``dedupe_key`` (``mid``, or a hash for items without one) is already stored is
    skipped. Items of pages that are not connected and active are stored with status
    ``ignored``; a part of the body that cannot be used (not JSON, not a ``page`` object, a
    malformed entry or item) is stored ``failed`` with the reason, and the rest as usual. After
    commit the worker is nudged.

    Raises only what the database raises (then nothing is stored, and the webhook answers 5xx so
    that Meta delivers the body again).
    """
    if connection.in_atomic_block:  # part of the caller's transaction (tests, ATOMIC_REQUESTS)
        return _store(raw_body, write=rows_insert)
    with storing():
        return _store(raw_body, write=rows_insert_grouped)


def _store(raw_body: bytes, *, write: Callable[[list[InboundEvent]], None]) -> StoreResult:
    rows = rows_from_body(raw_body)
    if not rows:
        return StoreResult(pending=0, ignored=0)
    usable = [row for row in rows if row.status == Status.PENDING]
    known = _active_page_ids({row.page_id for row in usable})
    for row in usable:
        if row.page_id not in known:
            row.status = Status.IGNORED
            row.error = "unknown or inactive page"
    try:
        write(rows)
    except (RecursionError, ValueError, DataError, IntegrityError) as error:
        # The database refused what Python read (nesting too deep to serialize, a value jsonb
        # or a column does not take): keep the body as text instead, with the reason. (Inside
        # a caller's transaction a refused INSERT has broken it: this second one raises too.)
        logger.warning("webhook: a body could not be stored as JSON (%s)", type(error).__name__)
        rows = [unusable_body_row(raw_body, reason=f"The body could not be stored: {error}")]
        write(rows)
    counts = {status: 0 for status in Status.values}
    for row in rows:
        counts[row.status] += 1
    if counts[Status.PENDING]:
        transaction.on_commit(inbox_nudge)
    if counts[Status.IGNORED]:
        logger.info(
            "webhook: %d item(s) for unknown or inactive page(s) %s stored as ignored",
            counts[Status.IGNORED],
            sorted({row.page_id for row in rows if row.status == Status.IGNORED}),
        )
    if counts[Status.FAILED]:
        logger.warning(
            "webhook: %d unusable part(s) of a signed body stored as failed: %s",
            counts[Status.FAILED],
            sorted({row.error for row in rows if row.status == Status.FAILED}),
        )
    return StoreResult(
        pending=counts[Status.PENDING],
        ignored=counts[Status.IGNORED],
        unusable=counts[Status.FAILED],
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
