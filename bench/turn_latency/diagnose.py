#!/usr/bin/env python3
"""Where a conversation turn's time goes: a diagnosis aid, not part of ``make bench``.

    .venv/bin/python bench/turn_latency/diagnose.py [--events 60] [--top 40]

Starts a throwaway PostgreSQL and Redis and the Graph recorder (``bench/standins.py``), seeds
the demo shop and known shoppers like ``run.py``, then runs the turn path in one process, phase
by phase, for each event: the webhook's store (``inbound_events_store``), the worker's
processing (``inbound_events_drain``: customer, conversation, outbox rows) and the delivery
(``outbox_deliver_customer``: the Send API calls). Prints, per phase, the queries and the CPU
and wall milliseconds per event, then the functions with the most cumulative time
(``cProfile``). CPU time is what a busy machine changes least.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

PAGE_ID = "104412345678901"


def inner(events: int, top: int) -> None:
    import cProfile
    import pstats
    import statistics

    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from bench import stack
    from bench.turn_latency.run import _item
    from commerce.models import Category, Customer
    from messenger.services.inbox import inbound_events_drain, inbound_events_store
    from messenger.services.outbox import outbox_deliver_customer

    psids = json.loads(os.environ["BENCH_PSIDS"])
    categories = list(Category.objects.order_by("position").values_list("pk", flat=True))
    customer_ids = dict(Customer.objects.values_list("psid", "pk"))
    phases = {"store": [], "process": [], "deliver": []}
    profiler = cProfile.Profile()
    for n, psid in enumerate(psids[: events + 3]):
        body = stack.messenger_body(PAGE_ID, _item(n, psid, categories))
        steps = {
            "store": lambda body=body: inbound_events_store(raw_body=body),
            "process": inbound_events_drain,
            "deliver": lambda psid=psid: outbox_deliver_customer(customer_id=customer_ids[psid]),
        }
        for phase, step in steps.items():
            with CaptureQueriesContext(connection) as queries:
                cpu, wall = time.process_time(), time.perf_counter()
                if n >= 3:
                    profiler.enable()
                step()
                profiler.disable()
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if n >= 3:  # the first ones warm caches
                phases[phase].append((len(queries.captured_queries), cpu * 1000, wall * 1000))
    print(f"{'phase':<10} {'queries':>8} {'CPU ms':>8} {'wall ms':>8}   (median per event)")
    for phase, rows in phases.items():
        medians = [statistics.median(column) for column in zip(*rows, strict=True)]
        print(f"{phase:<10} {medians[0]:>8.0f} {medians[1]:>8.1f} {medians[2]:>8.1f}")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=60)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args.events, args.top)
        return 0

    from bench import stack
    from bench.standins import recorder
    from bench.turn_latency.run import SEED

    psids = [f"75{n:014d}" for n in range(args.events + 3)]
    with contextlib.ExitStack() as context:
        servers = stack.servers_start(context)
        standins = context.enter_context(recorder())
        media = context.enter_context(tempfile.TemporaryDirectory(prefix="bench-media."))
        env = stack.service_env(
            servers, MEDIA_ROOT=media, GRAPH_API_BASE=standins.graph_url,
            STRIPE_API_BASE=standins.stripe_url,
        )  # fmt: skip
        stack.manage(env, "migrate", "--no-input", "-v", "0")
        stack.manage(env, "seed_demo", "--page-id", PAGE_ID, "--products", "24")
        stack.shell(env, f"PAGE_ID = {PAGE_ID!r}\nPSIDS = {psids!r}\n{SEED}")
        env["BENCH_PSIDS"] = json.dumps(psids)
        subprocess.run(
            [str(stack.VENV_BIN / "python"), __file__, "--inner", "--events", str(args.events),
             "--top", str(args.top)],
            cwd=stack.REPO, env=env, check=True,
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
