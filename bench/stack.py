"""What every benchmark needs: the real stack on throwaway servers, signed requests, percentiles,
and one place that writes ``bench/results.json``.

A benchmark's ``run.py`` adds ``bench/``'s parent to ``sys.path`` and imports this module::

    with contextlib.ExitStack() as stack:
        servers = servers_start(stack)                  # PostgreSQL + Redis, removed afterwards
        env = service_env(servers, settings="bench.settings")
        manage(env, "migrate", "--no-input", "-v", "0")
        port, pid = stack.enter_context(gunicorn(env))  # the production web configuration
        stack.enter_context(celery_worker(env))         # and its worker
        ...
    results_merge("my_bench", [Entry("my_bench.p99", "turn p99", 42.0, "ms", "<=", 100)])

Nothing here is part of the application: the service runs exactly as deployed (``config.wsgi``,
``celery -A config worker``), with throwaway secrets, its own servers and nothing patched.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import json
import math
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
RESULTS = REPO / "bench" / "results.json"

APP_SECRET = "bench-app-secret"  # noqa: S105 (a throwaway secret for a throwaway server)
STRIPE_WEBHOOK_SECRET = "whsec_bench"  # noqa: S105
# The production process shapes (Procfile): gunicorn gthread 2 x 8, celery prefork 4.
WEB_WORKERS, WEB_THREADS, WORKER_CONCURRENCY = 2, 8, 4


def log(message: str) -> None:
    print(f"==> {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, process: subprocess.Popen | None = None, seconds: float = 30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            sys.exit(f"error: the server for port {port} exited at start-up")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    sys.exit(f"error: nothing answers on port {port}")


# --------------------------------------------------------------------------------------------
# The machine
# --------------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """What the figures came from: CPUs, their model, RAM, and how busy the machine was."""
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram_gib = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "ram_gib": ram_gib,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def machine_line(info: dict[str, Any]) -> str:
    return f"{info.get('cpus')} CPUs ({info.get('cpu_model')}), {info.get('ram_gib')} GiB RAM"


# --------------------------------------------------------------------------------------------
# Throwaway PostgreSQL and Redis
# --------------------------------------------------------------------------------------------


def _pg_bin() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    initdb = shutil.which("initdb")
    if initdb:
        return Path(os.path.realpath(initdb)).parent
    sys.exit("error: PostgreSQL's initdb not found: install Debian's postgresql package")


@dataclass
class Servers:
    database_url: str
    redis_url: str
    description: str = ""
    pg_data: Path | None = None  # our own cluster: its processes can be counted in CPU time
    redis_pid: int | None = None


@contextlib.contextmanager
def throwaway_servers(*, pg_options: str = "") -> Iterator[Servers]:
    """A PostgreSQL cluster and a redis-server on free ports, removed afterwards.

    PostgreSQL keeps its durable defaults (``fsync``, ``synchronous_commit``): a 200 from the
    service means the row is on disk, as in production.
    """
    is_root = os.geteuid() == 0
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        sys.exit("error: redis-server not found: install Debian's redis-server package")
    pg_bin = _pg_bin()
    work = Path(tempfile.mkdtemp(prefix="chatcommerce-bench.", dir="/tmp"))
    if is_root:
        shutil.chown(work, "postgres", "postgres")

    def as_owner(*command: str, **kwargs) -> subprocess.CompletedProcess:
        if is_root:
            command = ("runuser", "-u", "postgres", "--", *command)
        return subprocess.run(command, cwd=work, check=True, **kwargs)

    pg_port, redis_port = free_port(), free_port()
    data = work / "pgdata"
    redis_process = None
    started_pg = False
    try:
        log(f"throwaway PostgreSQL on 127.0.0.1:{pg_port}, Redis on 127.0.0.1:{redis_port}")
        as_owner(
            str(pg_bin / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8",
            "--locale=C", "--auth-local=trust", "--auth-host=scram-sha-256",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -p {pg_port} -k {work} -c max_connections=200 "
            f"-c shared_buffers=256MB {pg_options}"
        ).strip()
        as_owner(
            str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(work / "postgres.log"),
            "-w", "-t", "60", "-o", options, "start",
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        started_pg = True
        as_owner(
            str(pg_bin / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", str(work),
            "-p", str(pg_port), "-U", "postgres", "-d", "postgres",
            "-c", "CREATE ROLE bench LOGIN PASSWORD 'bench'",
            "-c", "CREATE DATABASE bench OWNER bench",
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        redis_process = subprocess.Popen(
            [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--dir", str(work),
             "--save", "", "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(redis_port, process=redis_process)
        yield Servers(
            database_url=f"postgres://bench:bench@127.0.0.1:{pg_port}/bench",
            redis_url=f"redis://127.0.0.1:{redis_port}/0",
            description="throwaway PostgreSQL "
            + (f"(options {pg_options!r})" if pg_options else "(fsync and synchronous_commit on)")
            + " and Redis",
            pg_data=data,
            redis_pid=redis_process.pid,
        )
    finally:
        if redis_process is not None:
            redis_process.terminate()
            redis_process.wait(timeout=10)
        if started_pg:
            with contextlib.suppress(subprocess.CalledProcessError):
                as_owner(
                    str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop",
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)


def servers_start(stack: contextlib.ExitStack, *, pg_options: str = "") -> Servers:
    """``BENCH_DATABASE_URL`` + ``BENCH_REDIS_URL`` when both are set, else throwaway servers.

    Never ``DATABASE_URL``: the benchmarks write and delete rows, and that may be someone's
    real database.
    """
    database_url = os.environ.get("BENCH_DATABASE_URL", "")
    redis_url = os.environ.get("BENCH_REDIS_URL", "")
    if database_url and redis_url:
        return Servers(database_url, redis_url, "PostgreSQL and Redis of BENCH_*_URL")
    return stack.enter_context(throwaway_servers(pg_options=pg_options))


# --------------------------------------------------------------------------------------------
# The service
# --------------------------------------------------------------------------------------------


def service_env(
    servers: Servers, *, settings: str = "bench.settings", **extra: str
) -> dict[str, str]:
    """The environment of the served project: throwaway secrets for a throwaway server."""
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": settings,
            "DATABASE_URL": servers.database_url,
            "REDIS_URL": servers.redis_url,
            "SECRET_KEY": "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-throwaway",
            "MESSENGER_APP_SECRET": APP_SECRET,
            "MESSENGER_VERIFY_TOKEN": "bench-verify-token",
            "STRIPE_SECRET_KEY": "sk_test_bench",
            "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET,
            "FIELD_ENCRYPTION_KEY": "bench-field-encryption-key",
            "DEMO_STAFF_PASSWORD": "bench-demo-password-throwaway",
            "DEMO_OPERATOR_PASSWORD": "bench-operator-password-throwaway",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SANDBOX_ENABLED": "false",
            "DEBUG": "false",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO),
        }
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str, capture: bool = False) -> str:
    """``manage.py`` with the service's environment; its stdout when ``capture``."""
    result = subprocess.run(
        [str(VENV_BIN / "python"), "manage.py", *args],
        cwd=REPO,
        env=env,
        check=True,
        text=True,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
    )
    return result.stdout or ""


def shell(env: dict[str, str], code: str) -> Any:
    """Run ``code`` in ``manage.py shell``; it sets ``result``, which comes back as JSON."""
    wrapped = f"{code}\nimport json as _json\nprint('@@RESULT@@' + _json.dumps(result))\n"
    output = manage(env, "shell", "-v", "0", "-c", wrapped, capture=True)
    marker = output.rindex("@@RESULT@@")
    return json.loads(output[marker + len("@@RESULT@@") :].splitlines()[0])


def _terminate_group(process: subprocess.Popen, *, seconds: float = 20) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def gunicorn(
    env: dict[str, str],
    *,
    worker_class: str = "gthread",
    workers: int = WEB_WORKERS,
    threads: int = WEB_THREADS,
    port: int | None = None,
) -> Iterator[tuple[int, int]]:
    """gunicorn serving ``config.wsgi`` on a free port (or ``port``); yields (port, pid).

    Its process group is the service's web side (see ``webhook_ingest``'s CPU accounting).
    """
    port = port or free_port()
    command = [
        str(VENV_BIN / "gunicorn"), "config.wsgi", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--worker-class", worker_class, "--threads", str(threads),
        "--timeout", "30", "--keep-alive", "10", "--log-level", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                sys.exit("error: gunicorn exited at start-up")
            with contextlib.suppress(OSError, http.client.HTTPException):
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz/")
                if connection.getresponse().status == 200:
                    break
            if time.monotonic() > deadline:
                sys.exit("error: gunicorn did not answer /healthz/")
            time.sleep(0.2)
        yield port, process.pid
    finally:
        _terminate_group(process)


def gunicorn_description(worker_class: str = "gthread", workers: int = WEB_WORKERS,
                         threads: int = WEB_THREADS) -> str:  # fmt: skip
    if worker_class == "gthread":
        return f"gunicorn gthread, {workers} workers x {threads} threads"
    return f"gunicorn {worker_class}, {workers} workers"


@contextlib.contextmanager
def celery_worker(
    env: dict[str, str], *, concurrency: int = WORKER_CONCURRENCY, log_path: Path | None = None
) -> Iterator[int]:
    """``celery -A config worker`` (prefork, the production command); yields its pid once it
    says it is ready. Its log goes to ``log_path`` (a temporary file by default)."""
    if log_path is None:  # closed below
        log_file = tempfile.NamedTemporaryFile("w+", prefix="bench-worker.", suffix=".log")  # noqa: SIM115
    else:
        log_file = open(log_path, "w+")  # noqa: SIM115
    command = [
        str(VENV_BIN / "celery"), "-A", "config", "worker", "--loglevel", "INFO",
        "--concurrency", str(concurrency), "--without-gossip", "--without-mingle",
        "--without-heartbeat",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            log_file.flush()
            text = Path(log_file.name).read_text(errors="replace")
            if " ready." in text:
                break
            if process.poll() is not None:
                sys.exit(f"error: the Celery worker exited at start-up:\n{text[-3000:]}")
            if time.monotonic() > deadline:
                sys.exit(f"error: the Celery worker did not get ready:\n{text[-3000:]}")
            time.sleep(0.2)
        yield process.pid
    finally:
        _terminate_group(process, seconds=30)
        log_file.close()


def worker_errors(log_text: str) -> list[str]:
    """Lines of a worker log that report a failure (to print after a run)."""
    return [line for line in log_text.splitlines() if " ERROR/" in line or "Traceback" in line]


# --------------------------------------------------------------------------------------------
# CPU accounting: what the work costs the machine, whatever else runs on it
# --------------------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()  # fields from "state" on
    except OSError:
        return None


def cpu_snapshot(pids: set[int]) -> dict[int, float]:
    """CPU seconds used so far by each of these processes and by its finished children (a
    PostgreSQL backend that exited is counted in the postmaster's)."""
    snapshot = {}
    for pid in pids:
        fields = _proc_stat(pid)
        if fields is not None:  # utime, stime, cutime, cstime
            snapshot[pid] = sum(int(value) for value in fields[11:15]) / _TICK
    return snapshot


def cpu_of(pids: set[int]) -> float:
    """CPU seconds used so far by these processes (and their finished children)."""
    return sum(cpu_snapshot(pids).values())


def cpu_since(before: dict[int, float], pids: set[int]) -> float:
    """CPU seconds used since ``before`` by its processes and by ``pids`` (which may include
    processes started since: they count from zero)."""
    after = cpu_snapshot(set(before) | pids)
    return sum(after.values()) - sum(before.values())


def service_pids(servers: Servers, *groups: int) -> set[int]:
    """The processes of these process groups (gunicorn's, the worker's), our PostgreSQL
    (postmaster and backends) and our Redis."""
    pids: set[int] = set()
    postmaster = None
    if servers.pg_data is not None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            postmaster = int((servers.pg_data / "postmaster.pid").read_text().split()[0])
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _proc_stat(int(entry))
        if fields is None:
            continue
        parent, group = int(fields[1]), int(fields[2])
        if group in groups or int(entry) == postmaster or parent == postmaster:
            pids.add(int(entry))
    if servers.redis_pid is not None:
        pids.add(servers.redis_pid)
    return pids


def children_cpu() -> float:
    """CPU seconds used by this process's finished children (e.g. wrk)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------------------------
# Signed requests
# --------------------------------------------------------------------------------------------


def messenger_signature(body: bytes, secret: str = APP_SECRET) -> str:
    """``X-Hub-Signature-256`` as Meta computes it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def messenger_body(page_id: str, item: dict[str, Any]) -> bytes:
    """A one-item webhook body like Meta sends (compact JSON)."""
    timestamp = item.get("timestamp") or int(time.time() * 1000)
    payload = {"object": "page", "entry": [{"id": page_id, "time": timestamp, "messaging": [item]}]}
    return json.dumps(payload, separators=(",", ":")).encode()


def stripe_signature(body: bytes, *, secret: str = STRIPE_WEBHOOK_SECRET, at: int | None = None):
    """``Stripe-Signature`` as Stripe computes it (``t=<time>,v1=<hmac of "t.body">``)."""
    timestamp = int(time.time()) if at is None else at
    signed = f"{timestamp}.".encode() + body
    return f"t={timestamp},v1={hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()}"


# --------------------------------------------------------------------------------------------
# Load: an open-loop sender (requests leave at a fixed rate, whatever the answers take)
# --------------------------------------------------------------------------------------------


@dataclass
class Sent:
    index: int
    sent_at: float  # time.time() just before the request left
    status: int  # 0: no answer (connection error)
    answered_at: float


@dataclass
class OpenLoopResult:
    sent: list[Sent]
    seconds: float  # from the first scheduled send to the last actual one
    late: int  # requests that left more than 10 ms after their slot (the client fell behind)

    @property
    def offered_rate(self) -> float:
        return len(self.sent) / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> int:
        return sum(1 for s in self.sent if s.status != 200)


def open_loop(
    port: int,
    requests: Sequence[tuple[str, bytes, dict[str, str]]],
    *,
    rate: float,
    connections: int = 16,
) -> OpenLoopResult:
    """POST ``requests`` (path, body, headers) to 127.0.0.1:``port``, request ``i`` at ``start
    + i / rate``, over ``connections`` keep-alive connections (each waits for its answer, so
    enough of them keep the schedule even when answers are slow)."""
    start = time.time() + 0.3
    lock = threading.Lock()
    next_index = [0]
    sent: list[Sent] = []
    late = [0]

    def run() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                index = next_index[0]
                next_index[0] += 1
            if index >= len(requests):
                return
            slot = start + index / rate
            delay = slot - time.time()
            if delay > 0:
                time.sleep(delay)
            path, body, headers = requests[index]
            if time.time() - slot > 0.010:
                with lock:
                    late[0] += 1
            status = 0
            # A kept-alive connection the server closed while idle (gunicorn's keep-alive is
            # 10 s) fails before the request reaches it: open a new one and send again, as HTTP
            # clients do. The time counts from the send that got through.
            for _attempt in range(2):
                sent_at = time.time()
                try:
                    connection.request("POST", path, body, headers)
                    response = connection.getresponse()
                    response.read()
                    status = response.status
                    break
                except (OSError, http.client.HTTPException):
                    connection.close()
            with lock:
                sent.append(Sent(index, sent_at, status, time.time()))

    threads = [threading.Thread(target=run) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent.sort(key=lambda s: s.index)
    seconds = (sent[-1].sent_at - start) if sent else 0.0
    return OpenLoopResult(sent, max(seconds, len(sent) / rate - 1 / rate), late[0])


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def wait_until(check: Callable[[], bool], *, seconds: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank: a value that was actually measured)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


_COMPARE = {
    "<=": lambda value, goal: value <= goal,
    ">=": lambda value, goal: value >= goal,
    "==": lambda value, goal: value == goal,
}


@dataclass
class Entry:
    """One figure of ``bench/results.json``: a name, a value with its unit, and its goal.

    ``op`` and ``target`` state the goal (``"<="`` 25 ms); without them the figure is reported
    for information (``holds`` is then ``None``).
    """

    name: str
    label: str
    value: float | int | None
    unit: str
    op: str | None = None
    target: float | int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def goal(self) -> str | None:
        return None if self.op is None else f"{self.op} {self.target:g}"

    @property
    def holds(self) -> bool | None:
        if self.op is None:
            return None
        if self.value is None or (isinstance(self.value, float) and math.isnan(self.value)):
            return False
        return bool(_COMPARE[self.op](self.value, self.target))


def results_read() -> dict[str, dict[str, Any]]:
    if not RESULTS.exists():
        return {}
    data = json.loads(RESULTS.read_text())
    # Entries are objects with a "benchmark"; anything else is from an older layout.
    return {k: v for k, v in data.items() if isinstance(v, dict) and "benchmark" in v}


def results_merge(benchmark: str, entries: Sequence[Entry]) -> None:
    """Replace ``benchmark``'s entries in ``bench/results.json`` with ``entries``.

    Each entry is stored under its name with ``benchmark, name, label, value, unit, goal,
    holds, details, measured_at, machine``; other benchmarks' entries are kept.
    """
    results = {k: v for k, v in results_read().items() if v.get("benchmark") != benchmark}
    measured_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    info = machine()
    for entry in entries:
        value = entry.value
        if isinstance(value, float):
            value = None if math.isnan(value) else round(value, 3)
        results[entry.name] = {
            "benchmark": benchmark,
            "name": entry.name,
            "label": entry.label,
            "value": value,
            "unit": entry.unit,
            "goal": entry.goal,
            "holds": entry.holds,
            "details": entry.details,
            "measured_at": measured_at,
            "machine": info,
        }
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    log(f"{len(entries)} figures merged into {RESULTS.relative_to(REPO)}")


def entries_print(entries: Sequence[Entry]) -> None:
    for entry in entries:
        verdict = {True: "holds", False: "MISSED", None: ""}[entry.holds]
        goal = f"(goal {entry.goal})" if entry.goal else ""
        print(f"  {entry.label:<52} {_format(entry.value):>10} {entry.unit:<10} {goal} {verdict}")


def _format(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return (
            f"{value:.3g}"
            if abs(value) < 10
            else f"{value:.1f}"
            if value < 1000
            else f"{value:.0f}"
        )
    return str(value)


def table(results: dict[str, dict[str, Any]] | None = None) -> str:
    """Every figure of ``bench/results.json`` with its goal and whether it holds."""
    results = results_read() if results is None else results
    rows = [("benchmark", "figure", "value", "goal", "holds", "measured")]
    for entry in sorted(results.values(), key=lambda e: (e["benchmark"], e["name"])):
        value = entry.get("value")
        text = f"{_format(value)} {entry.get('unit', '')}".strip()
        holds = {True: "yes", False: "NO", None: "-"}[entry.get("holds")]
        rows.append(
            (
                entry["benchmark"],
                entry.get("label", entry["name"]),
                text,
                entry.get("goal") or "-",
                holds,
                (entry.get("measured_at") or "")[:16].replace("T", " "),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    machines = {machine_line(e["machine"]) for e in results.values() if e.get("machine")}
    for line in sorted(machines):
        lines.append(f"machine: {line}")
    return "\n".join(lines)


if __name__ == "__main__":  # bench/run prints the table this way
    if sys.argv[1:] == ["table"]:
        print(table())
    else:
        sys.exit("usage: python bench/stack.py table")
