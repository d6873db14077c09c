"""The Messenger webhook: verify, store, answer. No conversation work happens here.

``GET`` answers Meta's subscription check; ``POST`` checks the body's size (413) and signature
(403, nothing stored) on the raw bytes, before parsing, stores one inbox row per messaging item
and answers ``EVENT_RECEIVED`` with 200. A correctly signed body is always answered 200: what
cannot be used in it is stored as a ``failed`` row with its reason and never holds back the
rest, because Meta redelivers a body that gets anything else and ends up disabling the app's
subscription (docs/platform-rules.md, "Messenger webhooks"). Only a failure to store (the
database is down) answers 5xx, so that Meta delivers the body again.

The worker takes it from there (``messenger.services.inbox``). The one exception: a legacy v1.2
``pre_checkout`` or ``checkout_update`` for a page in buy-button mode needs its answer in the
response body, so it is answered here too (after it is stored).
"""

from __future__ import annotations

import hmac
import json
import logging

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    HttpResponseNotAllowed,
    JsonResponse,
)
from django.views.decorators.csrf import csrf_exempt

from messenger.events import event_kind, event_parse
from messenger.models import MessengerPage
from messenger.services.inbox import inbound_events_store
from messenger.webhook.signature import signature_is_valid
from payments.services import buy_button

logger = logging.getLogger(__name__)

# Legacy v1.2 items answered in the response body: kind -> (answer, answer on failure).
_LEGACY_ANSWERS = {
    "pre_checkout": (buy_button.pre_checkout_answer, {"success": False}),
    "checkout_update": (buy_button.checkout_update_answer, {"shipping": []}),
}
_LEGACY_MARKS = tuple(f'"{kind}"'.encode() for kind in _LEGACY_ANSWERS)


@csrf_exempt
def webhook(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        return webhook_receive(request)
    if request.method == "GET":
        return webhook_verify(request)
    return HttpResponseNotAllowed(["GET", "POST"])


def webhook_verify(request: HttpRequest) -> HttpResponse:
    """Meta's subscription check: echo ``hub.challenge`` when the verify token matches."""
    expected = settings.MESSENGER_VERIFY_TOKEN
    given = request.GET.get("hub.verify_token", "")
    if (
        expected
        and request.GET.get("hub.mode") == "subscribe"
        and hmac.compare_digest(given.encode(), expected.encode())
    ):
        return HttpResponse(request.GET.get("hub.challenge", ""), content_type="text/plain")
    return HttpResponseForbidden("Verification failed.", content_type="text/plain")


def webhook_receive(request: HttpRequest) -> HttpResponse:
    limit = settings.MESSENGER_WEBHOOK_MAX_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return _too_large(limit)
    try:
        body = request.body  # read once: the signature covers these exact bytes
    except RequestDataTooBig:  # above DATA_UPLOAD_MAX_MEMORY_SIZE
        return _too_large(limit)
    if len(body) > limit:
        return _too_large(limit)
    if not signature_is_valid(body, request.headers):
        logger.warning("webhook: refused a POST with a missing or wrong signature")
        return HttpResponseForbidden("Bad signature.", content_type="text/plain")
    inbound_events_store(raw_body=body)
    if any(mark in body for mark in _LEGACY_MARKS):  # cheap: the hot path never parses twice
        answer = legacy_checkout_answer(body)
        if answer is not None:
            return JsonResponse(answer)
    return HttpResponse("EVENT_RECEIVED", content_type="text/plain")


def legacy_checkout_answer(body: bytes) -> dict | None:
    """The synchronous answer to a legacy v1.2 ``pre_checkout`` / ``checkout_update`` (DESIGN.md
    6.3) when ``body`` holds exactly that one item for an active page in buy-button mode; None
    otherwise (the usual ``EVENT_RECEIVED``). The item is stored in the inbox all the same."""
    try:
        [entry] = json.loads(body)["entry"]
        [item] = entry["messaging"]
        page_id = str(entry["id"])
    except (ValueError, KeyError, TypeError):
        return None
    kind = event_kind(item)
    if kind not in _LEGACY_ANSWERS:
        return None
    page = (
        MessengerPage.objects.select_related("merchant")
        .filter(page_id=page_id, is_active=True, mode=MessengerPage.Mode.BUY_BUTTON)
        .first()
    )
    if page is None:
        return None
    answer, refusal = _LEGACY_ANSWERS[kind]
    try:
        return answer(page=page, event=event_parse(item, page_id=page_id))
    except Exception:  # never a 500: Meta would retry a question the shopper is waiting on
        logger.exception("webhook: could not answer a %s for page %s", kind, page_id)
        return refusal


def _too_large(limit: int) -> HttpResponse:
    return HttpResponse(f"Body larger than {limit} bytes.", status=413, content_type="text/plain")
