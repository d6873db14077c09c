"""REST API tokens: issued to staff, stored hashed, shown once, expiring, revocable.

A token is ``cc_`` followed by 43 URL-safe characters (256 random bits). Only its SHA-256 is
stored: a random secret that long needs no slow, salted hash (nobody can guess their way to it),
and a plain digest lets every request find its token with one indexed lookup. The clear token
exists only in the ``IssuedToken`` returned to the caller that asked for it.

Tokens expire ``API_TOKEN_TTL_DAYS`` (default 30) after they are issued, and can be revoked
earlier (the admin's "API tokens"). Issuing keeps at most ``MAX_LIVE_TOKENS_PER_USER`` live
tokens per user (the oldest is revoked) and forgets the user's expired ones.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from commerce.exceptions import ApiTokenError
from commerce.models import ApiToken
from commerce.selectors.api_tokens import user_can_revoke_api_token

TOKEN_PREFIX = "cc_"  # noqa: S105  (a marker, not a secret: secret scanners can spot our tokens)
SHOWN_CHARACTERS = 10  # the prefix kept in clear: "cc_" and 7 random characters
MAX_LIVE_TOKENS_PER_USER = 10


@dataclass(frozen=True)
class IssuedToken:
    """A new token: the row, and the token itself (never stored, shown this once)."""

    token: ApiToken
    key: str


def token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _lifetime() -> timedelta:
    return timedelta(days=settings.API_TOKEN_TTL_DAYS)


@transaction.atomic
def api_token_issue(*, user, label: str = "", now: datetime | None = None) -> IssuedToken:
    """Create a token for ``user``, valid for ``API_TOKEN_TTL_DAYS``.

    :raises ApiTokenError: ``user`` is not an active staff member (nothing is written).
    """
    if not (user.is_active and user.is_staff):
        raise ApiTokenError(_("API tokens are for active staff members only."), code="not_staff")
    now = now or timezone.now()
    mine = ApiToken.objects.filter(user=user)
    mine.filter(expires_at__lte=now).delete()
    live = list(
        mine.filter(revoked_at__isnull=True)
        .order_by("-created_at", "-id")
        .values_list("pk", flat=True)
    )
    if len(live) >= MAX_LIVE_TOKENS_PER_USER:
        ApiToken.objects.filter(pk__in=live[MAX_LIVE_TOKENS_PER_USER - 1 :]).update(revoked_at=now)
    key = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        prefix=key[:SHOWN_CHARACTERS],
        digest=token_digest(key),
        label=label,
        created_at=now,
        expires_at=now + _lifetime(),
    )
    return IssuedToken(token=token, key=key)


def api_token_authenticate(*, key: str, now: datetime | None = None) -> ApiToken:
    """The live token ``key`` stands for, with its user loaded (one query).

    :raises ApiTokenError: no such token, revoked, expired, or its user is inactive.
    """
    token = (
        ApiToken.objects.select_related("user").filter(digest=token_digest(key)).first()
        if key
        else None
    )
    if token is None or token.revoked_at is not None or not token.user.is_active:
        raise ApiTokenError(_("Invalid token."), code="invalid_token")
    if token.expires_at <= (now or timezone.now()):
        raise ApiTokenError(
            _("This token has expired: ask for a new one at /api/auth/token/."),
            code="token_expired",
        )
    return token


def api_token_revoke(*, token: ApiToken, by, now: datetime | None = None) -> bool:
    """Revoke ``token`` now; ``False`` if it was revoked already.

    :raises ApiTokenError: ``by`` may not revoke it (see ``commerce.selectors.api_tokens``).
    """
    if not user_can_revoke_api_token(by, token):
        raise ApiTokenError(_("You may not revoke this token."), code="permission_denied")
    updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
        revoked_at=now or timezone.now(), revoked_by=by
    )
    return bool(updated)
