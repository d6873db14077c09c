"""Secrets are encrypted at rest with FIELD_ENCRYPTION_KEY, rotate without downtime, and fail loudly
when the key is wrong or missing."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.db import connection

from commerce.models import Merchant
from core import crypto
from messenger.models import MessengerPage

TOKEN = "EAAGm0PX4ZCpsBAKZCZAtoken-for-the-page-1234"


def _page(**fields) -> MessengerPage:
    merchant = Merchant.objects.create(name="Crypto shop", slug="crypto-shop")
    fields.setdefault("page_id", "104412345678901")
    fields.setdefault("access_token", TOKEN)
    return MessengerPage.objects.create(merchant=merchant, name="Crypto page", **fields)


def _raw_token(page: MessengerPage) -> str:
    table = connection.ops.quote_name(MessengerPage._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT access_token FROM {table} WHERE id = %s", [page.pk])  # noqa: S608
        return cursor.fetchone()[0]


def test_round_trip_returns_the_plaintext(settings):
    settings.FIELD_ENCRYPTION_KEY = "round-trip-secret"
    for plaintext in [TOKEN, "مرحبا {{user_first_name}}", "x", " spaces kept "]:
        assert crypto.decrypt(crypto.encrypt(plaintext)) == plaintext


def test_ciphertext_hides_the_plaintext_and_differs_every_time(settings):
    settings.FIELD_ENCRYPTION_KEY = "round-trip-secret"
    first, second = crypto.encrypt(TOKEN), crypto.encrypt(TOKEN)
    assert first != second
    assert TOKEN not in first and "1234" not in first


def test_secret_is_turned_into_a_fernet_key_by_hkdf_sha256():
    """Pinned: changing the derivation would make every stored token unreadable."""
    key = crypto.derive_fernet_key("dev-only-field-encryption-key")
    assert key == crypto.derive_fernet_key("dev-only-field-encryption-key")
    assert key != crypto.derive_fernet_key("dev-only-field-encryption-key2")
    Fernet(key)  # a valid Fernet key
    # HKDF-SHA256 (RFC 5869) of the secret, computed independently with hmac.
    assert key == b"Vgz6i5atXm6jntv2Kj3MB1VE4OSPW6iv3kk3d2_m8Tg="


@pytest.mark.django_db
def test_database_column_holds_ciphertext_not_the_token(settings):
    settings.FIELD_ENCRYPTION_KEY = "column-secret"
    page = _page()

    raw = _raw_token(page)

    assert raw != TOKEN
    assert TOKEN not in raw
    assert crypto.decrypt(raw) == TOKEN
    assert MessengerPage.objects.get(pk=page.pk).access_token == TOKEN


@pytest.mark.django_db
def test_empty_token_is_stored_empty(settings):
    settings.FIELD_ENCRYPTION_KEY = "column-secret"
    page = _page(access_token="")

    assert _raw_token(page) == ""
    assert MessengerPage.objects.get(pk=page.pk).access_token == ""


@pytest.mark.django_db
def test_old_key_still_decrypts_after_a_new_key_is_prepended(settings):
    settings.FIELD_ENCRYPTION_KEY = "old-secret"
    page = _page()

    settings.FIELD_ENCRYPTION_KEY = "new-secret, old-secret"
    reloaded = MessengerPage.objects.get(pk=page.pk)
    assert reloaded.access_token == TOKEN

    # A save re-encrypts with the first (new) secret: the old one can then be dropped.
    reloaded.save(update_fields=["access_token"])
    settings.FIELD_ENCRYPTION_KEY = "new-secret"
    assert MessengerPage.objects.get(pk=page.pk).access_token == TOKEN


def test_reencrypt_moves_a_value_to_the_newest_key(settings):
    settings.FIELD_ENCRYPTION_KEY = "old-secret"
    old_token = crypto.encrypt(TOKEN)

    settings.FIELD_ENCRYPTION_KEY = "new-secret,old-secret"
    new_token = crypto.reencrypt(old_token)

    settings.FIELD_ENCRYPTION_KEY = "new-secret"
    assert crypto.decrypt(new_token) == TOKEN
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(old_token)


def test_wrong_key_fails_with_a_clear_error(settings):
    settings.FIELD_ENCRYPTION_KEY = "right-secret"
    token = crypto.encrypt(TOKEN)
    settings.FIELD_ENCRYPTION_KEY = "wrong-secret"

    with pytest.raises(crypto.DecryptionError, match="FIELD_ENCRYPTION_KEY") as excinfo:
        crypto.decrypt(token)
    assert TOKEN not in str(excinfo.value)


def test_garbage_is_refused_not_decrypted(settings):
    settings.FIELD_ENCRYPTION_KEY = "right-secret"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt("not a fernet token")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt("ünïcode")


@pytest.mark.django_db
def test_loading_a_row_with_the_wrong_key_names_the_field(settings):
    settings.FIELD_ENCRYPTION_KEY = "right-secret"
    page = _page()
    settings.FIELD_ENCRYPTION_KEY = "wrong-secret"

    with pytest.raises(crypto.DecryptionError, match=r"messenger\.MessengerPage\.access_token"):
        MessengerPage.objects.get(pk=page.pk)


@pytest.mark.parametrize("value", ["", " ", " , ,"])
def test_missing_key_is_improperly_configured_naming_the_variable(settings, value):
    settings.FIELD_ENCRYPTION_KEY = value
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEY"):
        crypto.encrypt(TOKEN)


def test_key_is_read_when_used_not_at_import(settings):
    settings.FIELD_ENCRYPTION_KEY = "first-secret"
    token = crypto.encrypt(TOKEN)
    settings.FIELD_ENCRYPTION_KEY = "second-secret"
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(token)


@pytest.mark.django_db
def test_encrypted_column_cannot_be_filtered_on_a_value():
    """A filter on the value could never match (random IV): refuse it instead of returning []."""
    with pytest.raises(FieldError, match="empty string"):
        list(MessengerPage.objects.filter(access_token=TOKEN))
    with pytest.raises(FieldError):
        list(MessengerPage.objects.filter(access_token__icontains="EAA"))


@pytest.mark.django_db
def test_pages_without_a_token_can_be_found():
    with_token = _page()
    without = MessengerPage.objects.create(
        merchant=with_token.merchant, page_id="2", name="No token", access_token=""
    )

    assert list(MessengerPage.objects.filter(access_token="")) == [without]
    assert list(MessengerPage.objects.exclude(access_token="")) == [with_token]
    assert not MessengerPage.objects.filter(access_token__isnull=True).exists()
