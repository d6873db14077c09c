#!/usr/bin/env python3
"""Conversation turn latency: signed webhook sent -> Send API call received, p50 and p99.

    .venv/bin/python bench/turn_latency/run.py [--rate 3] [--seconds 30] [--graph auto]

The whole service runs as deployed: gunicorn (2 x 8 gthread), a Celery worker (prefork, 4),
PostgreSQL and Redis (throwaway, durable). The demo shop is seeded (``seed_demo``) and
``--rate`` x ``--seconds`` shoppers, already known to the shop (customer rows and their
profiles fetched, as for anyone who wrote before), each send one signed event at a fixed
offered rate (open loop: the next request leaves on schedule whatever the answers take). The
events take turns between the three commonest turns: "hi" typed (the greeting with the featured
carousel), the *Shop* button (categories as quick replies) and a category quick reply (a product
carousel).

Latency of an event: the time its shopper's first Send API call reached the Graph stand-in minus
the time the benchmark sent the webhook (one clock: everything runs on this machine). The Graph
stand-in is ``sandbox.meta`` served by the same gunicorn (``GRAPH_API_BASE`` =
``/sandbox/graph`` with ``SANDBOX_ENABLED=true``) when it exists, else the recorder of
``bench/standins.py`` (``--graph``). Goals: p50 <= 25 ms, p99 <= 100 ms. A breakdown from the
database (stored -> picked up by the worker -> reply written -> sent) says where the time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import stack
from bench.standins import graph_mode, recorder, sandbox_prepare, sandbox_sends

NAME = "turn_latency"
PAGE_ID = "104412345678901"  # the demo page (seed_demo, sandbox_seed)
P50_GOAL_MS, P99_GOAL_MS = 25, 100

SEED = """
from django.core.cache import cache
from commerce.models import Category, Customer, Merchant, ShippingMethod
from messenger.models import MessengerPage
from messenger.services.customers import customer_profile_get, customer_upsert
from django.utils import timezone
page = MessengerPage.objects.get(page_id=PAGE_ID)
merchant = page.merchant
ShippingMethod.objects.get_or_create(
    merchant=merchant, name="Courier", defaults={"name_ar": "مندوب", "price_minor": 500,
    "currency": merchant.default_currency}
)
now = timezone.now()
for psid in PSIDS:  # known shoppers: row and profile there, as for anyone who wrote before
    customer_upsert(
        page=page, psid=psid, profile=customer_profile_get(page=page, psid=psid, now=now)
    )
result = {
    "categories": list(Category.objects.filter(merchant=merchant, is_active=True)
                       .order_by("position").values_list("pk", flat=True)),
}
"""

BREAKDOWN = """
from django.db.models import Min
from messenger.models import InboundEvent, OutboundMessage
events = {
    e["sender_psid"]: e
    for e in InboundEvent.objects.filter(
        sender_psid__in=PSIDS, dedupe_key__contains=":m_turn_"
    ).values(
        "sender_psid", "received_at", "processed_at", "status")
}
replies = {
    r["customer__psid"]: r
    for r in OutboundMessage.objects.filter(customer__psid__in=PSIDS)
    .values("customer__psid").annotate(created=Min("created_at"), sent=Min("sent_at"))
}
from django.db.models import Count
outbox = OutboundMessage.objects.filter(customer__psid__in=PSIDS)
result = {"_outbox": {
    "rows": outbox.count(),
    "sent_after_a_retry": outbox.filter(attempts__gt=1, status="sent").count(),
    "by_status_and_error": [
        f"{r['status']} {r['error_code'] or ''}: {r['n']}"
        for r in outbox.values("status", "error_code").annotate(n=Count("id"))
    ],
}}
for psid, e in events.items():
    r = replies.get(psid, {})
    result[psid] = [
        e["received_at"].timestamp(),
        e["processed_at"].timestamp() if e["processed_at"] else None,
        r["created"].timestamp() if r.get("created") else None,
        r["sent"].timestamp() if r.get("sent") else None,
        e["status"],
    ]
"""


def _item(n: int, psid: str, category_ids: list[int]) -> dict:
    timestamp = int(time.time() * 1000)
    base = {"sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": timestamp}
    kind = n % 3
    if kind == 0:
        return {**base, "message": {"mid": f"m_turn_{n:07d}", "text": "hi"}}
    if kind == 1:
        return {**base, "postback": {"mid": f"m_turn_{n:07d}", "title": "Shop", "payload": "SHOP"}}
    category = category_ids[n % len(category_ids)]
    return {
        **base,
        "message": {
            "mid": f"m_turn_{n:07d}",
            "text": "Hoodies",
            "quick_reply": {"payload": f"CATEGORY:{category}"},
        },
    }


def _request(n: int, psid: str, category_ids: list[int]) -> tuple[str, bytes, dict[str, str]]:
    body = stack.messenger_body(PAGE_ID, _item(n, psid, category_ids))
    headers = {
        "Content-Type": "application/json",
        "X-Hub-Signature-256": stack.messenger_signature(body),
    }
    return "/messenger/webhook/", body, headers


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rate", type=float, default=3,
        help="events per second offered (default 3: what 2 shared cores serve without a "
        "queue building up; the CPU per turn printed says how many they can serve at most)",
    )  # fmt: skip
    parser.add_argument("--seconds", type=float, default=30, help="how long they are offered")
    parser.add_argument("--graph", choices=["auto", "sandbox", "recorder"], default="auto")
    parser.add_argument("--worker-concurrency", type=int, default=stack.WORKER_CONCURRENCY)
    parser.add_argument("--worker-log", type=Path, help="keep the Celery worker's log here")
    parser.add_argument("--no-results", action="store_true", help="do not write results.json")
    args, _ = parser.parse_known_args()
    mode = graph_mode(args.graph)
    count = int(args.rate * args.seconds)
    warm = 30
    run_id = time.strftime("%H%M%S")
    psids = [f"71{run_id}{n:08d}" for n in range(warm + count)]

    with contextlib.ExitStack() as context:
        servers = stack.servers_start(context)
        media = context.enter_context(tempfile.TemporaryDirectory(prefix="bench-media."))
        port = stack.free_port()
        extra = {"MEDIA_ROOT": media, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
        if mode == "sandbox":
            extra.update(
                SANDBOX_ENABLED="true",
                GRAPH_API_BASE=f"http://127.0.0.1:{port}/sandbox/graph",
                STRIPE_API_BASE=f"http://127.0.0.1:{port}/sandbox/stripe",
            )
        else:
            standins = context.enter_context(recorder())
            extra.update(GRAPH_API_BASE=standins.graph_url, STRIPE_API_BASE=standins.stripe_url)
        env = stack.service_env(servers, **extra)
        stack.log(f"migrating and seeding the demo shop and {len(psids)} known shoppers")
        stack.manage(env, "migrate", "--no-input", "-v", "0")
        stack.manage(env, "seed_demo", "--page-id", PAGE_ID, "--products", "24")
        if mode == "sandbox":
            sandbox_prepare(env, page_id=PAGE_ID, psids=psids)
        # Up before the shoppers are seeded: their profiles come from the sandbox's Graph.
        web_port, web_pid = context.enter_context(stack.gunicorn(env, port=port))
        seeded = stack.shell(env, f"PAGE_ID = {PAGE_ID!r}\nPSIDS = {psids!r}\n{SEED}")
        category_ids = seeded["categories"] or [0]
        requests = [_request(n, psid, category_ids) for n, psid in enumerate(psids)]
        worker_log = args.worker_log or (
            Path(context.enter_context(tempfile.TemporaryDirectory())) / "worker.log"
        )
        worker_pid = context.enter_context(
            stack.celery_worker(env, concurrency=args.worker_concurrency, log_path=worker_log)
        )
        since = time.time()

        def sends():
            if mode == "sandbox":
                return sandbox_sends(env, since=since)
            return standins.sends()

        def first_sends() -> dict[str, float]:
            first: dict[str, float] = {}
            for send in sends():
                if send.psid not in first or send.at < first[send.psid]:
                    first[send.psid] = send.at
            return first

        stack.log(f"warming up: {warm} events at 10/s")
        stack.open_loop(web_port, requests[:warm], rate=10, connections=4)
        stack.wait_until(lambda: len(set(first_sends()) & set(psids[:warm])) >= warm, seconds=30)

        stack.log(
            f"offering {count} events at {args.rate:g}/s for {args.seconds:g} s "
            f"(graph stand-in: {mode})"
        )
        load_before = stack.machine()["load_average_1m"]
        cpu_before = stack.cpu_snapshot(stack.service_pids(servers, web_pid, worker_pid))
        result = stack.open_loop(web_port, requests[warm:], rate=args.rate, connections=16)
        measured = psids[warm:]
        stack.wait_until(
            lambda: len(set(first_sends()) & set(measured)) >= count - result.failed,
            seconds=60 + count / 10,
        )
        cpu = stack.cpu_since(cpu_before, stack.service_pids(servers, web_pid, worker_pid))
        first = first_sends()
        breakdown = stack.shell(env, f"PSIDS = {measured!r}\n{BREAKDOWN}")
        errors = stack.worker_errors(worker_log.read_text(errors="replace"))

    latencies, answered = [], 0
    stages: dict[str, list[float]] = {"ingest": [], "queue": [], "turn": [], "delivery": []}
    outbox = breakdown.pop("_outbox")
    for sent, psid in zip(result.sent, measured, strict=True):
        if sent.status == 200:
            answered += 1
        if psid not in first:
            continue
        latencies.append(first[psid] - sent.sent_at)
        row = breakdown.get(psid)
        if row and all(v is not None for v in row[:4]):
            received, picked, written, _sent_at = row[:4]
            stages["ingest"].append(received - sent.sent_at)
            stages["queue"].append(picked - received)
            stages["turn"].append(written - picked)
            stages["delivery"].append(first[psid] - written)
    missing = count - len(latencies)
    p50 = stack.percentile(latencies, 50)
    p99 = stack.percentile(latencies, 99)
    details = {
        "offered_rate_per_second": round(result.offered_rate, 1),
        "events": count,
        "answered_200": answered,
        "late_sends": result.late,
        "without_reply_after_60s": missing,
        "p90_ms": _ms(stack.percentile(latencies, 90)),
        "max_ms": _ms(max(latencies)) if latencies else None,
        "stages_p50_ms": {k: _ms(stack.percentile(v, 50)) for k, v in stages.items()},
        "stages_p99_ms": {k: _ms(stack.percentile(v, 99)) for k, v in stages.items()},
        # Per answered turn (the ingest of unanswered events is in it too, a few ms each).
        "cpu_ms_per_turn": round(cpu / max(len(latencies), 1) * 1000, 1),
        "turns": "1/3 'hi' typed, 1/3 Shop button, 1/3 category quick reply (known shoppers)",
        "outbox": outbox,
        "graph_stand_in": mode,
        "server": stack.gunicorn_description(),
        "worker": f"celery prefork, concurrency {args.worker_concurrency}",
        "database": servers.description,
        "load_average_before": load_before,
        "worker_errors": len(errors),
    }
    entries = [
        stack.Entry(f"{NAME}.p50", "turn latency p50", _ms(p50), "ms", "<=", P50_GOAL_MS, details),
        stack.Entry(f"{NAME}.p99", "turn latency p99", _ms(p99), "ms", "<=", P99_GOAL_MS, details),
    ]
    print()
    print(f"turn latency at {result.offered_rate:.1f} events/s offered ({count} events, {mode})")
    stack.entries_print(entries)
    print(f"  p90 {details['p90_ms']} ms, max {details['max_ms']} ms; {missing} without reply")
    print(
        f"  CPU per turn (web, worker, PostgreSQL, Redis): {details['cpu_ms_per_turn']} ms, "
        f"so {os.cpu_count()} cores serve at most "
        f"~{os.cpu_count() / max(details['cpu_ms_per_turn'] / 1000, 1e-6):.0f} turns/s"
    )
    print(f"  outbox: {outbox}")
    print(f"  stage p50 (ms): {details['stages_p50_ms']}")
    print(f"  stage p99 (ms): {details['stages_p99_ms']}")
    if result.late:
        print(f"  note: {result.late} requests left over 10 ms late (the client fell behind)")
    for line in errors[:10]:
        print(f"  worker: {line}")
    if not args.no_results:
        stack.results_merge(NAME, entries)
    return 0 if missing == 0 and answered == count else 1


if __name__ == "__main__":
    sys.exit(main())
