#!/usr/bin/env python3
"""Where a payment confirmation's time goes: a diagnosis aid, not part of ``make bench``.

    .venv/bin/python bench/payment_latency/diagnose.py [--orders 30] [--top 40]

Throwaway PostgreSQL and Redis, the Graph recorder and the Stripe stand-in
(``bench/standins.py``), orders prepared as in ``run.py``; then, in one process and for each
order: the signed ``checkout.session.completed`` POSTed through Django's test client (the
webhook view: signature, store), its processing (``provider_event_process``: order paid,
receipt written to the outbox) and the receipt's delivery (``outbox_deliver_customer``). Prints
per phase the queries and the CPU and wall milliseconds (medians), then ``cProfile``'s top.
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


def inner(top: int) -> None:
    import cProfile
    import pstats
    import statistics

    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench import stack
    from bench.payment_latency.run import _event
    from commerce.models import Customer
    from messenger.services.outbox import outbox_deliver_customer
    from payments.models import ProviderEvent
    from payments.services.events import provider_event_process

    sessions = json.loads(os.environ["BENCH_SESSIONS"])  # psid -> completed session
    customer_ids = dict(Customer.objects.values_list("psid", "pk"))
    client = Client()
    phases = {"webhook": [], "process": [], "deliver": []}
    profiler = cProfile.Profile()
    for n, (psid, session) in enumerate(sessions.items()):
        body = _event(session)
        signature = stack.stripe_signature(body)
        event_id = json.loads(body)["id"]

        def webhook(body=body, signature=signature):
            response = client.post(
                "/payments/stripe/webhook/", body, content_type="application/json",
                headers={"Stripe-Signature": signature},
            )  # fmt: skip
            assert response.status_code == 200, response.content

        def process(event_id=event_id):
            provider_event_process(event_id=ProviderEvent.objects.get(event_id=event_id).pk)

        steps = {
            "webhook": webhook,
            "process": process,
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
            if n >= 3:
                phases[phase].append((len(queries.captured_queries), cpu * 1000, wall * 1000))
    print(f"{'phase':<10} {'queries':>8} {'CPU ms':>8} {'wall ms':>8}   (median per payment)")
    for phase, rows in phases.items():
        medians = [statistics.median(column) for column in zip(*rows, strict=True)]
        print(f"{phase:<10} {medians[0]:>8.0f} {medians[1]:>8.1f} {medians[2]:>8.1f}")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=30)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        inner(args.top)
        return 0

    from bench import stack
    from bench.payment_latency.run import SEED
    from bench.standins import recorder

    psids = [f"76{n:014d}" for n in range(args.orders + 3)]
    with contextlib.ExitStack() as context:
        servers = stack.servers_start(context)
        standins = context.enter_context(recorder())
        media = context.enter_context(tempfile.TemporaryDirectory(prefix="bench-media."))
        env = stack.service_env(
            servers, MEDIA_ROOT=media, GRAPH_API_BASE=standins.graph_url,
            STRIPE_API_BASE=standins.stripe_url, ALLOWED_HOSTS="127.0.0.1,localhost,testserver",
        )  # fmt: skip
        stack.manage(env, "migrate", "--no-input", "-v", "0")
        stack.manage(env, "seed_demo", "--page-id", PAGE_ID, "--products", "24")
        orders = stack.shell(env, f"PAGE_ID = {PAGE_ID!r}\nPSIDS = {psids!r}\n{SEED}")
        sessions = {psid: standins.stripe_complete(orders[psid][1]) for psid in psids}
        env["BENCH_SESSIONS"] = json.dumps(sessions)
        subprocess.run(
            [str(stack.VENV_BIN / "python"), __file__, "--inner", "--top", str(args.top)],
            cwd=stack.REPO, env=env, check=True,
        )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
