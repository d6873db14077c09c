"""Model fields shared by the apps."""

from __future__ import annotations

from django.core.exceptions import FieldError
from django.db import models
from django.db.models.lookups import Exact, IsNull

from core import crypto


class _EmptyOnlyExact(Exact):
    """``field=""`` finds rows without a value; any other value could never match: refuse it."""

    def get_prep_lookup(self):
        if self.rhs != "":
            raise FieldError(
                "An encrypted field can only be compared with an empty string: its stored value "
                "is different on every save."
            )
        return super().get_prep_lookup()


class EncryptedTextField(models.TextField):
    """Text encrypted at rest with :mod:`core.crypto` (Fernet, key ``FIELD_ENCRYPTION_KEY``).

    Python code sees the plaintext; the column holds the ciphertext, which is different on every
    save (Fernet uses a random IV and a timestamp). An empty string is stored as an empty string,
    so ``blank=True`` fields can be told apart from set ones without decrypting.

    Because the ciphertext is not deterministic the column cannot be searched: the only lookups
    are ``isnull`` and ``exact`` with an empty string (filtering on a value would silently match
    nothing, so it raises ``FieldError``). Don't use it in ``unique``, ``search_fields`` or
    ``ordering``.
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
        if lookup_name == Exact.lookup_name:
            return _EmptyOnlyExact
        if lookup_name == IsNull.lookup_name:
            return super().get_lookup(lookup_name)
        return None  # Django then raises FieldError("Unsupported lookup ...").

    def get_transform(self, lookup_name):
        return None
