"""The in-process half of ``bench/catalog_scale``: run with the service's environment (Django
settings, the throwaway database) by ``run.py``; prints one JSON object.

    measure.py --grow-to 100000

Measures the browse turns at the catalog's current size, grows it to ``--grow-to`` products
(bulk inserts: products spread over the demo's categories, one or two variants each, one image
row each, then ``ANALYZE`` as autovacuum would), and measures again.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from commerce.models import Category, Customer, Product, ProductImage, Variant  # noqa: E402
from messenger.conversation.engine import conversation_handle  # noqa: E402
from messenger.events import event_parse  # noqa: E402
from messenger.models import MessengerPage  # noqa: E402

PAGE_ID = "104412345678901"
PSID = "7300000000000001"
REPEATS = 15
BATCH = 2000


def _turns(category_id: int) -> dict[str, dict]:
    """The browse turns, as Messenger sends them: what the shopper tapped or typed."""
    base = {"sender": {"id": PSID}, "recipient": {"id": PAGE_ID}, "timestamp": 1764067200000}
    return {
        "category carousel": {
            **base,
            "message": {
                "mid": "m_scale_1",
                "text": "Hoodies",
                "quick_reply": {"payload": f"CATEGORY:{category_id}"},
            },
        },
        "greeting + featured carousel": {**base, "message": {"mid": "m_scale_2", "text": "hi"}},
        "search 'hoodie'": {**base, "message": {"mid": "m_scale_3", "text": "hoodie"}},
        "shop categories": {
            **base,
            "postback": {"mid": "m_scale_4", "title": "Shop", "payload": "SHOP"},
        },
    }


def _elements(rows) -> int:
    count = 0
    for row in rows:
        payload = (row.message.get("attachment") or {}).get("payload") or {}
        count += len(payload.get("elements") or [])
    return count


def turn_measure(page: MessengerPage, customer: Customer, item: dict) -> dict:
    """Queries and wall time of one turn, repeated; each repetition rolled back."""
    event = event_parse(item, page_id=page.page_id)
    counts, times, elements, slowest = [], [], 0, []
    for repeat in range(REPEATS + 2):  # the first two warm caches (translations, flows)
        with transaction.atomic():
            customer.refresh_from_db()
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                rows = conversation_handle(
                    customer=customer, page=page, event=event, inbound_event_id=10**12 + repeat
                )
                elapsed = time.perf_counter() - started
            elements = _elements(rows)
            transaction.set_rollback(True)
        if repeat >= 2:
            counts.append(len(queries.captured_queries))
            times.append(elapsed)
            slowest.append(max(queries.captured_queries, key=lambda q: float(q["time"])))
    return {
        "queries": max(counts),
        "queries_min": min(counts),
        "median_ms": round(statistics.median(times) * 1000, 2),
        "p90_ms": round(sorted(times)[int(len(times) * 0.9) - 1] * 1000, 2),
        "carousel_elements": elements,
        # The query that took longest in the median repetition: where a bigger catalog costs.
        "slowest_query_ms": round(
            float(sorted(slowest, key=lambda q: float(q["time"]))[len(slowest) // 2]["time"])
            * 1000,
            1,
        ),
        "slowest_query": max(slowest, key=lambda q: float(q["time"]))["sql"][:400],
    }


def measure_all(page: MessengerPage, customer: Customer, category_id: int) -> dict:
    return {name: turn_measure(page, customer, item) for name, item in _turns(category_id).items()}


def catalog_grow(merchant_id: int, *, to: int) -> float:
    """Bulk-insert products until the merchant has ``to``; returns the seconds it took."""
    started = time.monotonic()
    have = Product.objects.filter(merchant_id=merchant_id).count()
    categories = list(
        Category.objects.filter(merchant_id=merchant_id).order_by("pk").values_list("pk", flat=True)
    )
    image = ProductImage.objects.filter(product__merchant_id=merchant_id).first()
    currency = Variant.objects.filter(merchant_id=merchant_id).values_list("currency", flat=True)[0]
    words = ["Classic", "Linen", "Summer", "Winter", "Cotton", "Denim", "Sport", "Desert"]
    nouns = ["T-shirt", "Hoodie", "Cap", "Mug", "Tote bag", "Scarf", "Jacket", "Sneaker"]
    for start in range(have, to, BATCH):
        numbers = range(start, min(start + BATCH, to))
        products = Product.objects.bulk_create(
            [
                Product(
                    merchant_id=merchant_id,
                    category_id=categories[n % len(categories)],
                    handle=f"scale-{n:07d}",
                    title=f"{words[n % 8]} {nouns[n // 8 % 8]} {n}",
                    title_ar=f"منتج {n}",
                    description="A product of the catalog-scale benchmark.",
                    position=n,
                )
                for n in numbers
            ]
        )
        variants, images = [], []
        for product, n in zip(products, numbers, strict=True):
            for v in range(1 + n % 2):
                variants.append(
                    Variant(
                        product=product, merchant_id=merchant_id, name=f"Size {v + 1}",
                        sku=f"SCALE-{n:07d}-{v}", options={"size": str(v + 1)},
                        price_minor=1000 + n % 5000, currency=currency, stock_on_hand=10,
                        position=v,
                    )
                )  # fmt: skip
            if image is not None:
                images.append(
                    ProductImage(
                        product=product, image=image.image.name, width=image.width,
                        height=image.height, alt_text=product.title, position=0,
                    )
                )  # fmt: skip
        Variant.objects.bulk_create(variants)
        ProductImage.objects.bulk_create(images)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return time.monotonic() - started


def profile(page: MessengerPage, customer: Customer, item: dict) -> None:
    """Where one turn's time goes (``--profile``: to stderr, for diagnosis)."""
    import cProfile
    import pstats

    event = event_parse(item, page_id=page.page_id)
    profiler = cProfile.Profile()
    for repeat in range(10):
        with transaction.atomic():
            customer.refresh_from_db()
            if repeat >= 2:
                profiler.enable()
            conversation_handle(
                customer=customer, page=page, event=event, inbound_event_id=10**12 + repeat
            )
            profiler.disable()
            transaction.set_rollback(True)
    pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(45)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grow-to", type=int, required=True)
    parser.add_argument("--profile", help="profile this turn (a name of _turns) and stop")
    args = parser.parse_args()
    page = MessengerPage.objects.select_related("merchant").get(page_id=PAGE_ID)
    customer, _ = Customer.objects.get_or_create(
        page_id=PAGE_ID, psid=PSID,
        defaults={"merchant": page.merchant, "first_name": "Layla", "locale": "en_US"},
    )  # fmt: skip
    category = (
        Category.objects.filter(merchant=page.merchant, is_active=True).order_by("position").first()
    )
    if args.profile:
        profile(page, customer, _turns(category.pk)[args.profile])
        return
    small = Product.objects.filter(merchant=page.merchant).count()
    before = measure_all(page, customer, category.pk)
    grow_seconds = catalog_grow(page.merchant_id, to=args.grow_to)
    large = Product.objects.filter(merchant=page.merchant).count()
    after = measure_all(page, customer, category.pk)
    print(
        json.dumps(
            {
                "small": {"products": small, "turns": before},
                "large": {"products": large, "turns": after},
                "grow_seconds": round(grow_seconds, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
