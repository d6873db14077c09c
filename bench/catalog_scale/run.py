#!/usr/bin/env python3
"""Catalog scale: the browse turns with 100 and with 100,000 products: the same number of
queries, and how long building the carousel takes.

    .venv/bin/python bench/catalog_scale/run.py [--small 100] [--large 100000]

A throwaway PostgreSQL (and Redis) holds the demo shop (``seed_demo --products 100``); then
``measure.py`` runs in-process with the service's settings: each browse turn (a category
carousel, "hi" with the featured carousel, a text search, the categories) goes through
``conversation_handle`` as the inbox worker calls it, under ``CaptureQueriesContext``, 15
times, each rolled back. The catalog is grown to ``--large`` products (bulk inserts, then
``ANALYZE``) and the turns are measured again. Goal: the same query count at both sizes for
every turn; the build times are reported with their ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import stack

NAME = "catalog_scale"
PAGE_ID = "104412345678901"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=100, help="products of the first measure")
    parser.add_argument("--large", type=int, default=100_000, help="products of the second")
    parser.add_argument("--profile", metavar="TURN", help="only profile one turn (diagnosis)")
    parser.add_argument("--no-results", action="store_true", help="do not write results.json")
    args, _ = parser.parse_known_args()

    with contextlib.ExitStack() as context:
        servers = stack.servers_start(context)
        media = context.enter_context(tempfile.TemporaryDirectory(prefix="bench-media."))
        env = stack.service_env(servers, MEDIA_ROOT=media)
        stack.log(f"migrating and seeding the demo shop with {args.small} products")
        stack.manage(env, "migrate", "--no-input", "-v", "0")
        stack.manage(env, "seed_demo", "--page-id", PAGE_ID, "--products", str(args.small))
        stack.log(f"measuring the browse turns, growing to {args.large} products, measuring again")
        output = subprocess.run(
            [str(stack.VENV_BIN / "python"), str(Path(__file__).with_name("measure.py")),
             "--grow-to", str(args.large), *(["--profile", args.profile] if args.profile else [])],
            cwd=stack.REPO, env=env, check=True, text=True, stdout=subprocess.PIPE,
        ).stdout  # fmt: skip
    if args.profile:
        return 0
    data = json.loads(output.strip().splitlines()[-1])

    small, large = data["small"], data["large"]
    details = {
        "products": [small["products"], large["products"]],
        "grow_seconds": data["grow_seconds"],
        "turns": {
            name: {"small": small["turns"][name], "large": large["turns"][name]}
            for name in small["turns"]
        },
        "database": servers.description,
        "how": "conversation_handle in-process, CaptureQueriesContext, median of 15, rolled back",
    }
    entries = []
    print()
    print(f"browse turns with {small['products']} and {large['products']} products")
    print(f"  {'turn':<30} {'queries':>15} {'median ms':>17} {'elements':>10}")
    for name in small["turns"]:
        a, b = small["turns"][name], large["turns"][name]
        print(
            f"  {name:<30} {a['queries']:>6} -> {b['queries']:<6} "
            f"{a['median_ms']:>7.1f} -> {b['median_ms']:<7.1f} "
            f"{a['carousel_elements']:>4} -> {b['carousel_elements']}"
        )
        key = name.split(" ")[0].strip("'").lower()
        entries.append(
            stack.Entry(
                f"{NAME}.{key}.extra_queries",
                f"{name}: extra queries at {large['products']:,} products",
                b["queries"] - a["queries"], "queries", "==", 0, details["turns"][name],
            )
        )  # fmt: skip
        ratio = round(b["median_ms"] / a["median_ms"], 2) if a["median_ms"] else None
        entries.append(
            stack.Entry(
                f"{NAME}.{key}.build_ms",
                f"{name}: turn build at {large['products']:,} products",
                b["median_ms"], "ms",
                details={**details["turns"][name], "ratio_to_small": ratio},
            )
        )  # fmt: skip
    for name in small["turns"]:
        b = large["turns"][name]
        print(f"  slowest query of {name!r} at {large['products']:,}: {b['slowest_query_ms']} ms:")
        print(f"    {b['slowest_query'][:300]}")
    stack.entries_print(entries)
    if not args.no_results:
        stack.results_merge(NAME, entries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
