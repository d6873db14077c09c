"""Stock reservations: hold units for an unpaid order, then sell them or give them back.

``Variant.stock_reserved`` counts the units of ACTIVE reservations; ``stock_on_hand -
stock_reserved`` is what shoppers can still buy. Both columns change only here, and only through
single conditional ``UPDATE`` statements with ``F()`` expressions, never by reading a value into
Python and writing it back:

* reserving is ``UPDATE ... SET stock_reserved = stock_reserved + q WHERE stock_on_hand >=
  stock_reserved + q``. PostgreSQL re-checks the ``WHERE`` on the newest row version after
  waiting for a concurrent writer, so two shoppers can never both take the last unit;
* variants are updated in ascending id order, so two orders sharing variants lock them in the
  same order and cannot deadlock each other;
* selling and releasing act only on ACTIVE reservations and flip them in the same transaction,
  so a second call (a replayed webhook, a racing expiry sweep) finds nothing to do.

Every function here expects to run inside ``transaction.atomic`` while the caller holds the
order's row lock (``select_for_update``); the order services in ``commerce.services.orders`` do.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.exceptions import OutOfStockError
from commerce.models import Order, StockReservation, Variant

__all__ = ["StockMovement", "stock_release", "stock_reserve", "stock_sell"]


@dataclass(frozen=True)
class StockMovement:
    """What a sell or release did: ``{variant_id: quantity}``, empty when nothing was active."""

    quantities: dict[int, int]

    def __bool__(self) -> bool:
        return bool(self.quantities)

    @property
    def units(self) -> int:
        return sum(self.quantities.values())

    def as_data(self) -> dict[str, int]:
        """JSON-friendly form for an ``OrderEvent.data``: ``{"<variant id>": quantity}``."""
        return {str(variant_id): qty for variant_id, qty in sorted(self.quantities.items())}


def _merge(lines: Iterable[tuple[Variant, int]]) -> list[tuple[Variant, int]]:
    """One ``(variant, quantity)`` per variant, ascending by id: the locking order."""
    variants: dict[int, Variant] = {}
    quantities: dict[int, int] = defaultdict(int)
    for variant, quantity in lines:
        if quantity < 1:
            raise ValueError(f"Cannot reserve {quantity} units of variant {variant.pk}.")
        variants[variant.pk] = variant
        quantities[variant.pk] += quantity
    return [(variants[pk], quantities[pk]) for pk in sorted(variants)]


def stock_reserve(
    *, order: Order, lines: Iterable[tuple[Variant, int]], expires_at: datetime
) -> list[StockReservation]:
    """Hold ``lines`` for ``order`` until ``expires_at``: all of them or none.

    Call inside ``transaction.atomic`` while holding the order row lock (a freshly created order
    is only visible to its own transaction, which is as good).

    :raises OutOfStockError: a variant has fewer available units than asked for; ``extra`` holds
        ``variant_id``, ``sku`` and ``available``. Units already reserved for earlier lines stay
        counted until the caller's transaction rolls back, so let the error propagate.
    """
    merged = _merge(lines)
    for variant, quantity in merged:
        updated = Variant.objects.filter(
            pk=variant.pk, stock_on_hand__gte=F("stock_reserved") + quantity
        ).update(stock_reserved=F("stock_reserved") + quantity)
        if not updated:
            raise _out_of_stock(variant)
    return StockReservation.objects.bulk_create(
        StockReservation(order=order, variant=variant, quantity=quantity, expires_at=expires_at)
        for variant, quantity in merged
    )


def _out_of_stock(variant: Variant) -> OutOfStockError:
    current = (
        Variant.objects.filter(pk=variant.pk).values("stock_on_hand", "stock_reserved").first()
    )
    available = max(current["stock_on_hand"] - current["stock_reserved"], 0) if current else 0
    if available:
        message = _("Only %(available)d left of %(sku)s.") % {
            "available": available,
            "sku": variant.sku,
        }
    else:
        message = _("%(sku)s is sold out.") % {"sku": variant.sku}
    return OutOfStockError(
        message, extra={"variant_id": variant.pk, "sku": variant.sku, "available": available}
    )


def _active_reservations(order: Order) -> list[StockReservation]:
    return list(
        StockReservation.objects.select_for_update()
        .filter(order_id=order.pk, status=StockReservation.Status.ACTIVE)
        .order_by("variant_id", "pk")
    )


def _resolve(
    reservations: list[StockReservation], status: StockReservation.Status
) -> StockMovement:
    quantities: dict[int, int] = defaultdict(int)
    for reservation in reservations:
        quantities[reservation.variant_id] += reservation.quantity
    StockReservation.objects.filter(pk__in=[r.pk for r in reservations]).update(
        status=status, resolved_at=timezone.now()
    )
    return StockMovement(dict(quantities))


def stock_sell(*, order: Order) -> StockMovement:
    """Turn the order's active reservations into sales: the units leave the shelf.

    Per variant, one ``UPDATE`` lowers ``stock_on_hand`` (never below zero, should staff have
    lowered it by hand meanwhile) and ``stock_reserved`` by the reserved quantity. Acts only on
    ACTIVE reservations, so a second call changes nothing and returns an empty movement.

    Call inside ``transaction.atomic`` while holding the order row lock.
    """
    reservations = _active_reservations(order)
    movement = _resolve(reservations, StockReservation.Status.SOLD)
    for variant_id, quantity in sorted(movement.quantities.items()):
        Variant.objects.filter(pk=variant_id).update(
            stock_on_hand=Greatest(F("stock_on_hand") - quantity, 0),
            stock_reserved=F("stock_reserved") - quantity,
        )
    return movement


def stock_release(*, order: Order) -> StockMovement:
    """Give the order's active reservations back: the units become available again.

    Acts only on ACTIVE reservations, so a second call changes nothing and returns an empty
    movement.

    Call inside ``transaction.atomic`` while holding the order row lock.
    """
    reservations = _active_reservations(order)
    movement = _resolve(reservations, StockReservation.Status.RELEASED)
    for variant_id, quantity in sorted(movement.quantities.items()):
        Variant.objects.filter(pk=variant_id).update(stock_reserved=F("stock_reserved") - quantity)
    return movement
