"""Arabic for commerce's errors: shoppers read them in Messenger, in English or in Arabic.

The errors are raised through the real services, once in English and once in Arabic. The
catalogs (``commerce/locale/ar`` and ``core/locale/ar``) must be complete: every msgid
translated, nothing fuzzy (Django skips fuzzy entries), every plural form filled, and the
compiled ``.mo`` in step with its ``.po`` (run ``compilemessages`` after editing a ``.po``).
"""

from __future__ import annotations

import gettext
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.apps import apps
from django.utils import translation

from commerce.exceptions import (
    AddressError,
    InvalidTransition,
    OutOfStockError,
    StockChangedError,
    VoucherError,
)
from commerce.models import Order
from commerce.services.addresses import phone_normalize
from commerce.services.carts import cart_add, cart_apply_voucher, cart_get_open
from commerce.services.orders import order_create_from_cart, order_mark_delivered
from commerce.services.stock import StockCount, stock_on_hand_set
from core.exceptions import ApplicationError
from tests.factories import customer_create, merchant_create, variant_create

ARABIC_LETTER = re.compile(r"[\u0621-\u064A]")
ARABIC_PLURAL_FORMS = 6
APPS_WITH_CATALOGS = ("commerce", "core")


def _raised(language: str, call: Callable[[], object]) -> ApplicationError:
    with translation.override(language), pytest.raises(ApplicationError) as info:
        call()
    return info.value


def _both(call: Callable[[], object]) -> tuple[ApplicationError, ApplicationError]:
    """The error ``call`` raises in English, then in Arabic; same class and code in both."""
    english, arabic = _raised("en", call), _raised("ar", call)
    assert type(english) is type(arabic)
    assert english.code == arabic.code
    assert not ARABIC_LETTER.search(english.message), english.message
    assert ARABIC_LETTER.search(arabic.message), arabic.message
    assert arabic.message != english.message
    return english, arabic


# --------------------------------------------------------------------------------------------
# Shopper-facing errors, raised by the services
# --------------------------------------------------------------------------------------------


@pytest.fixture
def merchant(db):
    return merchant_create(currency="USD")


@pytest.fixture
def cart(merchant):
    return cart_get_open(customer=customer_create(merchant=merchant))


def test_out_of_stock_is_arabic(cart, merchant):
    variant = variant_create(merchant=merchant, stock=0)

    english, arabic = _both(lambda: cart_add(cart=cart, variant_id=variant.pk, quantity=1))

    assert isinstance(arabic, OutOfStockError)
    assert english.message == "Sorry, this item is out of stock."


def test_only_a_few_left_keeps_the_number(cart, merchant):
    variant = variant_create(merchant=merchant, stock=2)

    english, arabic = _both(lambda: cart_add(cart=cart, variant_id=variant.pk, quantity=3))

    assert isinstance(arabic, OutOfStockError)
    assert english.message == "Only 2 left in stock."
    assert "2" in arabic.message


def test_unknown_voucher_is_arabic(cart):
    english, arabic = _both(lambda: cart_apply_voucher(cart=cart, code="NOSUCHCODE"))

    assert isinstance(arabic, VoucherError)
    assert english.message == "We don't recognise this code. Please check it and try again."


def test_invalid_phone_is_arabic():
    english, arabic = _both(lambda: phone_normalize(raw="12", default_region="KW"))

    assert isinstance(arabic, AddressError)
    assert english.code == "phone_invalid"
    # The example number is kept as it is, so the shopper can copy its format.
    assert "+965 5001 2345" in arabic.message


@pytest.fixture
def pending_order(cart, merchant) -> Order:
    variant = variant_create(merchant=merchant, stock=5)
    cart_add(cart=cart, variant_id=variant.pk, quantity=1)
    return order_create_from_cart(cart=cart)


def test_illegal_order_transition_is_arabic(pending_order):
    english, arabic = _both(lambda: order_mark_delivered(order=pending_order))

    assert isinstance(arabic, InvalidTransition)
    number = pending_order.number
    assert english.message == f"Order {number} is awaiting payment; it cannot be marked delivered."
    assert number in arabic.message


def test_illegal_order_transition_names_the_status_in_arabic(pending_order):
    arabic = _raised("ar", lambda: order_mark_delivered(order=pending_order))

    assert "awaiting payment" not in arabic.message
    assert "marked delivered" not in arabic.message


def test_a_stock_count_refused_after_a_sale_is_arabic(merchant):
    """Merchants read it in the admin and the API, in their language."""
    variant = variant_create(merchant=merchant, sku="TEE-M", stock=8)
    count = StockCount(variant.pk, value=20, seen=10)  # a sale took 10 to 8 meanwhile

    english, arabic = _both(lambda: stock_on_hand_set(counts=[count]))

    assert isinstance(arabic, StockChangedError)
    assert english.message.startswith(
        "The stock of TEE-M changed while you were editing it: it is now 8, not 10"
    )
    assert "TEE-M" in arabic.message and "8" in arabic.message


# --------------------------------------------------------------------------------------------
# The catalogs
# --------------------------------------------------------------------------------------------


def _po_path(app_label: str) -> Path:
    app_path = Path(apps.get_app_config(app_label).path)
    return app_path / "locale" / "ar" / "LC_MESSAGES" / "django.po"


def _read(path: Path):
    with path.open("rb") as f:
        return read_po(f)


@pytest.mark.parametrize("app_label", APPS_WITH_CATALOGS)
def test_arabic_catalog_is_complete(app_label):
    catalog = _read(_po_path(app_label))

    assert catalog.num_plurals == ARABIC_PLURAL_FORMS
    assert not catalog.fuzzy, "remove the '#, fuzzy' flag of the header"
    problems = []
    for message in catalog:
        if not message.id:
            continue
        msgid = message.id[0] if message.pluralizable else message.id
        forms = message.string if message.pluralizable else (message.string,)
        if message.fuzzy:
            problems.append(f"fuzzy: {msgid!r}")
        if message.pluralizable and len(forms) != ARABIC_PLURAL_FORMS:
            problems.append(f"{len(forms)} plural forms instead of 6: {msgid!r}")
        if not all(form.strip() for form in forms):
            problems.append(f"untranslated: {msgid!r}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("app_label", APPS_WITH_CATALOGS)
def test_compiled_catalog_matches_po(app_label):
    po_path = _po_path(app_label)
    with po_path.with_suffix(".mo").open("rb") as f:
        compiled = gettext.GNUTranslations(f)

    for message in _read(po_path):
        if not message.id:
            continue
        prefix = f"{message.context}\x04" if message.context else ""
        if message.pluralizable:
            for n, form in enumerate(message.string):
                key = (prefix + message.id[0], n)
                assert compiled._catalog.get(key) == form, f"run compilemessages: {key!r}"
        else:
            key = prefix + message.id
            assert compiled._catalog.get(key) == message.string, f"run compilemessages: {key!r}"
