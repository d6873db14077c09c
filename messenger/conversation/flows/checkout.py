"""Checkout in the chat (DESIGN.md section 5, flow 4): contact, address, shipping, then Pay.

Built for the fewest taps from ``CHECKOUT`` (or ``BUY``) to the Pay button, because the issue
holds us to 8 taps from Get Started to paid for a new shopper and 6 for a returning one (the Pay
button, the checkout page's Pay and Stripe's Pay included):

- new shopper: email (``user_email`` quick reply, 1 tap), phone (``user_phone_number`` quick
  reply, 1 tap), the address typed in one message ("name, street, city, country", read
  leniently; only what is missing is asked for), then the summary with the Pay button. Shipping
  is never a question: the merchant's first method (display order) that delivers there is
  chosen, and the summary offers the others as quick replies;
- returning shopper with email, phone and an address saved: ``CHECKOUT`` goes straight to the
  summary with the Pay button (saved details, first shipping method); *Change details* on it
  brings back the confirmation step (other address, other contact, shipping choices).

The order is placed as soon as the address is known (no separate "place order" tap);
``PLACE_ORDER`` only continues after the shopper was told the total changed (a voucher stopped
applying). Switching shipping or details after placement (``SHIP_SWITCH``, ``DETAILS_CHANGE``)
cancels the unpaid order, which gives its stock back, puts its items back into the cart and
places again: commerce never edits a placed order. Neither is allowed once the shopper opened
the payment page for the order (its Stripe session could still be paid). Prices, stock,
vouchers and shipping rules all live in the commerce services: this module only asks, calls
them, and explains their errors.

States (``customer.conversation_state``): ``checkout_email``, ``checkout_phone``,
``checkout_address`` (a whole address typed), ``checkout_address_field`` (one missing field),
``checkout_confirm``, ``checkout_shipping``. Context keys: ``checkout_address_id``,
``checkout_shipping_id``, ``checkout_draft`` (the address fields read so far),
``checkout_ask`` (the field asked for), ``checkout_edit`` (changing saved contact details).

Payloads: ``CHECKOUT``, ``CONTACT_OK``, ``ADDRESS_USE:<id>``, ``ADDRESS_NEW``, ``SHIP:<id>``,
``PLACE_ORDER`` (shared vocabulary) and this flow's own ``CONTACT_EDIT`` (change the saved
email and phone), ``ADDRESS_LIST`` (choose among saved addresses), ``COUNTRY:<ISO code>``
(the answer to "which country?"), ``SHIP_SWITCH:order=<id>,method=<id>,address=<id>`` (another
shipping method for a placed, unpaid order) and ``DETAILS_CHANGE:order=<id>`` (back to the
confirmation step for a placed, unpaid order).
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from babel import Locale
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from commerce.exceptions import (
    AddressError,
    CartError,
    OutOfStockError,
    ShippingError,
    VoucherError,
)
from commerce.models import Address, Cart, Order, OrderEvent, ShippingMethod, Variant
from commerce.models.customers import COUNTRY_CODES
from commerce.selectors.carts import (
    cart_lines_for_pricing,
    cart_price_of_lines,
    cart_voucher,
    shipping_methods_for,
)
from commerce.services.addresses import (
    address_default_for,
    address_save,
    customer_set_contact,
)
from commerce.services.carts import (
    cart_add,
    cart_apply_voucher,
    cart_get_open,
    cart_remove_voucher,
)
from commerce.services.orders import order_cancel, order_create_from_cart
from core.exceptions import ApplicationError
from core.money import Money
from messenger import builders
from messenger.conversation import engine
from messenger.conversation.flows import common
from messenger.conversation.router import Payload, on_payload, payload_build
from messenger.conversation.turn import Turn
from payments.services.checkout_links import checkout_url

__all__ = [
    "address_parse",
    "cart_refill_from_order",
    "checkout_start",
    "country_lookup",
    "order_pay_button",
]

# Fields of a typed address the shopper must give (the rest are optional).
_REQUIRED = ("name", "line1", "city", "country")
# How many saved addresses are offered as quick replies.
_SAVED_ADDRESSES_SHOWN = 3
# Shipping methods offered as quick replies (the rest of the 13 are for other choices).
_SHIPPING_SHOWN = 10
# Other shipping methods offered on the order summary (beside Change details and the menu).
_SWITCHES_SHOWN = 8
# Lines listed one by one in the summary; more are counted.
_SUMMARY_LINES = 10
_BUTTON_TEXT_LIMIT = 640

_CONTEXT_KEYS = (
    "checkout_address_id",
    "checkout_shipping_id",
    "checkout_draft",
    "checkout_ask",
    "checkout_edit",
)


# -- reading a typed address (pure) ------------------------------------------------------------

_SEPARATORS = re.compile(r"[,\n;،؛]+")
_POSTAL = re.compile(r"^[0-9٠-٩۰-۹]{3,10}(?:[ -][0-9٠-٩۰-۹]{2,5})?$")
_HAS_DIGIT = re.compile(r"\d")
_ARABIC_MARKS = re.compile("[\u064b-\u0652\u0670\u0640]")  # harakat, superscript alef, tatweel
_COUNTRY_ALIASES = {
    "uae": "AE",
    "emirates": "AE",
    "the emirates": "AE",
    "dubai": "AE",
    "ksa": "SA",
    "saudi": "SA",
    "usa": "US",
    "america": "US",
    "united states of america": "US",
    "uk": "GB",
    "england": "GB",
    "britain": "GB",
    "great britain": "GB",
    "امارات": "AE",
    "الامارات": "AE",
    "دبي": "AE",
    "سعوديه": "SA",
    "السعوديه": "SA",
    "امريكا": "US",
    "بريطانيا": "GB",
}


def _fold(text: str) -> str:
    """Case-, accent- and spelling-insensitive form of a place name, in Latin or Arabic script."""
    text = unicodedata.normalize("NFKC", text).casefold().strip()
    text = _ARABIC_MARKS.sub("", text)
    text = text.translate(str.maketrans("أإآٱىة", "اااايه"))
    text = "".join(
        char for char in unicodedata.normalize("NFKD", text) if not unicodedata.combining(char)
    )
    text = re.sub(r"[.'’()]", "", text)
    return " ".join(text.split())


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for language in ("en", "ar"):
        for code, name in Locale.parse(language).territories.items():
            if code in COUNTRY_CODES:
                folded = _fold(name)
                names.setdefault(folded, code)
                if folded.startswith("the "):
                    names.setdefault(folded[4:], code)
                if folded.startswith("ال"):
                    names.setdefault(folded[2:], code)
    for alias, code in _COUNTRY_ALIASES.items():
        names.setdefault(_fold(alias), code)
    return names


def country_lookup(text: str) -> str | None:
    """The ISO code of a country typed in English or Arabic (``"Kuwait"``, ``"الكويت"``,
    ``"kw"``, ``"UAE"``), or ``None``."""
    stripped = text.strip()
    if len(stripped) == 2 and stripped.isascii() and stripped.upper() in COUNTRY_CODES:
        return stripped.upper()
    folded = _fold(stripped)
    names = _country_names()
    return names.get(folded) or names.get(folded.removeprefix("the "))


def address_parse(text: str) -> dict[str, str]:
    """Read ``name, street, city, country`` (any of them may be missing) from one message.

    Parts are separated by commas (Latin or Arabic), semicolons or new lines. The last part is
    the country when it names one, a part of 3-10 digits is the postal code, and the rest is
    read by position: with three or more parts the first is the name, the last the city and
    those between the street; with two, the one with a house number is the street. Returns only
    the fields found, so the caller asks for the others.
    """
    parts = [" ".join(part.split()) for part in _SEPARATORS.split(text or "")]
    parts = [part for part in parts if part]
    fields: dict[str, str] = {}
    if parts and (code := country_lookup(parts[-1])):
        fields["country"] = code
        parts.pop()
    for index in range(len(parts) - 1, -1, -1):
        if len(parts) > 1 and _POSTAL.match(parts[index]):
            fields["postal_code"] = parts.pop(index)
            break
    if len(parts) >= 3:
        fields["name"], fields["city"] = parts[0], parts[-1]
        fields["line1"] = ", ".join(parts[1:-1])
    elif len(parts) == 2:
        first, second = parts
        if _HAS_DIGIT.search(second) and not _HAS_DIGIT.search(first):
            fields["name"], fields["line1"] = first, second
        else:
            fields["line1"], fields["city"] = first, second
    elif len(parts) == 1:
        fields["line1"] = parts[0]
    return fields


# -- small helpers -----------------------------------------------------------------------------


def _country_name(turn: Turn, code: str) -> str:
    return Locale.parse(turn.locale).territories.get(code, code)


def _joined(turn: Turn, parts) -> str:
    """Address parts joined with the comma of the shopper's language."""
    separator = "، " if turn.language == "ar" else ", "
    return separator.join(part for part in parts if part)


def _address_text(turn: Turn, address: Address) -> str:
    parts = [address.name, address.line1, address.line2, address.city, address.region]
    return _joined(turn, [*parts, address.postal_code, _country_name(turn, address.country)])


def _address_title(turn: Turn, address: Address) -> str:
    """A quick-reply title (the builder truncates it to 20 characters)."""
    return _joined(turn, [address.line1, address.city])


def _qr(title: str, verb: str, arg: str | int | None = None) -> dict:
    return builders.quick_reply(title, payload_build(verb, arg))


def _context_clear(turn: Turn) -> None:
    context = dict(turn.customer.conversation_context or {})
    for key in _CONTEXT_KEYS:
        context.pop(key, None)
    turn.customer.conversation_context = context
    turn.set_state("")


@dataclass(frozen=True)
class _CartState:
    cart: Cart
    lines: list[tuple[Variant, int]]


def _cart_or_say_empty(turn: Turn) -> _CartState | None:
    """The open cart with its buyable lines, or ``None`` after telling the shopper it is empty."""
    cart = cart_get_open(customer=turn.customer)
    lines = cart_lines_for_pricing(cart=cart)
    if lines:
        return _CartState(cart, lines)
    _context_clear(turn)
    turn.say(
        builders.text(
            _("Your cart is empty. Add something you like, then check out."),
            quick_replies=common.main_menu_quick_replies(turn),
        )
    )
    return None


def _context_address(turn: Turn) -> Address | None:
    """The address chosen in this checkout, if it is still one of this customer's."""
    address_id = turn.context("checkout_address_id")
    if not isinstance(address_id, int):
        return None
    return Address.objects.filter(pk=address_id, customer_id=turn.customer.pk).first()


def _saved_addresses(turn: Turn) -> list[Address]:
    return list(
        Address.objects.filter(customer_id=turn.customer.pk).order_by(
            "-is_default", "-updated_at", "-id"
        )[:_SAVED_ADDRESSES_SHOWN]
    )


@dataclass(frozen=True)
class _Option:
    method: ShippingMethod
    price: Money


def _method_name(turn: Turn, method: ShippingMethod) -> str:
    return method.name_ar if turn.language == "ar" and method.name_ar else method.name


def _method_estimate(turn: Turn, method: ShippingMethod) -> str:
    if turn.language == "ar" and method.delivery_estimate_ar:
        return method.delivery_estimate_ar
    return method.delivery_estimate


def _shipping_options(turn: Turn, state: _CartState, address: Address) -> list[_Option]:
    """The methods that deliver to ``address`` with their price for this cart (no more queries
    than ``shipping_methods_for`` and the voucher)."""
    voucher = cart_voucher(cart=state.cart)
    options = []
    for method in shipping_methods_for(merchant=turn.merchant, country=address.country):
        try:
            breakdown = cart_price_of_lines(
                cart=state.cart,
                lines=state.lines,
                voucher=voucher,
                shipping_method=method,
                country=address.country,
            )
        except ApplicationError:
            continue  # e.g. priced in another currency: it cannot be chosen
        options.append(_Option(method, breakdown.shipping))
    return options


def _option_label(turn: Turn, option: _Option) -> str:
    price = (
        pgettext("shipping price", "free") if not option.price else common.money(turn, option.price)
    )
    return f"{_method_name(turn, option.method)} · {price}"


def _shipping_qrs(turn: Turn, options: list[_Option]) -> list[dict]:
    return [
        _qr(_option_label(turn, option), "SHIP", option.method.pk)
        for option in options[:_SHIPPING_SHOWN]
    ]


def _shipping_lines(turn: Turn, options: list[_Option]) -> str:
    lines = []
    for option in options[:_SHIPPING_SHOWN]:
        estimate = _method_estimate(turn, option.method)
        label = _option_label(turn, option)
        lines.append(f"• {label} ({estimate})" if estimate else f"• {label}")
    return "\n".join(lines)


def _phone_region(turn: Turn) -> str | None:
    """Where a phone number typed without country code is read: the saved address's country,
    else the only country the shop delivers to."""
    address = address_default_for(customer=turn.customer)
    if address is not None:
        return address.country
    countries = _shipping_countries(turn)
    return countries[0] if len(countries) == 1 else None


def _shipping_countries(turn: Turn) -> list[str]:
    """Countries named by the shop's active methods, in method order (empty: ships anywhere)."""
    seen: list[str] = []
    for method in ShippingMethod.objects.filter(merchant_id=turn.merchant.pk, is_active=True):
        for code in method.countries or []:
            code = str(code).upper()
            if code in COUNTRY_CODES and code not in seen:
                seen.append(code)
    return seen


# -- entry: CHECKOUT ---------------------------------------------------------------------------


def checkout_start(turn: Turn) -> None:
    """Start (or restart) checkout for the customer's open cart. ``BUY`` calls it too."""
    _context_clear(turn)
    state = _cart_or_say_empty(turn)
    if state is None:
        return
    customer = turn.customer
    address = address_default_for(customer=customer)
    if customer.email and customer.phone and address is not None:
        # Returning shopper: the saved details, no question asked; the summary offers changes.
        turn.set_state("", checkout_address_id=address.pk)
        _shipping_step(turn, state, address)
        return
    _advance(turn, state)


@on_payload("CHECKOUT")
def checkout(turn: Turn, payload: Payload) -> None:
    checkout_start(turn)


def _confirm_saved(turn: Turn, state: _CartState, address: Address) -> None:
    """The saved details with the shipping choices and ways to change them (one tap on).

    Shown when a returning shopper asks to change the details of an order placed with them."""
    options = _shipping_options(turn, state, address)
    if not options:
        _say_no_delivery(turn, address)
        return
    turn.set_state("checkout_confirm", checkout_address_id=address.pk)
    customer = turn.customer
    text = _("Shall we use your saved details?") + "\n\n"
    text += _("Deliver to: %(address)s") % {"address": _address_text(turn, address)} + "\n"
    text += _("Contact: %(email)s, %(phone)s") % {"email": customer.email, "phone": customer.phone}
    if len(options) == 1:
        text += "\n" + _("Shipping: %(method)s") % {"method": _option_label(turn, options[0])}
        choices = [_qr(_("Yes, continue"), "CONTACT_OK")]
    else:
        text += (
            "\n\n" + _("Choose how to ship to continue:") + "\n" + _shipping_lines(turn, options)
        )
        choices = _shipping_qrs(turn, options)
    others = len(_saved_addresses(turn)) > 1
    choices.append(_qr(_("Other address"), "ADDRESS_LIST" if others else "ADDRESS_NEW"))
    choices.append(_qr(_("Change contact"), "CONTACT_EDIT"))
    turn.say(builders.text(text, quick_replies=choices))


def _advance(turn: Turn, state: _CartState) -> None:
    """Ask for the first missing detail, or go on to shipping when none is missing."""
    customer = turn.customer
    if not customer.email:
        _ask_email(turn)
    elif not customer.phone:
        _ask_phone(turn)
    elif (address := _context_address(turn)) is None:
        saved = _saved_addresses(turn)
        if saved:
            _offer_addresses(turn, saved)
        else:
            _ask_address(turn)
    else:
        _shipping_step(turn, state, address)


# -- contact details ---------------------------------------------------------------------------


def _ask_email(turn: Turn, *, error: str = "") -> None:
    turn.set_state("checkout_email")
    text = _("What email should we send your receipt to? Tap yours below, or type another one.")
    if turn.customer.email and turn.context("checkout_edit"):
        text = _("Your email is %(email)s. Tap below, or type the new one.") % {
            "email": turn.customer.email
        }
    if error:
        text = f"{error}\n{text}"
    turn.say(builders.text(text, quick_replies=[builders.quick_reply_email(), common.qr_cart()]))


def _ask_phone(turn: Turn, *, error: str = "") -> None:
    turn.set_state("checkout_phone")
    text = _("What phone number can the courier call? Tap yours below, or type another one.")
    if error:
        text = f"{error}\n{text}"
    turn.say(builders.text(text, quick_replies=[builders.quick_reply_phone(), common.qr_cart()]))


@engine.on_state("checkout_email")
def email_given(turn: Turn, text: str) -> None:
    state = _cart_or_say_empty(turn)
    if state is None:
        return
    try:
        customer_set_contact(customer=turn.customer, email=text)
    except AddressError as error:
        _ask_email(turn, error=error.message)
        return
    if turn.context("checkout_edit"):
        _ask_phone(turn)
        return
    _advance(turn, state)


@engine.on_state("checkout_phone")
def phone_given(turn: Turn, text: str) -> None:
    state = _cart_or_say_empty(turn)
    if state is None:
        return
    try:
        customer_set_contact(customer=turn.customer, phone=text, default_region=_phone_region(turn))
    except AddressError as error:
        _ask_phone(turn, error=error.message)
        return
    turn.set_state("", checkout_edit=False)
    _advance(turn, state)


@on_payload("CONTACT_EDIT")
def contact_edit(turn: Turn, payload: Payload) -> None:
    """Change the saved email and phone, then choose the address again."""
    if _cart_or_say_empty(turn) is None:
        return
    turn.set_state("", checkout_edit=True, checkout_address_id=None)
    _ask_email(turn)


@on_payload("CONTACT_OK")
def contact_ok(turn: Turn, payload: Payload) -> None:
    state = _cart_or_say_empty(turn)
    if state is None:
        return
    if _context_address(turn) is None:
        checkout_start(turn)  # a stale button: start over with what is saved now
        return
    _advance(turn, state)


# -- address -----------------------------------------------------------------------------------


def _offer_addresses(turn: Turn, saved: list[Address]) -> None:
    turn.set_state("checkout_address")
    lines = [f"{index}. {_address_text(turn, a)}" for index, a in enumerate(saved, start=1)]
    text = _("Where should we deliver? Tap a saved address, or type a new one.")
    choices = [
        _qr(f"{i}. {_address_title(turn, a)}", "ADDRESS_USE", a.pk) for i, a in enumerate(saved, 1)
    ]
    choices.append(_qr(_("New address"), "ADDRESS_NEW"))
    turn.say(builders.text(text + "\n\n" + "\n".join(lines), quick_replies=choices))


def _ask_address(turn: Turn, *, error: str = "") -> None:
    turn.set_state("checkout_address", checkout_draft={}, checkout_ask=None)
    text = _(
        "Please type your delivery address in one message: name, street and building, city, "
        "country. For example: Layla Haddad, Block 3 Street 12 House 7, Salmiya, Kuwait"
    )
    if error:
        text = f"{error}\n{text}"
    turn.say(builders.text(text, quick_replies=[common.qr_cart()]))


@on_payload("ADDRESS_NEW")
def address_new(turn: Turn, payload: Payload) -> None:
    if _cart_or_say_empty(turn) is None:
        return
    turn.set_state("", checkout_address_id=None)
    _ask_address(turn)


@on_payload("ADDRESS_LIST")
def address_list(turn: Turn, payload: Payload) -> None:
    if _cart_or_say_empty(turn) is None:
        return
    saved = _saved_addresses(turn)
    if saved:
        _offer_addresses(turn, saved)
    else:
        _ask_address(turn)


@on_payload("ADDRESS_USE")
def address_use(turn: Turn, payload: Payload) -> None:
    state = _cart_or_say_empty(turn)
    if state is None:
        return
    address_id = payload.int_param("arg")
    address = None
    if address_id is not None:
        # Only this customer's own addresses: an id from another shopper is simply not found.
        address = Address.objects.filter(pk=address_id, customer_id=turn.customer.pk).first()
    if address is None:
        turn.say(builders.text(_("Sorry, this address is not available.")))
        address_list(turn, payload)
        return
    turn.set_state("", checkout_address_id=address.pk)
    _advance(turn, state)


@engine.on_state("checkout_address")
def address_typed(turn: Turn, text: str) -> None:
    if _cart_or_say_empty(turn) is None:
        return
    draft = address_parse(text)
    _draft_continue(turn, draft)


_FIELD_QUESTIONS = {
    "name": lambda: _("Who will receive the parcel? Please type the full name."),
    "line1": lambda: _("What is the street address (street, building, flat)?"),
    "city": lambda: _("Which city or area?"),
    "country": lambda: _("Which country?"),
}


@engine.on_state("checkout_address_field")
def address_field_given(turn: Turn, text: str) -> None:
    if _cart_or_say_empty(turn) is None:
        return
    field = turn.context("checkout_ask")
    draft = dict(turn.context("checkout_draft") or {})
    text = " ".join(text.split())
    if field == "country":
        code = country_lookup(text)
        if code is None:
            _ask_field(turn, draft, "country", error=_("Sorry, I don't know this country."))
            return
        draft["country"] = code
    elif field in _FIELD_QUESTIONS and text:
        parts = [part.strip() for part in _SEPARATORS.split(text) if part.strip()]
        # "Salmiya, Kuwait" answers the city and the country at once.
        if len(parts) > 1 and not draft.get("country") and (code := country_lookup(parts[-1])):
            draft["country"] = code
            parts.pop()
        draft[field] = ", ".join(parts)
    _draft_continue(turn, draft)


@on_payload("COUNTRY")
def country_chosen(turn: Turn, payload: Payload) -> None:
    if _cart_or_say_empty(turn) is None:
        return
    code = payload.arg.upper()
    draft = dict(turn.context("checkout_draft") or {})
    # The engine clears the state before a payload: the pending question is in the context.
    if code not in COUNTRY_CODES or turn.context("checkout_ask") != "country":
        _ask_address(turn)
        return
    draft["country"] = code
    _draft_continue(turn, draft)


def _draft_continue(turn: Turn, draft: dict[str, str]) -> None:
    """Fill what the profile knows, ask for the next missing field, or save the address."""
    customer = turn.customer
    if not draft.get("name"):
        full_name = f"{customer.first_name} {customer.last_name}".strip()
        if full_name:
            draft["name"] = full_name
    missing = [field for field in _REQUIRED if not draft.get(field)]
    if missing:
        _ask_field(turn, draft, missing[0])
        return
    try:
        address = address_save(
            customer=customer,
            name=draft["name"],
            line1=draft["line1"],
            line2=draft.get("line2", ""),
            city=draft["city"],
            postal_code=draft.get("postal_code", ""),
            country=draft["country"],
            # Already in E.164 (the phone step checked it), so valid whatever the country.
            phone=customer.phone,
        )
    except AddressError as error:
        field = error.extra.get("field")
        if field in _FIELD_QUESTIONS:
            draft.pop(field, None)
            _ask_field(turn, draft, field, error=error.message)
            return
        _ask_address(turn, error=error.message)
        return
    turn.set_state("", checkout_address_id=address.pk, checkout_draft={}, checkout_ask=None)
    state = _cart_or_say_empty(turn)
    if state is not None:
        _advance(turn, state)


def _ask_field(turn: Turn, draft: dict[str, str], field: str, *, error: str = "") -> None:
    turn.set_state("checkout_address_field", checkout_draft=draft, checkout_ask=field)
    text = _FIELD_QUESTIONS[field]()
    if error:
        text = f"{error}\n{text}"
    choices = []
    if field == "country":
        choices = [
            _qr(_country_name(turn, code), "COUNTRY", code)
            for code in _shipping_countries(turn)[:10]
        ]
    turn.say(builders.text(text, quick_replies=[*choices, common.qr_cart()]))


def _say_no_delivery(turn: Turn, address: Address) -> None:
    turn.set_state("", checkout_address_id=None)
    text = _("Sorry, we don't deliver to %(country)s yet.") % {
        "country": _country_name(turn, address.country)
    }
    turn.say(
        builders.text(
            text,
            quick_replies=[
                _qr(_("Other address"), "ADDRESS_NEW"),
                common.qr_cart(),
                *common.main_menu_quick_replies(turn)[:2],
            ],
        )
    )


# -- shipping and placement --------------------------------------------------------------------


def _shipping_step(turn: Turn, state: _CartState, address: Address) -> None:
    """Place the order with the merchant's first method for ``address`` (the summary offers the
    others), or say that the shop does not deliver there."""
    options = _shipping_options(turn, state, address)
    if not options:
        _say_no_delivery(turn, address)
        return
    turn.set_state("", checkout_shipping_id=options[0].method.pk)
    _place(turn, state, address, options[0].method, options=options)


def _shipping_ask(turn: Turn, state: _CartState, address: Address) -> None:
    """Ask which method, after a refused choice."""
    options = _shipping_options(turn, state, address)
    if not options:
        _say_no_delivery(turn, address)
        return
    turn.set_state("checkout_shipping")
    text = _("How should we ship it?") + "\n" + _shipping_lines(turn, options)
    turn.say(builders.text(text, quick_replies=[*_shipping_qrs(turn, options), common.qr_cart()]))


def _method_for(turn: Turn, address: Address, method_id: int | None) -> ShippingMethod | None:
    """The shop's active method ``method_id`` if it delivers to ``address``."""
    if method_id is None:
        return None
    methods = shipping_methods_for(merchant=turn.merchant, country=address.country)
    return next((method for method in methods if method.pk == method_id), None)


@on_payload("SHIP")
def shipping_chosen(turn: Turn, payload: Payload) -> None:
    state = _cart_or_say_empty(turn)
    if state is None:
        return
    address = _context_address(turn)
    if address is None:
        checkout_start(turn)  # a stale button from an earlier checkout
        return
    method = _method_for(turn, address, payload.int_param("arg"))
    if method is None:
        turn.say(builders.text(_("Sorry, this shipping method is not available.")))
        _shipping_ask(turn, state, address)
        return
    turn.set_state("", checkout_shipping_id=method.pk)
    _place(turn, state, address, method, options=_shipping_options(turn, state, address))


@on_payload("PLACE_ORDER")
def place_order(turn: Turn, payload: Payload) -> None:
    state = _cart_or_say_empty(turn)
    if state is None:
        return
    address = _context_address(turn)
    method_id = turn.context("checkout_shipping_id")
    method = _method_for(turn, address, method_id if isinstance(method_id, int) else None)
    if address is None or method is None:
        checkout_start(turn)
        return
    _place(turn, state, address, method, options=_shipping_options(turn, state, address))


def _place(
    turn: Turn,
    state: _CartState,
    address: Address,
    method: ShippingMethod,
    *,
    options: list[_Option] | None = None,
    replaces: Order | None = None,
) -> None:
    """Place the order and show the summary with the Pay button, or explain what went wrong.

    ``options`` are the methods that deliver to ``address`` (the others are offered on the
    summary); ``replaces`` is the order this one replaces after a change of shipping or details.
    """
    customer = turn.customer
    try:
        order = order_create_from_cart(
            cart=state.cart,
            shipping_method=method,
            address=address,
            contact_email=customer.email,
            contact_phone=customer.phone,
        )
    except VoucherError as error:
        _voucher_dropped(turn, state, address, method, error)
        return
    except OutOfStockError as error:
        _out_of_stock(turn, state, error)
        return
    except ShippingError as error:
        turn.say(builders.text(error.message))
        _shipping_ask(turn, state, address)
        return
    except AddressError as error:
        turn.set_state("", checkout_address_id=None)
        _ask_address(turn, error=error.message)
        return
    except CartError as error:
        if error.code in {"cart_empty", "cart_closed"}:
            _cart_or_say_empty(turn)
            return
        _say_error(turn, error)
        return
    except ApplicationError as error:
        _say_error(turn, error)
        return
    _context_clear(turn)
    others = [option for option in options or () if option.method.pk != method.pk]
    _say_summary(turn, order, address=address, others=others, replaces=replaces)


def _say_error(turn: Turn, error: ApplicationError) -> None:
    turn.say(
        builders.text(
            error.message,
            quick_replies=[common.qr_cart(), *common.main_menu_quick_replies(turn)[:3]],
        )
    )


def _voucher_dropped(
    turn: Turn,
    state: _CartState,
    address: Address,
    method: ShippingMethod,
    error: VoucherError,
) -> None:
    """The cart's code stopped applying: remove it, show the new total, let the shopper go on."""
    code = state.cart.voucher_code
    cart_remove_voucher(cart=state.cart)
    breakdown = cart_price_of_lines(
        cart=state.cart,
        lines=state.lines,
        voucher=None,
        shipping_method=method,
        country=address.country,
    )
    text = _("The code %(code)s no longer applies: %(reason)s I removed it from your cart.") % {
        "code": code,
        "reason": error.message,
    }
    text += "\n" + _("Your new total is %(total)s.") % {
        "total": common.money(turn, breakdown.total)
    }
    turn.set_state("", checkout_shipping_id=method.pk, checkout_address_id=address.pk)
    turn.say(
        builders.text(
            text,
            quick_replies=[_qr(_("Continue"), "PLACE_ORDER"), common.qr_cart()],
        )
    )


def _out_of_stock(turn: Turn, state: _CartState, error: OutOfStockError) -> None:
    variant_id = error.extra.get("variant_id")
    variant = next((v for v, _quantity in state.lines if v.pk == variant_id), None)
    available = error.extra.get("available", 0)
    if variant is None:
        text = error.message
    else:
        name = variant.product.localized_title(turn.language)
        variant_name = variant.localized_name(turn.language)
        if variant_name:
            name = f"{name} ({variant_name})"
        if available:
            text = ngettext(
                "Sorry, only %(count)d of %(name)s is left.",
                "Sorry, only %(count)d of %(name)s are left.",
                available,
            ) % {"count": available, "name": name}
        else:
            text = _("Sorry, %(name)s has just sold out.") % {"name": name}
    text += "\n" + _("Please change your cart, then check out again.")
    _context_clear(turn)
    turn.say(
        builders.text(
            text, quick_replies=[common.qr_cart(), *common.main_menu_quick_replies(turn)[:3]]
        )
    )


# -- changing a placed, unpaid order -----------------------------------------------------------


def cart_refill_from_order(turn: Turn, order: Order) -> list[str]:
    """Put ``order``'s items back into the open cart at today's prices and stock (and its code,
    if it still applies); returns the titles that could not go back in."""
    cart = cart_get_open(customer=turn.customer)
    missing = []
    for line in order.lines.all():
        if line.variant_id is None:
            missing.append(line.product_title)
            continue
        try:
            cart_add(cart=cart, variant_id=line.variant_id, quantity=line.quantity)
        except (CartError, OutOfStockError):
            missing.append(line.product_title)
    if order.voucher_code and not cart.voucher_code:
        # When it no longer applies, the new summary simply shows the total without it.
        with contextlib.suppress(ApplicationError):
            cart_apply_voucher(cart=cart, code=order.voucher_code)
    return missing


def _order_to_change(turn: Turn, payload: Payload) -> Order | None:
    """The shopper's own unpaid order named by the payload, cancelled and back in the cart;
    ``None`` after explaining why it cannot be changed (paid, expired, payment page opened)."""
    order_id = payload.int_param("order")
    order = (
        Order.objects.filter(pk=order_id, customer_id=turn.customer.pk)
        .prefetch_related("lines")
        .first()
        if order_id is not None
        else None
    )
    if order is None or order.status != Order.Status.PENDING_PAYMENT:
        text = _("This order can no longer be changed.")
        if order is not None:
            text = _("Order %(number)s can no longer be changed.") % {"number": order.number}
        turn.say(common.menu_message(turn, text))
        return None
    if OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.PAYMENT_STARTED).exists():
        text = _(
            "You already opened the payment page of order %(number)s, so it can no longer "
            "be changed. Pay it there, or leave it and it will be released."
        ) % {"number": order.number}
        turn.say(
            builders.button_template(
                text, [order_pay_button(turn, order)], quick_replies=[common.qr_orders()]
            )
        )
        return None
    order_cancel(order=order, actor=OrderEvent.Actor.CUSTOMER, reason=_("Changed in the chat."))
    missing = cart_refill_from_order(turn, order)
    if missing:
        separator = "، " if turn.language == "ar" else ", "
        turn.say(
            builders.text(
                _("Sorry, these items are no longer available: %(items)s.")
                % {"items": separator.join(missing)}
            )
        )
    return order


@on_payload("SHIP_SWITCH")
def shipping_switch(turn: Turn, payload: Payload) -> None:
    """Another shipping method for a placed, unpaid order: place it again with that one."""
    address_id = payload.int_param("address")
    address = (
        Address.objects.filter(pk=address_id, customer_id=turn.customer.pk).first()
        if address_id is not None
        else None
    )
    method = _method_for(turn, address, payload.int_param("method")) if address else None
    if method is None:
        turn.say(common.menu_message(turn, _("Sorry, this shipping method is not available.")))
        return
    old = _order_to_change(turn, payload)
    if old is None:
        return
    state = _cart_or_say_empty(turn)
    if state is None:
        return
    turn.set_state("", checkout_address_id=address.pk, checkout_shipping_id=method.pk)
    _place(
        turn,
        state,
        address,
        method,
        options=_shipping_options(turn, state, address),
        replaces=old,
    )


@on_payload("DETAILS_CHANGE")
def details_change(turn: Turn, payload: Payload) -> None:
    """Back to the confirmation step (address, contact, shipping) for a placed, unpaid order."""
    if _order_to_change(turn, payload) is None:
        return
    state = _cart_or_say_empty(turn)
    if state is None:
        return
    address = address_default_for(customer=turn.customer)
    if turn.customer.email and turn.customer.phone and address is not None:
        _confirm_saved(turn, state, address)
    else:
        _advance(turn, state)


# -- summary and Pay ---------------------------------------------------------------------------


def order_pay_button(turn: Turn, order: Order) -> dict:
    """The Pay URL button for ``order``: the checkout page in a tall webview, without the share
    button (the link is the shopper's own)."""
    url = checkout_url(order=order)
    return builders.url_button(
        _("Pay %(total)s") % {"total": common.money(turn, order.total)},
        url,
        webview_height_ratio="tall",
        messenger_extensions=True,
        fallback_url=url,
        share_button=False,
    )


def _tax_label(turn: Turn) -> str:
    label = (turn.merchant.tax_label or "").strip()
    return label if label and label != "Tax" else pgettext("order summary", "Tax")


def order_summary_lines(turn: Turn, order: Order) -> list[str]:
    """The order's lines and amounts, one per line of text (used by "My orders" too)."""
    lines = list(order.lines.all())
    text = []
    for line in lines[:_SUMMARY_LINES]:
        title = (
            f"{line.product_title} ({line.variant_name})"
            if line.variant_name
            else line.product_title
        )
        total = common.money(turn, Money(line.total_minor, order.currency))
        text.append(f"{line.quantity} × {title}: {total}")
    if len(lines) > _SUMMARY_LINES:
        more = len(lines) - _SUMMARY_LINES
        text.append(
            ngettext("and %(count)d more item", "and %(count)d more items", more) % {"count": more}
        )
    text.append(_("Subtotal: %(amount)s") % {"amount": common.money(turn, order.subtotal)})
    if order.discount_minor:
        text.append(
            _("Discount (%(code)s): -%(amount)s")
            % {"code": order.voucher_code, "amount": common.money(turn, order.discount)}
        )
    if order.shipping_method_name or order.shipping_minor:
        amount = (
            common.money(turn, order.shipping)
            if order.shipping_minor
            else pgettext("shipping price", "free")
        )
        text.append(
            _("Shipping (%(method)s): %(amount)s")
            % {"method": order.shipping_method_name, "amount": amount}
        )
    if order.tax_minor:
        values = {"label": _tax_label(turn), "amount": common.money(turn, order.tax)}
        if order.prices_include_tax:
            text.append(_("Includes %(label)s: %(amount)s") % values)
        else:
            text.append(_("%(label)s: %(amount)s") % values)
    text.append(_("Total: %(amount)s") % {"amount": common.money(turn, order.total)})
    return text


def _summary_quick_replies(
    turn: Turn, order: Order, *, address: Address | None, others: list[_Option]
) -> list[dict]:
    """Other shipping methods (one tap places the order again with it), Change details, and
    the menu."""
    replies = []
    if address is not None:
        replies += [
            builders.quick_reply(
                _option_label(turn, option),
                payload_build(
                    "SHIP_SWITCH", order=order.pk, method=option.method.pk, address=address.pk
                ),
            )
            for option in others[:_SWITCHES_SHOWN]
        ]
    replies.append(
        builders.quick_reply(_("Change details"), payload_build("DETAILS_CHANGE", order=order.pk))
    )
    return [*replies, common.qr_shop(), common.qr_orders(), common.qr_help()]


def _say_summary(
    turn: Turn,
    order: Order,
    *,
    address: Address | None = None,
    others: list[_Option] = (),
    replaces: Order | None = None,
) -> None:
    head = _("Order %(number)s is ready to pay.") % {"number": order.number}
    if replaces is not None:
        head = _("Order %(number)s replaces %(old)s and is ready to pay.") % {
            "number": order.number,
            "old": replaces.number,
        }
    delivery = _joined(
        turn,
        [
            order.shipping_name,
            order.shipping_line1,
            order.shipping_line2,
            order.shipping_city,
            order.shipping_region,
            order.shipping_postal_code,
            _country_name(turn, order.shipping_country) if order.shipping_country else "",
        ],
    )
    minutes = settings.STOCK_RESERVATION_MINUTES
    hold = ngettext(
        "We hold your items for %(minutes)d minute.",
        "We hold your items for %(minutes)d minutes.",
        minutes,
    ) % {"minutes": minutes}
    lines = [
        head,
        "",
        *order_summary_lines(turn, order),
        "",
        _("Deliver to: %(address)s") % {"address": delivery},
        hold,
    ]
    if others and address is not None:
        lines.append(_("Other shipping options are below."))
    body = "\n".join(lines)
    quick_replies = _summary_quick_replies(turn, order, address=address, others=others)
    button = order_pay_button(turn, order)
    if len(body) <= _BUTTON_TEXT_LIMIT:
        turn.say(builders.button_template(body, [button], quick_replies=quick_replies))
        return
    turn.say(builders.text(body))
    turn.say(
        builders.button_template(
            _("Total: %(amount)s") % {"amount": common.money(turn, order.total)} + "\n" + hold,
            [button],
            quick_replies=quick_replies,
        )
    )
