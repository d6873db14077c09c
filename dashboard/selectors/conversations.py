"""Reads behind the conversations pages: who waits for a person, and one customer's thread.

Inbound events are stored by page and PSID (the inbox keeps no customer id), so the thread reads
them through the inbox's ``(page_id, sender_psid, timestamp_ms, id)`` index; outbound messages
through the outbox's ``(customer, status, id)`` index. Both are bounded (:data:`THREAD_LIMIT`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from commerce.models import Customer
from dashboard.selectors.order_detail import message_summary
from messenger.models import InboundEvent, OutboundMessage

__all__ = [
    "THREAD_LIMIT",
    "ThreadItem",
    "conversation_thread",
    "conversations_waiting",
    "inbound_summary",
]

THREAD_LIMIT = 60
# Inbound kinds that are something the shopper said or did (delivery/read receipts are not).
_SAID = ("message", "postback", "referral", "optin", "reaction")


def _last_inbound(field: str) -> Subquery:
    return Subquery(
        InboundEvent.objects.filter(
            page_id=OuterRef("page_id"), sender_psid=OuterRef("psid"), kind__in=_SAID
        )
        .order_by("-timestamp_ms", "-id")
        .values(field)[:1]
    )


def conversations_waiting(*, scope) -> QuerySet[Customer]:
    """Customers whose bot is paused (they asked for a person), longest waiting first, with
    their last message (``last_payload``, ``last_kind``) in the same query."""
    customers = scope.filter(Customer.objects.filter(bot_paused_at__isnull=False))
    return (
        customers.select_related("merchant")
        .annotate(last_payload=_last_inbound("payload"), last_kind=_last_inbound("kind"))
        .order_by("bot_paused_at", "pk")
    )


def inbound_summary(kind: str, payload: Any) -> str:
    """What the shopper sent, in a few words (pure)."""
    if not isinstance(payload, dict):
        return ""
    if kind == "message":
        message = payload.get("message") or {}
        if message.get("text"):
            return str(message["text"])
        quick = (message.get("quick_reply") or {}).get("payload")
        attachments = [a.get("type", "file") for a in message.get("attachments") or []]
        if attachments:
            return " ".join(f"[{a}]" for a in attachments)
        return f"[{quick}]" if quick else "[message]"
    if kind == "postback":
        postback = payload.get("postback") or {}
        return postback.get("title") or f"[{postback.get('payload', 'postback')}]"
    if kind == "referral":
        referral = payload.get("referral") or {}
        return f"[referral {referral.get('source', '')} {referral.get('ref', '')}]".strip()
    if kind == "reaction":
        return f"[{(payload.get('reaction') or {}).get('emoji', 'reaction')}]"
    return f"[{kind}]"


@dataclass(frozen=True)
class ThreadItem:
    at: datetime
    direction: str  # "in" or "out"
    text: str
    message: OutboundMessage | None = None


def _from_ms(timestamp_ms: int, fallback: datetime) -> datetime:
    if not timestamp_ms:
        return fallback
    return datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC)


def conversation_thread(*, customer: Customer, limit: int = THREAD_LIMIT) -> list[ThreadItem]:
    """The latest ``limit`` things said each way, merged oldest first (two queries)."""
    inbound = list(
        InboundEvent.objects.filter(
            page_id=customer.page_id, sender_psid=customer.psid, kind__in=_SAID
        )
        .order_by("-timestamp_ms", "-id")
        .only("id", "kind", "payload", "timestamp_ms", "received_at")[:limit]
    )
    outbound = list(OutboundMessage.objects.filter(customer=customer).order_by("-id")[:limit])
    items = [
        ThreadItem(
            at=_from_ms(event.timestamp_ms, event.received_at),
            direction="in",
            text=inbound_summary(event.kind, event.payload),
        )
        for event in inbound
    ]
    items += [
        ThreadItem(
            at=m.sent_at or m.created_at,
            direction="out",
            text=message_summary(m.message),
            message=m,
        )
        for m in outbound
    ]
    items.sort(key=lambda item: item.at)
    return items[-limit:]
