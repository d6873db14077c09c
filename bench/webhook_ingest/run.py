#!/usr/bin/env python3
"""Webhook ingest benchmark: signed single-event POSTs accepted per second, against a no-op view.

    .venv/bin/python bench/webhook_ingest/run.py [--seconds 5] [--rounds 3] [--client auto]

What it does:

1. Starts a throwaway PostgreSQL cluster and redis-server (as ``scripts/test.sh`` does) and
   removes them afterwards; or uses ``BENCH_DATABASE_URL`` / ``BENCH_REDIS_URL`` when both are
   set (never ``DATABASE_URL``: the benchmark writes rows). The throwaway cluster keeps
   PostgreSQL's durable defaults (``fsync``, ``synchronous_commit``): a 200 means the event is
   on disk.
2. Migrates, connects a Messenger page, and starts gunicorn serving the project with
   ``bench.webhook_ingest.settings`` (the project's base settings plus ``/bench/noop/``).
3. Alternates rounds of the two measurements with the same client and the same gunicorn:
   POSTs of the same size to the no-op view, and signed single-event POSTs (a new ``mid`` each)
   to ``/messenger/webhook/``. Each takes the median over the rounds.
4. Checks that every accepted event is a row, prints both rates and the ratio, and merges the
   numbers into ``bench/results.json`` under ``webhook_ingest``.

No Celery worker runs: the debounced drains the ingest publishes wait in Redis. The load client
is ``wrk`` (Debian package) when installed, else a multi-process Python client with keep-alive
``http.client`` connections; it shares the machine's cores with the server, as any local load
test does, so the same client measures both sides.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import stack
from bench.stack import log

NAME = "webhook_ingest"
PAGE_ID = "900000000000001"
PSID = "2400000000000001"
WEBHOOK_PATH = "/messenger/webhook/"
NOOP_PATH = "/bench/noop/"
GOAL = 0.5


SEED = f"""
from commerce.models import Merchant
from messenger.models import InboundEvent, MessengerPage
merchant, _ = Merchant.objects.get_or_create(
    slug="bench-shop", defaults={{"name": "Bench shop", "default_currency": "USD"}}
)
MessengerPage.objects.update_or_create(
    page_id="{PAGE_ID}", defaults={{"merchant": merchant, "name": "Bench page", "is_active": True}}
)
InboundEvent.objects.filter(page_id="{PAGE_ID}").delete()
"""

COUNT = f"""
from messenger.models import InboundEvent
rows = InboundEvent.objects.filter(page_id="{PAGE_ID}")
print(rows.count(), rows.filter(status="pending").count())
"""


# --------------------------------------------------------------------------------------------
# Requests: one signed single-event body per request, each with a new mid
# --------------------------------------------------------------------------------------------


def event_body(n: int, prefix: str) -> bytes:
    """A one-event webhook body like Meta sends (compact JSON, \\u-escaped)."""
    timestamp = 1764067200000 + n
    item = {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE_ID},
        "timestamp": timestamp,
        "message": {"mid": f"m_{prefix}_{n:09d}", "text": "hello, do you have this in red?"},
    }
    payload = {"object": "page", "entry": [{"id": PAGE_ID, "time": timestamp, "messaging": [item]}]}
    return json.dumps(payload, separators=(",", ":")).encode()


def signature(body: bytes) -> str:
    return stack.messenger_signature(body)


@dataclass
class Measurement:
    ok: int  # answered 200
    failed: int
    seconds: float
    unique: int = -1  # distinct events among the 200s (wrk replays its list when it runs out)
    cpu_seconds: float = 0.0  # used by the service, its servers and the client meanwhile

    def __post_init__(self) -> None:
        if self.unique < 0:
            self.unique = self.ok

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def cpu_per_request(self) -> float:
        return self.cpu_seconds / self.ok if self.ok else 0.0


# Python client ------------------------------------------------------------------------------


def _client_process(port, path, seconds, threads, prefix, start_at, queue) -> None:
    import threading

    counts = [[0, 0] for _ in range(threads)]

    def run(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = index
        while time.monotonic() < start_at:
            time.sleep(0.001)
        deadline = start_at + seconds
        while time.monotonic() < deadline:
            body = event_body(n, prefix)
            n += threads
            headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature(body)}
            try:
                connection.request("POST", path, body, headers)
                response = connection.getresponse()
                response.read()
                counts[index][0 if response.status == 200 else 1] += 1
            except (OSError, http.client.HTTPException):
                counts[index][1] += 1
                connection.close()

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    queue.put((sum(c[0] for c in counts), sum(c[1] for c in counts)))


def measure_python(port: int, path: str, seconds: float, *, prefix: str, processes: int,
                   threads: int) -> Measurement:  # fmt: skip
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    start_at = time.monotonic() + 0.5
    workers = [
        context.Process(
            target=_client_process,
            args=(port, path, seconds, threads, f"{prefix}p{i}", start_at, queue),
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=seconds + 60) for _ in workers]
    for worker in workers:
        worker.join()
    return Measurement(sum(r[0] for r in results), sum(r[1] for r in results), seconds)


# wrk ----------------------------------------------------------------------------------------

WRK_SCRIPT = r"""
-- Replays pre-signed single-event requests, one line each ("signature<TAB>body"); thread k of
-- n sends lines k, k+n, k+2n... so no two requests share a mid.
local counter = 0
local threads = {}
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end
function init(args)
  local path, file, stride = args[1], args[2], tonumber(args[3])
  reqs, i = {}, 0
  local k = 0
  for line in io.lines(file) do
    if k % stride == tid - 1 then
      local tab = string.find(line, "\t", 1, true)
      local headers = {["Content-Type"] = "application/json",
                       ["X-Hub-Signature-256"] = string.sub(line, 1, tab - 1)}
      reqs[#reqs + 1] = wrk.format("POST", path, headers, string.sub(line, tab + 1))
    end
    k = k + 1
  end
end
function request()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
"""


def measure_wrk(port: int, path: str, seconds: float, *, prefix: str, threads: int,
                connections: int, expected_rate: float, work: Path) -> Measurement:  # fmt: skip
    count = max(int(expected_rate * seconds * 1.5), 5000)
    data = work / f"{prefix}.txt"
    with data.open("wb") as out:
        for n in range(count):
            body = event_body(n, prefix)
            out.write(signature(body).encode() + b"\t" + body + b"\n")
    script = work / "replay.lua"
    script.write_text(WRK_SCRIPT)
    output = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
         "-s", str(script), f"http://127.0.0.1:{port}", "--", path, str(data), str(threads)],
        check=True, text=True, capture_output=True,
    ).stdout  # fmt: skip
    data.unlink()
    total = int(re.search(r"(\d+) requests in ([\d.]+)(\w+)", output).group(1))
    elapsed_match = re.search(r"requests in ([\d.]+)(m?s|m|h)", output)
    value, unit = float(elapsed_match.group(1)), elapsed_match.group(2)
    elapsed = value * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    failed = (int(bad.group(1)) if bad else 0) + (
        sum(int(g) for g in errors.groups()) if errors else 0
    )
    ok = total - (int(bad.group(1)) if bad else 0)
    if count < total:
        log(f"note: {total - count} wrk requests repeated a mid (deduplicated, still answered)")
    return Measurement(ok, failed, elapsed, unique=min(ok, count))


# --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5, help="length of one measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (no-op, ingest)")
    parser.add_argument("--client", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--worker-class", choices=["gthread", "sync"], default="gthread")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=32, help="gunicorn threads per worker")
    parser.add_argument("--connections", type=int, default=32, help="concurrent client connections")
    parser.add_argument(
        "--pg-options",
        default="",
        help="extra server options for the throwaway PostgreSQL, for diagnosis only "
        "(e.g. '-c synchronous_commit=off' shows what the durable commit costs)",
    )
    parser.add_argument("--no-results", action="store_true", help="do not write bench/results.json")
    args, _ = parser.parse_known_args()

    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    if client == "wrk" and not shutil.which("wrk"):
        sys.exit("error: wrk not found: install Debian's wrk package, or use --client python")

    with contextlib.ExitStack() as context:
        servers = stack.servers_start(context, pg_options=args.pg_options)
        database = servers.description
        env = stack.service_env(servers, settings="bench.webhook_ingest.settings")
        log("migrating and connecting the bench page")
        stack.manage(env, "migrate", "--no-input", "-v", "0")
        stack.manage(env, "shell", "-c", SEED)
        port, gunicorn_pid = context.enter_context(
            stack.gunicorn(
                env, worker_class=args.worker_class, workers=args.workers, threads=args.threads
            )
        )
        server = stack.gunicorn_description(args.worker_class, args.workers, args.threads)
        work = Path(context.enter_context(tempfile.TemporaryDirectory(prefix="bench-ingest.")))

        def measure(path: str, prefix: str, seconds: float, expected: float) -> Measurement:
            pids = stack.service_pids(servers, gunicorn_pid)
            before = stack.cpu_of(pids) + stack.children_cpu()
            if client == "wrk":
                result = measure_wrk(
                    port, path, seconds, prefix=prefix, threads=min(2, args.connections),
                    connections=args.connections, expected_rate=expected, work=work,
                )  # fmt: skip
            else:
                result = measure_python(
                    port, path, seconds, prefix=prefix, processes=2,
                    threads=max(1, args.connections // 2),
                )  # fmt: skip
            result.cpu_seconds = stack.cpu_of(pids) + stack.children_cpu() - before
            return result

        client_description = (
            f"wrk, 2 threads, {args.connections} connections"
            if client == "wrk"
            else f"Python http.client, 2 processes, {args.connections} keep-alive connections"
        )
        log(f"{server}; client: {client_description}")
        log("warming up")
        measure(NOOP_PATH, "warmnoop", 1, 3000)
        warm = measure(WEBHOOK_PATH, "warm", 1, 3000)

        noop_rates: list[float] = []
        ingest_rates: list[float] = []
        noop_cpu: list[float] = []
        ingest_cpu: list[float] = []
        load_before = os.getloadavg()[0]
        accepted = warm.unique
        for round_number in range(1, args.rounds + 1):
            noop = measure(NOOP_PATH, f"noop{round_number}", args.seconds, 4000)
            ingest = measure(WEBHOOK_PATH, f"r{round_number}", args.seconds, 4000)
            if noop.failed or ingest.failed:
                log(
                    f"round {round_number}: {noop.failed} no-op and {ingest.failed} ingest failures"
                )
            accepted += ingest.unique
            noop_rates.append(noop.rate)
            ingest_rates.append(ingest.rate)
            noop_cpu.append(noop.cpu_per_request)
            ingest_cpu.append(ingest.cpu_per_request)
            log(
                f"round {round_number}: no-op {noop.rate:7.0f}/s   ingest {ingest.rate:7.0f}/s"
                f"   ratio {ingest.rate / noop.rate:.2f}   CPU per request "
                f"{noop.cpu_per_request * 1e6:.0f} vs {ingest.cpu_per_request * 1e6:.0f} us"
            )
        load_after = os.getloadavg()[0]

        counted = stack.manage(env, "shell", "-v", "0", "-c", COUNT, capture=True)
        rows, pending = (int(x) for x in counted.split()[-2:])

    noop_rate = statistics.median(noop_rates)
    ingest_rate = statistics.median(ingest_rates)
    ratio = ingest_rate / noop_rate if noop_rate else 0.0
    # What each request costs the machine (service, PostgreSQL, Redis and the load client):
    # on an otherwise idle, CPU-bound machine the rates are in the inverse ratio of these.
    noop_cost = statistics.median(noop_cpu)
    ingest_cost = statistics.median(ingest_cpu)
    cpu_ratio = noop_cost / ingest_cost if ingest_cost else 0.0
    stored_ok = rows >= accepted
    print()
    print(f"webhook ingest ({server}; {database}; Redis; client {client_description})")
    print(f"  no-op Django view        {noop_rate:8.0f} requests/s")
    print(f"  signed event POSTs (200) {ingest_rate:8.0f} requests/s")
    print(f"  ratio                    {ratio:8.2f}   (goal >= {GOAL})")
    print(f"  events stored            {rows:8d}   ({pending} pending for the worker)")
    print(
        f"  CPU per request          {noop_cost * 1e6:8.0f} us no-op, {ingest_cost * 1e6:.0f} us"
        f" ingest: ratio {cpu_ratio:.2f} on an idle machine"
    )
    print(
        f"  load average             {load_before:8.2f} at start, {load_after:.2f} at end"
        f" ({os.cpu_count()} CPUs; above that, other work shared the machine)"
    )
    if not stored_ok:
        print(f"  WARNING: {accepted} events were accepted but only {rows} rows exist")

    if not args.no_results:
        details = {
            "noop_requests_per_second": round(noop_rate, 1),
            "ingest_requests_per_second": round(ingest_rate, 1),
            "rounds": args.rounds,
            "seconds_per_measurement": args.seconds,
            "server": server,
            "client": client_description,
            "database": database,
            "events_stored": rows,
            "events_accepted": accepted,
            "cpu_us_per_request_noop": round(noop_cost * 1e6, 1),
            "cpu_us_per_request_ingest": round(ingest_cost * 1e6, 1),
            "load_average": [round(load_before, 2), round(load_after, 2)],
        }
        stack.results_merge(
            NAME,
            [
                stack.Entry(f"{NAME}.ratio", "ingest rate / no-op view rate", round(ratio, 3),
                            "x", ">=", GOAL, details),
                stack.Entry(f"{NAME}.cpu_ratio", "no-op / ingest CPU per request",
                            round(cpu_ratio, 3), "x", details=details),
                stack.Entry(f"{NAME}.ingest_rate", "signed webhook POSTs accepted",
                            round(ingest_rate), "req/s", details=details),
                stack.Entry(f"{NAME}.stored", "accepted events missing from the inbox",
                            max(accepted - rows, 0), "events", "==", 0, details),
            ],
        )  # fmt: skip
    return 0 if stored_ok else 1


if __name__ == "__main__":
    sys.exit(main())
