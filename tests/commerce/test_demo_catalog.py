"""The demo catalog: bilingual, deterministic, with one small generated image per product, and
idempotent: a second run writes nothing, creates no file and leaves rows it does not own alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PIL import Image

from commerce.models import Category, Merchant, Product, ProductImage, ShippingMethod, Variant
from commerce.services.demo import demo_catalog_seed

pytestmark = pytest.mark.django_db

ARABIC = re.compile(r"[\u0600-\u06FF]")
SKU = re.compile(r"^DEMO-[A-Z]+-\d{3,}-[A-Z0-9]+$")


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _files(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}


def _snapshot(merchant: Merchant) -> dict:
    """Every seeded row, including ``updated_at``: a run that changes nothing writes nothing."""
    return {
        "merchant": Merchant.objects.filter(pk=merchant.pk).values().get(),
        "categories": list(Category.objects.filter(merchant=merchant).order_by("pk").values()),
        "products": list(Product.objects.filter(merchant=merchant).order_by("pk").values()),
        "variants": list(Variant.objects.filter(merchant=merchant).order_by("pk").values()),
        "images": list(
            ProductImage.objects.filter(product__merchant=merchant).order_by("pk").values()
        ),
        "shipping": list(ShippingMethod.objects.filter(merchant=merchant).order_by("pk").values()),
    }


def test_seed_creates_a_bilingual_demo_shop(media_root):
    catalog = demo_catalog_seed()

    merchant = catalog.merchant
    assert (merchant.slug, merchant.name) == ("demo-shop", "Souq Demo")
    assert (merchant.default_currency, merchant.default_locale) == ("USD", "en")
    assert merchant.support_email
    categories = Category.objects.filter(merchant=merchant)
    assert categories.count() == catalog.categories >= 4
    assert all(ARABIC.search(category.name_ar) for category in categories)
    assert categories.get(slug="t-shirts").name_ar == "قمصان"

    products = Product.objects.filter(merchant=merchant).prefetch_related("variants", "images")
    assert len(products) == catalog.products == 12
    for product in products:
        assert ARABIC.search(product.title_ar), product.title
        assert ARABIC.search(product.description_ar), product.title
        assert product.description and product.category_id and product.is_active
        assert 1 <= len(product.variants.all()) <= 4
        assert len(product.images.all()) == 1
    assert len({product.title for product in products}) == 12


def test_variants_have_demo_skus_prices_in_cents_and_stock():
    catalog = demo_catalog_seed()

    variants = Variant.objects.filter(merchant=catalog.merchant).select_related("product")
    assert variants.count() == catalog.variants
    for variant in variants:
        assert SKU.match(variant.sku), variant.sku
        assert 1500 <= variant.price_minor <= 4500
        assert variant.currency == "USD"
        assert variant.stock_on_hand > 0
        assert variant.name and variant.name_ar
    tee_m = variants.get(sku="DEMO-TEE-001-M")
    assert (tee_m.name, tee_m.name_ar, tee_m.options) == ("M", "وسط", {"size": "M"})
    assert variants.get(sku="DEMO-TEE-001-XL").name_ar == "كبير جدًا"
    assert {variant.sku for variant in tee_m.product.variants.all()} == {
        "DEMO-TEE-001-S",
        "DEMO-TEE-001-M",
        "DEMO-TEE-001-L",
        "DEMO-TEE-001-XL",
    }


def test_each_product_gets_one_small_png_made_through_the_image_field(media_root):
    demo_catalog_seed(products=3)

    images = ProductImage.objects.select_related("product")
    assert images.count() == 3
    for image in images:
        assert (image.width, image.height) == (600, 600)
        assert image.alt_text == image.product.title
        path = Path(image.image.path)
        assert path.is_relative_to(media_root)
        assert path.stat().st_size < 20_000
        with Image.open(path) as picture:
            assert picture.format == "PNG"
            assert picture.size == (600, 600)
    assert len(_files(media_root)) == 3


def test_second_run_writes_nothing_and_creates_no_files(media_root):
    first = demo_catalog_seed(products=20)
    before, files_before = _snapshot(first.merchant), _files(media_root)

    second = demo_catalog_seed(products=20)

    assert _snapshot(second.merchant) == before
    assert _files(media_root) == files_before
    assert (second.products_created, second.variants_created, second.images_created) == (0, 0, 0)


def test_same_count_gives_the_same_catalog_in_another_database_state(media_root):
    """Deterministic: names, SKUs, prices and stock depend only on the product count."""

    def catalog_rows():
        return sorted(
            Variant.objects.values_list(
                "sku", "name", "name_ar", "price_minor", "stock_on_hand", "product__title"
            )
        )

    demo_catalog_seed(products=7)
    first = catalog_rows()
    Merchant.objects.all().delete()
    demo_catalog_seed(products=7)

    assert catalog_rows() == first


def test_products_argument_sets_the_number_of_products():
    catalog = demo_catalog_seed(products=30)

    assert Product.objects.filter(merchant=catalog.merchant).count() == 30
    assert ProductImage.objects.count() == 30


def test_more_products_later_adds_only_the_new_ones(media_root):
    demo_catalog_seed(products=5)
    files = _files(media_root)

    catalog = demo_catalog_seed(products=8)

    assert (catalog.products_created, catalog.images_created) == (3, 3)
    assert Product.objects.count() == 8
    assert len(_files(media_root) - files) == 3


def test_rerun_restores_content_but_keeps_stock_visibility_and_images(media_root):
    catalog = demo_catalog_seed(products=5)
    product = Product.objects.get(handle="demo-tee-001")
    Product.objects.filter(pk=product.pk).update(title="Renamed", is_active=False)
    Variant.objects.filter(sku="DEMO-TEE-001-M").update(price_minor=1, stock_on_hand=2)
    image = ProductImage.objects.get(product=product)

    demo_catalog_seed(products=5)

    product.refresh_from_db()
    variant = Variant.objects.get(sku="DEMO-TEE-001-M")
    assert product.title == "Desert T-shirt"
    assert variant.price_minor >= 1500
    assert variant.stock_on_hand == 2  # orders own stock once the row exists
    assert product.is_active is False  # the merchant hid it on purpose
    assert list(product.images.all()) == [image]
    assert Product.objects.filter(merchant=catalog.merchant).count() == 5


def test_rows_the_seed_did_not_create_are_left_alone():
    catalog = demo_catalog_seed(products=2)
    own_product = Product.objects.create(
        merchant=catalog.merchant, handle="my-own-scarf", title="My scarf", position=99
    )
    own_variant = Variant.objects.create(
        product=own_product, name="One size", sku="SCARF-1", price_minor=999, currency="USD"
    )
    other_shop = Merchant.objects.create(name="Other", slug="other-shop")
    twin = Product.objects.create(merchant=other_shop, handle="demo-tee-001", title="Not yours")
    Variant.objects.create(
        product=twin, name="M", sku="DEMO-TEE-001-M", price_minor=5, currency="USD"
    )
    untouched = {
        "own_product": Product.objects.filter(pk=own_product.pk).values().get(),
        "own_variant": Variant.objects.filter(pk=own_variant.pk).values().get(),
        "other": list(Product.objects.filter(merchant=other_shop).values()),
        "other_variants": list(Variant.objects.filter(merchant=other_shop).values()),
    }

    demo_catalog_seed(products=2)

    assert {
        "own_product": Product.objects.filter(pk=own_product.pk).values().get(),
        "own_variant": Variant.objects.filter(pk=own_variant.pk).values().get(),
        "other": list(Product.objects.filter(merchant=other_shop).values()),
        "other_variants": list(Variant.objects.filter(merchant=other_shop).values()),
    } == untouched
    assert not ProductImage.objects.filter(product__merchant=other_shop).exists()


def test_product_count_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        demo_catalog_seed(products=0)
    assert not Merchant.objects.exists()


def test_the_demo_shop_ships_anywhere_standard_or_express():
    """Without a shipping method no demo shopper could check out."""
    merchant = demo_catalog_seed(products=1).merchant

    methods = list(ShippingMethod.objects.filter(merchant=merchant, is_active=True))
    assert [(m.name, m.name_ar, m.price_minor, m.countries) for m in methods] == [
        ("Standard", "عادي", 500, []),
        ("Express", "سريع", 1500, []),
    ]
    assert methods[0].free_over_minor == 7500
