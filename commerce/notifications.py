"""Order notices: how commerce tells other apps that an order changed, without importing them.

Commerce must not import ``messenger`` or ``payments`` (see ``pyproject.toml``), yet a paid order
must lead to a receipt in the Messenger thread. So the apps that care subscribe here, explicitly,
in their ``AppConfig.ready``::

    from commerce.notifications import OrderNotice, order_subscribe

    class MessengerConfig(AppConfig):
        def ready(self):
            order_subscribe(OrderNotice.PAID, receipt_enqueue)

and every order transition service calls :func:`order_announce` after changing the order.

Rules for handlers (``handler(order, **data)``):

* They run **synchronously, inside the transition's transaction**, while it holds the order row
  lock. That is the point: a handler writes its outbox row (``OutboundMessage``) in the same
  transaction as the state change, so the message exists if and only if the change committed.
* They must therefore **only write to the database**: no network I/O, no Celery ``delay`` (use
  ``transaction.on_commit`` / ``delay_on_commit`` for that), nothing slow. A slow handler holds
  the order lock for everyone.
* **A handler never blocks the transition** (ADR 0007). Each one runs in its own savepoint; when
  it raises, the savepoint is rolled back (what it wrote is gone, the transaction stays usable
  on PostgreSQL), the other handlers still run, and the state change commits. The failure is
  not silent: it is logged with its traceback, recorded on the order's timeline
  (``OrderEvent.Kind.NOTICE_FAILED``) and the order is flagged for review, so it shows in the
  dashboard's *Needs attention*. A paid order stays paid although its receipt could not be
  written; money and stock must never depend on how a message is formatted.
  Handlers that can tell what went wrong record it closer to the message (messenger writes a
  failed outbox row), so raising is for the unexpected.

This is deliberately not Django signals: the list of notices is closed and named here, and
subscribing is an explicit call that is easy to find.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

if TYPE_CHECKING:
    from commerce.models import Order

__all__ = [
    "OrderHandler",
    "OrderNotice",
    "order_announce",
    "order_subscribe",
    "order_subscribers_clear",
    "order_subscribers_restore",
    "order_unsubscribe",
]


class OrderNotice(StrEnum):
    """The order transitions other apps may hear about, and the ``data`` each one carries."""

    PAID = "paid"  # data: none
    EXPIRED = "expired"  # data: none
    PAYMENT_FAILED = "payment_failed"  # data: reason
    CANCELLED = "cancelled"  # data: reason
    FULFILLED = "fulfilled"  # data: shipment (one notice per shipment, partial ones included)
    DELIVERED = "delivered"  # data: shipments (the ones marked delivered by this call)
    REFUNDED = "refunded"  # data: amount_minor, reference, fully_refunded
    # A refund the shopper was told about failed afterwards: data: amount_minor, reference
    REFUND_FAILED = "refund_failed"


logger = logging.getLogger(__name__)

OrderHandler = Callable[..., Any]
Subscriptions = dict[OrderNotice, list[OrderHandler]]

_lock = threading.Lock()
_subscribers: Subscriptions = {}


def order_subscribe(notice: OrderNotice, handler: OrderHandler) -> None:
    """Call ``handler(order, **data)`` on every ``notice``, in subscription order.

    Subscribing the same handler twice to one notice has no effect, so an ``AppConfig.ready``
    that runs twice (some test runners do that) does not send two messages.
    """
    notice = OrderNotice(notice)
    with _lock:
        handlers = _subscribers.setdefault(notice, [])
        if handler not in handlers:
            handlers.append(handler)


def order_unsubscribe(notice: OrderNotice, handler: OrderHandler) -> None:
    """Remove ``handler`` from ``notice``; nothing happens if it was not subscribed."""
    with _lock:
        handlers = _subscribers.get(OrderNotice(notice), [])
        if handler in handlers:
            handlers.remove(handler)


def order_announce(*, order: Order, notice: OrderNotice, **data: Any) -> None:
    """Call every handler of ``notice`` now, in the caller's transaction, each in a savepoint.

    Call it from a transition service after the order row is saved, while still inside its
    ``transaction.atomic``. A handler that raises does not propagate: its writes are rolled back
    to its savepoint, the failure is logged and recorded on the order (see the module
    docstring), and the next handler runs. Only an error that leaves the transaction unusable
    (the database connection dropped) still reaches the caller.
    """
    with _lock:
        handlers = tuple(_subscribers.get(OrderNotice(notice), ()))
    for handler in handlers:
        try:
            with transaction.atomic():
                handler(order, **data)
        except Exception as error:
            _handler_failed(order, OrderNotice(notice), handler, error)


def _handler_name(handler: OrderHandler) -> str:
    module = getattr(handler, "__module__", "") or ""
    name = getattr(handler, "__qualname__", "") or type(handler).__name__
    return f"{module}.{name}" if module else name


def _handler_failed(order: Order, notice: OrderNotice, handler: OrderHandler, error: Exception):
    """Log the failure, put it on the order's timeline and flag the order for review."""
    from commerce.models import Order, OrderEvent

    name = _handler_name(handler)
    logger.error(
        "Order %s: the %s notice handler %s failed; the transition goes ahead without it.",
        order.pk,
        notice.value,
        name,
        exc_info=error,
    )
    reason = f"The customer could not be notified ({notice.value}): {type(error).__name__}."
    try:
        with transaction.atomic():
            OrderEvent.objects.create(
                order_id=order.pk,
                kind=OrderEvent.Kind.NOTICE_FAILED,
                actor=OrderEvent.Actor.SYSTEM,
                message=f"{reason} {error}"[:300],
                data={
                    "notice": notice.value,
                    "handler": name,
                    "error": type(error).__name__,
                    "detail": str(error)[:1000],
                },
            )
            if not order.needs_review:
                review_reason = reason[: Order._meta.get_field("review_reason").max_length]
                Order.objects.filter(pk=order.pk).update(
                    needs_review=True, review_reason=review_reason, updated_at=timezone.now()
                )
                order.needs_review, order.review_reason = True, review_reason
    except Exception:  # the record itself failed: the log line above is what is left
        logger.exception("Order %s: could not record the failed %s notice.", order.pk, notice)


def order_subscribers_clear() -> Subscriptions:
    """Remove every subscription and return them, for tests that want only their own handlers.

    Give the returned value to :func:`order_subscribers_restore` when the test ends, so the
    subscriptions made by the apps' ``ready()`` come back for the following tests.
    """
    global _subscribers
    with _lock:
        removed, _subscribers = _subscribers, {}
    return removed


def order_subscribers_restore(subscriptions: Mapping[OrderNotice, list[OrderHandler]]) -> None:
    """Replace every subscription with ``subscriptions`` (as returned by the clear function)."""
    global _subscribers
    with _lock:
        _subscribers = {OrderNotice(notice): list(h) for notice, h in subscriptions.items()}
