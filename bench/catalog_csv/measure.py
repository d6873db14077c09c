"""The in-process half of ``bench/catalog_csv``: run with the service's environment (Django
settings, the throwaway database) by ``run.py``; prints one JSON object.

    measure.py --rows 10000

Imports ``--rows`` variants (four per product, a category per 400 rows) into a new merchant
through ``catalog_csv_import``, as the admin's import view does, then the same file with every
title and price changed; each under ``CaptureQueriesContext``, timed with ``perf_counter``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import django

django.setup()

from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from commerce.models import Merchant, Variant  # noqa: E402
from commerce.services.catalog_csv import COLUMNS, catalog_csv_import  # noqa: E402


def _rows(count: int) -> list[dict[str, str]]:
    return [
        {
            "handle": f"product-{i // 4}",
            "title": f"Product {i // 4}",
            "category": f"category-{i // 400}",
            "sku": f"SKU-{i:06d}",
            "variant_name": f"V{i % 4}",
            "options": f"size={i % 4}",
            "price": f"{i // 100}.{i % 100:02d}",
            "stock": str(i % 50),
        }
        for i in range(count)
    ]


def _file(rows: list[dict[str, str]]) -> SimpleUploadedFile:
    columns = [c for c in COLUMNS if c in rows[0]]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return SimpleUploadedFile("products.csv", out.getvalue().encode(), content_type="text/csv")


def _timed(merchant: Merchant, rows: list[dict[str, str]]) -> tuple[float, int, object]:
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        result = catalog_csv_import(merchant=merchant, file=_file(rows))
        seconds = time.perf_counter() - started
    return seconds, len(queries.captured_queries), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    stamp = int(time.time())
    merchant = Merchant.objects.create(
        name=f"CSV bench {stamp}", slug=f"csv-bench-{stamp}", default_currency="USD"
    )
    rows = _rows(args.rows)
    first_seconds, first_queries, first = _timed(merchant, rows)
    assert first.variants_created == args.rows, first
    for item in rows:
        item["title"] += " (new)"
        item["price"] = "1" + item["price"]
    again_seconds, again_queries, again = _timed(merchant, rows)
    assert again.variants_updated == args.rows, again
    assert Variant.objects.filter(merchant=merchant).count() == args.rows
    print(
        json.dumps(
            {
                "rows": args.rows,
                "import": {"seconds": round(first_seconds, 2), "queries": first_queries},
                "reimport": {"seconds": round(again_seconds, 2), "queries": again_queries},
            }
        )
    )


if __name__ == "__main__":
    main()
