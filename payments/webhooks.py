"""The Stripe webhook (``POST /payments/stripe/webhook/``): verify, store, enqueue, answer 200.

The signature is checked by the gateway with the ``stripe`` library on the raw body (tolerance
300 s, any of the header's ``v1`` signatures, any of the configured secrets) before anything is
parsed or stored; a missing, forged, stale or wrongly keyed signature answers 400 and stores
nothing. A verified event is stored once (a replayed id is a no-op) and processed by the worker
after the commit (``payments.tasks.process_provider_event``); Stripe gets its 200 at once.
"""

from __future__ import annotations

import logging
from functools import partial

from django.core.exceptions import RequestDataTooBig
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from payments.gateways import WebhookSignatureError, gateway_for
from payments.services.events import ProviderEventInvalid, provider_event_store
from payments.tasks import enqueue_provider_event

logger = logging.getLogger(__name__)

#: Stripe events are a few KiB; anything this large is not one of them.
MAX_BODY_BYTES = 512 * 1024


@csrf_exempt
@require_POST
def stripe_webhook(request: HttpRequest) -> HttpResponse:
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > MAX_BODY_BYTES:
        return _error(413, f"The body is larger than {MAX_BODY_BYTES} bytes.", "body_too_large")
    try:
        body = request.body  # the signature covers these exact bytes
    except RequestDataTooBig:
        return _error(413, f"The body is larger than {MAX_BODY_BYTES} bytes.", "body_too_large")
    if len(body) > MAX_BODY_BYTES:
        return _error(413, f"The body is larger than {MAX_BODY_BYTES} bytes.", "body_too_large")

    try:
        event = gateway_for("stripe").webhook_parse(
            payload=body, signature_header=request.headers.get("Stripe-Signature", "")
        )
    except WebhookSignatureError as error:
        logger.warning("Stripe webhook refused: %s", error.code)
        return _error(400, error.message, error.code)

    try:
        stored, created = provider_event_store(gateway="stripe", event=event)
    except ProviderEventInvalid as error:
        return _error(400, str(error), "webhook_payload_invalid")
    if created:
        transaction.on_commit(partial(enqueue_provider_event, stored.pk))
    return JsonResponse({"received": True})


def _error(status: int, message: str, code: str) -> JsonResponse:
    return JsonResponse({"message": message, "code": code}, status=status)
