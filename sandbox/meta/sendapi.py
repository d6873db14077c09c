"""Send API and Messenger Profile API bodies checked the way the platform checks them.

Pure functions: no database, no clock. Each raises :class:`GraphApiError` (code 100 unless the
platform uses another) for the first problem found, with a message naming the parameter, as the
platform does. The limits are the Messenger Platform reference's: text 2000 characters, 13 quick
replies (titles 20, payloads 1000), generic template 10 elements (title and subtitle 80, 3
buttons), button titles 20, button template text 640, receipt template 100 elements, greeting
160.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from sandbox.meta.errors import NOT_WHITELISTED, GraphApiError

MESSAGING_TYPES = ("RESPONSE", "UPDATE", "MESSAGE_TAG")
MESSAGE_TAGS = ("CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE", "HUMAN_AGENT")
SENDER_ACTIONS = ("typing_on", "typing_off", "mark_seen")
ATTACHMENT_TYPES = ("image", "video", "audio", "file", "template")
TEMPLATE_TYPES = ("generic", "button", "receipt", "media")
BUTTON_TYPES = ("web_url", "postback", "phone_number", "account_link", "account_unlink", "payment")
QUICK_REPLY_TYPES = ("text", "user_email", "user_phone_number")
WEBVIEW_HEIGHT_RATIOS = ("compact", "tall", "full")

TEXT_MAX = 2000
QUICK_REPLIES_MAX = 13
QUICK_REPLY_TITLE_MAX = 20
PAYLOAD_MAX = 1000
ELEMENTS_MAX = 10
TITLE_MAX = 80
SUBTITLE_MAX = 80
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_TEMPLATE_TEXT_MAX = 640
GREETING_MAX = 160
RECEIPT_ELEMENTS_MAX = 100
PROFILE_FIELDS = (
    "get_started",
    "greeting",
    "persistent_menu",
    "ice_breakers",
    "whitelisted_domains",
    "account_linking_url",
)
MESSAGE_KEYS = ("text", "attachment", "quick_replies", "metadata")
BODY_KEYS = (
    "recipient",
    "messaging_type",
    "tag",
    "message",
    "sender_action",
    "notification_type",
    "persona_id",
    "reply_to",
)
RECEIPT_REQUIRED = ("recipient_name", "order_number", "currency", "payment_method", "summary")

_invalid = GraphApiError.invalid


# -- small checks ------------------------------------------------------------------------------


def _text(value: Any, name: str, limit: int | None = None, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _invalid(f"param {name} must be a non-empty UTF-8 encoded string")
    if limit is not None and len(value) > limit:
        raise _invalid(f"param {name} must be at most {limit} characters long")
    return value


def _url(value: Any, name: str) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
        raise _invalid(f"param {name} must be a valid URL")
    if not urlsplit(value).netloc:
        raise _invalid(f"param {name} must be a valid URL")
    return value


def _list(value: Any, name: str, limit: int, *, minimum: int = 0) -> list:
    if not isinstance(value, list):
        raise _invalid(f"param {name} must be an array")
    if len(value) > limit:
        raise _invalid(f"param {name} must have at most {limit} items")
    if len(value) < minimum:
        raise _invalid(f"param {name} must have at least {minimum} item")
    return value


def _object(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise _invalid(f"param {name} must be an object")
    return value


def _known_keys(value: dict, known: tuple[str, ...], name: str) -> None:
    unknown = sorted(str(key) for key in value if key not in known)
    if unknown:
        raise _invalid(f'Invalid keys "{", ".join(unknown)}" were found in param "{name}".')


def origin(url: str) -> str:
    """``scheme://host[:port]`` in lower case, the unit Messenger whitelists."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def _check_whitelisted(url: str, whitelisted: Iterable[str]) -> None:
    if origin(url) not in {origin(domain) for domain in whitelisted}:
        raise GraphApiError.of(NOT_WHITELISTED)


# -- buttons and web_url actions ---------------------------------------------------------------


def _web_action(action: dict, name: str, whitelisted: Iterable[str]) -> None:
    url = _url(action.get("url"), f"{name}[url]")
    ratio = action.get("webview_height_ratio")
    if ratio is not None and ratio not in WEBVIEW_HEIGHT_RATIOS:
        raise _invalid(f"param {name}[webview_height_ratio] must be one of compact, tall, full")
    extensions = action.get("messenger_extensions", False)
    if extensions not in (True, False, "true", "false"):
        raise _invalid(f"param {name}[messenger_extensions] must be a boolean")
    if extensions in (True, "true"):
        _check_whitelisted(url, whitelisted)
        if action.get("fallback_url") is not None:
            _url(action["fallback_url"], f"{name}[fallback_url]")
    elif action.get("fallback_url") is not None:
        raise _invalid(f"param {name}[fallback_url] requires messenger_extensions")


def _buttons(value: Any, name: str, whitelisted: Iterable[str], *, limit: int, minimum: int = 0):
    for index, button in enumerate(_list(value, name, limit, minimum=minimum)):
        where = f"{name}[{index}]"
        button = _object(button, where)
        kind = button.get("type")
        if kind not in BUTTON_TYPES:
            raise _invalid(f"param {where}[type] must be one of {', '.join(BUTTON_TYPES)}")
        if kind not in ("account_unlink",):
            _text(button.get("title"), f"{where}[title]", BUTTON_TITLE_MAX)
        if kind == "web_url":
            _web_action(button, where, whitelisted)
        elif kind in ("postback", "phone_number", "payment"):
            _text(button.get("payload"), f"{where}[payload]", PAYLOAD_MAX)


# -- templates ---------------------------------------------------------------------------------


def _generic(payload: dict, whitelisted: Iterable[str]) -> None:
    elements = _list(payload.get("elements"), "elements", ELEMENTS_MAX, minimum=1)
    for index, element in enumerate(elements):
        where = f"elements[{index}]"
        element = _object(element, where)
        _text(element.get("title"), f"{where}[title]", TITLE_MAX)
        _text(element.get("subtitle"), f"{where}[subtitle]", SUBTITLE_MAX, required=False)
        if element.get("image_url") is not None:
            _url(element["image_url"], f"{where}[image_url]")
        if element.get("default_action") is not None:
            action = _object(element["default_action"], f"{where}[default_action]")
            if action.get("type") != "web_url" or "title" in action:
                raise _invalid(f"param {where}[default_action] must be a web_url without title")
            _web_action(action, f"{where}[default_action]", whitelisted)
        if element.get("buttons") is not None:
            _buttons(element["buttons"], f"{where}[buttons]", whitelisted, limit=BUTTONS_MAX)
    ratio = payload.get("image_aspect_ratio")
    if ratio is not None and ratio not in ("horizontal", "square"):
        raise _invalid("param image_aspect_ratio must be horizontal or square")


def _button_template(payload: dict, whitelisted: Iterable[str]) -> None:
    _text(payload.get("text"), "text", BUTTON_TEMPLATE_TEXT_MAX)
    _buttons(payload.get("buttons"), "buttons", whitelisted, limit=BUTTONS_MAX, minimum=1)


def _receipt(payload: dict, whitelisted: Iterable[str]) -> None:
    for key in RECEIPT_REQUIRED:
        if payload.get(key) in (None, ""):
            raise _invalid(f"param {key} is required for the receipt template")
    summary = _object(payload["summary"], "summary")
    if not isinstance(summary.get("total_cost"), int | float) or isinstance(
        summary.get("total_cost"), bool
    ):
        raise _invalid("param summary[total_cost] must be a number")
    elements = payload.get("elements")
    elements = [] if elements is None else _list(elements, "elements", RECEIPT_ELEMENTS_MAX)
    for index, element in enumerate(elements):
        where = f"elements[{index}]"
        element = _object(element, where)
        _text(element.get("title"), f"{where}[title]", TITLE_MAX)
        if not isinstance(element.get("price"), int | float):
            raise _invalid(f"param {where}[price] must be a number")
        if element.get("image_url") is not None:
            _url(element["image_url"], f"{where}[image_url]")
    address = payload.get("address")
    if address is not None:
        address = _object(address, "address")
        for key in ("street_1", "city", "postal_code", "state", "country"):
            if not isinstance(address.get(key), str):
                raise _invalid(f"param address[{key}] is required")


def _media(payload: dict, whitelisted: Iterable[str]) -> None:
    [element] = _list(payload.get("elements"), "elements", 1, minimum=1)
    element = _object(element, "elements[0]")
    if element.get("media_type") not in ("image", "video"):
        raise _invalid("param elements[0][media_type] must be image or video")
    if (element.get("url") is None) == (element.get("attachment_id") is None):
        raise _invalid("param elements[0] needs exactly one of url and attachment_id")
    if element.get("url") is not None:
        _url(element["url"], "elements[0][url]")
    if element.get("buttons") is not None:
        _buttons(element["buttons"], "elements[0][buttons]", whitelisted, limit=1)


_TEMPLATES = {"generic": _generic, "button": _button_template, "receipt": _receipt, "media": _media}


# -- the message -------------------------------------------------------------------------------


def _quick_replies(value: Any) -> None:
    for index, reply in enumerate(_list(value, "message[quick_replies]", QUICK_REPLIES_MAX)):
        where = f"message[quick_replies][{index}]"
        reply = _object(reply, where)
        kind = reply.get("content_type", "text")
        if kind not in QUICK_REPLY_TYPES:
            raise _invalid(f"param {where}[content_type] must be one of text, user_email, ...")
        if kind == "text":
            if reply.get("image_url") is None or reply.get("title"):
                _text(reply.get("title"), f"{where}[title]", QUICK_REPLY_TITLE_MAX)
            payload = reply.get("payload")
            if isinstance(payload, int) and not isinstance(payload, bool):
                payload = str(payload)
            _text(payload, f"{where}[payload]", PAYLOAD_MAX)


def message_check(message: Any, *, whitelisted: Iterable[str] = ()) -> None:
    """Check a Send API ``message`` object.

    :raises GraphApiError: code 100 naming the first bad parameter.
    """
    message = _object(message, "message")
    _known_keys(message, MESSAGE_KEYS, "message")
    has_text, has_attachment = "text" in message, "attachment" in message
    if has_text == has_attachment:
        raise _invalid("Must send either message[text] or message[attachment], not both")
    if has_text:
        _text(message["text"], "message[text]", TEXT_MAX)
    else:
        attachment = _object(message["attachment"], "message[attachment]")
        kind = attachment.get("type")
        if kind not in ATTACHMENT_TYPES:
            raise _invalid(
                "param message[attachment][type] must be one of " + ", ".join(ATTACHMENT_TYPES)
            )
        payload = _object(attachment.get("payload"), "message[attachment][payload]")
        if kind == "template":
            template_type = payload.get("template_type")
            if template_type not in _TEMPLATES:
                raise _invalid(
                    "param message[attachment][payload][template_type] must be one of "
                    + ", ".join(TEMPLATE_TYPES)
                )
            _TEMPLATES[template_type](payload, whitelisted)
        elif payload.get("attachment_id") is None:
            _url(payload.get("url"), "message[attachment][payload][url]")
    if message.get("quick_replies") is not None:
        _quick_replies(message["quick_replies"])


def send_body_check(body: Any, *, whitelisted: Iterable[str] = ()) -> str:
    """Check a whole ``POST /me/messages`` body; returns the recipient's PSID.

    :raises GraphApiError: what the platform answers to the first problem.
    """
    if not isinstance(body, dict):
        raise _invalid("The parameter recipient is required")
    _known_keys(body, BODY_KEYS, "messages")
    recipient = body.get("recipient")
    psid = recipient.get("id") if isinstance(recipient, dict) else None
    if isinstance(psid, int) and not isinstance(psid, bool):
        psid = str(psid)
    if not isinstance(psid, str) or not psid:
        raise _invalid("The parameter recipient is required")
    has_message, has_action = "message" in body, "sender_action" in body
    if has_message and has_action:
        raise _invalid("Cannot send both message and sender_action at the same time")
    if not has_message and not has_action:
        raise _invalid("Must send either message or sender_action")
    if has_action:
        if body["sender_action"] not in SENDER_ACTIONS:
            raise _invalid("param sender_action must be one of " + ", ".join(SENDER_ACTIONS))
        return psid
    messaging_type = body.get("messaging_type")
    if messaging_type not in MESSAGING_TYPES:
        raise _invalid("param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG}")
    if messaging_type == "MESSAGE_TAG" and body.get("tag") not in MESSAGE_TAGS:
        raise _invalid("param tag must be one of " + ", ".join(MESSAGE_TAGS))
    message_check(body["message"], whitelisted=whitelisted)
    return psid


# -- Messenger Profile API ---------------------------------------------------------------------


def _localized(value: Any, name: str) -> list[dict]:
    entries = _list(value, name, 100, minimum=1)
    for index, entry in enumerate(entries):
        entry = _object(entry, f"{name}[{index}]")
        _text(entry.get("locale"), f"{name}[{index}][locale]")
    if not any(entry.get("locale") == "default" for entry in entries):
        raise _invalid(f"param {name} must have an entry with locale default")
    return entries


def _persistent_menu(value: Any, whitelisted: Iterable[str]) -> None:
    for index, entry in enumerate(_localized(value, "persistent_menu")):
        where = f"persistent_menu[{index}][call_to_actions]"
        items = _list(entry.get("call_to_actions"), where, 20, minimum=1)
        for number, item in enumerate(items):
            item = _object(item, f"{where}[{number}]")
            if item.get("type") not in ("postback", "web_url"):
                raise _invalid(f"param {where}[{number}][type] must be postback or web_url")
            _text(item.get("title"), f"{where}[{number}][title]", 30)
            if item["type"] == "postback":
                _text(item.get("payload"), f"{where}[{number}][payload]", PAYLOAD_MAX)
            else:
                _web_action(item, f"{where}[{number}]", whitelisted)


def _ice_breakers(value: Any) -> None:
    entries = _list(value, "ice_breakers", 100, minimum=1)
    if entries and isinstance(entries[0], dict) and "call_to_actions" not in entries[0]:
        entries = [{"locale": "default", "call_to_actions": entries}]  # the older flat format
    for index, entry in enumerate(entries):
        where = f"ice_breakers[{index}][call_to_actions]"
        items = _list(_object(entry, f"ice_breakers[{index}]").get("call_to_actions"), where, 4)
        for number, item in enumerate(items):
            item = _object(item, f"{where}[{number}]")
            _text(item.get("question"), f"{where}[{number}][question]", 80)
            _text(item.get("payload"), f"{where}[{number}][payload]", PAYLOAD_MAX)


def profile_body_check(body: Any, *, current: dict) -> dict:
    """Check a ``POST /me/messenger_profile`` body against the page's ``current`` profile;
    returns the profile after the update.

    :raises GraphApiError: code 100 for unknown fields and broken limits.
    """
    body = _object(body, "messenger_profile")
    fields = {key: value for key, value in body.items() if key not in ("access_token",)}
    unknown = sorted(set(fields) - set(PROFILE_FIELDS))
    if unknown:
        raise _invalid(
            f'Invalid keys "{", ".join(unknown)}" were found in param "messenger_profile"'
        )
    if not fields:
        raise _invalid("param messenger_profile must set at least one field")
    updated = {**current, **fields}
    whitelisted = updated.get("whitelisted_domains") or []
    if "whitelisted_domains" in fields:
        for index, domain in enumerate(
            _list(fields["whitelisted_domains"], "whitelisted_domains", 50)
        ):
            _url(domain, f"whitelisted_domains[{index}]")
    if "get_started" in fields:
        _text(
            _object(fields["get_started"], "get_started").get("payload"),
            "get_started[payload]",
            PAYLOAD_MAX,
        )
    if "greeting" in fields:
        for index, entry in enumerate(_localized(fields["greeting"], "greeting")):
            _text(entry.get("text"), f"greeting[{index}][text]", GREETING_MAX)
    if "persistent_menu" in fields:
        if not updated.get("get_started"):
            raise _invalid(
                "You must set a Get Started button if you also wish to use persistent menu."
            )
        _persistent_menu(fields["persistent_menu"], whitelisted)
    if "ice_breakers" in fields:
        _ice_breakers(fields["ice_breakers"])
    if "account_linking_url" in fields:
        _url(fields["account_linking_url"], "account_linking_url")
    return updated


def profile_delete_check(body: Any, *, current: dict) -> dict:
    """Check a ``DELETE /me/messenger_profile`` body (``{"fields": [...]}``); returns the
    profile after the deletion.

    :raises GraphApiError: code 100 when ``fields`` is missing or names an unknown field.
    """
    fields = body.get("fields") if isinstance(body, dict) else None
    if not isinstance(fields, list) or not fields:
        raise _invalid("The parameter fields is required")
    unknown = sorted(str(name) for name in fields if name not in PROFILE_FIELDS)
    if unknown:
        raise _invalid(f"param fields contains unknown fields: {', '.join(unknown)}")
    updated = {key: value for key, value in current.items() if key not in fields}
    if updated.get("persistent_menu") and not updated.get("get_started"):
        raise _invalid("The Get Started button cannot be deleted while a persistent menu is set.")
    return updated
