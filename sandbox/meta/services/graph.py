"""The Graph API stand-in's behaviour: who is calling, what the platform would answer, and what
it remembers (every accepted Send API call, the pushed Messenger Profile, thread owners).

The views in ``sandbox/meta/graph_views.py`` only parse requests and render these answers.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from sandbox.meta.errors import (
    DEFAULT_MESSAGES,
    NO_MATCHING_USER,
    OUTSIDE_WINDOW,
    UNAVAILABLE,
    GraphApiError,
)
from sandbox.meta.models import GraphFault, GraphMessage, SandboxPage, SandboxShopper
from sandbox.meta.sendapi import profile_body_check, profile_delete_check, send_body_check

logger = logging.getLogger(__name__)

STANDARD_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
TAGS_ANY_TIME = ("CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "ACCOUNT_UPDATE")
USER_FIELDS = ("id", "name", "first_name", "last_name", "profile_pic", "locale", "timezone")
DEFAULT_USER_FIELDS = ("first_name", "last_name", "profile_pic", "id")
# The app the service runs as (the page's primary receiver in the handover protocol).
PRIMARY_APP_ID = "1517776481860111"
PAGE_INBOX_APP_ID = "263902037430900"  # Meta's Page Inbox, the usual secondary receiver


def message_id_new() -> str:
    """A message id shaped like Meta's ``mid`` (``m_`` and 86 url-safe characters)."""
    return "m_" + secrets.token_urlsafe(65)[:86]


# -- authentication ----------------------------------------------------------------------------


def appsecret_proof(token: str) -> str:
    return hmac.new(
        settings.MESSENGER_APP_SECRET.encode(), token.encode(), hashlib.sha256
    ).hexdigest()


def page_authenticate(*, access_token: str, proof: str | None) -> SandboxPage:
    """The page whose token this is, after checking ``appsecret_proof``.

    The proof is required whenever ``MESSENGER_APP_SECRET`` is set (the app's "Require App
    Secret" switch, which a commerce app turns on).

    :raises GraphApiError: 2500 without a token, 190 for an unknown token, 100 for a missing or
        wrong proof.
    """
    if not access_token:
        raise GraphApiError(
            2500, "An active access token must be used to query information about the current user."
        )
    page = SandboxPage.objects.filter(access_token=access_token).first()
    if page is None:
        raise GraphApiError(190, DEFAULT_MESSAGES[190])
    if settings.MESSENGER_APP_SECRET:
        if not proof:
            raise GraphApiError(
                100,
                "API calls from the server require an appsecret_proof argument",
                error_type="GraphMethodException",
            )
        if not hmac.compare_digest(proof.encode(), appsecret_proof(access_token).encode()):
            raise GraphApiError(
                100,
                "Invalid appsecret_proof provided in the API argument",
                error_type="GraphMethodException",
            )
    return page


# -- faults ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaultAnswer:
    delay_seconds: float
    error: GraphApiError | None


def fault_add(
    *,
    path: str = "",
    status: int | None = None,
    code: int | None = None,
    subcode: int | None = None,
    message: str = "",
    error_type: str = "OAuthException",
    times: int | None = None,
    delay_ms: int = 0,
) -> GraphFault:
    """Make the next ``times`` requests whose path contains ``path`` (all requests and until
    cleared when None) wait ``delay_ms`` and, when ``status`` is given, fail with that Graph
    error (code 2 for a 5xx status and 100 otherwise, unless ``code`` says)."""
    if status is not None and code is None:
        code = 2 if status >= 500 else 100
    if status is not None and not message:
        message = DEFAULT_MESSAGES.get(code, f"(#{code}) Sandbox fault")
    return GraphFault.objects.create(
        path=path,
        status=status,
        code=code,
        subcode=subcode,
        message=message,
        error_type=error_type,
        remaining=times,
        delay_ms=delay_ms,
    )


def faults_clear() -> int:
    return GraphFault.objects.all().delete()[0]


@transaction.atomic
def fault_take(*, path: str) -> FaultAnswer | None:
    """The oldest fault matching ``path``, counted down (and removed at zero), as an answer."""
    faults = GraphFault.objects.select_for_update().order_by("id")
    for fault in faults:
        if fault.path and fault.path not in path:
            continue
        if fault.remaining is not None:
            if fault.remaining <= 1:
                fault.delete()
            else:
                GraphFault.objects.filter(pk=fault.pk).update(remaining=fault.remaining - 1)
        error = None
        if fault.status is not None:
            error = GraphApiError(
                fault.code if fault.code is not None else 2,
                fault.message,
                subcode=fault.subcode,
                status=fault.status,
                error_type=fault.error_type,
            )
        return FaultAnswer(delay_seconds=fault.delay_ms / 1000, error=error)
    return None


def fault_apply(answer: FaultAnswer | None) -> None:
    """Wait and raise as ``answer`` says (outside any transaction).

    :raises GraphApiError: the fault's error.
    """
    if answer is None:
        return
    if answer.delay_seconds:
        time.sleep(answer.delay_seconds)
    if answer.error is not None:
        raise answer.error


# -- Send API ----------------------------------------------------------------------------------


def _shopper_for(page: SandboxPage, psid: str) -> SandboxShopper:
    shopper = SandboxShopper.objects.filter(page=page, psid=psid).first()
    if shopper is None:
        raise GraphApiError.of(NO_MATCHING_USER)
    return shopper


def _window_check(shopper: SandboxShopper, body: dict, now: datetime) -> None:
    messaging_type, tag = body.get("messaging_type"), body.get("tag")
    if messaging_type == "MESSAGE_TAG" and tag in TAGS_ANY_TIME:
        return
    human_agent = messaging_type == "MESSAGE_TAG" and tag == "HUMAN_AGENT"
    window = HUMAN_AGENT_WINDOW if human_agent else STANDARD_WINDOW
    last = shopper.last_message_at
    if last is None or now - last > window:
        raise GraphApiError.of(OUTSIDE_WINDOW)


def send_accept(*, page: SandboxPage, body: Any, now: datetime | None = None) -> dict:
    """Accept one Send API call as the platform would, and remember it.

    A message gets a new ``mid``; a delivery and then a read event for it are posted to the
    service by a task shortly after (``sandbox.meta.tasks.message_receipts``).

    :raises GraphApiError: the platform's error for a malformed body (100), an unknown
        recipient (100/2018001), an unavailable shopper (551/1545041) or a message outside the
        24-hour window (10/2018278; ``HUMAN_AGENT`` has 7 days).
    """
    now = now or timezone.now()
    whitelisted = page.messenger_profile.get("whitelisted_domains") or []
    psid = send_body_check(body, whitelisted=whitelisted)
    shopper = _shopper_for(page, psid)
    if not shopper.available:
        raise GraphApiError.of(UNAVAILABLE)
    _window_check(shopper, body, now)
    is_action = "sender_action" in body
    message = GraphMessage.objects.create(
        page=page,
        shopper=shopper,
        recipient_psid=psid,
        message_id="" if is_action else message_id_new(),
        body=body,
        messaging_type=str(body.get("messaging_type") or ""),
        tag=str(body.get("tag") or "") if body.get("messaging_type") == "MESSAGE_TAG" else "",
        received_at=now,
    )
    if is_action:
        return {"recipient_id": psid}
    transaction.on_commit(partial(_receipts_publish, message.pk))
    return {"recipient_id": psid, "message_id": message.message_id}


RECEIPTS_DELAY_SECONDS = 1.0


def _receipts_publish(message_pk: int) -> None:
    from sandbox.meta.tasks import message_receipts  # the tasks module imports this one

    try:
        message_receipts.apply_async((message_pk,), countdown=RECEIPTS_DELAY_SECONDS, retry=False)
    except Exception:  # no broker: the message is accepted all the same, just never "seen"
        logger.warning("sandbox: could not schedule delivery/read for message %s", message_pk)


# -- User Profile API --------------------------------------------------------------------------


def user_profile(*, page: SandboxPage, psid: str, fields: str | None) -> dict:
    """``GET /<psid>``: the shopper's public profile, narrowed to ``fields``.

    :raises GraphApiError: 100/33 for an unknown PSID or field, as the platform answers.
    """
    shopper = SandboxShopper.objects.filter(page=page, psid=psid).first()
    if shopper is None:
        raise GraphApiError(
            100,
            f"Unsupported get request. Object with ID '{psid}' does not exist, cannot be loaded "
            "due to missing permissions, or does not support this operation.",
            subcode=33,
            error_type="GraphMethodException",
        )
    wanted = [name.strip() for name in fields.split(",") if name.strip()] if fields else []
    for name in wanted:
        if name not in USER_FIELDS:
            raise GraphApiError.invalid(
                f"Tried accessing nonexisting field ({name}) on node type (User)"
            )
    values = {
        "id": shopper.psid,
        "name": shopper.full_name,
        "first_name": shopper.first_name,
        "last_name": shopper.last_name,
        "profile_pic": shopper.profile_pic
        or f"https://platform-lookaside.fbsbx.com/platform/profilepic/?psid={shopper.psid}",
        "locale": shopper.locale,
        "timezone": int(shopper.timezone) if shopper.timezone.is_integer() else shopper.timezone,
    }
    names = wanted or list(DEFAULT_USER_FIELDS)
    return {name: values[name] for name in [*names, "id"]}


# -- Messenger Profile API ---------------------------------------------------------------------


@transaction.atomic
def messenger_profile_set(*, page: SandboxPage, body: Any) -> dict:
    """``POST /me/messenger_profile``: merge the given fields into the page's profile.

    :raises GraphApiError: code 100 for unknown fields and broken limits (nothing is changed).
    """
    page = SandboxPage.objects.select_for_update().get(pk=page.pk)
    page.messenger_profile = profile_body_check(body, current=page.messenger_profile)
    page.save(update_fields=["messenger_profile"])
    return {"result": "success"}


@transaction.atomic
def messenger_profile_delete(*, page: SandboxPage, body: Any) -> dict:
    """``DELETE /me/messenger_profile`` with ``{"fields": [...]}``.

    :raises GraphApiError: code 100 for a missing or unknown field list.
    """
    page = SandboxPage.objects.select_for_update().get(pk=page.pk)
    page.messenger_profile = profile_delete_check(body, current=page.messenger_profile)
    page.save(update_fields=["messenger_profile"])
    return {"result": "success"}


def messenger_profile_get(*, page: SandboxPage, fields: str | None) -> dict:
    """``GET /me/messenger_profile?fields=...``: ``{"data": [{...}]}`` (empty when unset).

    :raises GraphApiError: code 100 without ``fields``.
    """
    wanted = [name.strip() for name in (fields or "").split(",") if name.strip()]
    if not wanted:
        raise GraphApiError.invalid("The parameter fields is required")
    found = {
        name: page.messenger_profile[name] for name in wanted if name in page.messenger_profile
    }
    return {"data": [found] if found else []}


# -- Handover protocol -------------------------------------------------------------------------


def _recipient(page: SandboxPage, body: Any) -> SandboxShopper:
    recipient = body.get("recipient") if isinstance(body, dict) else None
    psid = recipient.get("id") if isinstance(recipient, dict) else None
    if not psid:
        raise GraphApiError.invalid("The parameter recipient is required")
    return _shopper_for(page, str(psid))


def thread_pass(*, page: SandboxPage, body: Any) -> dict:
    """``POST /me/pass_thread_control``: give the thread to ``target_app_id``.

    :raises GraphApiError: code 100 without recipient or target app, 2018001 unknown recipient.
    """
    shopper = _recipient(page, body)
    target = str(body.get("target_app_id") or "")
    if not target.isdigit():
        raise GraphApiError.invalid("The parameter target_app_id is required")
    shopper.thread_owner_app_id = "" if target == PRIMARY_APP_ID else target
    shopper.save(update_fields=["thread_owner_app_id"])
    return {"success": True}


def thread_take(*, page: SandboxPage, body: Any) -> dict:
    """``POST /me/take_thread_control``: the primary app takes the thread back.

    :raises GraphApiError: code 100 without recipient, 2018001 unknown recipient.
    """
    shopper = _recipient(page, body)
    shopper.thread_owner_app_id = ""
    shopper.save(update_fields=["thread_owner_app_id"])
    return {"success": True}


def thread_owner(*, page: SandboxPage, psid: str | None) -> dict:
    """``GET /me/thread_owner?recipient=<psid>``.

    :raises GraphApiError: code 100 without recipient, 2018001 unknown recipient.
    """
    if not psid:
        raise GraphApiError.invalid("The parameter recipient is required")
    shopper = _shopper_for(page, psid)
    return {"data": [{"thread_owner": {"app_id": shopper.thread_owner_app_id or PRIMARY_APP_ID}}]}
