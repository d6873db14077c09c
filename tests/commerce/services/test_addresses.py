"""Addresses and contacts: E.164 phones, country codes, de-duplication and one default."""

from __future__ import annotations

import pytest

from commerce.exceptions import AddressError
from commerce.models import Address, Customer
from commerce.services.addresses import (
    address_default_for,
    address_save,
    customer_set_contact,
    phone_normalize,
)
from tests.factories import customer_create

pytestmark = pytest.mark.django_db


def save(customer, **fields) -> Address:
    values = {"name": "Layla Hassan", "line1": "Block 3, Street 12", "city": "Salmiya"}
    values["country"] = "KW"
    values.update(fields)
    return address_save(customer=customer, **values)


# -- phone numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        # Kuwait: national, international with + and with the 00 prefix, Arabic-Indic digits.
        ("5001 2345", "KW", "+96550012345"),
        ("+965 5001 2345", "KW", "+96550012345"),
        ("00965 5001 2345", "KW", "+96550012345"),
        ("+965 5001 2345", None, "+96550012345"),
        ("٥٠٠١٢٣٤٥", "KW", "+96550012345"),
        # United Arab Emirates: the national trunk 0 is dropped.
        ("050 123 4567", "AE", "+971501234567"),
        ("+971 50 123 4567", "AE", "+971501234567"),
        ("+971-50-123-4567", None, "+971501234567"),
        # United States.
        ("(201) 555-0123", "US", "+12015550123"),
        ("201.555.0123", "us", "+12015550123"),
        ("+1 201 555 0123", None, "+12015550123"),
        # Egypt: mobile with the trunk 0, and international.
        ("010 1234 5678", "EG", "+201012345678"),
        ("+20 10 1234 5678", "EG", "+201012345678"),
        ("0020 10 1234 5678", "EG", "+201012345678"),
        # An international number keeps its own country whatever the default region.
        ("+965 5001 2345", "US", "+96550012345"),
    ],
)
def test_phone_normalize_returns_e164(raw, region, e164):
    assert phone_normalize(raw=raw, default_region=region) == e164


@pytest.mark.parametrize(
    ("raw", "region"),
    [
        ("12345", "KW"),  # too short for Kuwait
        ("5001 2345", None),  # national number without a region
        ("5001 2345", "ZZ"),  # not a region
        ("(201) 555-0123", "KW"),  # a US number read as Kuwaiti
        ("abc", "KW"),
        ("", "KW"),
        ("   ", "US"),
        ("+1 201 555 0123" + "4" * 40, "US"),
        ("+999 1234 5678", None),  # no such country code
    ],
)
def test_phone_normalize_refuses_invalid_numbers(raw, region):
    with pytest.raises(AddressError) as error:
        phone_normalize(raw=raw, default_region=region)
    assert error.value.code == "phone_invalid"
    assert "phone number" in error.value.message


# -- address_save ----------------------------------------------------------------------------


def test_address_save_normalizes_and_stores(customer):
    address = save(
        customer,
        name="  Layla   Hassan ",
        line2="Apartment 4\nFloor 2",
        country="kw",
        phone="5001 2345",
        postal_code=" 22001 ",
    )
    address.refresh_from_db()
    assert address.customer == customer
    assert (address.name, address.line2, address.postal_code) == (
        "Layla Hassan",
        "Apartment 4 Floor 2",
        "22001",
    )
    assert (address.country, address.phone, address.is_default) == ("KW", "+96550012345", True)


def test_address_phone_is_read_in_the_address_country(customer):
    assert save(customer, country="AE", phone="050 123 4567").phone == "+971501234567"
    assert save(customer, country="EG", phone="010 1234 5678").phone == "+201012345678"


@pytest.mark.parametrize("country", ["XX", "ZZ", "001", "", "Kuwait", "K"])
def test_address_save_refuses_an_unknown_country(customer, country):
    with pytest.raises(AddressError) as error:
        save(customer, country=country)
    assert error.value.code == "country_invalid"
    assert not Address.objects.exists()


def test_address_save_refuses_an_invalid_phone(customer):
    with pytest.raises(AddressError) as error:
        save(customer, phone="12345")
    assert error.value.code == "phone_invalid"
    assert not Address.objects.exists()


@pytest.mark.parametrize("field", ["name", "line1", "city"])
def test_address_save_requires_name_street_and_city(customer, field):
    with pytest.raises(AddressError) as error:
        save(customer, **{field: "   "})
    assert error.value.code == "address_incomplete"
    assert error.value.extra == {"field": field}
    assert not Address.objects.exists()


@pytest.mark.parametrize(("field", "limit"), [("name", 120), ("line1", 200), ("postal_code", 20)])
def test_address_save_refuses_fields_that_are_too_long(customer, field, limit):
    assert getattr(save(customer, **{field: "x" * limit}), field) == "x" * limit
    with pytest.raises(AddressError) as error:
        save(customer, **{field: "x" * (limit + 1)})
    assert error.value.code == "address_too_long"
    assert error.value.extra == {"field": field, "max_length": limit}


def test_saving_the_same_address_again_returns_the_existing_row(customer):
    first = save(customer, phone="5001 2345")
    again = save(customer, name="layla hassan", line1="BLOCK 3,  Street 12", country="kw")
    assert again.pk == first.pk
    assert Address.objects.filter(customer=customer).count() == 1
    # Without a phone the saved one is kept; with a new one it is updated.
    assert again.phone == "+96550012345"
    assert save(customer, phone="+965 6001 2345").phone == "+96560012345"
    assert Address.objects.get().phone == "+96560012345"


def test_addresses_of_different_customers_are_not_merged(customer, merchant):
    other = customer_create(merchant=merchant)
    assert save(customer).pk != save(other).pk


def test_a_customer_has_only_one_default_address(customer):
    home = save(customer)
    work = save(customer, line1="Tower 5, Gulf Road")
    home.refresh_from_db()
    assert (home.is_default, work.is_default) == (False, True)
    assert address_default_for(customer=customer) == work
    # Saving home again makes it the default again.
    assert save(customer).pk == home.pk
    assert list(
        Address.objects.filter(customer=customer, is_default=True).values_list("pk", flat=True)
    ) == [home.pk]
    assert address_default_for(customer=customer) == home


def test_make_default_false_keeps_the_current_default(customer):
    home = save(customer)
    work = save(customer, line1="Tower 5, Gulf Road", make_default=False)
    assert work.is_default is False
    assert address_default_for(customer=customer) == home


def test_the_first_address_is_the_default_even_without_make_default(customer):
    assert save(customer, make_default=False).is_default is True


def test_address_default_for_a_customer_without_addresses(customer):
    assert address_default_for(customer=customer) is None


# -- contacts --------------------------------------------------------------------------------


def test_customer_set_contact_saves_a_valid_email(customer):
    customer_set_contact(customer=customer, email="  Layla.Hassan@Example.COM ")
    customer.refresh_from_db()
    assert customer.email == "Layla.Hassan@example.com"


@pytest.mark.parametrize(
    "email",
    ["layla", "layla@", "@example.com", "layla@example", "a b@example.com", "x" * 250 + "@ex.com"],
)
def test_customer_set_contact_refuses_an_invalid_email(customer, email):
    customer_set_contact(customer=customer, email="old@example.com")
    with pytest.raises(AddressError) as error:
        customer_set_contact(customer=customer, email=email)
    assert error.value.code == "email_invalid"
    assert Customer.objects.get(pk=customer.pk).email == "old@example.com"


def test_customer_set_contact_normalizes_the_phone(customer):
    customer_set_contact(customer=customer, phone="+1 (201) 555-0123")
    assert Customer.objects.get(pk=customer.pk).phone == "+12015550123"


def test_customer_set_contact_reads_a_national_phone_in_the_default_address_country(customer):
    with pytest.raises(AddressError) as error:
        customer_set_contact(customer=customer, phone="5001 2345")  # no country known
    assert error.value.code == "phone_invalid"
    save(customer, country="KW")
    customer_set_contact(customer=customer, phone="5001 2345")
    assert Customer.objects.get(pk=customer.pk).phone == "+96550012345"
    customer_set_contact(customer=customer, phone="050 123 4567", default_region="AE")
    assert Customer.objects.get(pk=customer.pk).phone == "+971501234567"


def test_customer_set_contact_none_leaves_a_field_and_empty_clears_it(customer):
    customer_set_contact(customer=customer, email="layla@example.com", phone="+96550012345")
    customer_set_contact(customer=customer, phone="")
    customer.refresh_from_db()
    assert (customer.email, customer.phone) == ("layla@example.com", "")


def test_customer_set_contact_saves_nothing_when_the_phone_is_invalid(customer):
    with pytest.raises(AddressError):
        customer_set_contact(customer=customer, email="layla@example.com", phone="12")
    assert Customer.objects.get(pk=customer.pk).email == ""
