"""The Messenger emulator's pages: ``/sandbox/`` (pick a page and a shopper), the chat page, its
JSON feed and tap endpoint, and the referral entry points (m.me link, click-to-Messenger ad).

Views stay thin: the webhook bodies are built and posted by ``sandbox.meta.services.webhooks``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sandbox.meta.models import GraphMessage, SandboxPage, SandboxShopper, ShopperEvent
from sandbox.meta.services import webhooks
from sandbox.meta.services.shoppers import LOCALES, ShopperInvalid, shopper_create

TYPING_WINDOW = timedelta(seconds=20)
TEXT_MAX = 2000
# Messenger's own words around the conversation, in the shopper's language (the conversation
# itself shows exactly what the shop sent).
UI_TEXT = {
    "en": {
        "replies": "Typically replies instantly",
        "about": "Shopping · Replies instantly",
        "get_started": "Get Started",
        "send": "Send",
        "message": "Aa",
        "order_confirmation": "Order confirmation",
        "order_number": "Order number",
        "payment_method": "Payment method",
        "order_date": "Order date",
        "ship_to": "Ship to",
        "subtotal": "Subtotal",
        "shipping": "Shipping",
        "tax": "Tax",
        "total": "Total",
        "qty": "Qty",
    },
    "ar": {
        "replies": "يرد عادةً على الفور",
        "about": "تسوّق · يرد على الفور",
        "get_started": "ابدأ الآن",
        "send": "إرسال",
        "message": "اكتب رسالة",
        "order_confirmation": "تأكيد الطلب",
        "order_number": "رقم الطلب",
        "payment_method": "طريقة الدفع",
        "order_date": "تاريخ الطلب",
        "ship_to": "الشحن إلى",
        "subtotal": "المجموع الفرعي",
        "shipping": "الشحن",
        "tax": "الضريبة",
        "total": "الإجمالي",
        "qty": "الكمية",
    },
}
DEFAULT_AD = {
    "ad_id": "6045246247433",
    "ad_title": "Summer tees",
    "photo_url": "https://scontent.example/ad.jpg",
}


# -- helpers -----------------------------------------------------------------------------------


def _shopper(page_id: str, psid: str) -> SandboxShopper:
    return get_object_or_404(
        SandboxShopper.objects.select_related("page"), page__page_id=page_id, psid=psid
    )


def _localized(entries: Any, locale: str) -> dict | None:
    """The entry of a per-locale profile list for ``locale``, else the ``default`` one."""
    if not isinstance(entries, list):
        return None
    by_locale = {entry.get("locale"): entry for entry in entries if isinstance(entry, dict)}
    return by_locale.get(locale) or by_locale.get("default")


def greeting_for(shopper: SandboxShopper) -> str:
    """The welcome screen's greeting in the shopper's locale, personalized as Messenger does."""
    entry = _localized(shopper.page.messenger_profile.get("greeting"), shopper.locale)
    text = str((entry or {}).get("text") or "")
    return (
        text.replace("{{user_first_name}}", shopper.first_name)
        .replace("{{user_last_name}}", shopper.last_name)
        .replace("{{user_full_name}}", shopper.full_name)
    )


def menu_for(shopper: SandboxShopper) -> dict:
    entry = _localized(shopper.page.messenger_profile.get("persistent_menu"), shopper.locale) or {}
    items = entry.get("call_to_actions")
    return {
        "items": items if isinstance(items, list) else [],
        "composer_input_disabled": bool(entry.get("composer_input_disabled")),
    }


def ice_breakers_for(shopper: SandboxShopper) -> list[dict]:
    value = shopper.page.messenger_profile.get("ice_breakers")
    if isinstance(value, list) and value and "call_to_actions" not in value[0]:
        return value
    entry = _localized(value, shopper.locale) or {}
    return entry.get("call_to_actions") or []


def _page_item(message: GraphMessage) -> dict:
    return {
        "key": f"p{message.pk}",
        "from": "page",
        "mid": message.message_id,
        "at": int(message.received_at.timestamp() * 1000),
        "message": message.body.get("message"),
        "messaging_type": message.messaging_type,
        "tag": message.tag,
        "read": message.read_at is not None,
    }


def _shopper_item(event: ShopperEvent) -> dict:
    return {
        "key": f"s{event.pk}",
        "from": "shopper",
        "kind": event.kind,
        "mid": event.mid,
        "at": int(event.created_at.timestamp() * 1000),
        "text": event.text,
        "status": event.status_code,
        "error": event.error,
    }


def _int_param(request: HttpRequest, name: str) -> int:
    value = request.GET.get(name, "0")
    return int(value) if value.isascii() and value.isdigit() else 0


def _chat_url(shopper: SandboxShopper) -> str:
    return reverse("sandbox:chat", args=[shopper.page.page_id, shopper.psid])


# -- setup -------------------------------------------------------------------------------------


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    pages = list(SandboxPage.objects.prefetch_related("shoppers"))
    return render(
        request,
        "sandbox_meta/index.html",
        {"pages": pages, "locales": LOCALES, "base_url": settings.PUBLIC_BASE_URL.rstrip("/")},
    )


def _referral_from(data) -> dict | None:
    """The referral an entry form or link carries (``entry`` shortlink or ad), if any."""
    entry, ref = data.get("entry", ""), data.get("ref", "").strip()[:250]
    if entry == "ad":
        return webhooks.referral_ad(
            ref=ref,
            ad_id=data.get("ad_id") or DEFAULT_AD["ad_id"],
            ad_title=data.get("ad_title") or DEFAULT_AD["ad_title"],
            photo_url=data.get("photo_url") or DEFAULT_AD["photo_url"],
            post_id=data.get("post_id") or "",
        )
    if ref:
        return webhooks.referral_shortlink(ref)
    return None


@require_POST
def shopper_new(request: HttpRequest) -> HttpResponse:
    """Create a shopper from the setup form and open their chat (through the link or ad they
    came from, when the form carries one)."""
    page = SandboxPage.objects.filter(page_id=request.POST.get("page_id", "")).first()
    error = "Choose a page." if page is None else ""
    if page is not None:
        try:
            shopper = shopper_create(
                page=page,
                first_name=request.POST.get("first_name", ""),
                last_name=request.POST.get("last_name", ""),
                locale=request.POST.get("locale", "en_US"),
                email=request.POST.get("email", ""),
                phone=request.POST.get("phone", ""),
            )
        except ShopperInvalid as exc:
            error = str(exc)
    if error:
        pages = list(SandboxPage.objects.prefetch_related("shoppers"))
        context = {"pages": pages, "locales": LOCALES, "error": error, "form": request.POST}
        return render(request, "sandbox_meta/index.html", context, status=400)
    referral = _referral_from(request.POST)
    if referral is not None:
        webhooks.shopper_opens_referral(shopper=shopper, referral=referral)
    return redirect(_chat_url(shopper))


# -- referral entry points ---------------------------------------------------------------------


def _entry_point(request: HttpRequest, page_id: str, entry: str) -> HttpResponse:
    page = get_object_or_404(SandboxPage, page_id=page_id)
    params = {key: request.GET.get(key, "") for key in ("ref", *DEFAULT_AD, "post_id")}
    psid = request.GET.get("psid", "")
    if psid:
        shopper = _shopper(page_id, psid)
        referral = _referral_from({**params, "entry": entry})
        if referral is not None:
            webhooks.shopper_opens_referral(shopper=shopper, referral=referral)
        return redirect(_chat_url(shopper))
    query = {key: value for key, value in params.items() if value}
    shoppers = [
        (shopper, "?" + urlencode({**query, "psid": shopper.psid}))
        for shopper in page.shoppers.all()
    ]
    ad = {key: params[key] or value for key, value in DEFAULT_AD.items()}
    return render(
        request,
        "sandbox_meta/entry.html",
        {
            "page": page,
            "entry": entry,
            "params": params,
            "ad": ad,
            "shoppers": shoppers,
            "locales": LOCALES,
        },
    )


@require_GET
def mme_link(request: HttpRequest, page_id: str) -> HttpResponse:
    """``/sandbox/m/<page_id>/?ref=...[&psid=...]``: an m.me link. With ``psid`` it opens
    that shopper's thread (a new thread gets the referral on Get Started, an existing one a
    ``referral`` event); without, it asks who opens it."""
    return _entry_point(request, page_id, "shortlink")


@require_GET
def ad_click(request: HttpRequest, page_id: str) -> HttpResponse:
    """``/sandbox/ad/<page_id>/?ref=...&ad_id=...[&psid=...]``: a click-to-Messenger ad."""
    return _entry_point(request, page_id, "ad")


# -- the chat ----------------------------------------------------------------------------------


@require_GET
def chat(request: HttpRequest, page_id: str, psid: str) -> HttpResponse:
    shopper = _shopper(page_id, psid)
    get_started = shopper.page.messenger_profile.get("get_started") or {}
    ui = UI_TEXT["ar" if shopper.locale.startswith("ar") else "en"]
    config = {
        "feedUrl": reverse("sandbox:chat-feed", args=[page_id, psid]),
        "actUrl": reverse("sandbox:chat-act", args=[page_id, psid]),
        "email": shopper.email,
        "phone": shopper.phone,
        "pageName": shopper.page.name,
        "locale": shopper.locale,
        "csrf": get_token(request),
        "ui": ui,
    }
    return render(
        request,
        "sandbox_meta/chat.html",
        {
            "shopper": shopper,
            "page": shopper.page,
            "greeting": greeting_for(shopper),
            "has_get_started": bool(get_started),
            "ice_breakers": ice_breakers_for(shopper),
            "thread_exists": webhooks.thread_exists(shopper),
            "pending_referral": shopper.pending_referral,
            "config": config,
            "ui": ui,
            "direction": "rtl" if shopper.is_rtl else "ltr",
        },
    )


@require_GET
def chat_feed(request: HttpRequest, page_id: str, psid: str) -> JsonResponse:
    """What happened in the conversation after the given cursors (polled about every second)."""
    shopper = _shopper(page_id, psid)
    page_after, shopper_after = (
        _int_param(request, "page_after"),
        _int_param(request, "shopper_after"),
    )
    sent = list(
        GraphMessage.objects.filter(shopper=shopper, pk__gt=page_after).order_by("id")[:200]
    )
    posted = list(
        shopper.events.filter(kind__in=webhooks.CONVERSATION_KINDS, pk__gt=shopper_after).order_by(
            "id"
        )[:200]
    )
    last_sent = GraphMessage.objects.filter(shopper=shopper).order_by("-id").first()
    typing = bool(
        last_sent
        and last_sent.body.get("sender_action") == "typing_on"
        and timezone.now() - last_sent.received_at < TYPING_WINDOW
    )
    read_upto = (
        GraphMessage.objects.filter(shopper=shopper, read_at__isnull=False)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )
    items = [_page_item(m) for m in sent if not m.is_sender_action]
    items += [_shopper_item(e) for e in posted]
    items.sort(key=lambda item: (item["at"], item["key"]))
    return JsonResponse(
        {
            "items": items,
            "cursor": {
                "page_after": sent[-1].pk if sent else page_after,
                "shopper_after": posted[-1].pk if posted else shopper_after,
            },
            "typing": typing,
            "read_upto": f"p{read_upto}" if read_upto else "",
            "menu": menu_for(shopper),
            "thread_owner": shopper.thread_owner_app_id,
        }
    )


class _BadTap(ValueError):
    pass


def _string(data: dict, name: str, limit: int) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise _BadTap(f"{name} is required")
    if len(value) > limit:
        raise _BadTap(f"{name} has more than {limit} characters")
    return value


@require_http_methods(["POST"])
def chat_act(request: HttpRequest, page_id: str, psid: str) -> JsonResponse:
    """A tap or a typed message: posts the signed webhook now and answers what the service
    said. Body: ``{"action": "text"|"quick_reply"|"postback"|"get_started"|"ice_breaker",
    ...}`` with ``text``, or ``title`` and ``payload``."""
    shopper = _shopper(page_id, psid)
    try:
        data = json.loads(request.body or b"{}")
        if not isinstance(data, dict):
            raise _BadTap("the body must be a JSON object")
        action = data.get("action")
        if action == "text":
            event = webhooks.shopper_says(shopper=shopper, text=_string(data, "text", TEXT_MAX))
        elif action == "quick_reply":
            event = webhooks.shopper_says(
                shopper=shopper,
                text=_string(data, "title", TEXT_MAX),
                quick_reply_payload=_string(data, "payload", 1000),
            )
        elif action == "postback":
            event = webhooks.shopper_taps_postback(
                shopper=shopper,
                title=_string(data, "title", 100),
                payload=_string(data, "payload", 1000),
            )
        elif action == "get_started":
            event = webhooks.shopper_gets_started(shopper=shopper)
        elif action == "ice_breaker":
            event = webhooks.shopper_gets_started(
                shopper=shopper,
                title=_string(data, "title", 100),
                payload=_string(data, "payload", 1000),
            )
        else:
            raise _BadTap("action must be text, quick_reply, postback, get_started or ice_breaker")
    except ValueError as exc:  # _BadTap included
        return JsonResponse({"ok": False, "error": f"Bad tap: {exc}"}, status=400)
    return JsonResponse(
        {
            "ok": event.delivered,
            "status": event.status_code,
            "error": event.error,
            "item": _shopper_item(event),
        }
    )


@require_POST
def shopper_settings(request: HttpRequest, page_id: str, psid: str) -> HttpResponse:
    """Emulator controls: make the shopper unavailable (Send API 551) or move their last
    message back by 25 hours (closes the 24-hour window), to watch the service cope."""
    shopper = _shopper(page_id, psid)
    action = request.POST.get("action")
    if action == "toggle_available":
        shopper.available = not shopper.available
        shopper.save(update_fields=["available"])
    elif action == "close_window":
        if shopper.last_message_at is not None:
            shopper.last_message_at -= timedelta(hours=25)
            shopper.save(update_fields=["last_message_at"])
    else:
        return HttpResponseBadRequest(
            "action must be toggle_available or close_window", content_type="text/plain"
        )
    return redirect(_chat_url(shopper))
