"""Welcome (DESIGN.md section 5, flow 1): greeting by first name, the main menu, the language.

Payloads: ``GET_STARTED`` (also greetings typed as text), ``MENU``, ``LANG:ar`` / ``LANG:en``
(stored as ``conversation_context["language"]``, which wins over the profile locale).
"""

from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext as _

from messenger.conversation.flows import common
from messenger.conversation.router import Payload, on_payload
from messenger.conversation.turn import Turn

__all__ = ["greeting_text"]

LANGUAGES = ("ar", "en")


def greeting_text(turn: Turn) -> str:
    """ "Hi Layla! Welcome to <shop>." in the turn's language (no name when we have none)."""
    name = turn.customer.first_name.strip()
    shop = turn.merchant.name
    if name:
        return _("Hi %(name)s! Welcome to %(shop)s.") % {"name": name, "shop": shop}
    return _("Hi! Welcome to %(shop)s.") % {"shop": shop}


@on_payload("GET_STARTED")
def get_started(turn: Turn, payload: Payload) -> None:
    text = greeting_text(turn) + "\n" + _("What would you like to do?")
    turn.say(common.menu_message(turn, text))


@on_payload("MENU")
def menu(turn: Turn, payload: Payload) -> None:
    turn.say(common.menu_message(turn, _("What would you like to do?")))


@on_payload("LANG")
def language(turn: Turn, payload: Payload) -> None:
    chosen = payload.arg
    if chosen not in LANGUAGES or payload.params:
        turn.say(common.sorry_not_understood(turn))
        return
    common.context_update(turn, language=chosen)
    with translation.override(chosen):
        if chosen == "ar":
            text = _("Done! I will write in Arabic from now on.")
        else:
            text = _("Done! I will write in English from now on.")
        turn.say(common.menu_message(turn, text))
