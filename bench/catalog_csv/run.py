#!/usr/bin/env python3
"""Catalog CSV import: 10,000 variant rows imported into a new merchant, then the same file with
every title and price changed, on a throwaway PostgreSQL.

    .venv/bin/python bench/catalog_csv/run.py [--rows 10000]

Goal: each import within 30 s (what a merchant waits for in the admin before the request is cut
off); the query counts are reported (``tests/commerce/test_catalog_csv.py`` asserts they do not
grow with the rows, which is what keeps this fast).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import stack

NAME = "catalog_csv"
GOAL_SECONDS = 30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000, help="variant rows in the file")
    parser.add_argument("--no-results", action="store_true", help="do not write results.json")
    args, _ = parser.parse_known_args()

    with contextlib.ExitStack() as context:
        servers = stack.servers_start(context)
        env = stack.service_env(servers)
        stack.manage(env, "migrate", "--no-input", "-v", "0")
        stack.log(f"importing {args.rows:,} rows, then the same rows changed")
        output = subprocess.run(
            [str(stack.VENV_BIN / "python"), str(Path(__file__).with_name("measure.py")),
             "--rows", str(args.rows)],
            cwd=stack.REPO, env=env, check=True, text=True, stdout=subprocess.PIPE,
        ).stdout  # fmt: skip
    data = json.loads(output.strip().splitlines()[-1])
    details = {**data, "database": servers.description, "how": "catalog_csv_import in-process"}
    rows = data["rows"]
    entries = [
        stack.Entry(
            f"{NAME}.import_seconds", f"CSV import of {rows:,} new rows",
            data["import"]["seconds"], "s", "<=", GOAL_SECONDS, details,
        ),
        stack.Entry(
            f"{NAME}.reimport_seconds", f"CSV import of {rows:,} changed rows",
            data["reimport"]["seconds"], "s", "<=", GOAL_SECONDS, details,
        ),
    ]  # fmt: skip
    stack.entries_print(entries)
    if not args.no_results:
        stack.results_merge(NAME, entries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
