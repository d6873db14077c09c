"""Put a competing transaction at a chosen step of a request: between its reads and its writes.

``committed_before_first_write(table, job)`` watches the SQL this thread sends (Django's
``connection.execute_wrapper``, a documented hook; nothing of ours is replaced). Just before the
first statement that writes to ``table`` or locks its rows, it runs ``job`` in another thread,
on that thread's own database connection, and waits for it to commit. The request then goes on
with whatever it read before: exactly a reservation or a sale landing while a merchant's form,
API call or import is between reading a row and writing it.

Needs real concurrent connections: use it in ``django_db(transaction=True)`` tests on
PostgreSQL (``postgres`` marker). A job that waits for a lock the request already holds fails
the test after ``timeout`` seconds instead of hanging.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection


def run_in_other_thread(job: Callable[[], Any], *, timeout: float = 30) -> Any:
    """Run ``job`` on another connection; return its result or raise what it raised."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = job()
        except BaseException as error:  # handed to the caller below
            outcome["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "the competing job is stuck (a lock held by the request?)"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def _writes_or_locks(sql: str, table: str) -> bool:
    quoted = f'"{table}"'
    if re.search(rf"\bUPDATE {re.escape(quoted)}", sql):
        return True
    return quoted in sql and bool(re.search(r"\bFOR (NO KEY )?UPDATE\b", sql))


@contextmanager
def committed_before_first_write(table: str, job: Callable[[], Any]) -> Iterator[list[Any]]:
    """Inside the block, run ``job`` (committed elsewhere) right before this thread first
    writes to or locks rows of ``table``. Yields a list that receives ``job``'s result."""
    results: list[Any] = []

    def wrapper(execute, sql, params, many, context):
        if not results and _writes_or_locks(sql, table):
            results.append(run_in_other_thread(job))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield results
    assert results, f"nothing wrote to {table}: the competing job never ran"
