"""Helpers shared by every flow: the main menu, prices in the shopper's locale, polite refusals.

Every function here returns Send API ``message`` objects (or parts of them) built with
``messenger.builders`` and translated with the language active for the turn (the engine runs
handlers inside ``translation.override(turn.language)``). Each message ends with quick replies,
so the shopper always has a way forward.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from commerce.models import Product
from core.exceptions import ApplicationError
from core.money import Money
from messenger import builders
from messenger.conversation.router import payload_build
from messenger.conversation.turn import Turn
from messenger.views import product_page_url

__all__ = [
    "absolute_url",
    "context_update",
    "greeting_text",
    "main_menu_quick_replies",
    "menu_message",
    "money",
    "product_url",
    "qr_cart",
    "qr_checkout",
    "qr_language",
    "qr_menu",
    "qr_shop",
    "sorry_error",
    "sorry_not_understood",
    "sorry_text_only",
    "sorry_unavailable",
]


# -- formatting ------------------------------------------------------------------------------------


def money(turn: Turn | None, amount: Money) -> str:
    """``amount`` formatted for the shopper (``$12.50``, ``‏12.50 US$``) through Babel."""
    return amount.format(turn.locale if turn is not None else _active_locale())


def _active_locale() -> str:
    return "ar" if (translation.get_language() or "").startswith("ar") else "en"


def absolute_url(path: str) -> str:
    """``PUBLIC_BASE_URL`` + ``path`` (an absolute URL is returned unchanged)."""
    if path.startswith(("http://", "https://")):
        return path
    return settings.PUBLIC_BASE_URL.rstrip("/") + "/" + path.lstrip("/")


def product_url(*, product: Product, language: str | None = None) -> str:
    """The product's public page in ``language`` (opened in the webview by *Details*).

    ``product.merchant`` must be loaded (``products_visible`` selects it).
    """
    return product_page_url(product=product, language=language)


def greeting_text(turn: Turn) -> str:
    """ "Hi Layla! Welcome to <shop>." in the turn's language (no name when we have none)."""
    name = turn.customer.first_name.strip()
    shop = turn.merchant.name
    if name:
        return _("Hi %(name)s! Welcome to %(shop)s.") % {"name": name, "shop": shop}
    return _("Hi! Welcome to %(shop)s.") % {"shop": shop}


# -- state -----------------------------------------------------------------------------------------


def context_update(turn: Turn, **values) -> None:
    """Merge ``values`` into the saved conversation context without touching the state."""
    merged = dict(turn.customer.conversation_context or {})
    merged.update(values)
    turn.customer.conversation_context = merged


# -- quick replies ---------------------------------------------------------------------------------


def qr_shop() -> dict:
    return builders.quick_reply(pgettext("quick reply", "Shop"), "SHOP")


def qr_keep_shopping() -> dict:
    return builders.quick_reply(pgettext("quick reply", "Keep shopping"), "SHOP")


def qr_cart() -> dict:
    return builders.quick_reply(pgettext("quick reply", "Cart"), "CART")


def qr_checkout() -> dict:
    return builders.quick_reply(pgettext("quick reply", "Checkout"), "CHECKOUT")


def qr_orders() -> dict:
    return builders.quick_reply(pgettext("quick reply", "My orders"), "ORDERS")


def qr_help() -> dict:
    return builders.quick_reply(pgettext("quick reply", "Help"), "HELP")


def qr_menu() -> dict:
    return builders.quick_reply(pgettext("quick reply", "Menu"), "MENU")


def qr_language(turn: Turn | None = None) -> dict:
    """Switch to the other language; the label is written in that language on purpose."""
    language = turn.language if turn is not None else _active_locale()
    if language == "ar":
        return builders.quick_reply("English", payload_build("LANG", "en"))
    return builders.quick_reply("العربية", payload_build("LANG", "ar"))


def main_menu_quick_replies(turn: Turn | None = None) -> list[dict]:
    """Shop, Cart, My orders, Help, and the other language (5 quick replies, in this order)."""
    return [qr_shop(), qr_cart(), qr_orders(), qr_help(), qr_language(turn)]


def menu_message(turn: Turn | None, text: str) -> dict:
    """``text`` with the main menu as quick replies."""
    return builders.text(text, quick_replies=main_menu_quick_replies(turn))


# -- polite refusals -------------------------------------------------------------------------------


def sorry_not_understood(turn: Turn | None = None) -> dict:
    """For a malformed, unknown or stale payload, or a message we cannot read."""
    return menu_message(turn, _("Sorry, I didn't get that. Here is what I can help you with:"))


def sorry_unavailable(turn: Turn | None = None) -> dict:
    """For a product or variant that is not (or no longer) sold by this shop."""
    return builders.text(
        _("Sorry, that item is no longer available."),
        quick_replies=[qr_shop(), qr_cart(), qr_menu()],
    )


def sorry_text_only(turn: Turn | None = None) -> dict:
    """For images, stickers, audio and files."""
    return menu_message(
        turn,
        _("Thanks! I can only read text messages for now. Type what you are looking for, or:"),
    )


def sorry_error(turn: Turn | None, error: ApplicationError) -> dict:
    """An anticipated commerce error: its (already translated) message and a way forward."""
    message = error.message or _("Sorry, something went wrong.")
    return builders.text(message, quick_replies=[qr_cart(), qr_shop(), qr_menu()])
