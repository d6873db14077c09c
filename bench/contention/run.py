#!/usr/bin/env python3
"""Contention: 200 shoppers at once for the last 10 units, through the path a shopper takes.

    .venv/bin/python bench/contention/run.py [--buyers 200] [--units 10] [--graph auto]

The path is the real one for a Messenger shopper, all over HTTP against the deployed shape
(gunicorn 2 x 8 gthread, Celery prefork 4, throwaway durable PostgreSQL and Redis):

1. ``--buyers`` returning shoppers (email, phone and a default address saved, so *Buy* goes
   straight to the order summary: the tap that places the order and reserves the stock) each
   tap *Buy* on the same one-variant product with ``--units`` left: one signed ``BUY`` postback
   each, all sent at once. Each gets either the summary with a Pay button or "sold out".
2. Every shopper holding a Pay button opens it (``GET /checkout/<token>/``: the page with its
   CSRF token) and taps Pay (``POST``: the service opens a Checkout Session with the Stripe
   stand-in and redirects to it); the stand-in marks the session paid, and Stripe's signed
   ``checkout.session.completed`` is POSTed to the webhook twice (Stripe delivers at least once).
3. The receipts arrive at the Graph stand-in.

Figures: oversold units (placed or paid beyond the stock; goal 0), double charges (an order with
more than one succeeded payment, or a succeeded payment whose order is not paid; goal 0),
shoppers left without an answer (goal 0), and the throughput: completed checkouts per second
from the first *Buy* to the last receipt, with the time it took to sell out.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import re
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import stack
from bench.standins import graph_mode, recorder, sandbox_prepare, sandbox_sends

NAME = "contention"
PAGE_ID = "104412345678901"

SEED = """
from django.db.models import Count, Q
from django.utils import timezone
from commerce.models import Address, Customer, Product, Variant
from messenger.models import MessengerPage
from messenger.services.customers import customer_profile_get, customer_touch, customer_upsert
page = MessengerPage.objects.get(page_id=PAGE_ID)
merchant = page.merchant
product = (
    Product.objects.filter(merchant=merchant, is_active=True)
    .annotate(n=Count("variants", filter=Q(variants__is_active=True))).filter(n=1)
    .order_by("position").first()
)
variant = product.variants.get(is_active=True)
Variant.objects.filter(pk=variant.pk).update(stock_on_hand=UNITS, stock_reserved=0)
now = timezone.now()
for n, psid in enumerate(PSIDS):
    customer = customer_upsert(
        page=page, psid=psid, profile=customer_profile_get(page=page, psid=psid, now=now)
    )
    customer_touch(customer=customer, at=now)
    Customer.objects.filter(pk=customer.pk).update(
        email=f"buyer{n}@example.com", phone=f"+9655{n:07d}"
    )
    Address.objects.create(
        customer=customer, name=f"Buyer {n}", line1=f"{n} Gulf Road", city="Kuwait City",
        country="KW", is_default=True,
    )
result = {"variant": variant.pk, "product": product.title}
"""

CHECK = """
from django.db.models import Count, Q, Sum
from commerce.models import Order, OrderLine, Variant
from payments.models import Payment
variant = Variant.objects.get(pk=VARIANT)
lines = OrderLine.objects.filter(variant_id=VARIANT)
held = lines.filter(order__status__in=["pending_payment", "paid"])
paid_lines = lines.filter(order__status="paid")
succeeded = Payment.objects.filter(status="succeeded", order__lines__variant_id=VARIANT).distinct()
per_order = succeeded.values("order_id").annotate(n=Count("id"))
result = {
    "stock_on_hand": variant.stock_on_hand,
    "stock_reserved": variant.stock_reserved,
    "units_placed": held.aggregate(s=Sum("quantity"))["s"] or 0,
    "units_paid": paid_lines.aggregate(s=Sum("quantity"))["s"] or 0,
    "orders": dict(Order.objects.filter(lines__variant_id=VARIANT)
                   .values_list("status").annotate(n=Count("id", distinct=True))),
    "payments_succeeded": succeeded.count(),
    "orders_charged_twice": sum(1 for row in per_order if row["n"] > 1),
    "charged_not_paid": succeeded.exclude(order__status="paid").count(),
}
"""


def _pay_url(body: dict) -> str | None:
    payload = ((body.get("message") or {}).get("attachment") or {}).get("payload") or {}
    for button in payload.get("buttons") or []:
        if button.get("type") == "web_url" and "/checkout/" in button.get("url", ""):
            return button["url"]
    return None


def _is_receipt(body: dict) -> bool:
    payload = ((body.get("message") or {}).get("attachment") or {}).get("payload") or {}
    return payload.get("template_type") == "receipt"


def _stripe_event(session: dict) -> bytes:
    event = {
        "id": f"evt_bench_{secrets.token_hex(10)}", "object": "event",
        "api_version": "2025-08-27.basil", "created": int(time.time()), "livemode": False,
        "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None},
        "type": "checkout.session.completed", "data": {"object": session},
    }  # fmt: skip
    return json.dumps(event, separators=(",", ":")).encode()


def _shopper_pays(port: int, pay_url: str, complete, outcome: dict) -> None:
    """Open the Pay button's page, tap Pay, pay at the stand-in; Stripe tells the service twice."""
    path = urlsplit(pay_url).path
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request("GET", path)
    page = connection.getresponse()
    html = page.read().decode(errors="replace")
    cookie = page.getheader("Set-Cookie", "")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    csrf_cookie = re.search(r"csrftoken=([^;]+)", cookie)
    if page.status != 200 or not token or not csrf_cookie:
        outcome["error"] = f"checkout page answered {page.status}"
        return
    form = urlencode({"csrfmiddlewaretoken": token.group(1)}).encode()
    connection.request(
        "POST", path, form,
        {"Content-Type": "application/x-www-form-urlencoded",
         "Cookie": f"csrftoken={csrf_cookie.group(1)}", "Referer": pay_url, "Origin":
         f"http://127.0.0.1:{port}"},
    )  # fmt: skip
    answer = connection.getresponse()
    answer.read()
    location = answer.getheader("Location", "")
    session_id = location.rstrip("/").rsplit("/", 1)[-1]
    if answer.status != 303 or not session_id.startswith("cs_"):
        outcome["error"] = f"Pay answered {answer.status} {location!r}"
        return
    session = complete(session_id)
    body = _stripe_event(session)
    for _delivery in range(2):
        headers = {"Content-Type": "application/json",
                   "Stripe-Signature": stack.stripe_signature(body)}  # fmt: skip
        status, _ = stack.post(port, "/payments/stripe/webhook/", body, headers)
        outcome.setdefault("webhook_status", []).append(status)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buyers", type=int, default=200)
    parser.add_argument("--units", type=int, default=10)
    parser.add_argument("--graph", choices=["auto", "sandbox", "recorder"], default="auto")
    parser.add_argument("--worker-concurrency", type=int, default=stack.WORKER_CONCURRENCY)
    parser.add_argument("--no-results", action="store_true", help="do not write results.json")
    args, _ = parser.parse_known_args()
    mode = graph_mode(args.graph)
    run_id = time.strftime("%H%M%S")
    psids = [f"74{run_id}{n:08d}" for n in range(args.buyers)]

    with contextlib.ExitStack() as context:
        servers = stack.servers_start(context)
        media = context.enter_context(tempfile.TemporaryDirectory(prefix="bench-media."))
        port = stack.free_port()
        standins = context.enter_context(recorder())
        extra = {
            "MEDIA_ROOT": media,
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "STRIPE_API_BASE": standins.stripe_url,
            "GRAPH_API_BASE": standins.graph_url,
        }
        if mode == "sandbox":
            extra.update(
                SANDBOX_ENABLED="true", GRAPH_API_BASE=f"http://127.0.0.1:{port}/sandbox/graph"
            )
        env = stack.service_env(servers, **extra)
        stack.log(f"migrating; {args.buyers} returning shoppers, {args.units} units left")
        stack.manage(env, "migrate", "--no-input", "-v", "0")
        stack.manage(env, "seed_demo", "--page-id", PAGE_ID, "--products", "24")
        if mode == "sandbox":
            sandbox_prepare(env, page_id=PAGE_ID, psids=psids)
        # Up before the shoppers are seeded: their profiles come from the sandbox's Graph.
        web_port, _ = context.enter_context(stack.gunicorn(env, port=port))
        seeded = stack.shell(
            env, f"PAGE_ID = {PAGE_ID!r}\nPSIDS = {psids!r}\nUNITS = {args.units}\n{SEED}"
        )
        worker_log = Path(context.enter_context(tempfile.TemporaryDirectory())) / "worker.log"
        context.enter_context(
            stack.celery_worker(env, concurrency=args.worker_concurrency, log_path=worker_log)
        )
        since = time.time()

        def sends():
            return sandbox_sends(env, since=since) if mode == "sandbox" else standins.sends()

        requests = []
        for n, psid in enumerate(psids):
            item = {
                "sender": {"id": psid}, "recipient": {"id": PAGE_ID},
                "timestamp": int(time.time() * 1000),
                "postback": {"mid": f"m_buy_{run_id}_{n}", "title": "Buy now",
                             "payload": f"BUY:variant={seeded['variant']}"},
            }  # fmt: skip
            body = stack.messenger_body(PAGE_ID, item)
            headers = {"Content-Type": "application/json",
                       "X-Hub-Signature-256": stack.messenger_signature(body)}  # fmt: skip
            requests.append(("/messenger/webhook/", body, headers))

        stack.log(f"{args.buyers} shoppers tap Buy on {seeded['product']!r} at once")
        started = time.time()
        burst = stack.open_loop(web_port, requests, rate=100_000, connections=50)
        answered: dict[str, list[dict]] = {}

        def everyone_answered() -> bool:
            answered.clear()
            for send in sends():
                if "message" in send.body:
                    answered.setdefault(send.psid, []).append(send.body)
            return len(answered) >= args.buyers

        stack.wait_until(everyone_answered, seconds=180)
        pay_urls = {}
        for psid, bodies in answered.items():
            url = next((u for u in map(_pay_url, bodies) if u), None)
            if url:
                pay_urls[psid] = url
        sold_out_at = time.time()
        stack.log(f"{len(pay_urls)} shoppers got a Pay button; they pay (Stripe tells us twice)")
        outcomes = {psid: {} for psid in pay_urls}
        threads = [
            threading.Thread(
                target=_shopper_pays,
                args=(web_port, url, standins.stripe_complete, outcomes[psid]),
            )
            for psid, url in pay_urls.items()
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        receipts: dict[str, float] = {}

        def receipts_in() -> bool:
            receipts.clear()
            for send in sends():
                if _is_receipt(send.body) and send.psid in pay_urls:
                    receipts.setdefault(send.psid, send.at)
            return len(receipts) >= len(pay_urls)

        stack.wait_until(receipts_in, seconds=120)
        check = stack.shell(env, f"VARIANT = {seeded['variant']}\n{CHECK}")
        errors = stack.worker_errors(worker_log.read_text(errors="replace"))

    last = max(receipts.values()) if receipts else time.time()
    seconds = last - started
    completed = check["orders"].get("paid", 0)
    oversold = max(check["units_placed"] - args.units, 0) + max(-check["stock_on_hand"], 0)
    double = check["orders_charged_twice"] + check["charged_not_paid"]
    unanswered = args.buyers - len(answered)
    failures = {psid: o["error"] for psid, o in outcomes.items() if "error" in o}
    details = {
        "buyers": args.buyers,
        "units": args.units,
        "pay_buttons": len(pay_urls),
        "receipts": len(receipts),
        "buy_answered_200": sum(1 for s in burst.sent if s.status == 200),
        "seconds_to_answer_every_buyer": round(sold_out_at - started, 2),
        "seconds_first_buy_to_last_receipt": round(seconds, 2),
        "seconds_first_pay_to_last_receipt": round(last - sold_out_at, 2),
        "checkout_failures": list(failures.values())[:5],
        "database_after": check,
        "path": "signed BUY postbacks -> summary + Pay button; checkout page GET + POST (CSRF) "
        "-> Stripe session; stand-in pays; signed checkout.session.completed x2 -> receipt",
        "graph_stand_in": mode,
        "server": stack.gunicorn_description(),
        "worker": f"celery prefork, concurrency {args.worker_concurrency}",
        "database": servers.description,
        "worker_errors": len(errors),
    }
    entries = [
        stack.Entry(f"{NAME}.oversold", f"units oversold ({args.buyers} buyers, {args.units} left)",
                    oversold, "units", "==", 0, details),
        stack.Entry(f"{NAME}.double_charges", "double charges", double, "payments", "==", 0,
                    details),
        stack.Entry(f"{NAME}.unanswered", "buyers left without an answer", unanswered,
                    "buyers", "==", 0, details),
        stack.Entry(f"{NAME}.sold", "units sold (paid)", check["units_paid"], "units", "==",
                    args.units, details),
        stack.Entry(f"{NAME}.throughput", "completed checkouts per second",
                    round(completed / seconds, 2) if seconds > 0 else None, "/s",
                    details=details),
    ]  # fmt: skip
    print()
    print(f"contention: {args.buyers} buyers, {args.units} units ({mode})")
    stack.entries_print(entries)
    print(
        f"  every buyer answered after {details['seconds_to_answer_every_buyer']} s; "
        f"{completed} checkouts completed {seconds:.1f} s after the first Buy "
        f"({last - sold_out_at:.1f} s after the first Pay)"
    )
    print(f"  database: {json.dumps(check)}")
    for psid, error in list(failures.items())[:5]:
        print(f"  checkout of {psid} failed: {error}")
    for line in errors[:10]:
        print(f"  worker: {line}")
    if not args.no_results:
        stack.results_merge(NAME, entries)
    return 0 if all(e.holds is not False for e in entries) else 1


if __name__ == "__main__":
    sys.exit(main())
