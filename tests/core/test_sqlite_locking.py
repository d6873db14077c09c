"""SQLite as ``make run`` uses it: web, worker and beat writing to one file (issue 12, item 20).

A transaction that reads before it writes, while another process writes in between, is what
failed in the demo: with SQLite's default (DEFERRED) transactions the first one cannot take the
write lock any more once the other has written since its read began, and SQLite says "database
is locked" at once, without waiting for the timeout. The connections here are made from the
settings ``config.env.env_database`` gives a ``sqlite:///`` URL, through Django's own
``transaction.atomic``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import OperationalError, connections, transaction

from config.env import env_database


@contextmanager
def _sqlite(aliases: dict[str, dict], django_db_blocker) -> Iterator[None]:
    """Extra database aliases, each its own connection to the file, for the ``with`` block."""
    configured = connections.configure_settings({**connections.settings, **aliases})
    connections.settings.update({alias: configured[alias] for alias in aliases})
    try:
        with django_db_blocker.unblock():
            yield
    finally:
        for alias in aliases:
            connections[alias].close()
            del connections[alias]
            del connections.settings[alias]


def test_a_transaction_that_read_first_keeps_its_write_lock_when_another_process_writes(
    monkeypatch, tmp_path, django_db_blocker
):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/make-run.sqlite3")
    worker = env_database("DATABASE_URL")
    # The "web" process gives up quickly instead of waiting its 20 s: here it has to wait for
    # the worker, which this test only lets go afterwards.
    web = {**worker, "OPTIONS": {**worker["OPTIONS"], "timeout": 0.2}}

    with _sqlite({"mr_worker": worker, "mr_web": web}, django_db_blocker):
        with connections["mr_web"].cursor() as cursor:
            cursor.execute("CREATE TABLE inbox (id INTEGER PRIMARY KEY, note TEXT)")

        with transaction.atomic(using="mr_worker"):
            with connections["mr_worker"].cursor() as cursor:
                cursor.execute("SELECT count(*) FROM inbox")  # the inbox worker reads first...
            # ...the web process stores a webhook meanwhile...
            try:
                with connections["mr_web"].cursor() as cursor:
                    cursor.execute("INSERT INTO inbox (note) VALUES ('webhook')")
            except OperationalError as error:
                web_first_try = str(error)
            else:
                web_first_try = "stored"
            with connections["mr_worker"].cursor() as cursor:
                cursor.execute("INSERT INTO inbox (note) VALUES ('processed')")  # ...then writes

        # The web process had to wait for the worker's lock (it gave up after its short
        # timeout; with its real one it would simply have waited), and stores now.
        assert web_first_try == "database is locked"
        with connections["mr_web"].cursor() as cursor:
            cursor.execute("INSERT INTO inbox (note) VALUES ('webhook')")
            cursor.execute("SELECT note FROM inbox ORDER BY id")
            assert cursor.fetchall() == [("processed",), ("webhook",)]
