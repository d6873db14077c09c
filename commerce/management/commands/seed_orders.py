"""``manage.py seed_orders --orders 1000000 [--merchants N] [--days D] [--seed S] [--replace]``.

Seeds a large, realistic order history (see ``commerce.services.seed_history``) for trying the
dashboard and for ``bench/dashboard``. Refuses to run twice unless ``--replace`` is given.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from commerce.services.seed_history import SeedError, seed_history_create


class Command(BaseCommand):
    help = "Seed a large order history (shops, customers, orders, lines, payments, figures)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--orders", type=int, required=True, help="how many orders")
        parser.add_argument("--merchants", type=int, default=20, help="how many shops (20)")
        parser.add_argument("--days", type=int, default=365, help="days of history (365)")
        parser.add_argument("--seed", type=int, default=1, help="random seed (1): same data")
        parser.add_argument(
            "--replace", action="store_true", help="remove shops seeded earlier first"
        )

    def handle(self, *args, orders, merchants, days, seed, replace, **options) -> None:
        started = time.monotonic()
        verbose = options["verbosity"] > 0

        def progress(message: str) -> None:
            if verbose:
                self.stdout.write(f"  {message} ({time.monotonic() - started:.0f} s)")

        try:
            result = seed_history_create(
                orders=orders,
                merchants=merchants,
                days=days,
                seed=seed,
                replace=replace,
                progress=progress,
            )
        except SeedError as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {result.orders:,} orders ({result.lines:,} lines, {result.payments:,} "
                f"payments, {result.events:,} events) for {result.customers:,} customers of "
                f"{result.merchants} shops, and {result.figure_rows:,} figure rows, in "
                f"{time.monotonic() - started:.0f} s."
            )
        )
