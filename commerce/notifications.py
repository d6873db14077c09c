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
* **A handler that raises aborts the transition**: the exception propagates and the transaction
  rolls back, order status and stock included. We prefer no state change to a state change whose
  message was silently lost (a paid order without a receipt, a shipment without its tracking
  link); the caller (webhook task, admin action) sees the error and retries.

This is deliberately not Django signals: the list of notices is closed and named here, and
subscribing is an explicit call that is easy to find.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

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
    """Call every handler of ``notice`` now, in the caller's transaction.

    Call it from a transition service after the order row is saved, while still inside its
    ``transaction.atomic``. Exceptions from handlers propagate (see the module docstring).
    """
    with _lock:
        handlers = tuple(_subscribers.get(OrderNotice(notice), ()))
    for handler in handlers:
        handler(order, **data)


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
