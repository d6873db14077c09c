"""Strict readers for environment variables.

Every reader names the variable in its error, so a malformed or missing value stops start-up with
a message an operator can act on (``DEBUG must be true or false, got 'maybe'``).
A ``.env`` file at the repository root is read first; real environment variables win over it.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
_MISSING = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def read_dotenv(path: Path | None = None) -> None:
    """Load ``.env`` into ``os.environ`` without overriding variables already set."""
    path = path or BASE_DIR / ".env"
    if path.is_file():
        environ.Env.read_env(str(path), overwrite=False)


def _raw(name: str, default: object) -> str | object:
    value = os.environ.get(name)
    if value is None:
        if default is _MISSING:
            raise ImproperlyConfigured(f"Set the {name} environment variable.")
        return default
    return value


def env_str(name: str, default: object = _MISSING) -> str:
    value = _raw(name, default)
    if isinstance(value, str):
        value = value.strip()
        if not value and default is _MISSING:
            raise ImproperlyConfigured(f"{name} must not be empty.")
    return value  # type: ignore[return-value]


def env_bool(name: str, default: bool | object = _MISSING) -> bool:
    value = _raw(name, default)
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {value!r}.")


def env_int(name: str, default: int | object = _MISSING, *, minimum: int | None = None) -> int:
    value = _raw(name, default)
    try:
        number = int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"{name} must be a whole number, got {value!r}.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {number}.")
    return number


def env_list(name: str, default: list[str] | object = _MISSING) -> list[str]:
    value = _raw(name, default)
    if isinstance(value, list):
        return value
    return [item.strip() for item in str(value).split(",") if item.strip()]


def env_url(name: str, default: str | object = _MISSING, *, schemes: tuple[str, ...]) -> str:
    value = env_str(name, default)
    parts = urlsplit(value)
    if parts.scheme not in schemes or not (parts.netloc or parts.path):
        allowed = ", ".join(f"{s}://" for s in schemes)
        raise ImproperlyConfigured(f"{name} must be a URL starting with {allowed}, got {value!r}.")
    return value.rstrip("/") if parts.scheme in {"http", "https"} else value


def env_database(name: str = "DATABASE_URL", default: str | object = _MISSING) -> dict:
    value = env_url(name, default, schemes=("sqlite", "postgres", "postgresql", "pgsql"))
    try:
        config = environ.Env.db_url_config(value)
    except Exception as exc:  # django-environ raises several types for bad URLs
        raise ImproperlyConfigured(f"{name} is not a valid database URL: {exc}") from None
    if config["ENGINE"].endswith("postgresql"):
        if not config.get("NAME"):
            raise ImproperlyConfigured(f"{name} must name a database, got {value!r}.")
        config.setdefault("CONN_MAX_AGE", 60)
        config["CONN_HEALTH_CHECKS"] = True
    elif config["ENGINE"].endswith("sqlite3"):
        # `make run` has web, worker and beat writing to one file (docs/adr/0008). A transaction
        # takes the write lock when it begins (IMMEDIATE), waiting up to `timeout` for it: a
        # DEFERRED one that read first cannot get it later once another process has written
        # in between, and SQLite then fails at once with "database is locked", without waiting.
        # This is safe only because no transaction stays open across a network call (the
        # sandbox that the worker calls is served from this same file): the tests fail any
        # that does. WAL lets readers outside transactions go on while one process writes.
        options = config.setdefault("OPTIONS", {})
        options.setdefault("timeout", 20)
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
    return config
