#!/usr/bin/env python3
"""Payment confirmation latency: signed ``checkout.session.completed`` sent -> receipt Send API
call received, p50 and p99.

    .venv/bin/python bench/payment_latency/run.py [--rate 1] [--seconds 40] [--graph auto]

The service runs as deployed (gunicorn 2 x 8 gthread, Celery prefork 4, throwaway durable
PostgreSQL and Redis). Before the clock starts, ``--rate`` x ``--seconds`` Messenger shoppers
each have a ``pending_payment`` order (placed from a cart, stock reserved) and an open Checkout
Session (``checkout_session_start``, through the Stripe stand-in), and the stand-in marks each
session paid, as Stripe does when the shopper pays. Then one signed ``checkout.session.completed``
event per order is POSTed to ``/payments/stripe/webhook/`` at a fixed offered rate (open loop).
The worker confirms the payment (asking Stripe for the card, as in production), marks the order
paid and writes the receipt to the outbox; the outbox worker sends it.

Latency of an order: when its shopper's receipt (``template_type: receipt``) reached the Graph
stand-in minus when the event was sent. Goal: p99 <= 200 ms. The Stripe stand-in is the test
suite's (``bench/standins.py``) unless ``sandbox.stripe`` is served (``--graph sandbox``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import stack
from bench.standins import graph_mode, recorder, sandbox_prepare, sandbox_sends

NAME = "payment_latency"
PAGE_ID = "104412345678901"
P99_GOAL_MS = 200
WEBHOOK_PATH = "/payments/stripe/webhook/"

SEED = """
from django.utils import timezone
from commerce.models import Cart, CartLine, ShippingMethod, Variant
from commerce.services.orders import order_create_from_cart
from messenger.models import MessengerPage
from messenger.services.customers import customer_profile_get, customer_touch, customer_upsert
from payments.services.checkout import checkout_session_start
page = MessengerPage.objects.get(page_id=PAGE_ID)
merchant = page.merchant
variants = list(Variant.objects.filter(product__merchant=merchant, is_active=True).order_by("pk"))
Variant.objects.filter(pk__in=[v.pk for v in variants]).update(stock_on_hand=100000)
now = timezone.now()
result = {}
for n, psid in enumerate(PSIDS):
    customer = customer_upsert(
        page=page, psid=psid, profile=customer_profile_get(page=page, psid=psid, now=now)
    )
    customer_touch(customer=customer, at=now)
    cart = Cart.objects.create(merchant=merchant, customer=customer)
    CartLine.objects.create(cart=cart, variant=variants[n % len(variants)], quantity=1 + n % 2)
    order = order_create_from_cart(cart=cart)
    payment = checkout_session_start(order=order, locale="en")
    result[psid] = [order.pk, payment.checkout_session_id]
"""

CHECK = """
from commerce.models import Order
from payments.models import Payment
orders = Order.objects.filter(pk__in=ORDER_IDS)
succeeded = Payment.objects.filter(order_id__in=ORDER_IDS, status="succeeded")
result = {"paid": orders.filter(status="paid").count(), "payments_succeeded": succeeded.count()}
from messenger.models import OutboundMessage
from payments.models import ProviderEvent
receipts = {
    int(key.split(":")[1]): at.timestamp()
    for key, at in OutboundMessage.objects.filter(dedupe_key__startswith="receipt:")
    .values_list("dedupe_key", "created_at")
}
stages = {}
for event in ProviderEvent.objects.filter(type="checkout.session.completed"):
    order_id = int(event.payload["data"]["object"].get("client_reference_id") or 0)
    if order_id in ORDER_IDS:
        stages[order_id] = [
            event.received_at.timestamp(),
            event.processed_at.timestamp() if event.processed_at else None,
            receipts.get(order_id),
        ]
result["stages"] = stages
"""


def _event(session: dict) -> bytes:
    event = {
        "id": f"evt_bench_{secrets.token_hex(10)}",
        "object": "event",
        "api_version": "2025-08-27.basil",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "checkout.session.completed",
        "data": {"object": session},
    }
    return json.dumps(event, separators=(",", ":")).encode()


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


def _is_receipt(body: dict) -> bool:
    payload = ((body.get("message") or {}).get("attachment") or {}).get("payload") or {}
    return payload.get("template_type") == "receipt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rate", type=float, default=1,
        help="payment events per second (default 1: what 2 shared cores serve without a queue)",
    )  # fmt: skip
    parser.add_argument("--seconds", type=float, default=40, help="how long they are offered")
    parser.add_argument("--graph", choices=["auto", "sandbox", "recorder"], default="auto")
    parser.add_argument("--worker-concurrency", type=int, default=stack.WORKER_CONCURRENCY)
    parser.add_argument("--no-results", action="store_true", help="do not write results.json")
    args, _ = parser.parse_known_args()
    mode = graph_mode(args.graph)
    count = int(args.rate * args.seconds)
    warm = 10
    run_id = time.strftime("%H%M%S")
    psids = [f"72{run_id}{n:08d}" for n in range(warm + count)]

    with contextlib.ExitStack() as context:
        servers = stack.servers_start(context)
        media = context.enter_context(tempfile.TemporaryDirectory(prefix="bench-media."))
        port = stack.free_port()
        extra = {"MEDIA_ROOT": media, "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
        standins = context.enter_context(recorder())
        if mode == "sandbox":
            extra.update(
                SANDBOX_ENABLED="true",
                GRAPH_API_BASE=f"http://127.0.0.1:{port}/sandbox/graph",
                STRIPE_API_BASE=standins.stripe_url,
            )
        else:
            extra.update(GRAPH_API_BASE=standins.graph_url, STRIPE_API_BASE=standins.stripe_url)
        env = stack.service_env(servers, **extra)
        stack.log(f"migrating; {len(psids)} shoppers with an order and an open Checkout Session")
        stack.manage(env, "migrate", "--no-input", "-v", "0")
        stack.manage(env, "seed_demo", "--page-id", PAGE_ID, "--products", "24")
        if mode == "sandbox":
            sandbox_prepare(env, page_id=PAGE_ID, psids=psids)
        # Up before the shoppers are seeded: their profiles come from the sandbox's Graph.
        web_port, web_pid = context.enter_context(stack.gunicorn(env, port=port))
        orders = stack.shell(env, f"PAGE_ID = {PAGE_ID!r}\nPSIDS = {psids!r}\n{SEED}")
        sessions = {psid: standins.stripe_complete(orders[psid][1]) for psid in psids}
        worker_log = Path(context.enter_context(tempfile.TemporaryDirectory())) / "worker.log"
        worker_pid = context.enter_context(
            stack.celery_worker(env, concurrency=args.worker_concurrency, log_path=worker_log)
        )
        since = time.time()

        def receipts() -> dict[str, float]:
            sends = sandbox_sends(env, since=since) if mode == "sandbox" else standins.sends()
            first: dict[str, float] = {}
            for send in sends:
                if _is_receipt(send.body) and (
                    send.psid not in first or send.at < first[send.psid]
                ):
                    first[send.psid] = send.at
            return first

        def requests_for(chosen: list[str]) -> list[tuple[str, bytes, dict[str, str]]]:
            built = []
            for psid in chosen:  # signed now: Stripe's signature is good for 300 s
                body = _event(sessions[psid])
                headers = {
                    "Content-Type": "application/json",
                    "Stripe-Signature": stack.stripe_signature(body),
                }
                built.append((WEBHOOK_PATH, body, headers))
            return built

        stack.log(f"warming up: {warm} payments at 5/s")
        stack.open_loop(web_port, requests_for(psids[:warm]), rate=5, connections=4)
        stack.wait_until(lambda: len(set(receipts()) & set(psids[:warm])) >= warm, seconds=30)

        measured = psids[warm:]
        stack.log(f"offering {count} payment events at {args.rate:g}/s for {args.seconds:g} s")
        load_before = stack.machine()["load_average_1m"]
        cpu_before = stack.cpu_snapshot(stack.service_pids(servers, web_pid, worker_pid))
        result = stack.open_loop(web_port, requests_for(measured), rate=args.rate, connections=16)
        stack.wait_until(
            lambda: len(set(receipts()) & set(measured)) >= count - result.failed,
            seconds=60 + count / 10,
        )
        cpu = stack.cpu_since(cpu_before, stack.service_pids(servers, web_pid, worker_pid))
        first = receipts()
        order_ids = [orders[psid][0] for psid in measured]
        check = stack.shell(env, f"ORDER_IDS = {order_ids!r}\n{CHECK}")
        errors = stack.worker_errors(worker_log.read_text(errors="replace"))

    latencies = []
    stages: dict[str, list[float]] = {"stored": [], "processed": [], "delivery": []}
    for sent, psid in zip(result.sent, measured, strict=True):
        if psid not in first:
            continue
        latencies.append(first[psid] - sent.sent_at)
        row = check["stages"].get(str(orders[psid][0]))
        if row and None not in row:
            received, processed, written = row
            stages["stored"].append(received - sent.sent_at)
            stages["processed"].append(processed - received)
            stages["delivery"].append(first[psid] - written)
    missing = count - len(latencies)
    details = {
        "offered_rate_per_second": round(result.offered_rate, 1),
        "orders": count,
        "answered_200": sum(1 for s in result.sent if s.status == 200),
        "orders_paid": check["paid"],
        "payments_succeeded": check["payments_succeeded"],
        "without_receipt": missing,
        "cpu_ms_per_payment": round(cpu / max(len(latencies), 1) * 1000, 1),
        "p90_ms": _ms(stack.percentile(latencies, 90)),
        "max_ms": _ms(max(latencies)) if latencies else None,
        "stages_p50_ms": {k: _ms(stack.percentile(v, 50)) for k, v in stages.items()},
        "stages_p99_ms": {k: _ms(stack.percentile(v, 99)) for k, v in stages.items()},
        "graph_stand_in": mode,
        "stripe_stand_in": "tests/payments/stripe_stub.py (session retrieve for the card)",
        "server": stack.gunicorn_description(),
        "worker": f"celery prefork, concurrency {args.worker_concurrency}",
        "database": servers.description,
        "load_average_before": load_before,
        "worker_errors": len(errors),
    }
    entries = [
        stack.Entry(
            f"{NAME}.p50", "payment -> receipt p50",
            _ms(stack.percentile(latencies, 50)), "ms", details=details,
        ),
        stack.Entry(
            f"{NAME}.p99", "payment -> receipt p99",
            _ms(stack.percentile(latencies, 99)), "ms", "<=", P99_GOAL_MS, details,
        ),
    ]  # fmt: skip
    print()
    print(f"payment confirmation at {result.offered_rate:.1f} events/s ({count} orders, {mode})")
    stack.entries_print(entries)
    print(
        f"  p90 {details['p90_ms']} ms, max {details['max_ms']} ms; {missing} without receipt; "
        f"{check['paid']} orders paid, {check['payments_succeeded']} payments succeeded"
    )
    print(f"  CPU per payment (web, worker, PostgreSQL, Redis): {details['cpu_ms_per_payment']} ms")
    print(f"  stage p50 (ms): {details['stages_p50_ms']}")
    print(f"  stage p99 (ms): {details['stages_p99_ms']}")
    for line in errors[:10]:
        print(f"  worker: {line}")
    if not args.no_results:
        stack.results_merge(NAME, entries)
    return 0 if missing == 0 and check["paid"] == count else 1


if __name__ == "__main__":
    sys.exit(main())
