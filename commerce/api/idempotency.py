"""The API's ``Idempotency-Key`` header: the API side of submission keys (ADR 0007).

A POST that creates rows and messages (ship an order, add a note, request a refund) takes an
optional ``Idempotency-Key`` header. The service stores it with what the request created; the
same key sent again to the same order returns that object with the same status code and an
``Idempotent-Replayed: true`` header, changing nothing. The same key with a different body is
refused with 422 (``submission_reused``). Keys are scoped to the order; without one, every call
is a new action. Conventions: Stripe's idempotent requests and the IETF httpapi draft
"The Idempotency-Key HTTP Header Field".
"""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request

from commerce.api.schema import error_response

__all__ = ["E422_REUSED", "IDEMPOTENCY_KEY", "idempotency_key", "replay_headers"]

IDEMPOTENCY_KEY = OpenApiParameter(
    name="Idempotency-Key",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=False,
    description=(
        "A key of your choice (1-100 printable ASCII characters, e.g. a UUID) for this "
        "request. Sending the same request again with the same key returns what the first one "
        "created (same status, header `Idempotent-Replayed: true`) instead of doing it twice. "
        "Retry with the same key after a timeout; use a new key for a new action."
    ),
)

E422_REUSED = error_response(
    "The Idempotency-Key was already used on this order with a different request body.",
    ("reused", "This form was already sent with other details.", "submission_reused"),
)


def idempotency_key(request: Request) -> str:
    """The raw header value (the service validates it); empty when not sent."""
    return request.headers.get("Idempotency-Key", "")


def replay_headers(created) -> dict[str, str]:
    """``Idempotent-Replayed: true`` when the service returned an earlier request's result."""
    return {"Idempotent-Replayed": "true"} if getattr(created, "replayed", False) else {}
