"""A person answering a shopper from the dashboard.

The reply goes through the messenger outbox like every other message (``outbox_enqueue`` with
kind ``human_agent``): the worker sends it as a normal ``RESPONSE`` inside 24 hours of the
shopper's last message and with the ``HUMAN_AGENT`` tag up to 7 days; later than that Messenger
forbids any reply, so it is refused here with a clear message instead of being skipped silently.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.models import Customer
from core.exceptions import ApplicationError
from messenger import builders
from messenger.models import MessengerPage, OutboundMessage
from messenger.services.handover import conversation_pause
from messenger.services.outbox import messaging_for, outbox_enqueue

__all__ = ["conversation_reply"]


def conversation_reply(
    *, customer: Customer, text: str, now: datetime | None = None
) -> OutboundMessage:
    """Queue ``text`` to ``customer`` as a person's reply, and keep the bot paused.

    Replying pauses the bot (if it was not already), so it does not answer over the person;
    *Resume bot* hands the thread back.

    :raises ApplicationError: ``reply_empty``; ``reply_window_closed`` (the shopper last wrote
        more than 7 days ago, or never); ``page_missing`` (the customer's page is not connected
        any more). Nothing is written.
    """
    text = (text or "").strip()
    if not text:
        raise ApplicationError(_("The reply is empty."), code="reply_empty")
    now = now or timezone.now()
    if (
        messaging_for(
            kind=OutboundMessage.Kind.HUMAN_AGENT,
            last_interaction_at=customer.last_interaction_at,
            now=now,
        )
        is None
    ):
        raise ApplicationError(
            _(
                "This customer last wrote more than 7 days ago: Messenger does not allow a "
                "reply until they write again."
            ),
            code="reply_window_closed",
        )
    page = MessengerPage.objects.filter(
        page_id=customer.page_id, merchant_id=customer.merchant_id
    ).first()
    if page is None:
        raise ApplicationError(
            _("The Facebook Page of this conversation is not connected any more."),
            code="page_missing",
        )
    with transaction.atomic():
        row = outbox_enqueue(
            customer=customer,
            page=page,
            message=builders.text(text),
            kind=OutboundMessage.Kind.HUMAN_AGENT,
        )
        conversation_pause(customer=customer, now=now)
    return row
