"""The API token endpoint and its rate limits (token checks: ``commerce.api.authentication``).

``POST /api/auth/token/`` trades a staff member's username and password for a new token, shown
once. The password check is the shared one (``core.auth_backends``): the same lockout per
username and address as the dashboard's and the admin's sign-in, so five wrong guesses anywhere
lock the pair everywhere. On top of it the endpoint keeps its own rate limits, per address and
per username. Tokens are stored hashed and expire (``commerce.services.api_tokens``).
"""

from __future__ import annotations

import hashlib
import logging

from django.contrib.auth import authenticate
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import ParseError
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from commerce.api import serializers
from commerce.api.schema import error_response
from commerce.services.api_tokens import api_token_issue
from core.exceptions import ApplicationError, TooManyAttemptsError
from core.login_lockout import client_address, login_lockout

logger = logging.getLogger(__name__)


class TokenThrottle(AnonRateThrottle):
    """10 attempts a minute per client address; a cache outage lets requests through.

    The address is ``REMOTE_ADDR``: ``X-Forwarded-For`` is trusted only when
    ``REST_FRAMEWORK["NUM_PROXIES"]`` says how many proxies add to it (DRF's default would take
    any header the client sends, so each guess could claim a new address). Behind a proxy, set
    it, or every client shares the proxy's allowance.

    Failing open is deliberate: the throttle slows password guessing, and locking every staff
    member out of the API while Redis is down would be worse. Each failure is logged.
    """

    scope = "auth_token"
    rate = "10/min"

    def get_ident(self, request) -> str:
        if api_settings.NUM_PROXIES is None:
            return request.META.get("REMOTE_ADDR", "")
        return super().get_ident(request)

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except ParseError:
            raise  # a malformed body (read for the username): the client's 400, not an outage
        except Exception:
            logger.warning("API token throttle unavailable (cache error); allowing", exc_info=True)
            return True


class TokenUsernameThrottle(TokenThrottle):
    """10 attempts a minute per username, from whatever addresses they come."""

    scope = "auth_token_username"

    def get_cache_key(self, request, view) -> str | None:
        data = request.data
        username = data.get("username") if hasattr(data, "get") else None
        if not isinstance(username, str) or not username.strip():
            return None
        digest = hashlib.sha256(username.strip().casefold().encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": digest}


class TokenObtainView(APIView):
    """Trade a staff user's username and password for a new API token."""

    authentication_classes: list = []
    permission_classes: list = []
    throttle_classes = [TokenThrottle, TokenUsernameThrottle]

    @extend_schema(
        summary="Get an API token (staff users only)",
        description=(
            "Send the token back as `Authorization: Token <token>`. Every call issues a new "
            "token, shown only in this answer (only a hash of it is stored): keep it. It expires "
            "at `expires_at` (API_TOKEN_TTL_DAYS after it is issued, 30 days by default) and can "
            "be revoked earlier in the admin (API tokens). A user keeps at most 10 live tokens; "
            "the oldest is revoked when an 11th is issued.\n\n"
            "The password check shares one lockout with the dashboard's and the admin's "
            "sign-in: 5 failures for a username from an address within 15 minutes lock that "
            "pair everywhere until the 15 minutes are over (429 `locked_out`, even with the "
            "right password). The endpoint also allows at most 10 attempts a minute per "
            "address and 10 per username (429 `throttled`)."
        ),
        request=serializers.TokenRequestSerializer,
        responses={
            200: serializers.TokenSerializer,
            400: error_response(
                "Missing fields, or wrong credentials / not a staff user (one answer for both).",
                ("credentials", "Unable to log in with these credentials.", "invalid_credentials"),
            ),
            429: error_response(
                "Too many attempts: locked out for a while (`extra.retry_after_seconds`), or "
                "rate-limited.",
                (
                    "locked_out",
                    "Too many failed attempts. Try again in 15 minutes.",
                    "locked_out",
                ),
                ("throttled", "Request was throttled.", "throttled"),
            ),
        },
        auth=[],
        tags=["auth"],
    )
    def post(self, request):
        serializer = serializers.TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        username = serializer.validated_data["username"]
        lockout = login_lockout(username=username, address=client_address(request))
        if lockout is not None:
            error = TooManyAttemptsError(
                lockout.message, extra={"retry_after_seconds": lockout.retry_after_seconds}
            )
            return Response(
                error.as_dict(),
                status=error.status_code,
                headers={"Retry-After": str(lockout.retry_after_seconds)},
            )
        user = authenticate(
            request=request._request,
            username=username,
            password=serializer.validated_data["password"],
        )
        if user is None or not user.is_active or not user.is_staff:
            raise ApplicationError(
                _("Unable to log in with these credentials."), code="invalid_credentials"
            )
        issued = api_token_issue(user=user, label="POST /api/auth/token/")
        return Response({"token": issued.key, "expires_at": issued.token.expires_at})
