"""Everything the order page shows, read in a fixed number of queries (one per kind of row,
however many lines, events, shipments, payments, refunds or messages the order has)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from commerce.models import Order, OrderEvent, Shipment
from messenger.models import OutboundMessage
from payments.models import Payment, Refund
from payments.selectors.refunds import payment_refundable_minor

__all__ = ["OrderDetail", "TimelineEntry", "message_summary", "order_detail_load"]


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the merged timeline: an order event or a Messenger message about the order."""

    at: datetime
    kind: str  # "event" or "message"
    event: OrderEvent | None = None
    message: OutboundMessage | None = None
    summary: str = ""


@dataclass
class OrderDetail:
    order: Order
    lines: list = field(default_factory=list)
    shipments: list[Shipment] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    #: payment id -> what is left to refund of it (succeeded payments only)
    refundable: dict[int, int] = field(default_factory=dict)

    @property
    def undelivered_shipments(self) -> list[Shipment]:
        return [s for s in self.shipments if s.delivered_at is None]

    @property
    def refundable_minor(self) -> int:
        return sum(self.refundable.values())

    @property
    def refundable_payments(self) -> list[Payment]:
        """Payments with something left to refund, oldest first: one refund form each."""
        return [p for p in self.payments if self.refundable.get(p.pk, 0) > 0]

    def given_back_minor(self, payment: Payment) -> int:
        return sum(
            r.amount_minor
            for r in self.refunds
            if r.payment_id == payment.pk and r.status == Refund.Status.SUCCEEDED
        )


def message_summary(message: dict[str, Any]) -> str:
    """A short text for a Send API ``message`` object, for the timeline and the thread.

    Pure: text as it is; templates by their visible words (receipt number, button text, card
    titles); other attachments by their type.
    """
    if not isinstance(message, dict):
        return ""
    if message.get("text"):
        return str(message["text"])
    attachment = message.get("attachment") or {}
    payload = attachment.get("payload") or {}
    template = payload.get("template_type")
    if template == "receipt":
        return f"🧾 {payload.get('order_number', '')}".strip()
    if template == "button":
        buttons = ", ".join(b.get("title", "") for b in payload.get("buttons") or [])
        return f"{payload.get('text', '')} [{buttons}]" if buttons else payload.get("text", "")
    if template in ("generic", "media"):
        titles = [e.get("title", "") for e in payload.get("elements") or []]
        return " · ".join(t for t in titles if t) or f"[{template}]"
    kind = template or attachment.get("type") or "message"
    return f"[{kind}]"


def order_detail_load(*, order: Order) -> OrderDetail:
    """Read the order's lines, shipments, payments, refunds, events and messages (7 queries)
    and merge events and messages into one timeline, oldest first."""
    lines = list(order.lines.all())
    shipments = list(order.shipments.select_related("created_by").order_by("shipped_at", "pk"))
    payments = list(Payment.objects.filter(order=order).order_by("attempt", "pk"))
    refunds = list(
        Refund.objects.filter(order=order).select_related("requested_by", "payment").order_by("pk")
    )
    events = list(order.events.select_related("actor_user").order_by("created_at", "pk"))
    messages = list(OutboundMessage.objects.filter(order=order).order_by("created_at", "pk"))
    timeline = [TimelineEntry(at=e.created_at, kind="event", event=e) for e in events]
    timeline += [
        TimelineEntry(
            at=m.created_at, kind="message", message=m, summary=message_summary(m.message)
        )
        for m in messages
    ]
    timeline.sort(key=lambda entry: (entry.at, entry.kind == "message"))
    return OrderDetail(
        order=order,
        lines=lines,
        shipments=shipments,
        payments=payments,
        refunds=refunds,
        timeline=timeline,
        refundable=payment_refundable_minor(payments, refunds),
    )
