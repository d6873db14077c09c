"""A process that takes one of the service's never-waiting locks, for ``test_locks_sqlite.py``.

    python tests/core/lock_holder.py hold|try|threads inbox|outbox|name <key>

Runs Django with the settings of its environment (the test gives it a SQLite file database, as
``make run`` uses) and the real lock of the inbox (``inbox:<page>:<psid>``), the outbox
(``outbox:<customer id>``) or ``core.locks.try_lock`` by name:

- ``try``: print ``held=<bool>`` and let go;
- ``hold``: print ``held=<bool>``, keep the lock until a line arrives on stdin, then print
  ``released`` and exit (a killed holder never prints it);
- ``threads``: two threads of this one process with their own connections: the first takes the
  lock and keeps it while the second tries; print ``first=<bool> second=<bool>``.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import django

django.setup()

from django.db import connection  # noqa: E402

from core.locks import try_lock  # noqa: E402
from messenger.services.inbox_drain import _customer_lock  # noqa: E402
from messenger.services.outbox import _customer_send_lock  # noqa: E402


def _lock(kind: str, key: str):
    if kind == "inbox":
        page_id, psid = key.split(":")
        return _customer_lock(page_id=page_id, psid=psid)
    if kind == "outbox":
        return _customer_send_lock(int(key))
    return try_lock(key)


def _say(text: str) -> None:
    print(text, flush=True)


def main() -> None:
    mode, kind, key = sys.argv[1:4]
    _say(f"vendor={connection.vendor}")
    if mode == "try":
        with _lock(kind, key) as held:
            _say(f"held={held}")
        return
    if mode == "hold":
        with _lock(kind, key) as held:
            _say(f"held={held}")
            sys.stdin.readline()
        _say("released")
        return
    taken, done = threading.Event(), threading.Event()
    results = {}

    def first() -> None:
        try:
            with _lock(kind, key) as held:
                results["first"] = held
                taken.set()
                done.wait(timeout=30)
        finally:
            connection.close()

    def second() -> None:
        try:
            taken.wait(timeout=30)
            with _lock(kind, key) as held:
                results["second"] = held
        finally:
            done.set()
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    _say(f"first={results.get('first')} second={results.get('second')}")


if __name__ == "__main__":
    main()
