"""Pre-aggregated figures for the dashboard's metrics: read instead of scanning orders.

``DailySales`` and ``HourlySales`` are kept up to date by the order services themselves
(``commerce.services.sales_figures``), in the transaction that places, pays or refunds an order,
so they are exact at every commit. ``DailyFunnel`` holds the steps before an order
(conversations, carts, checkouts started): those are other apps' rows, so the dashboard
recomputes them periodically (``dashboard.services.funnel``). Days and hours are those of
``settings.TIME_ZONE``.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from commerce.models.merchants import Merchant
from core.currencies import CURRENCY_CHOICES


class DailySales(models.Model):
    """Orders and revenue of one merchant, day, currency and referral (source, ad id).

    ``orders_placed`` counts orders by the day they were placed. ``orders_paid`` and
    ``revenue_minor`` count orders by the day they were paid, with their total (gross).
    ``refunded_minor`` is what has been refunded so far of the orders paid that day (a refund
    is booked on the day its order was paid, not the day it happened), so
    ``revenue_minor - refunded_minor`` is the net revenue of that day's sales.
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    referral_source = models.CharField(max_length=40, blank=True)
    referral_ad_id = models.CharField(max_length=64, blank=True)
    orders_placed = models.BigIntegerField(default=0, db_default=0)
    orders_paid = models.BigIntegerField(default=0, db_default=0)
    revenue_minor = models.BigIntegerField(default=0, db_default=0)
    refunded_minor = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        verbose_name = _("daily sales")
        verbose_name_plural = _("daily sales")
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "day", "currency", "referral_source", "referral_ad_id"],
                name="uniq_daily_sales",
            ),
        ]
        # Operators read every merchant's rows for a range of days.
        indexes = [models.Index(fields=["day"], name="daily_sales_day_idx")]

    def __str__(self) -> str:
        return f"{self.merchant_id} {self.day} {self.currency} {self.referral_source}"


class HourlySales(models.Model):
    """Orders placed and paid (and revenue paid) of one merchant, hour and currency."""

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField(help_text=_("The start of the hour."))
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    orders_placed = models.BigIntegerField(default=0, db_default=0)
    orders_paid = models.BigIntegerField(default=0, db_default=0)
    revenue_minor = models.BigIntegerField(default=0, db_default=0)

    class Meta:
        verbose_name = _("hourly sales")
        verbose_name_plural = _("hourly sales")
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "hour", "currency"], name="uniq_hourly_sales"
            ),
        ]
        indexes = [models.Index(fields=["hour"], name="hourly_sales_hour_idx")]

    def __str__(self) -> str:
        return f"{self.merchant_id} {self.hour:%Y-%m-%d %H:00} {self.currency}"


class DailyFunnel(models.Model):
    """The steps before payment for one merchant and day, recomputed from their sources.

    ``conversations``: customers who wrote, tapped a button or arrived from a link or ad that
    day; ``carts``: carts created; ``checkouts``: orders whose payment was started. Paid
    orders come from ``DailySales``.
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    conversations = models.BigIntegerField(default=0, db_default=0)
    carts = models.BigIntegerField(default=0, db_default=0)
    checkouts = models.BigIntegerField(default=0, db_default=0)
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("daily funnel")
        verbose_name_plural = _("daily funnels")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "day"], name="uniq_daily_funnel"),
        ]
        indexes = [models.Index(fields=["day"], name="daily_funnel_day_idx")]

    def __str__(self) -> str:
        return f"{self.merchant_id} {self.day}"
