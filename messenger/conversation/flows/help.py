"""Help (DESIGN.md section 5, flow 8): the shop's contact details and *Talk to a person*.

``HELP`` shows how to reach the merchant (email, phone, web page); ``HUMAN`` pauses the bot for
this customer (``messenger.services.handover.conversation_pause``) so a person can answer from
the dashboard; the engine stays silent until an operator resumes the conversation.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from messenger import builders
from messenger.conversation.flows import common
from messenger.conversation.router import Payload, on_payload
from messenger.conversation.turn import Turn
from messenger.services.handover import conversation_pause


def _qr_human() -> dict:
    return builders.quick_reply(pgettext("quick reply", "Talk to a person"), "HUMAN")


@on_payload("HELP")
def help_show(turn: Turn, payload: Payload) -> None:
    merchant = turn.merchant
    lines = [
        _("Need help with an order or a product? You can reach %(shop)s:") % {"shop": merchant.name}
    ]
    if merchant.support_email:
        lines.append(_("Email: %(email)s") % {"email": merchant.support_email})
    if merchant.support_phone:
        lines.append(_("Phone: %(phone)s") % {"phone": merchant.support_phone})
    lines.append(_("Or tap Talk to a person and someone from the shop will answer you here."))
    quick_replies = [_qr_human(), common.qr_orders(), common.qr_shop(), common.qr_menu()]
    body = "\n".join(lines)
    if merchant.support_url:
        button = builders.url_button(
            pgettext("button", "Contact page"), merchant.support_url, webview_height_ratio="full"
        )
        turn.say(builders.button_template(body, [button], quick_replies=quick_replies))
    else:
        turn.say(builders.text(body, quick_replies=quick_replies))


@on_payload("HUMAN")
def human_request(turn: Turn, payload: Payload) -> None:
    """Hand the conversation to a person. The reply has no quick replies on purpose: the bot is
    silent from now on, so only a person can answer whatever the shopper sends next."""
    conversation_pause(customer=turn.customer)
    turn.set_state("")
    turn.say(
        builders.text(
            _(
                "OK, a person from %(shop)s will answer you here as soon as possible. "
                "Just write your question below."
            )
            % {"shop": turn.merchant.name}
        )
    )
