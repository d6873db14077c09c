"""Readiness probes of the services the web process depends on."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connections


def database_is_reachable() -> tuple[bool, str]:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not ready"
        return False, exc.__class__.__name__
    return True, "ok"


def redis_is_reachable() -> tuple[bool, str]:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1, retry_on_timeout=False
    )
    try:
        client.ping()
    except Exception as exc:  # connection refused, timeout, auth...
        return False, exc.__class__.__name__
    finally:
        client.close()
    return True, "ok"
