"""Webhook signatures: Meta signs each POST with the app secret over the raw body bytes.

``X-Hub-Signature-256: sha256=<hex HMAC-SHA256>`` is the current header; ``X-Hub-Signature:
sha1=<hex HMAC-SHA1>`` is the legacy one, accepted only when the sha256 header is absent (a wrong
sha256 signature is never rescued by a sha1 one). The signature covers the bytes exactly as
received (Meta escapes non-ASCII characters as ``\\uXXXX``, but whatever arrives is what counts), so
it is checked before anything is parsed, and with a constant-time comparison.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from django.conf import settings

SHA256_HEADER = "X-Hub-Signature-256"
SHA1_HEADER = "X-Hub-Signature"

_ALGORITHMS = ((SHA256_HEADER, "sha256", hashlib.sha256), (SHA1_HEADER, "sha1", hashlib.sha1))


def signature_header_value(body: bytes, *, secret: str, algorithm: str = "sha256") -> str:
    """The header value Meta would send for ``body`` (``sha256=<hex>``); used by tests and bench."""
    digest = hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).hexdigest()
    return f"{algorithm}={digest}"


def signature_is_valid(
    body: bytes, headers: Mapping[str, str], *, secret: str | None = None
) -> bool:
    """Whether ``body`` carries a valid signature of the app secret (``MESSENGER_APP_SECRET``).

    ``headers`` is case-insensitive (``request.headers``). Without a configured secret nothing is
    valid: an unconfigured installation must not accept unsigned events.
    """
    secret = settings.MESSENGER_APP_SECRET if secret is None else secret
    if not secret:
        return False
    for header, name, digestmod in _ALGORITHMS:
        given = headers.get(header)
        if given is None:
            continue
        expected = f"{name}={hmac.new(secret.encode(), body, digestmod).hexdigest()}"
        # Bytes on both sides: compare_digest refuses non-ASCII str, and a header is attacker text.
        return hmac.compare_digest(
            expected.encode("ascii"), given.strip().lower().encode("utf-8", "replace")
        )
    return False
