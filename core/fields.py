"""Model fields shared by the apps."""

from __future__ import annotations

from django.db import models
from django.db.models.lookups import IsNull

from core import crypto


class EncryptedTextField(models.TextField):
    """Text encrypted at rest with :mod:`core.crypto` (Fernet, key ``FIELD_ENCRYPTION_KEY``).

    Python code sees the plaintext; the column holds the ciphertext, which is different on every
    save (Fernet uses a random IV and a timestamp). An empty string is stored as an empty string,
    so ``blank=True`` fields can be told apart from set ones without decrypting.

    Because the ciphertext is not deterministic the column cannot be searched: only ``isnull``
    lookups are allowed (filtering on a value would silently match nothing). Don't use it in
    ``unique``, ``search_fields`` or ``ordering``.
    """

    description = "Text encrypted at rest"

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return crypto.encrypt(value)

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        try:
            return crypto.decrypt(value)
        except crypto.DecryptionError as exc:
            label = f"{self.model._meta.label}.{self.name}" if hasattr(self, "model") else self.name
            raise crypto.DecryptionError(f"{label}: {exc}") from exc

    def get_lookup(self, lookup_name):
        if lookup_name != IsNull.lookup_name:
            return None  # Django then raises FieldError("Unsupported lookup ...").
        return super().get_lookup(lookup_name)

    def get_transform(self, lookup_name):
        return None
