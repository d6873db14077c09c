"""Pages and shoppers of the emulator: registering a page (``sandbox_seed``) and creating the
Messenger users who talk to it."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from sandbox.meta.models import SandboxPage, SandboxShopper
from sandbox.meta.sendapi import origin

LOCALES = {"en_US": "English", "ar_AR": "العربية"}
TIMEZONE_OF_LOCALE = {"en_US": -5, "ar_AR": 3}
DEMO_SHOPPERS = (
    {
        "psid": "2401234567890123",  # the PSID of the shared webhook fixtures
        "first_name": "Emma",
        "last_name": "Walker",
        "locale": "en_US",
        "email": "emma.walker@example.com",
        "phone": "+14155550123",
    },
    {
        "psid": "2409876543210987",
        "first_name": "ليلى",
        "last_name": "حداد",
        "locale": "ar_AR",
        "email": "layla.haddad@example.com",
        "phone": "+971501234567",
    },
)


class ShopperInvalid(ValueError):
    """The new shopper's details cannot be used (the message says which and why)."""


def psid_new(page: SandboxPage) -> str:
    """A free page-scoped id of 16 digits, like Meta's."""
    while True:
        psid = "2" + "".join(secrets.choice("0123456789") for _ in range(15))
        if not SandboxShopper.objects.filter(page=page, psid=psid).exists():
            return psid


def shopper_create(
    *,
    page: SandboxPage,
    first_name: str,
    last_name: str = "",
    locale: str = "en_US",
    email: str = "",
    phone: str = "",
    psid: str | None = None,
) -> SandboxShopper:
    """A new Messenger user of ``page``.

    :raises ShopperInvalid: no first name, an unknown locale or a taken PSID.
    """
    first_name, last_name = first_name.strip(), last_name.strip()
    if not first_name:
        raise ShopperInvalid("A shopper needs a first name.")
    if locale not in LOCALES:
        raise ShopperInvalid(f"Locale must be one of {', '.join(LOCALES)}.")
    if len(first_name) > 100 or len(last_name) > 100:
        raise ShopperInvalid("Names have at most 100 characters.")
    try:
        with transaction.atomic():
            return SandboxShopper.objects.create(
                page=page,
                psid=psid or psid_new(page),
                first_name=first_name,
                last_name=last_name,
                locale=locale,
                timezone=TIMEZONE_OF_LOCALE[locale],
                email=email.strip()[:254],
                phone=phone.strip()[:40],
            )
    except IntegrityError as exc:
        raise ShopperInvalid(f"PSID {psid} is already a shopper of this page.") from exc


@dataclass(frozen=True)
class SeedResult:
    page: SandboxPage
    page_created: bool
    shoppers_created: int


@transaction.atomic
def sandbox_page_seed(*, page_id: str, token: str, name: str) -> SeedResult:
    """Register ``page_id`` with ``token`` (both updated when they differ) and its two demo
    shoppers, one English and one Arabic, with email and phone. Safe to run again.

    The origin of ``PUBLIC_BASE_URL`` is whitelisted for the page (as a page admin would in the
    page settings), so Messenger-extension buttons to the service work on a plain-http demo.
    """
    SandboxPage.objects.filter(access_token=token).exclude(page_id=page_id).update(
        access_token=f"revoked-{secrets.token_hex(8)}"
    )
    page, created = SandboxPage.objects.get_or_create(
        page_id=page_id, defaults={"name": name, "access_token": token}
    )
    if not created and (page.name != name or page.access_token != token):
        page.name, page.access_token = name, token
        page.save(update_fields=["name", "access_token"])
    public_origin = origin(settings.PUBLIC_BASE_URL)
    domains = page.messenger_profile.get("whitelisted_domains") or []
    if public_origin not in {origin(domain) for domain in domains}:
        page.messenger_profile = {
            **page.messenger_profile,
            "whitelisted_domains": [*domains, public_origin],
        }
        page.save(update_fields=["messenger_profile"])
    shoppers_created = 0
    for values in DEMO_SHOPPERS:
        if not SandboxShopper.objects.filter(page=page, psid=values["psid"]).exists():
            shopper_create(page=page, **values)
            shoppers_created += 1
    return SeedResult(page=page, page_created=created, shoppers_created=shoppers_created)
