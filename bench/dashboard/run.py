#!/usr/bin/env python3
"""Dashboard at scale: server-side time of each page with a million orders on PostgreSQL.

    .venv/bin/python bench/dashboard/run.py [--orders 1000000] [--merchants 20] [--runs 15]

1. Starts a throwaway PostgreSQL (and Redis) with ``bench/stack.py`` (or uses
   ``BENCH_DATABASE_URL`` / ``BENCH_REDIS_URL``), migrates, and seeds ``--orders`` orders with
   ``manage.py seed_orders`` (timed: the seed is part of what is promised).
2. Runs ``bench/dashboard/measure.py`` in the service's environment: every dashboard page
   (orders list with each filter, search and sort; order detail; metrics; needs attention), as
   an operator and as staff of the busiest shop, through Django's test client in one process:
   a few warm-up requests, then ``--runs`` timed ones. The time is the server's work (middleware,
   queries, templates), not a network round trip.
3. Prints each page's median and p95 against the 300 ms goal, and merges into
   ``bench/results.json`` the worst median of each page kind (the goal) with every variant in
   its details, plus the seed's duration.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import stack

GOAL_MS = 300
PAGES = ("orders list", "order detail", "metrics", "attention")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=15, help="timed requests per page")
    parser.add_argument(
        "--skip-seed",
        action="store_true",
        help="measure the history already in BENCH_DATABASE_URL (seeded by an earlier run)",
    )
    parser.add_argument("--no-results", action="store_true", help="do not write results.json")
    args, _unknown = parser.parse_known_args()

    with contextlib.ExitStack() as context:
        servers = stack.servers_start(context)
        env = stack.service_env(servers, ALLOWED_HOSTS="127.0.0.1,localhost,testserver")
        stack.log("migrating")
        stack.manage(env, "migrate", "--no-input", "-v", "0")
        seed_seconds = None
        if not args.skip_seed:
            stack.log(f"seeding {args.orders:,} orders (manage.py seed_orders)")
            started = time.monotonic()
            subprocess.run(
                [str(stack.VENV_BIN / "python"), "manage.py", "seed_orders",
                 "--orders", str(args.orders), "--merchants", str(args.merchants),
                 "--days", str(args.days), "--replace"],
                cwd=stack.REPO, env=env, check=True,
            )  # fmt: skip
            seed_seconds = time.monotonic() - started
        stack.log(f"measuring ({args.runs} runs per page)")
        output = subprocess.run(
            [str(stack.VENV_BIN / "python"), "bench/dashboard/measure.py", "--runs",
             str(args.runs)],
            cwd=stack.REPO, env=env, check=True, text=True, stdout=subprocess.PIPE,
        ).stdout  # fmt: skip
        for line in output.splitlines():
            if not line.startswith("@@RESULT@@"):
                print(line)
        measured = json.loads(output[output.rindex("@@RESULT@@") + len("@@RESULT@@") :])
        database = servers.description

    entries = []
    failed = [m for m in measured if m["status"] != 200]
    for page in PAGES:
        rows = [m for m in measured if m["page"] == page]
        if not rows:
            continue
        worst = max(rows, key=lambda m: m["median_ms"])
        details = {
            "orders": args.orders,
            "merchants": args.merchants,
            "runs_per_variant": args.runs,
            "worst_variant": worst["variant"],
            "worst_p95_ms": worst["p95_ms"],
            "database": database,
            "method": "Django test client in one process, median of timed requests",
            "variants": {
                m["variant"]: {
                    "median_ms": m["median_ms"],
                    "p95_ms": m["p95_ms"],
                    "queries": m["queries"],
                    "status": m["status"],
                }
                for m in rows
            },
        }
        key = page.replace(" ", "_")
        entries.append(
            stack.Entry(
                f"dashboard.{key}_ms",
                f"dashboard {page} at {args.orders:,} orders (worst median)",
                worst["median_ms"],
                "ms",
                "<=",
                GOAL_MS,
                details,
            )
        )
    if seed_seconds is not None:
        entries.append(
            stack.Entry(
                "dashboard.seed_seconds",
                f"seed_orders --orders {args.orders:,}",
                round(seed_seconds, 1),
                "s",
                details={"merchants": args.merchants, "days": args.days},
            )
        )
    print()
    print(
        f"dashboard at {args.orders:,} orders ({database}; {stack.machine_line(stack.machine())})"
    )
    stack.entries_print(entries)
    if failed:
        for m in failed:
            print(f"  WARNING: {m['page']} ({m['variant']}) answered HTTP {m['status']}")
    if not args.no_results:
        stack.results_merge("dashboard", entries)
    return 0 if not failed and all(e.holds is not False for e in entries) else 1


if __name__ == "__main__":
    sys.exit(main())
