"""Messenger pages: what staff change beside the page's settings.

``token_invalid_at`` is service-owned (ADR 0004): the outbox and the profile sync set it when the
Graph API rejects the token, possibly while staff have the page open, so ``save()`` never writes
it. Storing a new token clears it here, in one ``UPDATE``.
"""

from __future__ import annotations

from messenger.models import MessengerPage


def page_token_rejection_clear(*, page: MessengerPage) -> None:
    """Forget that Graph rejected the page's token: call after storing a new token.

    The outbox sends with the page again and the dashboard stops listing it.
    """
    MessengerPage.objects.filter(pk=page.pk).update(token_invalid_at=None)
    page.token_invalid_at = None
