"""The conversation engine: one shopper event in, replies written to the outbox.

``conversation_handle`` is a dispatcher, not business logic. For one event it:

1. skips paused conversations (``customer.bot_paused_at``) and events that need no answer;
2. builds a ``Turn`` and, inside one transaction and ``translation.override(turn.language)``,
   routes the event:

   - a postback payload, or a quick-reply payload that parses to a registered verb, goes to the
     ``@on_payload`` handler of its verb as ``handler(turn, payload)``. A payload turn first
     clears ``customer.conversation_state`` (the shopper moved on; the context is kept): a handler
     that asks a new question sets a state again with ``turn.set_state``;
   - free text (and ``user_email`` / ``user_phone_number`` quick-reply answers, whose payload is
     the address or number itself) goes to the ``@on_state`` handler named by
     ``customer.conversation_state`` as ``handler(turn, text)``. A state handler returns ``False``
     to decline (the text is then routed as below) and anything else when it answered. Typing an
     exact menu keyword ("menu", "cart", "مساعدة"...) leaves the state and goes to the keyword;
   - other free text is matched against keywords (``keywords.py``) and otherwise searched as
     product names;
   - a referral (m.me link, click-to-Messenger ad, Get Started with a ``ref``) of the form
     ``product-<SKU>`` opens that product;
   - attachments (images, stickers) get a polite "I can only read text";
3. saves the customer's conversation state and context, and writes each reply with
   ``outbox_enqueue`` under the dedupe key ``reply:<inbound_event_id>:<n>``. A replayed event
   whose first reply is already in the outbox is skipped before any handler runs, so it neither
   changes anything (a second "Add to cart") nor answers twice.

An ``ApplicationError`` raised by a handler (out of stock, quantity limit, closed cart...) rolls
back the handler's writes and its queued replies (a savepoint) and answers with the error's
message, which commerce already wrote through gettext, plus a way forward. Anything else is a bug
and propagates: the whole turn is rolled back and the inbox records the failure.
"""

from __future__ import annotations

import functools
import importlib
import logging
import pkgutil
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import translation

from core.exceptions import ApplicationError
from messenger.conversation import flows
from messenger.conversation.flows import common
from messenger.conversation.flows.browse import referral_open, search_show
from messenger.conversation.keywords import keyword_payload
from messenger.conversation.router import Payload, handler_for, payload_parse
from messenger.conversation.turn import Turn
from messenger.events import MessageEvent, PostbackEvent, ReferralEvent
from messenger.models import OutboundMessage
from messenger.services.outbox import outbox_enqueue

logger = logging.getLogger(__name__)

__all__ = [
    "StateHandler",
    "conversation_handle",
    "on_state",
    "state_handler_for",
]

# ---------------------------------------------------------------------------------------------
# Free-text states: "the next thing the shopper types is their address line", etc.
# ---------------------------------------------------------------------------------------------

StateHandler = Callable[[Turn, str], Any]  # handler(turn, text) -> False to decline
_STATES: dict[str, StateHandler] = {}


def on_state(name: str) -> Callable[[StateHandler], StateHandler]:
    """Register the handler of free text while ``customer.conversation_state == name``.

    ``@on_state("checkout_email")`` or ``on_state("checkout_email")(handler)``. The handler is
    called as ``handler(turn, text)`` and returns ``False`` when the text is not an answer to its
    question (the engine then treats it as any free text), anything else when it answered.
    """

    def register(handler: StateHandler) -> StateHandler:
        if not name or len(name) > 40:
            raise ValueError(f"bad state name {name!r} (1 to 40 characters)")
        if name in _STATES and _STATES[name] is not handler:
            raise ValueError(f"two handlers for state {name}")
        _STATES[name] = handler
        return handler

    return register


def state_handler_for(name: str) -> StateHandler | None:
    return _STATES.get(name)


@functools.cache
def flows_load() -> None:
    """Import every module of ``messenger.conversation.flows`` so their handlers register.

    Lazy (first turn) because flow modules import this one for ``on_state``.
    """
    for module in pkgutil.iter_modules(flows.__path__):
        importlib.import_module(f"{flows.__name__}.{module.name}")


# ---------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------

_ANSWERED_EVENTS = (MessageEvent, PostbackEvent, ReferralEvent)


def conversation_handle(*, customer, page, event, inbound_event_id: int) -> list[OutboundMessage]:
    """Answer one shopper event; returns the outbox rows written (none for a replay).

    Call from the inbox worker, one event of a customer at a time. ``customer`` must be
    ``page``'s customer (same merchant). Runs in its own transaction (nested in the caller's if
    there is one).
    """
    if customer.bot_paused_at is not None:
        return []
    if not isinstance(event, _ANSWERED_EVENTS):
        return []
    if isinstance(event, MessageEvent) and event.is_echo:
        return []
    flows_load()
    if customer.merchant_id == page.merchant_id:
        customer.merchant = page.merchant  # usually loaded with the page: saves a query
    if OutboundMessage.objects.filter(dedupe_key=_reply_key(inbound_event_id, 0)).exists():
        return []  # Already answered (a retried inbox row): neither act nor answer again.
    turn = Turn(customer=customer, page=page, event=event)
    before = (customer.conversation_state, _copy(customer.conversation_context))
    with transaction.atomic():
        with translation.override(turn.language):
            try:
                with transaction.atomic():
                    _route(turn)
            except ApplicationError as error:
                customer.conversation_state, customer.conversation_context = (
                    before[0],
                    _copy(before[1]),
                )
                turn.replies.clear()
                turn.say(common.sorry_error(turn, error))
        if (customer.conversation_state, customer.conversation_context) != before:
            customer.save(
                update_fields=["conversation_state", "conversation_context", "updated_at"]
            )
        written = []
        for n, message in enumerate(turn.replies):
            row = outbox_enqueue(
                customer=customer,
                page=page,
                message=message,
                dedupe_key=_reply_key(inbound_event_id, n),
            )
            if row is not None:
                written.append(row)
    return written


def _reply_key(inbound_event_id: int, n: int) -> str:
    return f"reply:{inbound_event_id}:{n}"


def _copy(context: Any) -> Any:
    return dict(context) if isinstance(context, dict) else {}


def _route(turn: Turn) -> None:
    event = turn.event
    if isinstance(event, PostbackEvent):
        ref = event.referral.ref if event.referral is not None else ""
        if ref and referral_open(turn, ref=ref, greet=True):
            return
        if event.payload and event.payload == getattr(turn.page, "get_started_payload", None):
            _payload_dispatch(turn, Payload("GET_STARTED"))  # a page with its own payload
        else:
            _payload_dispatch(turn, payload_parse(event.payload))
    elif isinstance(event, ReferralEvent):
        if not referral_open(turn, ref=event.referral.ref or "", greet=False):
            _payload_dispatch(turn, Payload("GET_STARTED"))
    elif (
        event.referral is not None
        and not event.quick_reply_payload
        and referral_open(turn, ref=event.referral.ref or "", greet=False)
    ):
        return  # A message sent from an ad or a shop about a product: show the product.
    elif event.quick_reply_payload:
        payload = payload_parse(event.quick_reply_payload)
        if payload is not None and handler_for(payload.verb) is not None:
            _payload_dispatch(turn, payload)
        elif turn.state() and state_handler_for(turn.state()):
            # user_email / user_phone_number answers carry the value itself as the payload.
            _text_dispatch(turn, event.quick_reply_payload)
        else:
            _payload_dispatch(turn, payload)
    elif event.text and event.text.strip():
        _text_dispatch(turn, event.text.strip())
    elif event.attachments:
        turn.say(common.sorry_text_only(turn))
    else:
        turn.say(common.sorry_not_understood(turn))


def _payload_dispatch(turn: Turn, payload: Payload | None) -> None:
    handler = handler_for(payload.verb) if payload is not None else None
    if handler is None:
        logger.info("conversation: unknown or malformed payload from customer %s", turn.customer.pk)
        turn.say(common.sorry_not_understood(turn))
        return
    turn.customer.conversation_state = ""
    handler(turn, payload)


def _text_dispatch(turn: Turn, text: str) -> None:
    keyword = keyword_payload(text)
    state = turn.state()
    state_handler = state_handler_for(state) if state else None
    if state_handler is not None and keyword is None and state_handler(turn, text) is not False:
        return
    if keyword is not None:
        _payload_dispatch(turn, payload_parse(keyword))
        return
    search_show(turn, query=text, page=1)
