"""Messenger Profile: a page's welcome screen, Get Started button, menu and ice breakers.

``messenger_profile_body`` builds the Messenger Profile API body from the page's settings (pure:
no database, no HTTP); ``messenger_profile_sync`` pushes it through ``messenger.client`` and
records the outcome on the page. Meta allows 10 Profile API calls per 10 minutes per page, so
every call first claims one of 10 slots in the cache that live 10 minutes each: a sliding window
that holds across processes (``cache.add`` is atomic on Redis and on the local-memory cache).

Locales: ``default`` carries the English texts (it is what every non-Arabic shopper sees) and
``ar_AR`` (Facebook's only Arabic locale) the Arabic ones. A page's empty greeting, menu or ice
breakers fall back to the defaults below.

Ice breakers take precedence over the Get Started button on the welcome screen (Meta's "page
profile priority"); a referral (m.me link, click-to-Messenger ad) then arrives with the tapped
ice breaker's postback instead of the Get Started one.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from core.exceptions import ApplicationError
from messenger.client import GraphClient
from messenger.conversation.router import payload_parse
from messenger.exceptions import GraphError
from messenger.models import GREETING_MAX_LENGTH, MessengerPage, validate_greeting

logger = logging.getLogger(__name__)

__all__ = [
    "PROFILE_CALLS_PER_WINDOW",
    "PROFILE_WINDOW_SECONDS",
    "ProfileInvalid",
    "ProfileRateLimited",
    "SyncResult",
    "ice_breakers_errors",
    "messenger_profile_body",
    "messenger_profile_rate_check",
    "messenger_profile_sync",
    "messenger_profile_sync_enqueue",
    "persistent_menu_errors",
    "whitelistable_origin",
]

# Facebook locale codes (https://developers.facebook.com/docs/messenger-platform/messenger-profile/supported-locales).
DEFAULT_LOCALE = "default"
ARABIC_LOCALE = "ar_AR"
_LANGUAGE_OF_LOCALE = {DEFAULT_LOCALE: "en", ARABIC_LOCALE: "ar"}

# Platform limits (Messenger Profile API reference).
MENU_MAX_ITEMS = 20  # top-level call_to_actions per locale (nested menus are gone since v8.0)
MENU_TITLE_MAX_LENGTH = 30
PAYLOAD_MAX_LENGTH = 1000
ICE_BREAKERS_MAX = 4
WHITELISTED_DOMAINS_MAX = 50
MENU_ITEM_TYPES = frozenset({"postback", "web_url"})
WEBVIEW_HEIGHT_RATIOS = frozenset({"compact", "tall", "full"})

PROFILE_CALLS_PER_WINDOW = 10
PROFILE_WINDOW_SECONDS = 600
_SLOT_KEY = "messenger:profile-call:{page_id}:{slot}"

SYNC_ERROR_MAX_LENGTH = 300  # MessengerPage.profile_sync_error


class ProfileInvalid(ApplicationError):
    """The page's profile settings break a platform limit; ``extra["errors"]`` lists them all."""

    default_code = "messenger_profile_invalid"


class ProfileRateLimited(ApplicationError):
    """Ten Profile API calls were already made for this page in the last ten minutes.

    Nothing was sent. ``retry_after_seconds`` / ``retry_at`` say when a call is allowed again.
    """

    default_code = "messenger_profile_rate_limited"
    status_code = 429

    def __init__(self, *, page_id: str, retry_after_seconds: int, now: float):
        self.retry_after_seconds = retry_after_seconds
        self.retry_at = datetime.fromtimestamp(now + retry_after_seconds, tz=UTC)
        minutes = max(1, math.ceil(retry_after_seconds / 60))
        message = ngettext(
            "Messenger allows %(calls)d profile updates per 10 minutes for a page; "
            "try again in %(minutes)d minute (after %(time)s UTC).",
            "Messenger allows %(calls)d profile updates per 10 minutes for a page; "
            "try again in %(minutes)d minutes (after %(time)s UTC).",
            minutes,
        ) % {
            "calls": PROFILE_CALLS_PER_WINDOW,
            "minutes": minutes,
            "time": self.retry_at.strftime("%H:%M:%S"),
        }
        super().__init__(
            message,
            extra={
                "page_id": page_id,
                "retry_after_seconds": retry_after_seconds,
                "retry_at": self.retry_at.isoformat(),
            },
        )


@dataclass(frozen=True)
class SyncResult:
    """The outcome of one push: ``ok``, or the error recorded on the page."""

    page_id: str
    ok: bool
    synced_at: datetime | None = None
    error: str = ""
    transient: bool = False  # a retry later may succeed (Graph timeout, 5xx, throttling)
    fields: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)


# -- defaults --------------------------------------------------------------------------------


def _default_greeting() -> str:
    return _(
        "Hi {{user_first_name}}! Browse our products, ask us anything and order right here "
        "in Messenger."
    )


def _default_menu_items() -> list[dict[str, str]]:
    # The last item switches the conversation language: it names the *other* language.
    other_language = "LANG:en" if translation.get_language() == "ar" else "LANG:ar"
    return [
        {"type": "postback", "title": pgettext("messenger menu", "Shop"), "payload": "SHOP"},
        {"type": "postback", "title": pgettext("messenger menu", "Cart"), "payload": "CART"},
        {"type": "postback", "title": pgettext("messenger menu", "My orders"), "payload": "ORDERS"},
        {"type": "postback", "title": pgettext("messenger menu", "Help"), "payload": "HELP"},
        {
            "type": "postback",
            "title": "English" if other_language == "LANG:en" else "العربية",
            "payload": other_language,
        },
    ]


def _per_locale(build: Callable[[], Any]) -> dict[str, Any]:
    """``build()`` once per Messenger locale, with gettext in that locale's language."""
    values = {}
    for locale, language in _LANGUAGE_OF_LOCALE.items():
        with translation.override(language):
            values[locale] = build()
    return values


# -- validation (shared with the admin form) -------------------------------------------------


def _locale_entries_errors(value: Any, *, what: str, item_errors) -> list[str]:
    """Checks common to the per-locale lists: a list of objects, one ``default``, no repeats."""
    if not isinstance(value, list):
        return [_("%(what)s must be a list of objects, one per locale.") % {"what": what}]
    errors: list[str] = []
    seen: set[str] = set()
    for index, entry in enumerate(value, start=1):
        if not isinstance(entry, dict):
            errors.append(
                _("%(what)s entry %(n)d must be an object with locale and call_to_actions.")
                % {"what": what, "n": index}
            )
            continue
        locale = entry.get("locale")
        if not isinstance(locale, str) or not locale:
            errors.append(_("%(what)s entry %(n)d needs a locale.") % {"what": what, "n": index})
            locale = f"#{index}"
        elif locale in seen:
            errors.append(
                _("%(what)s has two entries for locale %(locale)s.")
                % {"what": what, "locale": locale}
            )
        seen.add(locale)
        errors.extend(item_errors(entry, locale))
    if value and DEFAULT_LOCALE not in seen:
        errors.append(
            _('%(what)s needs an entry with "locale": "default" (shown when no locale matches).')
            % {"what": what}
        )
    return errors


def _payload_errors(payload: Any, *, where: str) -> list[str]:
    if not isinstance(payload, str) or not payload:
        return [_("%(where)s needs a payload.") % {"where": where}]
    if len(payload) > PAYLOAD_MAX_LENGTH:
        return [
            _("%(where)s: the payload is longer than %(max)d characters.")
            % {"where": where, "max": PAYLOAD_MAX_LENGTH}
        ]
    if payload_parse(payload) is None:
        return [
            _("%(where)s: %(payload)s is not a payload the shop understands (e.g. SHOP, CART).")
            % {"where": where, "payload": payload}
        ]
    return []


def persistent_menu_errors(value: Any) -> list[str]:
    """Everything wrong with a ``persistent_menu`` value (Graph format); empty when valid."""
    what = _("The persistent menu")

    def item_errors(entry: dict, locale: str) -> list[str]:
        errors: list[str] = []
        disabled = entry.get("composer_input_disabled", False)
        if not isinstance(disabled, bool):
            errors.append(
                _("Menu %(locale)s: composer_input_disabled must be true or false.")
                % {"locale": locale}
            )
        items = entry.get("call_to_actions")
        if not isinstance(items, list) or not items:
            errors.append(_("Menu %(locale)s needs call_to_actions.") % {"locale": locale})
            return errors
        if len(items) > MENU_MAX_ITEMS:
            errors.append(
                _("Menu %(locale)s has %(count)d items; Messenger allows %(max)d.")
                % {"locale": locale, "count": len(items), "max": MENU_MAX_ITEMS}
            )
        for number, item in enumerate(items, start=1):
            where = _("Menu %(locale)s item %(n)d") % {"locale": locale, "n": number}
            if not isinstance(item, dict):
                errors.append(_("%(where)s must be an object.") % {"where": where})
                continue
            kind = item.get("type")
            if kind not in MENU_ITEM_TYPES:
                errors.append(_("%(where)s: type must be postback or web_url.") % {"where": where})
            title = item.get("title")
            if not isinstance(title, str) or not title.strip():
                errors.append(_("%(where)s needs a title.") % {"where": where})
            elif len(title) > MENU_TITLE_MAX_LENGTH:
                errors.append(
                    _("%(where)s: the title is longer than %(max)d characters.")
                    % {"where": where, "max": MENU_TITLE_MAX_LENGTH}
                )
            if kind == "postback":
                errors.extend(_payload_errors(item.get("payload"), where=where))
            elif kind == "web_url":
                url = item.get("url")
                if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
                    errors.append(_("%(where)s needs an http(s) url.") % {"where": where})
                ratio = item.get("webview_height_ratio")
                if ratio is not None and ratio not in WEBVIEW_HEIGHT_RATIOS:
                    errors.append(
                        _("%(where)s: webview_height_ratio must be compact, tall or full.")
                        % {"where": where}
                    )
        return errors

    return _locale_entries_errors(value, what=what, item_errors=item_errors)


def ice_breakers_errors(value: Any) -> list[str]:
    """Everything wrong with an ``ice_breakers`` value (per-locale format); empty when valid."""
    what = _("The ice breakers")

    def item_errors(entry: dict, locale: str) -> list[str]:
        errors: list[str] = []
        items = entry.get("call_to_actions")
        if not isinstance(items, list) or not items:
            return [_("Ice breakers %(locale)s need call_to_actions.") % {"locale": locale}]
        if len(items) > ICE_BREAKERS_MAX:
            errors.append(
                _("Ice breakers %(locale)s has %(count)d questions; Messenger allows %(max)d.")
                % {"locale": locale, "count": len(items), "max": ICE_BREAKERS_MAX}
            )
        for number, item in enumerate(items, start=1):
            where = _("Ice breaker %(locale)s %(n)d") % {"locale": locale, "n": number}
            if not isinstance(item, dict):
                errors.append(_("%(where)s must be an object.") % {"where": where})
                continue
            question = item.get("question")
            if not isinstance(question, str) or not question.strip():
                errors.append(_("%(where)s needs a question.") % {"where": where})
            errors.extend(_payload_errors(item.get("payload"), where=where))
        return errors

    return _locale_entries_errors(value, what=what, item_errors=item_errors)


def _greeting_errors(greetings: list[dict[str, str]]) -> list[str]:
    errors: list[str] = []
    for greeting in greetings:
        text, locale = greeting["text"], greeting["locale"]
        if len(text) > GREETING_MAX_LENGTH:
            errors.append(
                _("The greeting for %(locale)s has %(count)d characters; Messenger allows %(max)d.")
                % {"locale": locale, "count": len(text), "max": GREETING_MAX_LENGTH}
            )
        try:
            validate_greeting(text)
        except ValidationError as exc:
            errors.extend(f"{locale}: {message}" for message in exc.messages)
    return errors


# -- the body --------------------------------------------------------------------------------


def whitelistable_origin(url: str) -> str | None:
    """The origin of ``url`` if Messenger accepts it as a whitelisted domain, else ``None``.

    Meta only takes HTTPS and a fully qualified domain name: no IP address, no localhost (so a
    development ``PUBLIC_BASE_URL`` such as ``http://127.0.0.1:8000`` has none).
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme != "https" or not host or host == "localhost" or "." not in host:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return f"https://{parts.netloc.lower()}"
    return None


def messenger_profile_body(*, page: MessengerPage) -> dict[str, Any]:
    """The Messenger Profile API body for ``page`` (pure: reads settings, no database or HTTP).

    Greeting per locale (the page's text, else the default one), Get Started, the persistent
    menu and ice breakers (the page's JSON, else the default shop menu and questions), and the
    origin of ``PUBLIC_BASE_URL`` as whitelisted domain when Messenger can accept it.

    :raises ProfileInvalid: a platform limit is broken (``extra["errors"]`` lists every problem).
    """
    defaults = _per_locale(_default_greeting)
    greeting = [
        {"locale": DEFAULT_LOCALE, "text": page.greeting_en or defaults[DEFAULT_LOCALE]},
        {"locale": ARABIC_LOCALE, "text": page.greeting_ar or defaults[ARABIC_LOCALE]},
    ]
    get_started_payload = page.get_started_payload or "GET_STARTED"

    if page.persistent_menu:
        persistent_menu = [
            {"composer_input_disabled": False, **entry} if isinstance(entry, dict) else entry
            for entry in page.persistent_menu
        ]
    else:
        persistent_menu = [
            {"locale": locale, "composer_input_disabled": False, "call_to_actions": items}
            for locale, items in _per_locale(_default_menu_items).items()
        ]
    # No default ice breakers: Messenger shows them *instead of* the Get Started button, and the
    # welcome screen (greeting + Get Started, which also carries m.me refs) is what we want.
    ice_breakers = page.ice_breakers or []

    errors = [
        *_greeting_errors(greeting),
        *_payload_errors(get_started_payload, where=_("The Get Started button")),
        *persistent_menu_errors(persistent_menu),
        *ice_breakers_errors(ice_breakers),
    ]
    if errors:
        raise ProfileInvalid(
            _("The Messenger Profile of %(page)s cannot be sent: %(errors)s")
            % {"page": page.name or page.page_id, "errors": " ".join(errors)},
            extra={"errors": errors},
        )

    body: dict[str, Any] = {
        "get_started": {"payload": get_started_payload},
        "greeting": greeting,
        "persistent_menu": persistent_menu,
    }
    if ice_breakers:
        body["ice_breakers"] = ice_breakers
    origin = whitelistable_origin(settings.PUBLIC_BASE_URL)
    if origin:
        body["whitelisted_domains"] = [origin]
    return body


# -- rate limit ------------------------------------------------------------------------------


def _slot_keys(page_id: str) -> list[str]:
    return [
        _SLOT_KEY.format(page_id=page_id, slot=slot) for slot in range(PROFILE_CALLS_PER_WINDOW)
    ]


def _refusal(page_id: str, claimed_at: list[float], now: float) -> ProfileRateLimited:
    oldest = min(claimed_at) if claimed_at else now
    retry_after = max(1, math.ceil(oldest + PROFILE_WINDOW_SECONDS - now))
    return ProfileRateLimited(page_id=page_id, retry_after_seconds=retry_after, now=now)


def messenger_profile_rate_check(*, page: MessengerPage) -> None:
    """Refuse early when no call is left for ``page`` in the window; claims nothing.

    :raises ProfileRateLimited: all 10 calls of the last 10 minutes are used.
    """
    now = time.time()
    taken = cache.get_many(_slot_keys(page.page_id))
    if len(taken) >= PROFILE_CALLS_PER_WINDOW:
        raise _refusal(page.page_id, list(taken.values()), now)


def _call_claim(*, page_id: str) -> None:
    """Claim one of the page's 10 call slots for 10 minutes (atomic ``cache.add`` per slot).

    :raises ProfileRateLimited: every slot is taken.
    """
    now = time.time()
    keys = _slot_keys(page_id)
    taken = cache.get_many(keys)
    for key in keys:
        # A slot seen free may be claimed by another process meanwhile: add() tells.
        if key not in taken and cache.add(key, now, timeout=PROFILE_WINDOW_SECONDS):
            return
    raise _refusal(page_id, list(cache.get_many(keys).values()), now)


# -- sync ------------------------------------------------------------------------------------


def _scrub(text: str, page: MessengerPage) -> str:
    """Never let a token reach the database or a log line, even inside an error message."""
    token = page.access_token
    if token and token in text:
        text = text.replace(token, "••••")
    return text[:SYNC_ERROR_MAX_LENGTH]


def _record(page: MessengerPage, **values: Any) -> None:
    # update(): the admin may be saving other fields of the page at the same time.
    MessengerPage.objects.filter(pk=page.pk).update(**values)
    for name, value in values.items():
        setattr(page, name, value)


def messenger_profile_sync(*, page: MessengerPage) -> SyncResult:
    """Push ``page``'s Messenger Profile with one Profile API call and record the outcome.

    Success sets ``profile_synced_at`` and clears ``profile_sync_error``; invalid settings, a
    missing token or a Graph error are recorded in ``profile_sync_error`` (never with the token)
    and returned with ``ok=False``. A rejected token (Graph code 190) also sets
    ``token_invalid_at``, as the outbox does.

    :raises ProfileRateLimited: the page already had 10 calls in the last 10 minutes (nothing
        sent, nothing recorded).
    """
    try:
        body = messenger_profile_body(page=page)
    except ProfileInvalid as exc:
        error = _scrub(exc.message, page)
        _record(page, profile_sync_error=error)
        logger.warning("messenger profile of page %s not sent: invalid settings", page.page_id)
        return SyncResult(page_id=page.page_id, ok=False, error=error)

    if not page.access_token:
        error = _("The page has no access token: paste one in the page settings.")
        _record(page, profile_sync_error=error)
        return SyncResult(page_id=page.page_id, ok=False, error=error)

    warnings: tuple[str, ...] = ()
    if "whitelisted_domains" not in body:
        warnings = (
            _("PUBLIC_BASE_URL (%(url)s) is not an https domain name, so it was not whitelisted.")
            % {"url": settings.PUBLIC_BASE_URL},
        )

    _call_claim(page_id=page.page_id)
    try:
        GraphClient(page).profile_set(body)
    except GraphError as exc:
        error = _scrub(
            _("Graph API error %(code)s: %(message)s")
            % {"code": exc.error_code, "message": exc.message},
            page,
        )
        values: dict[str, Any] = {"profile_sync_error": error}
        if exc.token_invalid and page.token_invalid_at is None:
            values["token_invalid_at"] = timezone.now()  # as the outbox does: flag the page
        _record(page, **values)
        logger.warning(
            "messenger profile of page %s refused by Graph: code %s subcode %s (transient=%s)",
            page.page_id,
            exc.code,
            exc.subcode,
            exc.transient,
        )
        return SyncResult(
            page_id=page.page_id, ok=False, error=error, transient=bool(exc.transient)
        )

    synced_at = timezone.now()
    _record(page, profile_synced_at=synced_at, profile_sync_error="")
    logger.info("messenger profile of page %s pushed (%s)", page.page_id, ", ".join(body))
    return SyncResult(
        page_id=page.page_id,
        ok=True,
        synced_at=synced_at,
        fields=tuple(body),
        warnings=warnings,
    )


def messenger_profile_sync_enqueue(*, page: MessengerPage) -> None:
    """Check that ``page``'s profile can be pushed now, then push it from the worker.

    For the admin: a broken setting or an exhausted rate limit is reported at once, and the slow
    Graph call happens in ``messenger_profile_sync_task`` after the current transaction commits.

    :raises ProfileInvalid: a setting breaks a platform limit, or the page has no token.
    :raises ProfileRateLimited: no Profile API call is left for the page right now.
    """
    from messenger.tasks.profile import messenger_profile_sync_task

    messenger_profile_body(page=page)
    if not page.access_token:
        raise ProfileInvalid(_("The page has no access token: paste one in the page settings."))
    messenger_profile_rate_check(page=page)
    page_pk = page.pk
    transaction.on_commit(lambda: messenger_profile_sync_task.delay(page_pk))
