"""Symmetric encryption of secrets stored in the database (page access tokens, ...).

Values are encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``); a token is
authenticated, so a value changed in the database or read with the wrong key fails loudly instead
of decrypting to garbage.

The key comes from the ``FIELD_ENCRYPTION_KEY`` setting (environment variable of the same name),
read when a value is encrypted or decrypted, never at import:

- It holds **one or more secrets separated by commas**. The **first** one encrypts; every one of
  them is tried to decrypt (``MultiFernet``). Surrounding spaces and empty entries are ignored.
- Each secret is any string. It is turned into a Fernet key with HKDF-SHA256 (32 bytes, fixed
  salt and ``info`` below), so a secret need not be in Fernet's base64 format. HKDF does not
  strengthen a weak secret: use a long random one, e.g. ``openssl rand -base64 32``.
- **Rotation**: prepend the new secret (``FIELD_ENCRYPTION_KEY=new,old``) and deploy; old rows
  still decrypt and every save re-encrypts with the new secret. Once every row has been saved
  again (or re-encrypted with :func:`reencrypt`), drop the old secret.

Changing the derivation constants below makes every stored value unreadable: don't.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["DecryptionError", "decrypt", "encrypt", "reencrypt"]

SETTING_NAME = "FIELD_ENCRYPTION_KEY"
_HKDF_SALT = b"chatcommerce.core.crypto"
_HKDF_INFO = b"field-encryption/fernet/v1"


class DecryptionError(Exception):
    """A stored value could not be decrypted with any configured secret.

    Either ``FIELD_ENCRYPTION_KEY`` lost the secret the value was encrypted with, or the stored
    value is corrupt. Not an ``ApplicationError``: nothing a shopper or merchant did causes it.
    """


def derive_fernet_key(secret: str) -> bytes:
    """The Fernet key (urlsafe base64 of 32 bytes) for one secret string."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=_HKDF_INFO).derive(
        secret.encode("utf-8")
    )
    return base64.urlsafe_b64encode(raw)


@functools.lru_cache(maxsize=8)
def _multifernet(setting_value: str) -> MultiFernet:
    secrets = [part.strip() for part in setting_value.split(",") if part.strip()]
    if not secrets:
        raise ImproperlyConfigured(
            f"{SETTING_NAME} is not set: stored secrets such as page access tokens cannot be "
            f"encrypted or decrypted. Set the {SETTING_NAME} environment variable to one or more "
            "comma-separated random secrets (the first one encrypts)."
        )
    return MultiFernet([Fernet(derive_fernet_key(secret)) for secret in secrets])


def _cipher() -> MultiFernet:
    # Cached per setting value, so a changed setting (tests, rotation) takes effect at once.
    return _multifernet(getattr(settings, SETTING_NAME, "") or "")


def encrypt(plaintext: str) -> str:
    """Encrypt ``plaintext`` with the first configured secret; the result is ASCII."""
    return _cipher().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    """Decrypt a value made by :func:`encrypt` with any configured secret.

    :raises DecryptionError: no configured secret opens it, or it is not a Fernet token.
    """
    try:
        return _cipher().decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, UnicodeError) as exc:
        raise DecryptionError(
            f"Cannot decrypt a stored value with any secret in {SETTING_NAME}: the secret it "
            "was encrypted with is no longer configured (when rotating, keep the old secret after "
            "the new one until every row is re-encrypted), or the stored value is corrupt."
        ) from exc


def reencrypt(token: str) -> str:
    """Re-encrypt a stored value with the first (newest) secret, for finishing a rotation.

    :raises DecryptionError: as :func:`decrypt`.
    """
    try:
        return _cipher().rotate(token.encode("ascii")).decode("ascii")
    except (InvalidToken, UnicodeError) as exc:
        raise DecryptionError(
            f"Cannot re-encrypt a stored value: no secret in {SETTING_NAME} decrypts it."
        ) from exc
