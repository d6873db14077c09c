"""One lockout for every way of proving a password, per username and client address.

After ``LOGIN_MAX_FAILURES`` (5) failures for one username from one address within
``LOGIN_WINDOW_SECONDS`` (15 minutes, counted from the first failure), that pair may not try
again until the window ends, whatever it tries: the dashboard's and the admin's sign-in, the API
token endpoint, the admin's password change (its "old password"), and anything else that calls
``django.contrib.auth.authenticate``, because the check and the counting happen in the
authentication backend (``core.auth_backends.LockoutModelBackend``). A locked pair is refused
before the password is looked at, so guessing costs the attacker the wait and not us a password
hash. A correct password before the limit clears the count.

Counters live in the Django cache (Redis in production), so every web process shares them and
no table is needed. When the cache cannot be reached the counter is skipped and logged: people
can still sign in, and throttling resumes when the cache is back.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import ngettext

logger = logging.getLogger(__name__)

DEFAULT_MAX_FAILURES = 5
DEFAULT_WINDOW_SECONDS = 15 * 60


def _limits() -> tuple[int, int]:
    return (
        int(getattr(settings, "LOGIN_MAX_FAILURES", DEFAULT_MAX_FAILURES)),
        int(getattr(settings, "LOGIN_WINDOW_SECONDS", DEFAULT_WINDOW_SECONDS)),
    )


def client_address(request) -> str:
    """The address the request came from (the proxy in front sets ``REMOTE_ADDR``)."""
    return (request.META.get("REMOTE_ADDR") or "unknown") if request is not None else "unknown"


def _keys(username: str, address: str) -> tuple[str, str]:
    digest = hashlib.sha256(f"{username.strip().casefold()}|{address}".encode()).hexdigest()[:32]
    return f"login-fail:{digest}:count", f"login-fail:{digest}:since"


@dataclass(frozen=True)
class Lockout:
    """A refused pair: how long until it may try again."""

    retry_after_seconds: int

    @property
    def minutes(self) -> int:
        return max(1, math.ceil(self.retry_after_seconds / 60))

    @property
    def message(self) -> str:
        """What to tell the person (in the active language)."""
        return ngettext(
            "Too many failed attempts. Try again in %(minutes)d minute.",
            "Too many failed attempts. Try again in %(minutes)d minutes.",
            self.minutes,
        ) % {"minutes": self.minutes}


def login_lockout(*, username: str, address: str, now: float | None = None) -> Lockout | None:
    """The lockout for this username and address, or ``None`` when they may try."""
    limit, window = _limits()
    count_key, since_key = _keys(username, address)
    try:
        found = cache.get_many([count_key, since_key])
    except Exception:  # the cache is down: let people sign in
        logger.warning("Login throttle: cache unreachable, not checking.", exc_info=True)
        return None
    if int(found.get(count_key) or 0) < limit:
        return None
    since = float(found.get(since_key) or (now or time.time()))
    remaining = since + window - (now or time.time())
    return Lockout(retry_after_seconds=max(math.ceil(remaining), 1))


def login_failure_record(*, username: str, address: str, now: float | None = None) -> int:
    """Count one failed sign-in; return the count in the current window (0: not counted)."""
    _, window = _limits()
    count_key, since_key = _keys(username, address)
    try:
        # add() is a no-op when the window already started: its start and expiry stay put.
        cache.add(since_key, now or time.time(), timeout=window)
        cache.add(count_key, 0, timeout=window)
        return cache.incr(count_key)
    except ValueError:  # the counter expired between add and incr: a new window
        cache.set(count_key, 1, timeout=window)
        return 1
    except Exception:
        logger.warning("Login throttle: cache unreachable, failure not counted.", exc_info=True)
        return 0


def login_failures_clear(*, username: str, address: str) -> None:
    """Forget the failures of a pair that has just signed in correctly."""
    try:
        cache.delete_many(list(_keys(username, address)))
    except Exception:
        logger.warning("Login throttle: cache unreachable, failures not cleared.", exc_info=True)
