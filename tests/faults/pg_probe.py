"""Run inside the service's environment (``python -m tests.faults.pg_probe <command>``) against a
database the test process cannot reach through its own Django connection (a private PostgreSQL
cluster). Prints one JSON object.

- ``setup``: a demo shop with a Messenger page and one courier; the variant to buy (a product
  with a single variant) with plenty of stock.
- ``report``: every order with what makes it whole or half-written: lines, totals, reservations,
  and the stock counters they must agree with.
"""

from __future__ import annotations

import json
import sys


def _setup() -> dict:
    from django.db.models import Count

    from commerce.models import ShippingMethod, Variant
    from commerce.services.demo import demo_catalog_seed
    from messenger.models import MessengerPage

    catalog = demo_catalog_seed(products=4)
    merchant = catalog.merchant
    ShippingMethod.objects.create(
        merchant=merchant, name="Courier", name_ar="مندوب", price_minor=500, currency="USD"
    )
    MessengerPage.objects.create(
        merchant=merchant, page_id=sys.argv[2], name="Souq Demo", access_token="EAAfaulttoken"
    )
    variant = (
        Variant.objects.filter(product__merchant=merchant, is_active=True)
        .annotate(siblings=Count("product__variants"))
        .filter(siblings=1)
        .order_by("pk")
        .first()
    )
    Variant.objects.filter(pk=variant.pk).update(stock_on_hand=1000, stock_reserved=0)
    return {"variant_id": variant.pk}


def _report() -> dict:
    from django.db.models import Sum

    from commerce.models import Order, StockReservation, Variant

    orders = []
    for order in Order.objects.prefetch_related("lines", "reservations").select_related("customer"):
        lines = list(order.lines.all())
        active = [r for r in order.reservations.all() if r.status == StockReservation.Status.ACTIVE]
        orders.append(
            {
                "id": order.pk,
                "psid": order.customer.psid,
                "status": order.status,
                "lines": len(lines),
                "lines_right": all(
                    line.total_minor == line.unit_price_minor * line.quantity for line in lines
                ),
                "subtotal_right": order.subtotal_minor == sum(line.total_minor for line in lines),
                "total_right": order.total_minor
                == order.subtotal_minor
                - order.discount_minor
                + order.shipping_minor
                + order.tax_minor,
                "reserved": sum(r.quantity for r in active),
                "ordered": sum(line.quantity for line in lines),
            }
        )
    variants = []
    for variant in Variant.objects.all():
        held = (
            StockReservation.objects.filter(
                variant=variant, status=StockReservation.Status.ACTIVE
            ).aggregate(n=Sum("quantity"))["n"]
            or 0
        )
        variants.append({"id": variant.pk, "reserved": variant.stock_reserved, "held": held})
    return {"orders": orders, "variants": variants}


def main() -> None:
    import django

    django.setup()
    command = sys.argv[1]
    result = {"setup": _setup, "report": _report}[command]()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
