"""Graph API errors as the platform answers them: ``{"error": {"message", "type", "code",
"error_subcode", "fbtrace_id"}}`` with an HTTP status (400 for almost everything)."""

from __future__ import annotations

import secrets
from typing import Any

from django.http import JsonResponse

# Messages the platform sends with these codes (Messenger Platform "Common Error Codes").
NO_MATCHING_USER = (100, 2018001, "(#100) No matching user found")
OUTSIDE_WINDOW = (10, 2018278, "(#10) This message is sent outside of allowed window.")
UNAVAILABLE = (551, 1545041, "(#551) This person isn't available right now.")
NOT_WHITELISTED = (100, None, "(#100) The URL provided is not whitelisted for messenger extensions")

DEFAULT_MESSAGES = {
    1: "An unknown error occurred",
    2: "An unexpected error has occurred. Please retry your request later.",
    4: "(#4) Application request limit reached",
    10: OUTSIDE_WINDOW[2],
    100: "(#100) Invalid parameter",
    190: "Invalid OAuth access token - Cannot parse access token",
    551: UNAVAILABLE[2],
    613: "(#613) Calls to this api have exceeded the rate limit.",
    1200: "(#1200) Temporary send message failure. Please try again later",
}


def fbtrace_id() -> str:
    """A trace id shaped like Meta's (11 url-safe characters)."""
    return secrets.token_urlsafe(8)[:11]


class GraphApiError(Exception):
    """An answer the stand-in refuses a request with."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        status: int = 400,
        error_type: str = "OAuthException",
    ):
        super().__init__(message)
        self.code, self.subcode, self.message = code, subcode, message
        self.status, self.error_type = status, error_type

    @classmethod
    def of(cls, known: tuple[int, int | None, str], **kwargs: Any) -> GraphApiError:
        code, subcode, message = known
        return cls(code, message, subcode=subcode, **kwargs)

    @classmethod
    def invalid(cls, message: str, *, subcode: int | None = None) -> GraphApiError:
        """Code 100 (invalid parameter), the platform's answer to most malformed bodies."""
        return cls(100, f"(#100) {message}", subcode=subcode)

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        error["fbtrace_id"] = fbtrace_id()
        return {"error": error}

    def response(self) -> JsonResponse:
        return JsonResponse(self.body(), status=self.status)
