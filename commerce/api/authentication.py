"""``Authorization: Token <token>`` against the hashed, expiring API tokens.

Its own module: DRF imports the authentication classes named in its settings while
``rest_framework.views`` is still loading, so this one must not import any view.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from commerce.exceptions import ApiTokenError
from commerce.services.api_tokens import api_token_authenticate


class ApiTokenAuthentication(TokenAuthentication):
    """DRF's token header (and ``WWW-Authenticate: Token``), checked by
    ``commerce.services.api_tokens.api_token_authenticate``: one indexed query per request."""

    keyword = "Token"

    def authenticate_credentials(self, key):
        try:
            token = api_token_authenticate(key=key)
        except ApiTokenError as error:
            # An expired token says so (code ``token_expired``); any other refusal is DRF's
            # ``authentication_failed``, as it always was.
            code = error.code if error.code == "token_expired" else None
            raise exceptions.AuthenticationFailed(error.message, code=code) from None
        return (token.user, token)
