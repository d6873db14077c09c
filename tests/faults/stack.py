"""The real service as separate processes, for fault tests that kill or starve its parts.

- :class:`Redis`: a private ``redis-server`` on a fixed port, to stop and start again (the
  suite-wide ``redis_server`` fixture can only be stopped).
- :func:`service_env`: the environment a web or worker process of the service needs to talk to
  the pytest test database (so the test sees what the processes wrote, and the other way round),
  a private Redis (broker, cache and the inbox nudge) and the test's HTTP stand-ins for Graph and
  Stripe.
- :class:`Process`: a subprocess with its output in a log file, started in its own process group
  so that it, and only it, can be killed with everything it started.
- :func:`worker_start` (``celery -A config worker``, prefork, one child) and :func:`web_start`
  (gunicorn, gthread, like ``Procfile``).

Nothing here waits for a fixed time: every wait polls a condition until a generous deadline.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import free_port

REPO_DIR = Path(__file__).resolve().parents[2]
# Generous: two cores shared with a parallel test run; Django + Celery start in ~2-5 s idle.
START_TIMEOUT = 90.0


def wait_until(
    condition: Callable[[], object], *, timeout: float = 60.0, interval: float = 0.1, what: str
) -> object:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:.0f} s waiting for: {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------------------------
# Redis that can come back
# --------------------------------------------------------------------------------------------


@dataclass
class Redis:
    """A private redis-server without persistence: stopping it loses everything it held, as a
    crashed Redis (or a failover to an empty replica) does."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        executable = shutil.which("redis-server")
        if executable is None:
            pytest.skip("redis-server is not installed (Debian package redis-server)")
        command = [executable, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--dir", str(self.directory), "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(self.answers, timeout=20, what=f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()  # no goodbye: clients see the connection drop
            self.process.wait(timeout=10)
        self.process = None

    def answers(self) -> bool:
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


@contextmanager
def private_redis(directory: Path) -> Iterator[Redis]:
    server = Redis(directory=directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# Environment of the service's processes
# --------------------------------------------------------------------------------------------


def database_url(settings_dict: dict | None = None) -> str:
    """A ``DATABASE_URL`` for the database this test uses (pytest-django's test database)."""
    if settings_dict is None:
        from django.db import connection

        settings_dict = connection.settings_dict
    user, password = settings_dict["USER"], settings_dict["PASSWORD"]
    host, port = settings_dict["HOST"] or "127.0.0.1", settings_dict["PORT"] or 5432
    return f"postgres://{user}:{password}@{host}:{port}/{settings_dict['NAME']}"


def service_env(
    *,
    redis_url: str,
    database: str | None = None,
    graph_url: str = "",
    stripe_url: str = "",
    **extra: str,
) -> dict[str, str]:
    """Environment for a web or worker process: this test's database, ``redis_url`` as broker,
    cache and nudge Redis, the stand-ins' URLs, the secrets the test process uses."""
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(REPO_DIR),
            "PYTHONUNBUFFERED": "1",
            # The worker's settings: the test settings with a short broker visibility timeout.
            "DJANGO_SETTINGS_MODULE": "tests.faults.service_settings",
            "DATABASE_URL": database or database_url(),
            "REDIS_URL": redis_url,
            "MESSENGER_APP_SECRET": settings.MESSENGER_APP_SECRET,
            "STRIPE_WEBHOOK_SECRET": settings.STRIPE_WEBHOOK_SECRET,
            "STRIPE_SECRET_KEY": settings.STRIPE_SECRET_KEY,
            "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY,
            "SECRET_KEY": settings.SECRET_KEY,
            "LOG_LEVEL": "INFO",
        }
    )
    if graph_url:
        env["GRAPH_API_BASE"] = graph_url
    if stripe_url:
        env["STRIPE_API_BASE"] = stripe_url
    env.update(extra)
    return env


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.popen.poll() is None

    def children(self) -> list[int]:
        """Pids of the processes this one started (Celery's pool children, gunicorn's workers)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ")".
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == self.pid and fields[0] != "Z":
                found.append(int(entry.name))
        return sorted(found)

    def kill_group(self, sig: int = signal.SIGKILL) -> None:
        """Signal the process and everything it started (its own process group)."""
        if self.alive():
            with suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            if sig == signal.SIGKILL:
                self.popen.wait(timeout=20)

    def stop(self) -> None:
        """Warm shutdown (SIGTERM), then SIGKILL for whatever is left."""
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGTERM)
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # stragglers of the group
        if self.alive():
            self.popen.wait(timeout=10)


def _spawn(name: str, command: list[str], env: dict[str, str], log_dir: Path) -> Process:
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            command,
            cwd=REPO_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill_group() reaches only it
        )
    return Process(name=name, popen=popen, log_path=log_path)


def _failed_to_start(process: Process, what: str) -> None:
    process.stop()
    pytest.fail(f"{what} did not start; its log:\n{process.log()[-4000:]}")


def worker_start(env: dict[str, str], log_dir: Path, *, name: str = "worker") -> Process:
    """``celery -A config worker`` with one prefork child (its pid: ``children()``), consuming
    the default queue of ``env``'s Redis; returns once it says it is ready."""
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "-P", "prefork"]
    command += ["-c", "1", "-l", "INFO", "-n", f"{name}-{os.getpid()}-{free_port()}@%h"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    process = _spawn(name, command, env, log_dir)
    deadline = time.monotonic() + START_TIMEOUT
    while " ready." not in process.log():
        if not process.alive() or time.monotonic() > deadline:
            _failed_to_start(process, "the Celery worker")
        time.sleep(0.1)
    return process


@dataclass
class Web:
    process: Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def web_start(env: dict[str, str], log_dir: Path, *, threads: int = 4, name: str = "web") -> Web:
    """gunicorn (gthread, one process) serving the service; returns once /healthz/ answers."""
    import requests

    port = free_port()
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}"]
    command += ["-w", "1", "-k", "gthread", "--threads", str(threads), "--timeout", "60"]
    process = _spawn(name, command, env, log_dir)
    web = Web(process=process, port=port)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            if requests.get(f"{web.url}/healthz/", timeout=2).status_code == 200:
                return web
        except requests.RequestException:
            pass
        if not process.alive() or time.monotonic() > deadline:
            _failed_to_start(process, "gunicorn")
        time.sleep(0.1)


class Supervised:
    """Restart a service process whenever it exits, as the deployment's process manager does
    (``restart: unless-stopped`` in docker-compose.yml, a Procfile platform's dyno manager).
    ``restarts`` counts how often that was needed; ``current`` is the running process."""

    def __init__(self, start: Callable[[int], Process]) -> None:
        import threading

        self._start = start
        self.restarts = 0
        self.current = start(0)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stopping.wait(0.2):
            if not self.current.alive() and not self._stopping.is_set():
                self.restarts += 1
                self.current = self._start(self.restarts)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=120)
        self.current.stop()


# --------------------------------------------------------------------------------------------
# PostgreSQL of a test's own, to stop and start under load
# --------------------------------------------------------------------------------------------


def _pg_bin() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


@dataclass
class Postgres:
    """A throwaway cluster (like scripts/test.sh's): local socket and TCP without passwords, the
    service connects as ``postgres`` to ``shop``. As root it runs as the postgres user."""

    directory: Path
    port: int = field(default_factory=free_port)
    bin: Path | None = field(default_factory=_pg_bin)

    @property
    def url(self) -> str:
        return f"postgres://postgres:postgres@127.0.0.1:{self.port}/shop"

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        if os.geteuid() == 0:
            command = ("runuser", "-u", "postgres", "--", *command)
        return subprocess.run(
            command, cwd=self.directory, capture_output=True, text=True, check=check, timeout=120
        )

    def create(self) -> None:
        if self.bin is None:
            pytest.skip("PostgreSQL's initdb is not installed (Debian package postgresql)")
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres")
        data = self.directory / "data"
        self._run(
            str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
            "--locale=C", "--no-sync", "--auth-local=trust", "--auth-host=trust",
        )  # fmt: skip
        self.start()
        self.psql("postgres", "CREATE DATABASE shop")

    def start(self) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory}"
        options += " -c fsync=off -c full_page_writes=off -c max_connections=50"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"), "-l",
            str(self.directory / "postgres.log"), "-w", "-t", "60", "-o", options, "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"), "-m", mode, "-w", "stop",
            check=False,
        )  # fmt: skip

    def psql(self, database: str, sql: str) -> str:
        result = self._run(
            str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", str(self.directory), "-p", str(self.port), "-U", "postgres", "-d", database,
            "-c", sql,
        )  # fmt: skip
        return result.stdout.strip()

    def load_schema_of(self, settings_dict: dict) -> None:
        """Copy the schema of the pytest test database (migrated already) into ``shop``."""
        env = dict(os.environ, PGPASSWORD=settings_dict["PASSWORD"] or "")
        host, port = settings_dict["HOST"] or "127.0.0.1", str(settings_dict["PORT"] or 5432)
        dump_command = [
            str(self.bin / "pg_dump"), "--schema-only", "--no-owner", "--no-privileges",
            "-h", host, "-p", port, "-U", settings_dict["USER"], settings_dict["NAME"],
        ]  # fmt: skip
        dump = subprocess.run(
            dump_command,
            capture_output=True,
            text=True,
            check=True,
            env=env,
            timeout=120,
        )
        command = [
            str(self.bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(self.directory),
            "-p", str(self.port), "-U", "postgres", "-d", "shop",
        ]  # fmt: skip
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(
            command, input=dump.stdout, capture_output=True, text=True, check=True,
            cwd=self.directory, timeout=120,
        )  # fmt: skip

    def destroy(self) -> None:
        if self.bin is not None and (self.directory / "data" / "postmaster.pid").exists():
            self.stop(mode="immediate")


@contextmanager
def private_postgres() -> Iterator[Postgres]:
    """A running cluster in a fresh directory under /tmp (as root the postgres user must reach
    it, which pytest's private tmp_path does not allow), removed afterwards."""
    import tempfile

    directory = Path(tempfile.mkdtemp(prefix="chatcommerce-faults-pg-", dir="/tmp"))
    server = Postgres(directory=directory)
    try:
        server.create()
        yield server
    finally:
        server.destroy()
        shutil.rmtree(directory, ignore_errors=True)


def sessions_ended(timeout: float = 30.0) -> bool:
    """After the service's processes stopped: wait (quietly, at most ``timeout``) until
    PostgreSQL has let their sessions on this test's database go, so pytest-django can drop the
    database afterwards. Returns whether they are gone."""
    from django.db import connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return True
        time.sleep(0.1)
    return False
