"""``make run`` itself, started by a test: ``scripts/run.sh`` with its Procfile.dev processes
(web on runserver, a Celery worker, beat) on one SQLite file, the sandbox standing in for Meta
and Stripe, and a Redis of the test's own.

The script is run as a person runs it, with only what a person would set: ``PORT``,
``REDIS_URL`` (so it starts no Redis of its own) and ``DATABASE_URL`` (a fresh SQLite file in the
test's directory). It migrates, seeds the demo shop and the emulator, and starts honcho; its
output (every process's log, prefixed by honcho) is kept in one file. Stopping sends SIGTERM to
the script, as Ctrl-C's cleanup does, then ends whatever is left of its process group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.conftest import free_port
from tests.faults.stack import REPO_DIR

# Migrating a fresh SQLite file, seeding and starting three processes: ~20 s on an idle
# machine; generous, as the machine is shared with a parallel test run.
START_TIMEOUT = 240.0
# Settings the test run itself carries: the script must pick its own (dev) defaults instead.
_NOT_INHERITED = (
    "DJANGO_SETTINGS_MODULE",
    "DATABASE_URL",
    "REDIS_URL",
    "PUBLIC_BASE_URL",
    "GRAPH_API_BASE",
    "STRIPE_API_BASE",
    "SANDBOX_ENABLED",
    "DEBUG",
    "SECRET_KEY",
    "MESSENGER_APP_SECRET",
    "MESSENGER_VERIFY_TOKEN",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "FIELD_ENCRYPTION_KEY",
    "PORT",
)


@dataclass
class MakeRun:
    directory: Path
    redis_url: str
    port: int = 0
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "make-run.log"

    @property
    def database(self) -> Path:
        return self.directory / "db.sqlite3"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        self.port = free_port()
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in _NOT_INHERITED and not key.startswith(("PYTEST_", "CELERY_"))
        }
        env.update(
            PORT=str(self.port),
            REDIS_URL=self.redis_url,
            DATABASE_URL=f"sqlite:///{self.database}",
            PYTHONUNBUFFERED="1",
        )
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                ["bash", str(REPO_DIR / "scripts" / "run.sh")],
                cwd=REPO_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches all of it
            )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"make run did not start; its output:\n{self.log()[-6000:]}")
            time.sleep(0.2)

    def _ready(self) -> bool:
        """The web answers, the worker and beat said so, the Messenger Profile is pushed."""
        log = self.log()
        if not (" ready." in log and "beat: Starting" in log and "Messenger Profile" in log):
            return False
        try:
            return requests.get(f"{self.url}/healthz/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGTERM)  # the script's cleanup stops honcho
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=60)
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # whatever is left of its group
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)
