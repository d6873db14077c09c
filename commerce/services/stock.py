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

The order functions here expect to run inside ``transaction.atomic`` while the caller holds the
order's row lock (``select_for_update``); the order services in ``commerce.services.orders`` do.

Staff set ``stock_on_hand`` too (admin, API, CSV import), always through
:func:`stock_on_hand_set`: a count applies only where the stock is still the number the person
was shown, so a sale made while they typed is never undone (ADR 0004). ``Variant.save()`` of an
existing row writes neither column.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from commerce.exceptions import OutOfStockError, StockChangedError
from commerce.models import Order, StockReservation, Variant
from core.bulk import values_update

__all__ = [
    "StockCount",
    "StockMovement",
    "stock_on_hand_set",
    "stock_release",
    "stock_reserve",
    "stock_sell",
]

_LOCK_BATCH_SIZE = 900  # ids per SELECT: under SQLite's 999 parameters


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


# -- staff counts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StockCount:
    """Staff's stock on hand for a variant: ``value``, typed while being shown ``seen``."""

    variant_id: int
    value: int
    seen: int


def stock_on_hand_set(*, counts: Iterable[StockCount]) -> set[int]:
    """Set the stock on hand staff typed, each only where the stock is still what they saw.

    Staff type a number looking at a page, a REST representation or a file read earlier; a sale
    may have lowered the stock since. Writing their number anyway would undo that sale (and
    show units the shop no longer has), so a count applies only where ``stock_on_hand`` still
    equals ``seen``; one already at ``value`` is done already (a form sent twice). Otherwise
    nothing of this call is written and the error says what the stock is now, so the person
    can look again. ``stock_reserved`` is never touched. A variant deleted meanwhile is skipped.

    The variants are locked in ascending id order, as reservations lock them. Returns the ids of
    the variants whose stock changed.

    :raises StockChangedError: a variant's stock is neither ``seen`` nor ``value``;
        ``extra["variants"]`` lists ``{"variant_id", "sku", "seen", "current", "value"}``.
    """
    wanted = {count.variant_id: count for count in counts}
    if not wanted:
        return set()
    no_key = connection.features.has_select_for_no_key_update
    ids = sorted(wanted)
    with transaction.atomic():
        current: dict[int, tuple[str, int]] = {}
        for start in range(0, len(ids), _LOCK_BATCH_SIZE):
            locked = (
                Variant.objects.select_for_update(no_key=no_key)
                .filter(pk__in=ids[start : start + _LOCK_BATCH_SIZE])
                .order_by("pk")
                .values_list("pk", "sku", "stock_on_hand")
            )
            current.update((pk, (sku, stock)) for pk, sku, stock in locked)
        moved = [
            {
                "variant_id": pk,
                "sku": current[pk][0],
                "seen": wanted[pk].seen,
                "current": current[pk][1],
                "value": wanted[pk].value,
            }
            for pk in ids
            if pk in current and current[pk][1] not in (wanted[pk].seen, wanted[pk].value)
        ]
        if moved:
            raise _stock_changed(moved)
        changes = [
            (pk, wanted[pk].value)
            for pk in ids
            if pk in current and current[pk][1] != wanted[pk].value
        ]
        values_update(
            Variant, changes, fields=["stock_on_hand"], constants={"updated_at": timezone.now()}
        )
    return {pk for pk, _value in changes}


def _stock_changed(moved: list[dict]) -> StockChangedError:
    if len(moved) == 1:
        [one] = moved
        message = (
            _(
                "The stock of %(sku)s changed while you were editing it: it is now %(current)d, "
                "not %(seen)d (a sale or another edit). Nothing was saved; check the number and "
                "save again."
            )
            % one
        )
    else:
        message = ngettext(
            "The stock of %(count)d variant changed while you were editing (%(skus)s). "
            "Nothing was saved; check the numbers and save again.",
            "The stock of %(count)d variants changed while you were editing (%(skus)s). "
            "Nothing was saved; check the numbers and save again.",
            len(moved),
        ) % {"count": len(moved), "skus": ", ".join(item["sku"] for item in moved[:10])}
    return StockChangedError(message, extra={"variants": moved})
