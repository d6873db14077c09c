"""What a conversation handler receives and how it answers.

A handler gets a ``Turn`` and calls ``turn.say(message)`` with Send API ``message`` objects built
by ``messenger.builders``. It runs inside ``translation.override(turn.language)``, so gettext
strings come out in the shopper's language. The engine writes every reply to the outbox, in
order, in the same transaction as the handler's changes (cart, order, customer state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from commerce.models import Customer, Merchant


@dataclass
class Turn:
    customer: Customer
    page: Any  # messenger.models.MessengerPage (typed loosely to keep this module import-light)
    event: Any  # one of messenger.events.*Event
    replies: list[dict] = field(default_factory=list)

    @property
    def merchant(self) -> Merchant:
        return self.customer.merchant

    @property
    def language(self) -> str:
        """``ar`` or ``en``: an explicit choice in the conversation wins over the profile locale."""
        chosen = (self.customer.conversation_context or {}).get("language")
        if chosen in {"ar", "en"}:
            return chosen
        return self.customer.language

    @property
    def locale(self) -> str:
        """A Babel locale for formatting prices and numbers."""
        return "ar" if self.language == "ar" else "en"

    def say(self, message: dict) -> None:
        """Queue one Send API ``message`` object as a reply (sent in call order)."""
        self.replies.append(message)

    # Small per-customer state for multi-step flows (address entry, checkout steps).
    def state(self) -> str:
        return self.customer.conversation_state

    def set_state(self, state: str, **context: Any) -> None:
        """Move the conversation to ``state``, merging ``context`` into the saved context."""
        self.customer.conversation_state = state
        merged = dict(self.customer.conversation_context or {})
        merged.update(context)
        self.customer.conversation_context = merged

    def context(self, key: str, default: Any = None) -> Any:
        return (self.customer.conversation_context or {}).get(key, default)
