"""Welcome (DESIGN.md section 5, flow 1): greeting by first name, the main menu, the language.

Payloads: ``GET_STARTED`` (also greetings typed as text), ``MENU``, ``LANG:ar`` / ``LANG:en``
(stored as ``conversation_context["language"]``, which wins over the profile locale).

Get Started answers with the greeting and, right under it, the shop's featured products as a
carousel carrying the main menu (Shop for the categories, Cart, My orders, Help, the other
language): the first tap after Get Started can already be *Buy now*. A shop with nothing to sell
gets the greeting with the menu.
"""

from __future__ import annotations

from django.utils import translation
from django.utils.translation import gettext as _

from messenger import builders
from messenger.conversation.flows import common
from messenger.conversation.flows.browse import featured_carousel
from messenger.conversation.router import Payload, on_payload
from messenger.conversation.turn import Turn

__all__ = ["greeting_text"]

greeting_text = common.greeting_text  # kept importable from here

LANGUAGES = ("ar", "en")


@on_payload("GET_STARTED")
def get_started(turn: Turn, payload: Payload) -> None:
    carousel = featured_carousel(turn, quick_replies=common.main_menu_quick_replies(turn))
    if carousel is None:
        text = greeting_text(turn) + "\n" + _("What would you like to do?")
        turn.say(common.menu_message(turn, text))
        return
    text = greeting_text(turn) + "\n"
    text += _("Here are some of our favourites. Swipe to see more, or tap Shop for the categories.")
    turn.say(builders.text(text))
    turn.say(carousel)


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
