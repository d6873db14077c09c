"""Shipping addresses and contact details of customers.

Phone numbers are stored in E.164 (``+96550012345``) so that they compare equal however the
shopper typed them; countries are ISO 3166-1 alpha-2 codes from ``COUNTRY_CODES``. Addresses are
saved per customer for reuse: saving the same address again reuses its row, and a customer has at
most one default address.
"""

from __future__ import annotations

import phonenumbers
from django.contrib.auth.base_user import BaseUserManager
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import pgettext_lazy

from commerce.exceptions import AddressError
from commerce.models import Address, Customer
from commerce.models.customers import COUNTRY_CODES

# Longer input is not a phone number, and parsing it would only cost time.
PHONE_RAW_MAX_LENGTH = 40

# The fields that identify an address when de-duplicating (the phone is a contact detail).
_ADDRESS_IDENTITY = ("name", "line1", "line2", "city", "region", "postal_code")
_ADDRESS_REQUIRED = frozenset({"name", "line1", "city"})
_FIELD_LABELS = {
    "name": pgettext_lazy("address field", "name"),
    "line1": pgettext_lazy("address field", "street address"),
    "line2": pgettext_lazy("address field", "second address line"),
    "city": pgettext_lazy("address field", "city"),
    "region": pgettext_lazy("address field", "region"),
    "postal_code": pgettext_lazy("address field", "postal code"),
}


def _clean_text(value: object) -> str:
    """Trim and collapse whitespace (newlines included), so that re-typed addresses match."""
    if value is None:
        return ""
    return " ".join(str(value).split())


def phone_normalize(*, raw: str, default_region: str | None) -> str:
    """Return ``raw`` in E.164, reading a national number as one of ``default_region``.

    International input (``+965 5001 2345``) works with any region, national input
    (``5001 2345``) needs ``default_region`` (an ISO country code such as ``KW``). Digits in
    other scripts (``٥٠٠١٢٣٤٥``) are understood.

    :raises AddressError: ``phone_invalid`` when it is not a valid number.
    """
    text = raw.strip() if isinstance(raw, str) else ""
    region = default_region.strip().upper() if default_region else None
    if region not in COUNTRY_CODES:
        region = None
    number = None
    if text and len(text) <= PHONE_RAW_MAX_LENGTH:
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise AddressError(
            _(
                "This phone number does not look right. Please check it, and include the "
                "country code if it is a foreign number (for example +965 5001 2345)."
            ),
            code="phone_invalid",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def country_normalize(*, raw: str) -> str:
    """The upper-case ISO code for ``raw`` (``"kw"`` -> ``"KW"``).

    :raises AddressError: ``country_invalid`` when it is not a country we ship to.
    """
    code = raw.strip().upper() if isinstance(raw, str) else ""
    if code not in COUNTRY_CODES:
        raise AddressError(
            _("Please choose a country from the list (an ISO code such as KW, AE or US)."),
            code="country_invalid",
            extra={"field": "country"},
        )
    return code


def _field_check(field: str, value: str) -> None:
    """:raises AddressError: a required field is empty or a field is too long."""
    if field in _ADDRESS_REQUIRED and not value:
        raise AddressError(
            _("Please fill in the %(field)s.") % {"field": _FIELD_LABELS[field]},
            code="address_incomplete",
            extra={"field": field},
        )
    max_length = Address._meta.get_field(field).max_length
    if len(value) > max_length:
        raise AddressError(
            _("The %(field)s can be at most %(max)d characters long.")
            % {"field": _FIELD_LABELS[field], "max": max_length},
            code="address_too_long",
            extra={"field": field, "max_length": max_length},
        )


@transaction.atomic
def address_save(
    *,
    customer: Customer,
    name: str,
    line1: str,
    line2: str = "",
    city: str,
    region: str = "",
    postal_code: str = "",
    country: str,
    phone: str = "",
    make_default: bool = True,
) -> Address:
    """Validate and save a shipping address for ``customer``, reusing an identical saved one.

    Text is trimmed and inner whitespace collapsed; the country is upper-cased and checked; the
    phone is normalized to E.164 with the address country as the default region. The same
    address (same name and postal fields, ignoring case) saved again returns the existing row,
    with the new phone if one is given. With ``make_default`` the address becomes the
    customer's only default; without it, it is the default only if the customer had none.

    :raises AddressError: ``address_incomplete`` / ``address_too_long`` (``extra["field"]``
        names the field), ``country_invalid`` or ``phone_invalid``.
    """
    values = {
        "name": _clean_text(name),
        "line1": _clean_text(line1),
        "line2": _clean_text(line2),
        "city": _clean_text(city),
        "region": _clean_text(region),
        "postal_code": _clean_text(postal_code),
    }
    for field, value in values.items():
        _field_check(field, value)
    values["country"] = country_normalize(raw=country)
    phone_text = _clean_text(phone)
    values["phone"] = (
        phone_normalize(raw=phone_text, default_region=values["country"]) if phone_text else ""
    )

    # Lock the customer row: concurrent saves for one customer must not leave two defaults.
    Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk").first()
    saved = Address.objects.filter(customer_id=customer.pk)
    has_default = saved.filter(is_default=True).exists()
    address = saved.filter(
        country=values["country"],
        **{f"{field}__iexact": values[field] for field in _ADDRESS_IDENTITY},
    ).first()
    is_default = make_default or not has_default or bool(address and address.is_default)
    if make_default:
        others = saved.filter(is_default=True)
        if address is not None:
            others = others.exclude(pk=address.pk)
        others.update(is_default=False)
    if address is None:
        return Address.objects.create(customer=customer, is_default=is_default, **values)
    changed = []
    if values["phone"] and address.phone != values["phone"]:
        address.phone = values["phone"]
        changed.append("phone")
    if address.is_default != is_default:
        address.is_default = is_default
        changed.append("is_default")
    if changed or make_default:
        # Saving bumps updated_at, so the address just used sorts first among the saved ones.
        address.save(update_fields=[*changed, "updated_at"])
    return address


def address_default_for(*, customer: Customer) -> Address | None:
    """The customer's default address, else their most recently used one, else ``None``."""
    return (
        Address.objects.filter(customer_id=customer.pk)
        .order_by("-is_default", "-updated_at", "-id")
        .first()
    )


def email_normalize(*, raw: str) -> str:
    """The trimmed address with its domain lower-cased, once Django's ``EmailValidator`` and
    the model's length limit accept it.

    :raises AddressError: ``email_invalid``.
    """
    text = raw.strip() if isinstance(raw, str) else ""
    try:
        if not text or len(text) > Customer._meta.get_field("email").max_length:
            raise ValidationError("empty or too long")
        EmailValidator()(text)
    except ValidationError:
        raise AddressError(
            _("This email address does not look right. Please check it."), code="email_invalid"
        ) from None
    return BaseUserManager.normalize_email(text)


def customer_set_contact(
    *,
    customer: Customer,
    email: str | None = None,
    phone: str | None = None,
    default_region: str | None = None,
) -> Customer:
    """Set the customer's email and/or phone (``None`` leaves a field alone, ``""`` clears it).

    The email is checked with Django's ``EmailValidator`` and its domain lower-cased; the phone
    is normalized to E.164, reading a national number as one of ``default_region``, else of the
    country of the customer's default address. Used by the chat's ``user_email`` and
    ``user_phone_number`` quick replies, which send what Facebook has on file.

    :raises AddressError: ``email_invalid`` or ``phone_invalid``; nothing is saved then.
    """
    changes: dict[str, str] = {}
    if email is not None:
        changes["email"] = email_normalize(raw=email) if _clean_text(email) else ""
    if phone is not None:
        cleaned = _clean_text(phone)
        if cleaned:
            if default_region is None:
                address = address_default_for(customer=customer)
                default_region = address.country if address else None
            cleaned = phone_normalize(raw=cleaned, default_region=default_region)
        changes["phone"] = cleaned
    changed = [field for field, value in changes.items() if getattr(customer, field) != value]
    if changed:
        for field in changed:
            setattr(customer, field, changes[field])
        customer.save(update_fields=[*changed, "updated_at"])
    return customer
