"""The Messenger webhook: verify, store, answer. No conversation work happens here.

``GET`` answers Meta's subscription check; ``POST`` checks the body's size and signature (on the
raw bytes, before parsing), stores one inbox row per messaging item and answers
``EVENT_RECEIVED``. The worker takes it from there (``messenger.services.inbox``).
"""

from __future__ import annotations

import hmac
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

from messenger.services.inbox import WebhookPayloadError, inbound_events_store
from messenger.webhook.signature import signature_is_valid

logger = logging.getLogger(__name__)


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
    try:
        inbound_events_store(raw_body=body)
    except WebhookPayloadError as error:
        return JsonResponse({"message": error.message, "code": error.code}, status=400)
    return HttpResponse("EVENT_RECEIVED", content_type="text/plain")


def _too_large(limit: int) -> HttpResponse:
    return HttpResponse(f"Body larger than {limit} bytes.", status=413, content_type="text/plain")
