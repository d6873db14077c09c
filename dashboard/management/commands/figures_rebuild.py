"""``manage.py figures_rebuild [--days N | --all]``: recount the dashboard's figures.

The sales figures are kept exact by the order services; this recounts them from the orders
(after a bulk import, a restore or a bug fix), and recounts the funnel from the inbox, carts and
payments, for the last ``--days`` days (default 2: today and yesterday) or every day with orders.
"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Min
from django.utils import timezone

from commerce.models import Order
from commerce.services.sales_figures import day_of, sales_figures_rebuild
from dashboard.services.funnel import funnel_recompute

MAX_DAYS = 3660


class Command(BaseCommand):
    help = "Recount the daily sales and funnel figures of the last days (or of every day)."

    def add_arguments(self, parser) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--days", type=int, default=2, help="how many days back (2)")
        group.add_argument(
            "--all", action="store_true", dest="every_day", help="every day since the first order"
        )

    def handle(self, *args, days: int, every_day: bool, **options) -> None:
        today = day_of(timezone.now())
        if every_day:
            first_order = Order.objects.aggregate(first=Min("created_at"))["first"]
            first = day_of(first_order) if first_order else today
        else:
            if not 1 <= days <= MAX_DAYS:
                raise CommandError(f"--days must be between 1 and {MAX_DAYS}.")
            first = today - timedelta(days=days - 1)
        sales_rows = sales_figures_rebuild(first=first, last=today)
        span = (today - first).days + 1
        funnel_rows = funnel_recompute(days=[first + timedelta(days=n) for n in range(span)])
        self.stdout.write(
            self.style.SUCCESS(
                f"Recounted {span} days from {first}: {sales_rows} sales rows, "
                f"{funnel_rows} funnel rows."
            )
        )
