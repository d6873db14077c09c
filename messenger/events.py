"""Typed events parsed from one webhook ``entry[].messaging[]`` (or ``standby[]``) item.

Pure functions, no database, no clock. The input is whatever Meta (or an attacker holding no
secret, before the signature check stops them, or a buggy replay) put in the JSON body, so
parsing never raises: a missing or wrongly typed field becomes the field's default (``""``,
``0``, ``None``, empty tuple/dict) and an item of no known kind becomes an ``UnknownEvent``.

Field names follow the Messenger Platform webhook reference (``messages``, ``message_echoes``,
``messaging_postbacks``, ``messaging_referrals``, ``message_deliveries``, ``message_reads``,
``messaging_optins``, ``message_reactions``) and the legacy v1.2 payments callbacks
(``messaging_pre_checkouts``, ``messaging_checkout_updates``, ``messaging_payments``).

``event_kind`` and ``event_parse`` agree: ``event_parse`` dispatches on ``event_kind``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "KINDS",
    "CheckoutUpdateEvent",
    "DeliveryEvent",
    "Event",
    "MessageEvent",
    "OptinEvent",
    "PaymentEvent",
    "PostbackEvent",
    "PreCheckoutEvent",
    "ReactionEvent",
    "ReadEvent",
    "Referral",
    "ReferralEvent",
    "UnknownEvent",
    "canonical_json",
    "event_dedupe_key",
    "event_kind",
    "event_parse",
    "milliseconds",
]

#: Every value ``event_kind`` can return.
KINDS = (
    "message",
    "echo",
    "postback",
    "referral",
    "delivery",
    "read",
    "optin",
    "pre_checkout",
    "checkout_update",
    "payment",
    "reaction",
    "unknown",
)

# Keys every messaging item carries; anything else names what the item is about.
_ENVELOPE_KEYS = frozenset({"sender", "recipient", "timestamp"})
_DEDUPE_KEY_MAX = 128  # InboundEvent.dedupe_key


# -- events -----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Event:
    """What every event has. ``sender_psid`` is the raw ``sender.id``: for an echo that is the
    page itself, so use :attr:`customer_psid` to find the customer of any event.
    ``sender_user_ref`` is ``sender.user_ref``, which the Chat Plugin sends instead of an id
    (the inbox keys such a customer ``ref:<user_ref>``, see ``messenger.identity``)."""

    page_id: str
    sender_psid: str = ""
    sender_user_ref: str = ""
    recipient_id: str = ""
    timestamp_ms: int = 0

    @property
    def customer_psid(self) -> str:
        return self.sender_psid


@dataclass(frozen=True, kw_only=True)
class Referral:
    """Where the shopper came from: an m.me link (``source="SHORTLINK"``, ``ref`` from
    ``?ref=``), a click-to-Messenger ad (``source="ADS"``, ``ad_id``, ``ads_context_data`` with
    ``ad_title``, ``photo_url``, ``video_url``, ``post_id``, ``product_id``), or a plugin."""

    ref: str = ""
    source: str = ""
    type: str = ""
    ad_id: str = ""
    ads_context_data: dict = field(default_factory=dict)
    referer_uri: str = ""


_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ().\-]{4,30}$")


@dataclass(frozen=True, kw_only=True)
class MessageEvent(Event):
    """A message the shopper sent, or (``is_echo``) one the page sent.

    ``quick_reply_payload`` is ``None`` when the message did not come from a quick reply. The
    ``user_email`` / ``user_phone_number`` quick replies arrive as a message whose quick reply
    payload (and text) is the shopper's email or phone number: see :attr:`is_email_reply`,
    :attr:`is_phone_reply` and :attr:`contact_value`.
    """

    mid: str = ""
    text: str = ""
    quick_reply_payload: str | None = None
    attachments: tuple[dict, ...] = ()
    reply_to_mid: str | None = None
    is_echo: bool = False
    app_id: str = ""  # echoes: the app that sent the message
    metadata: str = ""  # echoes: the ``metadata`` string given to the Send API
    referral: Referral | None = None  # a message that arrives with a referral (ads, shops)

    @property
    def customer_psid(self) -> str:
        # An echo goes from the page to the customer.
        return self.recipient_id if self.is_echo else self.sender_psid

    @property
    def is_email_reply(self) -> bool:
        """True when the payload is an email address (a ``user_email`` quick reply).

        Our own payloads (``VERB:args``) never contain ``@``, so they cannot be mistaken.
        """
        payload = self.quick_reply_payload
        return payload is not None and bool(_EMAIL.match(payload.strip()))

    @property
    def is_phone_reply(self) -> bool:
        """True when the payload is a phone number (a ``user_phone_number`` quick reply)."""
        payload = self.quick_reply_payload
        if payload is None or not _PHONE.match(payload.strip()):
            return False
        digits = sum(char.isdigit() for char in payload)
        return 6 <= digits <= 15  # E.164 allows at most 15 digits

    @property
    def contact_value(self) -> str | None:
        """The email or phone number a contact quick reply carried (stripped), else ``None``."""
        if self.is_email_reply or self.is_phone_reply:
            assert self.quick_reply_payload is not None
            return self.quick_reply_payload.strip()
        return None

    @property
    def attachment_types(self) -> tuple[str, ...]:
        return tuple(_str(attachment.get("type")) for attachment in self.attachments)


@dataclass(frozen=True, kw_only=True)
class PostbackEvent(Event):
    """A tapped postback button (Get Started, persistent menu, template buttons).

    A Get Started tap from an m.me link or an ad carries the ``referral``.
    """

    mid: str = ""
    title: str = ""
    payload: str = ""
    referral: Referral | None = None


@dataclass(frozen=True, kw_only=True)
class ReferralEvent(Event):
    """An existing thread reopened from an m.me link, an ad or a plugin."""

    referral: Referral = field(default_factory=Referral)


@dataclass(frozen=True, kw_only=True)
class DeliveryEvent(Event):
    """Messages the page sent were delivered: ``mids`` (may be empty) and all before
    ``watermark`` (ms)."""

    mids: tuple[str, ...] = ()
    watermark: int = 0


@dataclass(frozen=True, kw_only=True)
class ReadEvent(Event):
    """Every message the page sent before ``watermark`` (ms) was read."""

    watermark: int = 0


@dataclass(frozen=True, kw_only=True)
class OptinEvent(Event):
    """``messaging_optins``: Send to Messenger / checkbox plugin (``ref``, ``user_ref``) or
    marketing messages (``type="notification_messages"``, ``payload``, token, status)."""

    ref: str = ""
    user_ref: str = ""
    type: str = ""
    payload: str = ""
    notification_messages_token: str = ""
    notification_messages_status: str = ""
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ReactionEvent(Event):
    """``message_reactions``: the shopper reacted (``action="react"``) to message ``mid`` or
    took the reaction back (``"unreact"``)."""

    mid: str = ""
    action: str = ""
    reaction: str = ""
    emoji: str = ""


@dataclass(frozen=True, kw_only=True)
class PreCheckoutEvent(Event):
    """Legacy v1.2 buy button: the shopper is about to pay; answer ``{"success": ...}``.

    ``requested_user_info`` (shipping_address, contact_name/email/phone) and ``amount``
    (``{"currency", "amount"}``, amount a decimal string) are kept as raw dicts for payments.
    """

    payload: str = ""
    requested_user_info: dict = field(default_factory=dict)
    amount: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class CheckoutUpdateEvent(Event):
    """Legacy v1.2 buy button: the shopper picked a shipping address; answer with options.

    Note the legacy address spells ``street1``/``street2`` here (``street_1`` elsewhere).
    """

    payload: str = ""
    shipping_address: dict = field(default_factory=dict)
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class PaymentEvent(Event):
    """Legacy v1.2 buy button: the shopper paid. ``payment_credential`` (provider_type,
    charge_id, fb_payment_id, ...) must be verified with the provider before trusting it."""

    payload: str = ""
    requested_user_info: dict = field(default_factory=dict)
    payment_credential: dict = field(default_factory=dict)
    amount: dict = field(default_factory=dict)
    shipping_option_id: str = ""
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(Event):
    """An item of a kind we do not handle (message_edit, thread control, ...) or a malformed
    one. ``kind`` names its first non-envelope key, or is ``"unknown"``. Recorded, ignored."""

    kind: str = "unknown"


# -- field readers: never raise ---------------------------------------------------------------


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _id(value: Any) -> str:
    """An id as a string; Graph sends strings, but ids are sometimes numbers (``app_id``)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


# 9999-12-31T23:59:59.999Z: larger "milliseconds" would overflow datetime, so they read as 0.
_MAX_MS = 253_402_300_799_999


def milliseconds(value: Any) -> int:
    """Milliseconds since the epoch (timestamps, watermarks); digit strings are accepted,
    anything else (negative, absurd, wrong type) is 0."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 15:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return value if 0 <= value <= _MAX_MS else 0


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _party_id(item: dict, key: str) -> str:
    return _id(_dict(item.get(key)).get("id"))


def _referral(value: Any) -> Referral | None:
    if not isinstance(value, dict):
        return None
    return Referral(
        ref=_id(value.get("ref")),
        source=_str(value.get("source")),
        type=_str(value.get("type")),
        ad_id=_id(value.get("ad_id")),
        ads_context_data=_dict(value.get("ads_context_data")),
        referer_uri=_str(value.get("referer_uri")),
    )


def _envelope(item: dict, page_id: str) -> dict[str, Any]:
    return {
        "page_id": page_id,
        "sender_psid": _party_id(item, "sender"),
        "sender_user_ref": _str(_dict(item.get("sender")).get("user_ref")),
        "recipient_id": _party_id(item, "recipient"),
        "timestamp_ms": milliseconds(item.get("timestamp")),
    }


# -- kinds ------------------------------------------------------------------------------------

# Checked in this order; a real item has exactly one of these keys.
_KIND_KEYS = (
    ("message", "message"),
    ("postback", "postback"),
    ("referral", "referral"),
    ("delivery", "delivery"),
    ("read", "read"),
    ("optin", "optin"),
    ("reaction", "reaction"),
    ("pre_checkout", "pre_checkout"),
    ("checkout_update", "checkout_update"),
    ("payment", "payment"),
)


def event_kind(item: Any) -> str:
    """The kind of a messaging item, one of :data:`KINDS`; an echo is ``"echo"``."""
    if not isinstance(item, dict):
        return "unknown"
    for key, kind in _KIND_KEYS:
        value = item.get(key)
        if isinstance(value, dict):
            # Any truthy is_echo counts: mistaking an echo for a shopper's message could make
            # the bot answer itself, while the reverse only drops a malformed message.
            if kind == "message" and value.get("is_echo"):
                return "echo"
            return kind
    return "unknown"


# -- parsers ----------------------------------------------------------------------------------


def _parse_message(item: dict, envelope: dict[str, Any]) -> MessageEvent:
    message = item["message"]
    quick_reply = message.get("quick_reply")
    quick_reply_payload = None
    if isinstance(quick_reply, dict):
        raw_payload = quick_reply.get("payload")  # "String or Number" in the reference
        if isinstance(raw_payload, str) or (
            isinstance(raw_payload, int) and not isinstance(raw_payload, bool)
        ):
            quick_reply_payload = str(raw_payload)
    attachments = message.get("attachments")
    reply_to = message.get("reply_to")
    reply_to_mid = _str(reply_to.get("mid")) if isinstance(reply_to, dict) else ""
    return MessageEvent(
        **envelope,
        mid=_str(message.get("mid")),
        text=_str(message.get("text")),
        quick_reply_payload=quick_reply_payload,
        attachments=tuple(a for a in attachments if isinstance(a, dict))
        if isinstance(attachments, list)
        else (),
        reply_to_mid=reply_to_mid or None,
        is_echo=bool(message.get("is_echo")),
        app_id=_id(message.get("app_id")),
        metadata=_str(message.get("metadata")),
        referral=_referral(message.get("referral")),
    )


def _parse_postback(item: dict, envelope: dict[str, Any]) -> PostbackEvent:
    postback = item["postback"]
    return PostbackEvent(
        **envelope,
        mid=_str(postback.get("mid")),
        title=_str(postback.get("title")),
        payload=_id(postback.get("payload")),
        referral=_referral(postback.get("referral")),
    )


def _parse_referral(item: dict, envelope: dict[str, Any]) -> ReferralEvent:
    referral = _referral(item["referral"])
    assert referral is not None  # event_kind checked it is a dict
    return ReferralEvent(**envelope, referral=referral)


def _parse_delivery(item: dict, envelope: dict[str, Any]) -> DeliveryEvent:
    delivery = item["delivery"]
    mids = delivery.get("mids")
    return DeliveryEvent(
        **envelope,
        mids=tuple(mid for mid in mids if isinstance(mid, str) and mid)
        if isinstance(mids, list)
        else (),
        watermark=milliseconds(delivery.get("watermark")),
    )


def _parse_read(item: dict, envelope: dict[str, Any]) -> ReadEvent:
    return ReadEvent(**envelope, watermark=milliseconds(item["read"].get("watermark")))


def _parse_optin(item: dict, envelope: dict[str, Any]) -> OptinEvent:
    optin = item["optin"]
    return OptinEvent(
        **envelope,
        ref=_id(optin.get("ref")),
        user_ref=_id(optin.get("user_ref")),
        type=_str(optin.get("type")),
        payload=_id(optin.get("payload")),
        notification_messages_token=_str(optin.get("notification_messages_token")),
        notification_messages_status=_str(optin.get("notification_messages_status")),
        raw=optin,
    )


def _parse_reaction(item: dict, envelope: dict[str, Any]) -> ReactionEvent:
    reaction = item["reaction"]
    return ReactionEvent(
        **envelope,
        mid=_str(reaction.get("mid")),
        action=_str(reaction.get("action")),
        reaction=_str(reaction.get("reaction")),
        emoji=_str(reaction.get("emoji")),
    )


def _parse_pre_checkout(item: dict, envelope: dict[str, Any]) -> PreCheckoutEvent:
    raw = item["pre_checkout"]
    return PreCheckoutEvent(
        **envelope,
        payload=_id(raw.get("payload")),
        requested_user_info=_dict(raw.get("requested_user_info")),
        amount=_dict(raw.get("amount")),
        raw=raw,
    )


def _parse_checkout_update(item: dict, envelope: dict[str, Any]) -> CheckoutUpdateEvent:
    raw = item["checkout_update"]
    return CheckoutUpdateEvent(
        **envelope,
        payload=_id(raw.get("payload")),
        shipping_address=_dict(raw.get("shipping_address")),
        raw=raw,
    )


def _parse_payment(item: dict, envelope: dict[str, Any]) -> PaymentEvent:
    raw = item["payment"]
    return PaymentEvent(
        **envelope,
        payload=_id(raw.get("payload")),
        requested_user_info=_dict(raw.get("requested_user_info")),
        payment_credential=_dict(raw.get("payment_credential")),
        amount=_dict(raw.get("amount")),
        shipping_option_id=_id(raw.get("shipping_option_id")),
        raw=raw,
    )


_PARSERS: dict[str, Callable[[dict, dict[str, Any]], Event]] = {
    "message": _parse_message,
    "echo": _parse_message,
    "postback": _parse_postback,
    "referral": _parse_referral,
    "delivery": _parse_delivery,
    "read": _parse_read,
    "optin": _parse_optin,
    "reaction": _parse_reaction,
    "pre_checkout": _parse_pre_checkout,
    "checkout_update": _parse_checkout_update,
    "payment": _parse_payment,
}


def _unknown_kind(item: dict) -> str:
    """A short, printable name for an item we do not handle (its first non-envelope key)."""
    for key in sorted(k for k in item if isinstance(k, str)):
        if key not in _ENVELOPE_KEYS and re.fullmatch(r"[a-z_]{1,32}", key):
            return key
    return "unknown"


def event_parse(item: Any, *, page_id: str) -> Event:
    """Parse one messaging item of the page ``page_id`` (the ``entry[].id``). Never raises."""
    if not isinstance(item, dict):
        return UnknownEvent(page_id=page_id)
    envelope = _envelope(item, page_id)
    kind = event_kind(item)
    parser = _PARSERS.get(kind)
    if parser is None:
        return UnknownEvent(**envelope, kind=_unknown_kind(item))
    return parser(item, envelope)


# -- dedupe -----------------------------------------------------------------------------------

_MID_KINDS = frozenset({"message", "echo", "postback"})


def canonical_json(item: Any) -> str:
    """Stable text for the item: sorted keys, no spaces, ASCII (so lone surrogates encode)."""
    try:
        return json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    except (TypeError, ValueError, RecursionError):
        # Not JSON (mixed key types, a set...): cannot come from a webhook body; stay total.
        return repr(item)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def event_dedupe_key(item: Any, *, page_id: str) -> str:
    """A key (at most 128 characters) that is the same every time Meta redelivers the item.

    Messages, echoes and postbacks have a ``mid``: ``message:<mid>``, ``echo:<mid>``,
    ``postback:<mid>`` (the kind keeps an echo and a message apart). Other items (delivery, read,
    referral, ...) have none: ``<kind>:<sha256 of page id + canonical JSON of the item>``, so the
    same item for two pages never collides. An over-long mid is hashed too.
    """
    kind = event_kind(item)
    if kind in _MID_KINDS:
        container = item["postback" if kind == "postback" else "message"]
        mid = container.get("mid")
        if isinstance(mid, str) and mid:
            key = f"{kind}:{mid}"
            if len(key) <= _DEDUPE_KEY_MAX:
                return key
            return f"{kind}:mid-sha256:{_sha256(mid)}"
    digest = _sha256(f"{page_id}\n{canonical_json(item)}")
    return f"{kind}:{digest}"
