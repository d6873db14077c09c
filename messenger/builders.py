"""Send API ``message`` objects (and the sender-action request body), built by pure functions.

Every builder returns plain JSON data (``dict``/``list``/``str``/``int``/``float``/``bool``), so a
result can go straight into ``OutboundMessage.message`` (a ``JSONField``) and into
``requests.post(json=...)`` without a custom encoder.

Platform limits (Messenger Platform reference: quick replies, buttons, generic/button/receipt/
media templates) are enforced here, two ways:

- **Display strings are truncated** to their limit with "…" (the ellipsis counts): titles and
  subtitles 80, button and quick-reply titles 20, text 2000, button-template text 640. Limits
  count characters (code points), not bytes, so Arabic text gets as many letters as English; a
  cut never strands a combining mark (Arabic harakat) or splits an emoji joined with ZWJ.
- **Counts and machine values raise** :class:`BuilderError` (a ``ValueError``): more than 10
  elements, 3 buttons or 13 quick replies; a payload over 1000 characters (a truncated payload
  would be a different payload); an unknown enum value; a URL that is not ``http(s)``. These are
  programming errors: callers keep within the limits (page through 10 cards, etc.).

Money on receipts is a JSON **number in major units** built from :class:`core.money.Money`
exactly; see :func:`money_json`. The legacy buy button (:func:`payment_button`) takes amounts as
exact decimal **strings** instead, as its reference shows (``"12.50"``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.utils.functional import Promise

from core.money import Money

__all__ = [
    "BUTTONS_MAX",
    "BUTTON_TEMPLATE_TEXT_MAX",
    "BUTTON_TITLE_MAX",
    "ELEMENTS_MAX",
    "ELLIPSIS",
    "PAYLOAD_MAX",
    "QUICK_REPLIES_MAX",
    "QUICK_REPLY_TITLE_MAX",
    "RECEIPT_ELEMENTS_MAX",
    "SENDER_ACTIONS",
    "SUBTITLE_MAX",
    "TEXT_MAX",
    "TITLE_MAX",
    "WEBVIEW_HEIGHT_RATIOS",
    "BuilderError",
    "button_template",
    "default_action",
    "generic_element",
    "generic_template",
    "image",
    "is_http_url",
    "media_template",
    "money_json",
    "payment_button",
    "postback_button",
    "quick_reply",
    "quick_reply_email",
    "quick_reply_phone",
    "receipt_element",
    "receipt_template",
    "sender_action_body",
    "text",
    "truncate",
    "url_button",
]

TITLE_MAX = 80  # generic element title (receipt element titles too)
SUBTITLE_MAX = 80
BUTTON_TITLE_MAX = 20
QUICK_REPLY_TITLE_MAX = 20
TEXT_MAX = 2000
BUTTON_TEMPLATE_TEXT_MAX = 640
ELEMENTS_MAX = 10  # generic template carousel
BUTTONS_MAX = 3  # per generic element, per button template
MEDIA_BUTTONS_MAX = 1
QUICK_REPLIES_MAX = 13
PAYLOAD_MAX = 1000  # postback and quick-reply payloads
RECEIPT_ELEMENTS_MAX = 100

ELLIPSIS = "…"
WEBVIEW_HEIGHT_RATIOS = ("compact", "tall", "full")
IMAGE_ASPECT_RATIOS = ("horizontal", "square")
MEDIA_TYPES = ("image", "video")
SENDER_ACTIONS = ("typing_on", "typing_off", "mark_seen")
QUICK_REPLY_CONTENT_TYPES = ("text", "user_email", "user_phone_number")
PAYMENT_TYPES = ("FIXED_AMOUNT", "FLEXIBLE_AMOUNT")
REQUESTED_USER_INFO = ("shipping_address", "contact_name", "contact_phone", "contact_email")


class BuilderError(ValueError):
    """A message that the platform would reject (too many items, bad URL, unknown option)."""


# -- strings ----------------------------------------------------------------------------------

_ZWJ = "\u200d"


def _attaches_to_previous(char: str) -> bool:
    """Characters that belong to the one before them: combining marks (Arabic harakat, accents),
    variation selectors, ZWJ, emoji skin-tone modifiers."""
    return (
        unicodedata.category(char) in {"Mn", "Mc", "Me"}
        or char in {_ZWJ, "\ufe0e", "\ufe0f"}
        or 0x1F3FB <= ord(char) <= 0x1F3FF
    )


def truncate(value: str, limit: int) -> str:
    """``value`` if it fits in ``limit`` characters, else its head plus "…" (``limit`` in all).

    The cut moves left rather than separate a base character from its combining marks or break
    a ZWJ emoji sequence, and trailing spaces before the ellipsis are dropped.
    """
    if len(value) <= limit:
        return value
    cut = limit - len(ELLIPSIS)
    while cut > 0 and (_attaches_to_previous(value[cut]) or value[cut - 1] == _ZWJ):
        cut -= 1
    return value[:cut].rstrip() + ELLIPSIS


def _string(value: Any, name: str, *, required: bool = True) -> str:
    """A str from ``value`` (lazy translations are resolved); empty is refused when required."""
    if isinstance(value, Promise):
        value = str(value)
    if not isinstance(value, str):
        raise BuilderError(f"{name} must be a string, got {type(value).__name__}.")
    if required and not value.strip():
        raise BuilderError(f"{name} must not be empty.")
    return value


def _display(value: Any, name: str, limit: int, *, required: bool = True) -> str:
    return truncate(_string(value, name, required=required), limit)


def _payload(value: Any, name: str = "payload", *, required: bool = True) -> str:
    payload = _string(value, name, required=required)
    if len(payload) > PAYLOAD_MAX:
        raise BuilderError(f"{name} is {len(payload)} characters; the limit is {PAYLOAD_MAX}.")
    return payload


def _url(value: Any, name: str = "url") -> str:
    url = _string(value, name)
    try:
        parts = urlsplit(url)
    except ValueError:
        raise BuilderError(f"{name} is not a valid URL: {url!r}.") from None
    if parts.scheme not in {"http", "https"} or not parts.netloc or any(c.isspace() for c in url):
        raise BuilderError(f"{name} must be an absolute http(s) URL, got {url!r}.")
    return url


def is_http_url(value: Any) -> bool:
    """Whether the builders accept ``value`` as a URL (absolute http(s), no spaces), so that a
    caller can leave out an optional image or button instead of failing the whole message."""
    try:
        _url(value)
    except BuilderError:
        return False
    return True


def _choice(value: Any, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise BuilderError(f"{name} must be one of {', '.join(choices)}; got {value!r}.")
    return value


def _items(items: Sequence[Mapping], name: str, maximum: int, *, minimum: int = 0) -> list[dict]:
    """Copies of ``items`` (dicts), refusing too few or too many."""
    if isinstance(items, Mapping | str):
        raise BuilderError(f"{name} must be a sequence of objects.")
    copied = []
    for item in items:
        if not isinstance(item, Mapping):
            raise BuilderError(f"each of {name} must be an object, got {type(item).__name__}.")
        copied.append(dict(item))
    if len(copied) > maximum:
        raise BuilderError(f"{len(copied)} {name}; the platform allows at most {maximum}.")
    if len(copied) < minimum:
        raise BuilderError(f"{name}: at least {minimum} required.")
    return copied


def _quick_replies(quick_replies: Sequence[Mapping]) -> list[dict]:
    replies = _items(quick_replies, "quick replies", QUICK_REPLIES_MAX)
    for reply in replies:
        _choice(reply.get("content_type"), "quick reply content_type", QUICK_REPLY_CONTENT_TYPES)
    return replies


def _with_quick_replies(message: dict, quick_replies: Sequence[Mapping]) -> dict:
    replies = _quick_replies(quick_replies)
    if replies:
        message["quick_replies"] = replies
    return message


def _buttons(buttons: Sequence[Mapping], maximum: int = BUTTONS_MAX, *, minimum: int = 0):
    copied = _items(buttons, "buttons", maximum, minimum=minimum)
    for button in copied:
        if not isinstance(button.get("type"), str):
            raise BuilderError("each button needs a type (use postback_button / url_button).")
    return copied


# -- text and quick replies -------------------------------------------------------------------


def text(text: str, *, quick_replies: Sequence[Mapping] = ()) -> dict:
    """A text message (truncated to 2000 characters), optionally with up to 13 quick replies."""
    return _with_quick_replies({"text": _display(text, "text", TEXT_MAX)}, quick_replies)


def quick_reply(title: str, payload: str, *, image_url: str | None = None) -> dict:
    """A text quick reply: ``title`` (20 characters, truncated) sends ``payload`` back."""
    reply = {
        "content_type": "text",
        "title": _display(title, "quick reply title", QUICK_REPLY_TITLE_MAX),
        # The reference allows an empty payload only for a quick reply with an image.
        "payload": _payload(payload, required=image_url is None),
    }
    if image_url is not None:
        reply["image_url"] = _url(image_url, "image_url")
    return reply


def quick_reply_email() -> dict:
    """Offers the email on the shopper's profile; it comes back as a message whose quick-reply
    payload is the address (``MessageEvent.is_email_reply``). Not shown if the profile has none.
    """
    return {"content_type": "user_email"}


def quick_reply_phone() -> dict:
    """Like :func:`quick_reply_email`, for the phone number (``MessageEvent.is_phone_reply``)."""
    return {"content_type": "user_phone_number"}


# -- buttons ----------------------------------------------------------------------------------


def postback_button(title: str, payload: str) -> dict:
    return {
        "type": "postback",
        "title": _display(title, "button title", BUTTON_TITLE_MAX),
        "payload": _payload(payload),
    }


def _web_url(
    url: str,
    *,
    webview_height_ratio: str,
    messenger_extensions: bool,
    fallback_url: str | None,
    share_button: bool,
) -> dict:
    action: dict[str, Any] = {
        "type": "web_url",
        "url": _url(url),
        "webview_height_ratio": _choice(
            webview_height_ratio, "webview_height_ratio", WEBVIEW_HEIGHT_RATIOS
        ),
    }
    if not isinstance(messenger_extensions, bool):
        raise BuilderError("messenger_extensions must be True or False.")
    if messenger_extensions:
        action["messenger_extensions"] = True
    if fallback_url is not None:
        # The reference: "may only be specified if messenger_extensions is true".
        if not messenger_extensions:
            raise BuilderError("fallback_url needs messenger_extensions=True.")
        action["fallback_url"] = _url(fallback_url, "fallback_url")
    if not share_button:
        action["webview_share_button"] = "hide"
    return action


def url_button(
    title: str,
    url: str,
    *,
    webview_height_ratio: str = "tall",
    messenger_extensions: bool = False,
    fallback_url: str | None = None,
    share_button: bool = True,
) -> dict:
    """A ``web_url`` button opening ``url`` in the Messenger webview.

    ``webview_height_ratio`` is ``compact``, ``tall`` or ``full``. ``messenger_extensions``
    needs the domain in the page's whitelisted domains; ``fallback_url`` (only with extensions)
    is opened by clients without them. ``share_button=False`` hides the webview's share button
    (``webview_share_button: hide``), for pages showing private data such as a checkout.
    """
    button = {
        "type": "web_url",
        "title": _display(title, "button title", BUTTON_TITLE_MAX),
    }
    button.update(
        _web_url(
            url,
            webview_height_ratio=webview_height_ratio,
            messenger_extensions=messenger_extensions,
            fallback_url=fallback_url,
            share_button=share_button,
        )
    )
    return button


_DECIMAL_AMOUNT = re.compile(r"[0-9]{1,15}(\.[0-9]{1,4})?")


def _price_amount(value: Any, name: str) -> str:
    """A buy-button amount: an exact decimal string in major units (``Money`` is converted)."""
    if isinstance(value, Money):
        if value.amount_minor < 0:
            raise BuilderError(f"{name} must not be negative.")
        return str(value.to_major())
    if not isinstance(value, str) or not _DECIMAL_AMOUNT.fullmatch(value):
        raise BuilderError(f'{name} must be Money or a decimal string such as "12.50".')
    return value


def _payment_summary(summary: Any) -> dict:
    if not isinstance(summary, Mapping):
        raise BuilderError("payment_summary must be an object.")
    currency = _string(summary.get("currency"), "payment_summary currency")
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise BuilderError(f"payment_summary currency must be an ISO code, got {currency!r}.")
    result: dict[str, Any] = {
        "currency": currency,
        "payment_type": _choice(
            summary.get("payment_type"), "payment_summary payment_type", PAYMENT_TYPES
        ),
    }
    if "is_test_payment" in summary:
        if not isinstance(summary["is_test_payment"], bool):
            raise BuilderError("payment_summary is_test_payment must be True or False.")
        result["is_test_payment"] = summary["is_test_payment"]
    result["merchant_name"] = _string(summary.get("merchant_name"), "merchant_name")
    requested = summary.get("requested_user_info", [])
    if isinstance(requested, str | Mapping) or not isinstance(requested, Sequence):
        raise BuilderError("requested_user_info must be a list.")
    for item in requested:
        _choice(item, "requested_user_info item", REQUESTED_USER_INFO)
    if len(set(requested)) != len(requested):
        raise BuilderError("requested_user_info lists a field twice.")
    result["requested_user_info"] = list(requested)
    prices = _items(summary.get("price_list", ()), "price_list items", 100, minimum=1)
    result["price_list"] = [
        {
            "label": _string(price.get("label"), "price_list label"),
            "amount": _price_amount(price.get("amount"), "price_list amount"),
        }
        for price in prices
    ]
    return result


def payment_button(*, title: str = "buy", payload: str, payment_summary: Mapping) -> dict:
    """The legacy v1.2 buy button (``type: payment``): Messenger's own checkout dialog.

    The reference wants ``title`` to be ``"buy"`` (the dialog is Messenger's, in the shopper's
    language) and the button to come first on its card (:func:`generic_element` checks that).
    ``payment_summary``: ``currency`` (ISO code), ``payment_type`` (``FIXED_AMOUNT`` or
    ``FLEXIBLE_AMOUNT``), optional ``is_test_payment``, ``merchant_name``,
    ``requested_user_info`` (``shipping_address``, ``contact_name``, ``contact_phone``,
    ``contact_email``) and a ``price_list`` of ``{"label", "amount"}`` whose amounts are exact
    decimal strings in major units (``"12.50"``; ``Money`` values are converted exactly).
    """
    return {
        "type": "payment",
        "title": _display(title, "button title", BUTTON_TITLE_MAX),
        "payload": _payload(payload),
        "payment_summary": _payment_summary(payment_summary),
    }


def default_action(
    url: str,
    *,
    webview_height_ratio: str = "tall",
    messenger_extensions: bool = False,
    fallback_url: str | None = None,
    share_button: bool = True,
) -> dict:
    """What tapping a generic element opens: a URL button without a title."""
    return _web_url(
        url,
        webview_height_ratio=webview_height_ratio,
        messenger_extensions=messenger_extensions,
        fallback_url=fallback_url,
        share_button=share_button,
    )


# -- templates --------------------------------------------------------------------------------


def _template(payload: dict, quick_replies: Sequence[Mapping]) -> dict:
    return _with_quick_replies(
        {"attachment": {"type": "template", "payload": payload}}, quick_replies
    )


def generic_element(
    title: str,
    *,
    subtitle: str = "",
    image_url: str | None = None,
    buttons: Sequence[Mapping] = (),
    default_action: Mapping | None = None,
) -> dict:
    """One card of a generic template: title and subtitle (80 characters each, truncated), an
    image, up to 3 buttons and a ``default_action`` (see :func:`default_action`; a URL button
    is accepted too, its title dropped). The platform needs something besides the title."""
    element: dict[str, Any] = {"title": _display(title, "title", TITLE_MAX)}
    subtitle = _display(subtitle, "subtitle", SUBTITLE_MAX, required=False)
    if subtitle:
        element["subtitle"] = subtitle
    if image_url is not None:
        element["image_url"] = _url(image_url, "image_url")
    if default_action is not None:
        if not isinstance(default_action, Mapping) or default_action.get("type") != "web_url":
            raise BuilderError("default_action must be a web_url action (default_action()).")
        action = {key: value for key, value in default_action.items() if key != "title"}
        _url(action.get("url"), "default_action url")
        element["default_action"] = action
    copied = _buttons(buttons)
    if any(button["type"] == "payment" for button in copied[1:]):
        raise BuilderError("a payment (buy) button must be the first button of its element.")
    if copied:
        element["buttons"] = copied
    if len(element) == 1:
        raise BuilderError("a generic element needs a subtitle, image, button or default action.")
    return element


def generic_template(
    elements: Sequence[Mapping],
    *,
    quick_replies: Sequence[Mapping] = (),
    image_aspect_ratio: str = "square",
) -> dict:
    """A card, or a carousel of up to 10 (``generic_element``). ``image_aspect_ratio`` is
    ``square`` (1:1) or ``horizontal`` (1.91:1, the platform's default)."""
    payload = {
        "template_type": "generic",
        "image_aspect_ratio": _choice(
            image_aspect_ratio, "image_aspect_ratio", IMAGE_ASPECT_RATIOS
        ),
        "elements": _items(elements, "elements", ELEMENTS_MAX, minimum=1),
    }
    return _template(payload, quick_replies)


def button_template(
    text: str, buttons: Sequence[Mapping], *, quick_replies: Sequence[Mapping] = ()
) -> dict:
    """Text (640 characters, truncated) with 1 to 3 buttons."""
    payload = {
        "template_type": "button",
        "text": _display(text, "text", BUTTON_TEMPLATE_TEXT_MAX),
        "buttons": _buttons(buttons, minimum=1),
    }
    return _template(payload, quick_replies)


def media_template(
    *,
    media_type: str,
    url: str | None = None,
    attachment_id: str | None = None,
    buttons: Sequence[Mapping] = (),
    quick_replies: Sequence[Mapping] = (),
) -> dict:
    """An image or video with at most one button. The platform takes only a Facebook URL or an
    ``attachment_id`` from the Attachment Upload API; for any other image use :func:`image`."""
    element: dict[str, Any] = {"media_type": _choice(media_type, "media_type", MEDIA_TYPES)}
    if (url is None) == (attachment_id is None):
        raise BuilderError("give exactly one of url and attachment_id.")
    if url is not None:
        element["url"] = _url(url)
    else:
        element["attachment_id"] = _string(attachment_id, "attachment_id")
    copied = _buttons(buttons, MEDIA_BUTTONS_MAX)
    if copied:
        element["buttons"] = copied
    return _template({"template_type": "media", "elements": [element]}, quick_replies)


def image(url: str, *, quick_replies: Sequence[Mapping] = ()) -> dict:
    """An image attachment fetched by Meta from ``url``."""
    return _with_quick_replies(
        {"attachment": {"type": "image", "payload": {"url": _url(url)}}}, quick_replies
    )


# -- receipt ----------------------------------------------------------------------------------


def money_json(amount: Money) -> int | float:
    """``amount`` in major units as a JSON number that reads back exactly.

    JSON has no decimal type and the stdlib encoder cannot write a ``Decimal`` as a bare number,
    while the outbox stores bodies in a ``JSONField`` and ``requests`` serializes with ``json``:
    both need native types. So: whole amounts become ``int`` (JPY 1500 -> ``1500``); others a
    ``float`` whose shortest repr, which is what ``json.dumps`` writes, is exactly the decimal
    (``Decimal("19.99")`` -> ``19.99``, KWD ``12.345`` -> ``12.345``). Python's float repr is the
    shortest string that round-trips, and any decimal of up to 15 significant digits round-trips,
    so this holds for every realistic price; it is checked, and an amount that would not survive
    raises :class:`BuilderError` instead of being rounded. No arithmetic is ever done on the float.
    """
    if not isinstance(amount, Money):
        raise BuilderError(f"amounts must be Money, got {type(amount).__name__}.")
    major = amount.to_major()
    if major == major.to_integral_value():
        return int(major)
    as_float = float(major)
    if Decimal(repr(as_float)) != major:
        raise BuilderError(f"{amount} cannot be sent exactly as a JSON number.")
    return as_float


def _amount(value: Any, name: str, currency: str) -> int | float:
    if not isinstance(value, Money):
        raise BuilderError(f"{name} must be Money, got {type(value).__name__}.")
    if value.currency != currency:
        raise BuilderError(f"{name} is in {value.currency}; the receipt is in {currency}.")
    return money_json(value)


def receipt_element(
    title: str,
    *,
    price: Money,
    quantity: int = 1,
    subtitle: str = "",
    image_url: str | None = None,
) -> dict:
    """An order line for :func:`receipt_template` (``price`` is the line's price as Money;
    the receipt converts it and checks its currency)."""
    element: dict[str, Any] = {"title": title, "price": price, "quantity": quantity}
    if subtitle:
        element["subtitle"] = subtitle
    if image_url is not None:
        element["image_url"] = image_url
    return element


_ADDRESS_REQUIRED = ("street_1", "city", "postal_code", "state", "country")
_SUMMARY_KEYS = ("subtotal", "shipping_cost", "total_tax", "total_cost")


def _receipt_address(address: Mapping) -> dict:
    """The shipping address; the reference requires every field but ``street_2``. Countries
    without states or postal codes send them empty."""
    if not isinstance(address, Mapping):
        raise BuilderError("address must be an object.")
    result = {}
    for key in ("street_1", "street_2", "city", "postal_code", "state", "country"):
        value = address.get(key, "")
        required = key in {"street_1", "city", "country"}
        result[key] = _string("" if value is None else value, f"address {key}", required=required)
    return result


def _timestamp(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise BuilderError("timestamp must be an aware datetime.")
        return str(int(value.timestamp()))
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return value
    raise BuilderError("timestamp must be seconds (int or digit string) or an aware datetime.")


def receipt_template(
    *,
    recipient_name: str,
    order_number: str,
    currency: str,
    payment_method: str,
    order_url: str | None,
    timestamp: datetime | int | str | None,
    address: Mapping | None,
    summary: Mapping[str, Money | None],
    adjustments: Sequence[Mapping] = (),
    elements: Sequence[Mapping] = (),
) -> dict:
    """The order receipt. Every amount is :class:`Money` in ``currency`` and is sent exactly
    (:func:`money_json`).

    :param summary: ``total_cost`` (required), ``subtotal``, ``shipping_cost``, ``total_tax``
        (``None`` or absent: omitted).
    :param adjustments: ``{"name": str, "amount": Money}`` (discounts, as positive amounts).
    :param elements: order lines from :func:`receipt_element` (at most 100).
    :param timestamp: when the order was placed: an aware datetime or epoch seconds.
    """
    currency = _string(currency, "currency").upper()
    payload: dict[str, Any] = {
        "template_type": "receipt",
        "recipient_name": _string(recipient_name, "recipient_name"),
        "order_number": _string(order_number, "order_number"),
        "currency": currency,
        "payment_method": _string(payment_method, "payment_method"),
    }
    if order_url is not None:
        payload["order_url"] = _url(order_url, "order_url")
    if timestamp is not None:
        payload["timestamp"] = _timestamp(timestamp)

    lines = []
    for element in _items(elements, "receipt elements", RECEIPT_ELEMENTS_MAX):
        line: dict[str, Any] = {"title": _display(element.get("title"), "title", TITLE_MAX)}
        subtitle = _display(element.get("subtitle", ""), "subtitle", SUBTITLE_MAX, required=False)
        if subtitle:
            line["subtitle"] = subtitle
        quantity = element.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise BuilderError(f"quantity must be a non-negative int, got {quantity!r}.")
        line["quantity"] = quantity
        line["price"] = _amount(element.get("price"), "price", currency)
        line["currency"] = currency
        if element.get("image_url") is not None:
            line["image_url"] = _url(element["image_url"], "image_url")
        lines.append(line)
    if lines:
        payload["elements"] = lines

    if address is not None:
        payload["address"] = _receipt_address(address)

    if not isinstance(summary, Mapping):
        raise BuilderError("summary must be an object.")
    unknown = set(summary) - set(_SUMMARY_KEYS)
    if unknown:
        raise BuilderError(f"unknown summary fields: {', '.join(sorted(map(str, unknown)))}.")
    if summary.get("total_cost") is None:
        raise BuilderError("summary needs total_cost.")
    payload["summary"] = {
        key: _amount(summary[key], key, currency)
        for key in _SUMMARY_KEYS
        if summary.get(key) is not None
    }

    copied = _items(adjustments, "adjustments", RECEIPT_ELEMENTS_MAX)
    if copied:
        payload["adjustments"] = [
            {
                "name": _string(adjustment.get("name"), "adjustment name"),
                "amount": _amount(adjustment.get("amount"), "adjustment amount", currency),
            }
            for adjustment in copied
        ]
    return {"attachment": {"type": "template", "payload": payload}}


# -- sender actions ---------------------------------------------------------------------------


def sender_action_body(psid: str, action: str) -> dict:
    """The whole Send API request body for ``typing_on``, ``typing_off`` or ``mark_seen``."""
    return {
        "recipient": {"id": _string(psid, "psid")},
        "sender_action": _choice(action, "sender_action", SENDER_ACTIONS),
    }
