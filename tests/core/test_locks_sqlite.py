"""The lock-file path of ``core.locks`` on SQLite, which ``make run`` uses: real processes (and
threads of one process) on one SQLite file contend for the inbox's, the outbox's and a named
lock, whatever database the test run itself uses.

Each holder is ``tests/core/lock_holder.py`` in its own Python process with a SQLite
``DATABASE_URL``: the lock-file path is what it takes, as web, worker and beat do under
``make run``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parents[2]
HOLDER = Path(__file__).with_name("lock_holder.py")
LOCKS = [
    ("inbox", "104412345678901:2401234567890123"),
    ("outbox", "4242"),
    ("name", "catalog-import:7"),
]


@pytest.fixture
def sqlite_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=f"sqlite:///{tmp_path / 'run.sqlite3'}",
        PYTHONPATH=str(REPO_DIR),
    )
    return env


class Holder:
    """A lock holder process; ``held`` is what it got."""

    def __init__(self, env: dict[str, str], kind: str, key: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HOLDER), "hold", kind, key],
            cwd=REPO_DIR,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self._line() == "vendor=sqlite", self._failure()
        self.held = self._line() == "held=True"

    def _line(self) -> str:
        return self.process.stdout.readline().strip()

    def _failure(self) -> str:
        self.process.kill()
        return self.process.communicate(timeout=30)[1][-2000:]

    def release(self) -> None:
        self.process.stdin.write("\n")
        self.process.stdin.flush()
        assert self._line() == "released"
        assert self.process.wait(timeout=30) == 0

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.communicate(timeout=30)


def _run(env: dict[str, str], mode: str, kind: str, key: str) -> str:
    done = subprocess.run(
        [sys.executable, str(HOLDER), mode, kind, key],
        cwd=REPO_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.split()
    assert lines[0] == "vendor=sqlite"
    return " ".join(lines[1:])


@pytest.mark.parametrize(("kind", "key"), LOCKS, ids=[kind for kind, _key in LOCKS])
def test_a_lock_held_by_one_process_is_refused_to_another_until_let_go(sqlite_env, kind, key):
    holder = Holder(sqlite_env, kind, key)
    try:
        assert holder.held
        assert _run(sqlite_env, "try", kind, key) == "held=False"
        holder.release()
        assert _run(sqlite_env, "try", kind, key) == "held=True"
    finally:
        holder.close()


def test_other_names_are_not_blocked(sqlite_env):
    holder = Holder(sqlite_env, "outbox", "4242")
    try:
        assert holder.held
        assert _run(sqlite_env, "try", "outbox", "4243") == "held=True"
        assert _run(sqlite_env, "try", "inbox", "104412345678901:4242") == "held=True"
    finally:
        holder.close()


def test_a_killed_holder_lets_go_at_once(sqlite_env):
    """A worker killed mid-send (OOM, deploy) must not keep the customer locked: the lock file
    is released with the process."""
    holder = Holder(sqlite_env, "inbox", "104412345678901:2401234567890123")
    try:
        assert holder.held
        holder.kill()
        assert _run(sqlite_env, "try", "inbox", "104412345678901:2401234567890123") == ("held=True")
    finally:
        holder.close()


def test_another_database_file_has_its_own_locks(sqlite_env, tmp_path):
    holder = Holder(sqlite_env, "outbox", "4242")
    other = {**sqlite_env, "DATABASE_URL": f"sqlite:///{tmp_path / 'other.sqlite3'}"}
    try:
        assert holder.held
        assert _run(other, "try", "outbox", "4242") == "held=True"
    finally:
        holder.close()


@pytest.mark.parametrize(("kind", "key"), LOCKS, ids=[kind for kind, _key in LOCKS])
def test_two_threads_of_one_process_contend_like_two_processes(sqlite_env, kind, key):
    """Threads of a Celery worker or of runserver each open the lock file themselves: the
    second is refused while the first holds it."""
    assert _run(sqlite_env, "threads", kind, key) == "first=True second=False"
