"""Handing a conversation to a person and back (DESIGN.md section 5, flow 8).

While ``customer.bot_paused_at`` is set the conversation engine answers nothing for that
customer, so a person can talk to them from the dashboard; resuming hands the thread back to the
bot. Both are single conditional updates, so a double tap or two operators at once change the
row once.
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from commerce.models import Customer


def conversation_pause(*, customer: Customer, now: datetime | None = None) -> bool:
    """Stop the bot answering ``customer`` until :func:`conversation_resume`.

    Returns ``True`` when this call paused it, ``False`` when it was already paused (the first
    pause time is kept). ``customer.bot_paused_at`` is updated either way.
    """
    now = now or timezone.now()
    paused = Customer.objects.filter(pk=customer.pk, bot_paused_at__isnull=True).update(
        bot_paused_at=now, updated_at=now
    )
    if paused:
        customer.bot_paused_at = now
    else:
        customer.bot_paused_at = (
            Customer.objects.filter(pk=customer.pk).values_list("bot_paused_at", flat=True).first()
        )
    return bool(paused)


def conversation_resume(*, customer: Customer) -> bool:
    """Let the bot answer ``customer`` again; ``False`` when it was not paused.

    The conversation state is cleared too, so the shopper's next message starts afresh instead
    of answering a question the bot asked before the pause.
    """
    now = timezone.now()
    resumed = Customer.objects.filter(pk=customer.pk, bot_paused_at__isnull=False).update(
        bot_paused_at=None, conversation_state="", updated_at=now
    )
    customer.bot_paused_at = None
    if resumed:
        customer.conversation_state = ""
    return bool(resumed)
