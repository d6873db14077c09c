"""``manage.py seed_demo``: a demo shop with a catalog, a Messenger page and two logins, and the
same data however many times it runs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection

from commerce.models import Category, Merchant, MerchantMembership, Product, ProductImage, Variant
from messenger.models import MessengerPage

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("media_root")]

User = get_user_model()
FIXTURE_PAGE_ID = "104412345678901"


@pytest.fixture(autouse=True)
def _no_password_env(monkeypatch):
    monkeypatch.delenv("DEMO_STAFF_PASSWORD", raising=False)
    monkeypatch.delenv("DEMO_OPERATOR_PASSWORD", raising=False)


def seed_demo(*args: str) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def _files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def _snapshot() -> dict:
    """What the command writes, with timestamps: a second run must not even touch a row."""
    return {
        "merchants": list(Merchant.objects.order_by("pk").values()),
        "categories": list(Category.objects.order_by("pk").values()),
        "products": list(Product.objects.order_by("pk").values()),
        "variants": list(
            Variant.objects.order_by("pk").values(
                "sku", "price_minor", "stock_on_hand", "name", "name_ar", "updated_at"
            )
        ),
        "images": list(ProductImage.objects.order_by("pk").values()),
        "users": list(User.objects.order_by("pk").values()),
        "memberships": list(MerchantMembership.objects.order_by("pk").values()),
        # values() decrypts access_token; an unchanged updated_at shows the page was not re-saved
        # (the raw column would differ, as every encryption does).
        "pages": list(MessengerPage.objects.order_by("pk").values()),
    }


def _raw_token(page: MessengerPage) -> str:
    table = connection.ops.quote_name(MessengerPage._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT access_token FROM {table} WHERE id = %s", [page.pk])  # noqa: S608
        return cursor.fetchone()[0]


def test_first_run_creates_shop_page_catalog_and_logins():
    output = seed_demo()

    merchant = Merchant.objects.get(slug="demo-shop")
    page = MessengerPage.objects.get(page_id=FIXTURE_PAGE_ID)
    assert page.merchant == merchant
    assert page.name == "Souq Demo"
    assert page.mode == MessengerPage.Mode.CHECKOUT_PAGE
    assert page.is_active
    assert page.access_token == f"sandbox-page-token-{FIXTURE_PAGE_ID}"
    assert "{{user_first_name}}" in page.greeting_en
    assert "{{user_first_name}}" in page.greeting_ar
    assert len(page.greeting_en) <= 160 and len(page.greeting_ar) <= 160
    page.full_clean()
    assert Product.objects.filter(merchant=merchant).count() == 12

    demo = User.objects.get(username="demo")
    assert demo.is_staff and not demo.is_superuser
    assert demo.check_password("demo-shop-2026")
    assert MerchantMembership.objects.get(user=demo).role == MerchantMembership.Role.OWNER
    assert MerchantMembership.objects.get(user=demo).merchant == merchant
    operator = User.objects.get(username="operator")
    assert operator.is_staff and operator.is_superuser
    assert operator.check_password("operator-2026")

    assert "Souq Demo" in output
    assert FIXTURE_PAGE_ID in output
    assert "12 products" in output
    assert "demo-shop-2026" in output and "operator-2026" in output


def test_second_run_yields_the_same_data_and_no_new_files(media_root):
    seed_demo()
    before, files_before = _snapshot(), _files(media_root)
    assert len(files_before) == 12

    output = seed_demo()

    assert _snapshot() == before
    assert _files(media_root) == files_before
    # The default passwords still work, so a later `make run` can print a usable login.
    assert "demo-shop-2026" in output and "operator-2026" in output
    assert "0 images generated" in output


def test_products_option_sets_the_catalog_size():
    output = seed_demo("--products", "30")

    assert Product.objects.filter(merchant__slug="demo-shop").count() == 30
    assert "30 products" in output
    titles_ar = Product.objects.values_list("title_ar", flat=True)
    assert all(any("\u0600" <= char <= "\u06ff" for char in title) for title in titles_ar)


def test_page_id_option_connects_that_page():
    seed_demo("--page-id", "123456789")

    page = MessengerPage.objects.get(page_id="123456789")
    assert page.merchant.slug == "demo-shop"
    assert page.access_token == "sandbox-page-token-123456789"


def test_page_token_is_stored_encrypted():
    seed_demo()

    page = MessengerPage.objects.get(page_id=FIXTURE_PAGE_ID)
    raw = _raw_token(page)
    assert raw
    assert raw != page.access_token
    assert "sandbox-page-token" not in raw and FIXTURE_PAGE_ID not in raw


@pytest.mark.parametrize(
    "args, message",
    [
        (["--products", "0"], "--products"),
        (["--products", "100001"], "--products"),
        (["--products", "-3"], "--products"),
        (["--products", "many"], "--products"),
        (["--products", "2.5"], "--products"),
        (["--page-id", "my-page"], "--page-id"),
        (["--page-id", ""], "--page-id"),
        (["--page-id", "12 34"], "--page-id"),
        (["--page-id", "1" * 33], "--page-id"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_error(args, message):
    with pytest.raises(CommandError, match=message):
        seed_demo(*args)
    assert not Merchant.objects.exists()


def test_bad_keyword_arguments_are_refused_too():
    """call_command(products=...) skips argparse: the command validates by itself."""
    with pytest.raises(CommandError, match="--products"):
        call_command("seed_demo", products=0, stdout=io.StringIO())
    with pytest.raises(CommandError, match="--page-id"):
        call_command("seed_demo", page_id="abc", stdout=io.StringIO())


def test_changed_password_is_not_reset():
    seed_demo()
    demo = User.objects.get(username="demo")
    demo.set_password("my-own-password")
    demo.save()

    output = seed_demo()

    demo.refresh_from_db()
    assert demo.check_password("my-own-password")
    assert "(changed)" in output
    assert "demo-shop-2026" not in output


def test_existing_account_is_never_promoted():
    User.objects.create_user("operator", password="their-password")

    seed_demo()

    operator = User.objects.get(username="operator")
    assert not operator.is_superuser and not operator.is_staff
    assert operator.check_password("their-password")


def test_passwords_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("DEMO_STAFF_PASSWORD", "staff-from-env-1")
    monkeypatch.setenv("DEMO_OPERATOR_PASSWORD", "operator-from-env-1")

    output = seed_demo()

    assert User.objects.get(username="demo").check_password("staff-from-env-1")
    assert User.objects.get(username="operator").check_password("operator-from-env-1")
    assert "staff-from-env-1" in output


def test_public_default_passwords_are_refused_outside_the_sandbox(settings, monkeypatch):
    settings.SANDBOX_ENABLED = False
    monkeypatch.setenv("DEMO_STAFF_PASSWORD", "staff-from-env-1")

    with pytest.raises(CommandError, match="DEMO_OPERATOR_PASSWORD"):
        seed_demo()
    assert not User.objects.exists()


def test_rerun_keeps_a_token_and_mode_set_by_hand():
    seed_demo()
    page = MessengerPage.objects.get(page_id=FIXTURE_PAGE_ID)
    page.access_token = "EAAreal-token-pasted-in-the-admin"
    page.mode = MessengerPage.Mode.BUY_BUTTON
    page.greeting_en = "Changed"
    page.save()

    seed_demo()

    page.refresh_from_db()
    assert page.access_token == "EAAreal-token-pasted-in-the-admin"
    assert page.mode == MessengerPage.Mode.BUY_BUTTON
    assert "{{user_first_name}}" in page.greeting_en  # demo content is restored


def test_page_of_another_merchant_is_refused_and_nothing_is_written(media_root):
    other = Merchant.objects.create(name="Real shop", slug="real-shop")
    MessengerPage.objects.create(merchant=other, page_id="555", name="Real page")

    with pytest.raises(CommandError, match="Real shop"):
        seed_demo("--page-id", "555")

    assert MessengerPage.objects.get(page_id="555").merchant == other
    assert not Merchant.objects.filter(slug="demo-shop").exists()
    assert not media_root.exists() or not _files(media_root)
