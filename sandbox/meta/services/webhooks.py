"""What the shopper does in the emulator, sent to the service as Meta sends it: a signed webhook
POST to ``{PUBLIC_BASE_URL}/messenger/webhook/``.

Bodies have the platform's shape (``object: page``, ``entry[].messaging[]``, or ``standby[]``
while another app owns the thread), ``m_`` message ids and millisecond timestamps, and are
serialized the way Meta does (compact, non-ASCII escaped as ``\\uXXXX``). Each POST carries
``X-Hub-Signature-256`` (HMAC-SHA256) and the legacy ``X-Hub-Signature`` (HMAC-SHA1) over the
exact bytes, keyed with ``MESSENGER_APP_SECRET``. The POST is made synchronously from the tap's
request and its answer recorded in a :class:`ShopperEvent`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import requests
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from sandbox.meta.models import GraphMessage, SandboxShopper, ShopperEvent
from sandbox.meta.services.graph import message_id_new

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/messenger/webhook/"
TIMEOUT_SECONDS = (3.0, 20.0)
# Messenger shows the Get Started button, and sends its title, in the shopper's language.
GET_STARTED_TITLES = {"ar": "ابدأ الآن"}
GET_STARTED_TITLE = "Get Started"
DEFAULT_GET_STARTED_PAYLOAD = "GET_STARTED"
CONVERSATION_KINDS = (
    ShopperEvent.Kind.MESSAGE,
    ShopperEvent.Kind.POSTBACK,
    ShopperEvent.Kind.REFERRAL,
)


def now_ms() -> int:
    return int(time.time() * 1000)


def webhook_url() -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + WEBHOOK_PATH


# -- bodies (pure) -----------------------------------------------------------------------------


def item_envelope(*, page_id: str, psid: str, timestamp: int) -> dict[str, Any]:
    return {"sender": {"id": psid}, "recipient": {"id": page_id}, "timestamp": timestamp}


def body_bytes(*, page_id: str, items: list[dict], time_ms: int, standby: bool = False) -> bytes:
    """The webhook body for ``items`` of one page, serialized as Meta does."""
    body = {
        "object": "page",
        "entry": [{"id": page_id, "time": time_ms, "standby" if standby else "messaging": items}],
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=True).encode()


def signature_headers(raw: bytes, *, secret: str) -> dict[str, str]:
    """``X-Hub-Signature-256`` and the legacy ``X-Hub-Signature`` for ``raw``."""
    sha256 = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    sha1 = hmac.new(secret.encode(), raw, hashlib.sha1).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={sha256}", "X-Hub-Signature": f"sha1={sha1}"}


def referral_shortlink(ref: str) -> dict[str, Any]:
    """An m.me link's referral (``https://m.me/<page>?ref=<ref>``)."""
    return {"ref": ref, "source": "SHORTLINK", "type": "OPEN_THREAD"}


def referral_ad(
    *, ref: str, ad_id: str, ad_title: str, photo_url: str, post_id: str
) -> dict[str, Any]:
    """A click-to-Messenger ad's referral, with the ad's context."""
    referral: dict[str, Any] = {"source": "ADS", "type": "OPEN_THREAD", "ad_id": ad_id}
    if ref:
        referral = {"ref": ref, **referral}
    referral["ads_context_data"] = {
        "ad_title": ad_title,
        "photo_url": photo_url,
        "post_id": post_id,
    }
    return referral


# -- posting -----------------------------------------------------------------------------------


def webhook_post(
    *,
    shopper: SandboxShopper,
    kind: str,
    items: list[dict],
    text: str = "",
    mid: str = "",
) -> ShopperEvent:
    """Sign and POST ``items`` to the service's webhook now; record the body and the answer."""
    page = shopper.page
    time_ms = max(item["timestamp"] for item in items)
    raw = body_bytes(
        page_id=page.page_id,
        items=items,
        time_ms=time_ms,
        standby=bool(shopper.thread_owner_app_id),
    )
    # The row first: its time is the tap's, so the conversation shows the tap before the reply.
    event = ShopperEvent.objects.create(
        page=page, shopper=shopper, kind=kind, mid=mid, text=text, body=raw.decode()
    )
    headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
    headers.update(signature_headers(raw, secret=settings.MESSENGER_APP_SECRET))
    try:
        response = requests.post(webhook_url(), data=raw, headers=headers, timeout=TIMEOUT_SECONDS)
    except requests.RequestException as exc:
        event.error = f"{type(exc).__name__}: the service did not answer at {webhook_url()}"
        logger.warning("sandbox: webhook POST failed: %s", event.error)
    else:
        event.status_code = response.status_code
        if not response.ok:
            event.error = response.text[:300]
    event.save(update_fields=["status_code", "error"])
    return event


def _user_event(shopper: SandboxShopper, kind: str, content: dict, *, text: str, mid: str = ""):
    """Post one item the shopper caused; it opens (or renews) the 24-hour window."""
    timestamp = now_ms()
    item = {
        **item_envelope(page_id=shopper.page.page_id, psid=shopper.psid, timestamp=timestamp),
        **content,
    }
    shopper.last_message_at = timezone.now()
    shopper.save(update_fields=["last_message_at"])
    return webhook_post(shopper=shopper, kind=kind, items=[item], text=text, mid=mid)


def shopper_says(
    *, shopper: SandboxShopper, text: str, quick_reply_payload: str | None = None
) -> ShopperEvent:
    """The shopper typed ``text`` (or tapped a quick reply titled ``text``)."""
    mid = message_id_new()
    message: dict[str, Any] = {"mid": mid, "text": text}
    if quick_reply_payload is not None:
        message["quick_reply"] = {"payload": quick_reply_payload}
    return _user_event(shopper, ShopperEvent.Kind.MESSAGE, {"message": message}, text=text, mid=mid)


def shopper_taps_postback(
    *, shopper: SandboxShopper, title: str, payload: str, referral: dict | None = None
) -> ShopperEvent:
    """The shopper tapped a postback button (template, persistent menu, Get Started)."""
    mid = message_id_new()
    postback: dict[str, Any] = {"mid": mid, "title": title, "payload": payload}
    if referral:
        postback["referral"] = referral
    return _user_event(
        shopper, ShopperEvent.Kind.POSTBACK, {"postback": postback}, text=title, mid=mid
    )


def get_started_payload(shopper: SandboxShopper) -> str:
    get_started = shopper.page.messenger_profile.get("get_started") or {}
    return str(get_started.get("payload") or DEFAULT_GET_STARTED_PAYLOAD)


def shopper_gets_started(
    *, shopper: SandboxShopper, title: str | None = None, payload: str | None = None
) -> ShopperEvent:
    """The Get Started tap (or an ice breaker's, given its ``title`` and ``payload``): a
    postback with the page's payload, carrying the referral of the m.me link or ad that opened
    this new thread, if any."""
    referral = shopper.pending_referral
    event = shopper_taps_postback(
        shopper=shopper,
        title=title or GET_STARTED_TITLES.get(shopper.locale[:2], GET_STARTED_TITLE),
        payload=payload or get_started_payload(shopper),
        referral=referral,
    )
    if referral is not None:
        SandboxShopper.objects.filter(pk=shopper.pk).update(pending_referral=None)
        shopper.pending_referral = None
    return event


def thread_exists(shopper: SandboxShopper) -> bool:
    """Is there a conversation yet: anything the shopper posted (but delivery/read) or any
    message the page sent?"""
    return (
        shopper.events.filter(kind__in=CONVERSATION_KINDS).exists()
        or shopper.graph_messages.exclude(message_id="").exists()
    )


def shopper_opens_referral(*, shopper: SandboxShopper, referral: dict) -> ShopperEvent | None:
    """The shopper opened an m.me link or an ad. In an existing thread Meta sends a
    ``referral`` event now; a new thread shows the welcome screen first and the referral
    travels with the Get Started postback (kept on the shopper until then)."""
    if thread_exists(shopper):
        return _user_event(
            shopper,
            ShopperEvent.Kind.REFERRAL,
            {"referral": referral},
            text=f"Opened from {'an ad' if referral.get('source') == 'ADS' else 'a link'}",
        )
    shopper.pending_referral = referral
    shopper.save(update_fields=["pending_referral"])
    return None


def message_receipts_post(*, message_pk: int) -> ShopperEvent | None:
    """Post the ``delivery`` and then the ``read`` event of one accepted message, in one body
    as Meta often batches them; marks the message delivered and read when the service took it.
    A message already marked, or gone, is left alone (safe to run twice)."""
    message = (
        GraphMessage.objects.select_related("page", "shopper")
        .filter(Q(delivered_at__isnull=True) | Q(read_at__isnull=True), pk=message_pk)
        .exclude(message_id="")
        .first()
    )
    if message is None or message.shopper is None:
        return None
    shopper, at = message.shopper, now_ms()
    envelope = item_envelope(page_id=message.page.page_id, psid=shopper.psid, timestamp=at)
    items = [
        {**envelope, "delivery": {"mids": [message.message_id], "watermark": at}},
        {**envelope, "timestamp": at + 1, "read": {"watermark": at}},
    ]
    event = webhook_post(shopper=shopper, kind=ShopperEvent.Kind.RECEIPTS, items=items)
    if event.delivered:
        now = timezone.now()
        GraphMessage.objects.filter(pk=message.pk).update(delivered_at=now, read_at=now)
    return event
