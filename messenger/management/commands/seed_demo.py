"""``manage.py seed_demo [--page-id ID] [--products N]``: the demo shop, ready to chat with.

Idempotent: run it on every start of the demo. It lives in ``messenger`` because it connects a
Messenger page to the demo merchant, and ``commerce`` must not import ``messenger``.
"""

from __future__ import annotations

import os
import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from commerce.models import Merchant
from commerce.services.demo import (
    DEMO_MERCHANT_NAME,
    DEMO_MERCHANT_SLUG,
    DemoLogin,
    demo_catalog_seed,
    demo_logins_seed,
)
from messenger.models import MessengerPage

DEFAULT_PAGE_ID = "104412345678901"  # the page of the shared webhook fixtures
DEFAULT_PRODUCTS = 12
MAX_PRODUCTS = 100_000
PASSWORD_DEFAULTS = {
    "DEMO_STAFF_PASSWORD": "demo-shop-2026",
    "DEMO_OPERATOR_PASSWORD": "operator-2026",
}
GREETING_EN = (
    "Hi {{user_first_name}}! Welcome to Souq Demo: T-shirts, hoodies, caps, mugs and bags, "
    "paid for right here in Messenger."
)
GREETING_AR = (
    "أهلًا {{user_first_name}}! مرحبًا بك في سوق ديمو: قمصان وهوديز وقبعات وأكواب وحقائب، "
    "وادفع هنا في ماسنجر."
)
_PAGE_ID = re.compile(r"[0-9]{1,32}")


class Command(BaseCommand):
    help = (
        "Create or refresh the demo shop: merchant, bilingual catalog with images, Messenger "
        "page and two logins (merchant owner 'demo', operator 'operator'). Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--page-id",
            default=DEFAULT_PAGE_ID,
            help=f"Facebook page id to connect (digits; default {DEFAULT_PAGE_ID}).",
        )
        parser.add_argument(
            "--products",
            default=DEFAULT_PRODUCTS,
            help=f"Number of demo products, 1 to {MAX_PRODUCTS} (default {DEFAULT_PRODUCTS}).",
        )

    def handle(self, *args, page_id, products, **options):
        page_id = _valid_page_id(page_id)
        products = _valid_product_count(products)
        staff_password, operator_password = _passwords()

        with transaction.atomic():
            # Before the catalog is written: a refusal then leaves no generated image behind.
            _refuse_page_of_other_merchant(page_id)
            catalog = demo_catalog_seed(products=products)
            page, page_status = demo_page_seed(merchant=catalog.merchant, page_id=page_id)
            staff, operator = demo_logins_seed(
                merchant=catalog.merchant,
                staff_password=staff_password,
                operator_password=operator_password,
            )

        merchant = catalog.merchant
        admin_url = f"{settings.PUBLIC_BASE_URL.rstrip('/')}/admin/"
        self.stdout.write(self.style.SUCCESS("Demo shop ready."))
        self.stdout.write(
            f"  merchant  {merchant.name} (slug {merchant.slug}, {merchant.default_currency})"
        )
        self.stdout.write(f'  page      {page.page_id} "{page.name}": {page_status}')
        self.stdout.write(
            f"  catalog   {catalog.products} products ({catalog.products_created} new), "
            f"{catalog.variants} variants ({catalog.variants_created} new), "
            f"{catalog.categories} categories, {catalog.images_created} images generated"
        )
        self.stdout.write(f"  logins    {admin_url}")
        self.stdout.write(_login_line(staff, staff_password, f"owner of {merchant.name}"))
        self.stdout.write(_login_line(operator, operator_password, "operator (superuser)"))


def demo_page_seed(*, merchant: Merchant, page_id: str) -> tuple[MessengerPage, str]:
    """Connect ``page_id`` to the demo merchant; returns the page and created/updated/unchanged.

    Name and greetings are reset to the demo's; the token, mode, test mode and active flag are
    set only when the page is created (someone may have pasted a real token or switched the page
    to buy-button mode on purpose).
    """
    values = {"name": DEMO_MERCHANT_NAME, "greeting_en": GREETING_EN, "greeting_ar": GREETING_AR}
    page = MessengerPage.objects.filter(page_id=page_id, merchant=merchant).first()
    if page is None:
        page = MessengerPage.objects.create(
            merchant=merchant,
            page_id=page_id,
            access_token=f"sandbox-page-token-{page_id}",
            mode=MessengerPage.Mode.CHECKOUT_PAGE,
            is_test_mode=True,
            is_active=True,
            **values,
        )
        return page, "created"
    changed = [name for name, value in values.items() if getattr(page, name) != value]
    if not changed:
        return page, "unchanged"
    for name in changed:
        setattr(page, name, values[name])
    page.save(update_fields=[*changed, "updated_at"])
    return page, "updated"


def _refuse_page_of_other_merchant(page_id: str) -> None:
    page = MessengerPage.objects.filter(page_id=page_id).select_related("merchant").first()
    if page is not None and page.merchant.slug != DEMO_MERCHANT_SLUG:
        raise CommandError(
            f"Page {page_id} is connected to {page.merchant.name} ({page.merchant.slug}), "
            "not to the demo shop; pass another --page-id."
        )


def _valid_page_id(value) -> str:
    text = str(value).strip()
    if not _PAGE_ID.fullmatch(text):
        raise CommandError(
            f"--page-id must be a Facebook page id: 1 to 32 digits, got {str(value)!r}."
        )
    return text


def _valid_product_count(value) -> int:
    text = str(value).strip()
    number = int(text) if text.isascii() and text.isdigit() else None
    if number is None or not 1 <= number <= MAX_PRODUCTS:
        raise CommandError(
            f"--products must be a whole number from 1 to {MAX_PRODUCTS}, got {str(value)!r}."
        )
    return number


def _passwords() -> tuple[str, str]:
    """Passwords for accounts this run creates, from the environment or the demo defaults.

    The defaults are public (they are in the source), so outside the sandbox (production
    settings) both variables must be set: the command would otherwise create a superuser anyone
    could log in as.
    """
    missing = [name for name in PASSWORD_DEFAULTS if not os.environ.get(name)]
    if missing and not settings.SANDBOX_ENABLED:
        raise CommandError(
            f"Set {' and '.join(missing)}: the default demo passwords are only allowed with "
            "SANDBOX_ENABLED=true, because they are public."
        )
    return tuple(os.environ.get(name) or default for name, default in PASSWORD_DEFAULTS.items())


def _login_line(login: DemoLogin, password: str, role: str) -> str:
    # Show the password again on later runs as long as it still works, so `make run` can always
    # print a usable login; once someone changed it, say so instead.
    user = get_user_model().objects.filter(username=login.username).first()
    still_valid = user is not None and user.check_password(password)
    shown = password if (login.created or still_valid) else "(changed)"
    return f"    {login.username:<10} {shown:<18} {role}"
