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
from commerce.services.submissions import submission_key_clean, submission_reused
from core.exceptions import ApplicationError
from messenger import builders
from messenger.models import MessengerPage, OutboundMessage
from messenger.services.handover import conversation_pause
from messenger.services.outbox import messaging_for, outbox_enqueue

__all__ = ["conversation_reply"]


def conversation_reply(
    *,
    customer: Customer,
    text: str,
    now: datetime | None = None,
    submission_key: str | None = None,
) -> OutboundMessage:
    """Queue ``text`` to ``customer`` as a person's reply, and keep the bot paused.

    Replying pauses the bot (if it was not already), so it does not answer over the person;
    *Resume bot* hands the thread back. With a ``submission_key`` (the reply form's one-time
    token) the reply is queued once however often the form is sent: the key becomes the
    outbox row's dedupe key, and a repeat returns that row (``row.replayed``).

    :raises ApplicationError: ``reply_empty``; ``reply_window_closed`` (the shopper last wrote
        more than 7 days ago, or never); ``page_missing`` (the customer's page is not connected
        any more); ``submission_key_invalid``. Nothing is written.
    :raises SubmissionReusedError: the key already sent another text.
    """
    submission_key = submission_key_clean(submission_key)
    dedupe_key = f"agent-reply:{customer.pk}:{submission_key}" if submission_key else None
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
    message = builders.text(text)
    with transaction.atomic():
        row = outbox_enqueue(
            customer=customer,
            page=page,
            message=message,
            kind=OutboundMessage.Kind.HUMAN_AGENT,
            dedupe_key=dedupe_key,
        )
        if row is None:  # this form was sent already: the unique dedupe key kept one row
            row = OutboundMessage.objects.get(dedupe_key=dedupe_key)
            if row.customer_id != customer.pk or row.message != message:
                raise submission_reused()
            row.replayed = True
            return row
        conversation_pause(customer=customer, now=now)
    row.replayed = False
    return row
