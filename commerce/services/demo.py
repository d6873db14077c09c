"""The demo shop: a merchant, a bilingual catalog with generated images, and its staff logins.

Everything here is idempotent and keyed by stable names (merchant slug, category slugs, product
handles, SKUs, usernames), so ``manage.py seed_demo`` can run on every start of the demo:

- catalog *content* (names, titles, descriptions, categories, prices, positions) is reset to the
  seeded values; a row whose values already match is not written at all;
- *operational state* is set only when a row is created: stock on hand (orders and reservations
  change it with their own conditional updates; re-seeding must not race with them or bring sold
  units back), visibility (``is_active``: the merchant may hide a demo product), images (one is
  generated for a product that has none), and accounts (passwords, flags, roles);
- rows the seed does not name (a product the merchant added to the demo shop) are never touched.

Generated data is deterministic: the same ``products`` count always yields the same rows.
"""

from __future__ import annotations

import functools
import io
import zlib
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import models, transaction
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFont

from commerce.models import (
    Category,
    Merchant,
    MerchantMembership,
    Product,
    ProductImage,
    ShippingMethod,
    Variant,
)

__all__ = [
    "DEMO_MERCHANT_SLUG",
    "DemoCatalog",
    "DemoLogin",
    "demo_catalog_seed",
    "demo_logins_seed",
]

DEMO_MERCHANT_SLUG = "demo-shop"
DEMO_MERCHANT_NAME = "Souq Demo"
DEMO_STAFF_USERNAME = "demo"
DEMO_OPERATOR_USERNAME = "operator"
IMAGE_SIZE = 600
_BATCH = 500


# -- what the catalog is made of -------------------------------------------------------------


@dataclass(frozen=True)
class _Option:
    code: str  # last part of the SKU
    name: str
    name_ar: str
    values: dict[str, str]
    price_delta: int = 0


@dataclass(frozen=True)
class _Kind:
    key: str  # handle part: demo-<key>-001
    code: str  # SKU part: DEMO-<code>-001-M
    category: str  # category slug
    noun: str
    noun_ar: str
    description: str
    description_ar: str
    base_price: int  # minor units (USD cents)
    options: tuple[_Option, ...]


def _size(code: str, name_ar: str, delta: int = 0) -> _Option:
    return _Option(code, code, name_ar, {"size": code}, delta)


def _colour(code: str, name: str, name_ar: str) -> _Option:
    return _Option(code, name, name_ar, {"colour": name.lower()})


_S, _M, _L = _size("S", "صغير"), _size("M", "وسط"), _size("L", "كبير")
_XL = _size("XL", "كبير جدًا", delta=200)

CATEGORIES: tuple[tuple[str, str, str], ...] = (
    ("t-shirts", "T-shirts", "قمصان"),
    ("hoodies", "Hoodies", "هوديز"),
    ("caps", "Caps", "قبعات"),
    ("mugs", "Mugs", "أكواب"),
    ("bags", "Bags", "حقائب"),
)

# name, Arabic name, price and free-over threshold (cents), delivery estimates; ships anywhere.
SHIPPING_METHODS: tuple[tuple[str, str, int, int | None, str, str], ...] = (
    ("Standard", "عادي", 500, 7500, "3-5 days", "3-5 أيام"),
    ("Express", "سريع", 1500, None, "1-2 days", "1-2 يوم"),
)

KINDS: tuple[_Kind, ...] = (
    _Kind(
        "tee",
        "TEE",
        "t-shirts",
        "T-shirt",
        "قميص",
        "A soft cotton T-shirt with the {style} print. Pre-shrunk and true to size.",
        "قميص قطني ناعم بطبعة {style}. لا ينكمش ومقاسه مضبوط.",
        1900,
        (_S, _M, _L, _XL),
    ),
    _Kind(
        "hoodie",
        "HOOD",
        "hoodies",
        "Hoodie",
        "هودي",
        "A warm fleece hoodie with the {style} design and a roomy front pocket.",
        "هودي دافئ من الصوف الناعم بتصميم {style} وجيب أمامي واسع.",
        3900,
        (_M, _L, _XL),
    ),
    _Kind(
        "cap",
        "CAP",
        "caps",
        "Cap",
        "قبعة",
        "A six-panel cotton cap with an embroidered {style} badge and an adjustable strap.",
        "قبعة قطنية بشعار {style} مطرز وحزام قابل للتعديل.",
        1700,
        (_colour("BLK", "Black", "أسود"), _colour("SND", "Sand", "رملي")),
    ),
    _Kind(
        "mug",
        "MUG",
        "mugs",
        "Mug",
        "كوب",
        "A 325 ml ceramic mug with the {style} illustration. Dishwasher safe.",
        "كوب سيراميك سعة ٣٢٥ مل برسمة {style}. آمن في غسالة الأطباق.",
        1500,
        (_Option("325", "325 ml", "٣٢٥ مل", {"capacity": "325 ml"}),),
    ),
    _Kind(
        "tote",
        "TOTE",
        "bags",
        "Tote bag",
        "حقيبة",
        "A sturdy canvas tote bag with the {style} print, big enough for the market.",
        "حقيبة قماشية متينة بطبعة {style}، تتسع لمشتريات السوق.",
        2200,
        (
            _colour("NAT", "Natural", "طبيعي"),
            _colour("BLK", "Black", "أسود"),
            _colour("OLV", "Olive", "زيتي"),
        ),
    ),
)

STYLES: tuple[tuple[str, str], ...] = (
    ("Desert", "الصحراء"),
    ("Oasis", "الواحة"),
    ("Falcon", "الصقر"),
    ("Palm", "النخلة"),
    ("Souq", "السوق"),
    ("Dune", "الكثبان"),
    ("Pearl", "اللؤلؤ"),
    ("Camel", "الجمل"),
    ("Crescent", "الهلال"),
    ("Cedar", "الأرز"),
    ("Nile", "النيل"),
    ("Saffron", "الزعفران"),
)

# Image backgrounds (red, green, blue), picked by a checksum so a product's colour never changes.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (200, 85, 61),
    (42, 157, 143),
    (38, 70, 83),
    (233, 196, 106),
    (244, 162, 97),
    (109, 89, 122),
    (53, 80, 112),
    (181, 101, 118),
    (88, 129, 87),
    (212, 163, 115),
)


@dataclass(frozen=True)
class _VariantSpec:
    sku: str
    name: str
    name_ar: str
    options: dict[str, str]
    price_minor: int
    stock_on_hand: int
    position: int


@dataclass(frozen=True)
class _ProductSpec:
    handle: str
    category: str
    title: str
    title_ar: str
    description: str
    description_ar: str
    position: int
    initials: str
    colour: tuple[int, int, int]
    variants: tuple[_VariantSpec, ...] = field(default=())


def _product_spec(index: int) -> _ProductSpec:
    """The ``index``-th demo product (0-based): kinds take turns, each with its own styles."""
    kind_index = index % len(KINDS)
    kind = KINDS[kind_index]
    serial = index // len(KINDS)  # 0-based number of this product within its kind
    style, style_ar = STYLES[serial % len(STYLES)]
    edition = serial // len(STYLES)
    suffix = f" {edition + 1}" if edition else ""
    handle = f"demo-{kind.key}-{serial + 1:03d}"
    variants = tuple(
        _VariantSpec(
            sku=f"DEMO-{kind.code}-{serial + 1:03d}-{option.code}",
            name=option.name,
            name_ar=option.name_ar,
            options=option.values,
            price_minor=kind.base_price + (serial * 3 % 5) * 100 + option.price_delta,
            stock_on_hand=5 + (serial * 7 + position * 11 + kind_index * 3) % 46,
            position=position,
        )
        for position, option in enumerate(kind.options)
    )
    return _ProductSpec(
        handle=handle,
        category=kind.category,
        title=f"{style} {kind.noun}{suffix}",
        title_ar=f"{kind.noun_ar} {style_ar}{suffix}",
        description=kind.description.format(style=style),
        description_ar=kind.description_ar.format(style=style_ar),
        position=index,
        initials=f"{style[0]}{kind.noun[0]}",
        # Keyed by kind and style, not handle: later editions reuse the same few dozen pictures.
        colour=PALETTE[zlib.crc32(f"{kind.key}:{style}".encode()) % len(PALETTE)],
        variants=variants,
    )


# -- writing rows only when they differ ------------------------------------------------------


def _assign_changes(obj: models.Model, values: dict) -> list[str]:
    """Set ``values`` on ``obj``; return the names of the fields that actually changed."""
    changed = []
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            changed.append(name)
    return changed


def _upsert(
    model: type[models.Model], lookup: dict, values: dict, *, on_create: dict | None = None
):
    """``update_or_create`` that writes nothing (not even ``updated_at``) when nothing changed.

    Returns ``(obj, created)``.
    """
    obj = model._default_manager.filter(**lookup).first()
    if obj is None:
        return model._default_manager.create(**lookup, **values, **(on_create or {})), True
    changed = _assign_changes(obj, values)
    if changed:
        obj.save(update_fields=[*changed, "updated_at"])
    return obj, False


def _bulk_write(model, *, new: list, changed: list, fields: list[str]) -> None:
    """Insert ``new`` rows and write ``fields`` of the ``changed`` ones, in batches."""
    model._default_manager.bulk_create(new, batch_size=_BATCH)
    if changed:
        now = timezone.now()
        for obj in changed:
            obj.updated_at = now
        model._default_manager.bulk_update(
            changed, fields=[*fields, "updated_at"], batch_size=_BATCH
        )


# -- the service -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoCatalog:
    merchant: Merchant
    categories: int
    products: int
    variants: int
    products_created: int
    variants_created: int
    images_created: int


@transaction.atomic
def demo_catalog_seed(
    *, merchant_slug: str = DEMO_MERCHANT_SLUG, products: int = 12
) -> DemoCatalog:
    """Create or refresh the demo merchant and its first ``products`` demo products.

    Idempotent: a second run with the same arguments writes nothing and creates no files (see
    the module docstring for what a run resets and what it only sets on creation). Asking for
    fewer products than a previous run leaves the extra ones alone.

    :raises ValueError: ``products`` is below 1.
    """
    if products < 1:
        raise ValueError(f"products must be at least 1, got {products}.")
    merchant, _ = _upsert(
        Merchant,
        {"slug": merchant_slug},
        {
            "name": DEMO_MERCHANT_NAME,
            "default_currency": "USD",
            "default_locale": "en",
            "support_email": f"support@{merchant_slug}.example",
        },
    )
    categories = {
        slug: _upsert(
            Category,
            {"merchant": merchant, "slug": slug},
            {"name": name, "name_ar": name_ar, "position": position, "parent_id": None},
            on_create={"is_active": True},
        )[0]
        for position, (slug, name, name_ar) in enumerate(CATEGORIES)
    }
    _shipping_seed(merchant)
    specs = [_product_spec(index) for index in range(products)]
    product_by_handle, products_created = _products_seed(merchant, specs, categories)
    variants_created = _variants_seed(merchant, specs, product_by_handle)

    saved_files: list[str] = []
    try:
        images_created = _images_seed(specs, product_by_handle, saved_files)
    except BaseException:
        # The transaction rolls the rows back; the files need removing by hand.
        for name in saved_files:
            ProductImage._meta.get_field("image").storage.delete(name)
        raise
    return DemoCatalog(
        merchant=merchant,
        categories=len(categories),
        products=len(specs),
        variants=sum(len(spec.variants) for spec in specs),
        products_created=products_created,
        variants_created=variants_created,
        images_created=images_created,
    )


def _shipping_seed(merchant: Merchant) -> None:
    """Standard (free over $75) and Express: a demo shopper can check out, and sees the
    Express alternative offered on the order summary."""
    for position, (name, name_ar, price, free_over, estimate, estimate_ar) in enumerate(
        SHIPPING_METHODS
    ):
        _upsert(
            ShippingMethod,
            {"merchant": merchant, "name": name},
            {
                "name_ar": name_ar,
                "price_minor": price,
                "currency": "USD",
                "free_over_minor": free_over,
                "countries": [],
                "delivery_estimate": estimate,
                "delivery_estimate_ar": estimate_ar,
                "position": position,
            },
            on_create={"is_active": True},
        )


_PRODUCT_FIELDS = ["category", "title", "title_ar", "description", "description_ar", "position"]
_VARIANT_FIELDS = ["product", "name", "name_ar", "options", "price_minor", "currency", "position"]


def _products_seed(
    merchant: Merchant, specs: list[_ProductSpec], categories: dict[str, Category]
) -> tuple[dict[str, Product], int]:
    existing = {product.handle: product for product in Product.objects.filter(merchant=merchant)}
    new, changed = [], []
    for spec in specs:
        values = {
            "category_id": categories[spec.category].pk,
            "title": spec.title,
            "title_ar": spec.title_ar,
            "description": spec.description,
            "description_ar": spec.description_ar,
            "position": spec.position,
        }
        product = existing.get(spec.handle)
        if product is None:
            new.append(Product(merchant=merchant, handle=spec.handle, is_active=True, **values))
        elif _assign_changes(product, values):
            changed.append(product)
    _bulk_write(Product, new=new, changed=changed, fields=_PRODUCT_FIELDS)
    wanted = {spec.handle for spec in specs}
    by_handle = {
        product.handle: product
        for product in Product.objects.filter(merchant=merchant).only("id", "handle", "merchant")
        if product.handle in wanted
    }
    return by_handle, len(new)


def _variants_seed(
    merchant: Merchant, specs: list[_ProductSpec], product_by_handle: dict[str, Product]
) -> int:
    existing = {variant.sku: variant for variant in Variant.objects.filter(merchant=merchant)}
    new, changed = [], []
    for spec in specs:
        product = product_by_handle[spec.handle]
        for variant_spec in spec.variants:
            values = {
                "product_id": product.pk,
                "name": variant_spec.name,
                "name_ar": variant_spec.name_ar,
                "options": variant_spec.options,
                "price_minor": variant_spec.price_minor,
                "currency": merchant.default_currency,
                "position": variant_spec.position,
            }
            variant = existing.get(variant_spec.sku)
            if variant is None:
                new.append(
                    Variant(
                        merchant=merchant,  # bulk_create skips Variant.save(), which sets it
                        sku=variant_spec.sku,
                        stock_on_hand=variant_spec.stock_on_hand,
                        is_active=True,
                        **values,
                    )
                )
            elif _assign_changes(variant, values):
                changed.append(variant)
    _bulk_write(Variant, new=new, changed=changed, fields=_VARIANT_FIELDS)
    return len(new)


def _images_seed(
    specs: list[_ProductSpec], product_by_handle: dict[str, Product], saved_files: list[str]
) -> int:
    """Give each demo product without any image one generated picture."""
    with_images = _product_ids_with_images(product_by_handle)
    rows = []
    for spec in specs:
        product = product_by_handle[spec.handle]
        if product.pk in with_images:
            continue
        row = ProductImage(product=product, alt_text=spec.title, position=0)
        # Through the ImageField, so upload_to, storage and width/height behave as for uploads.
        row.image.save(
            f"{spec.handle}.png", ContentFile(_image_png(spec.initials, spec.colour)), save=False
        )
        # save(save=False) leaves width/height empty, and an image row without them is opened
        # and parsed each time it is loaded (Django fills them in post_init): every carousel.
        row.width, row.height = row.image.width, row.image.height
        saved_files.append(row.image.name)
        rows.append(row)
    ProductImage.objects.bulk_create(rows, batch_size=_BATCH)
    return len(rows)


def _product_ids_with_images(product_by_handle: dict[str, Product]) -> set[int]:
    # One query over the merchant rather than an IN list that SQLite caps at 32766 parameters.
    merchant_id = next(iter(product_by_handle.values())).merchant_id
    ours = {product.pk for product in product_by_handle.values()}
    with_images = ProductImage.objects.filter(product__merchant_id=merchant_id)
    return {pk for pk in with_images.values_list("product_id", flat=True) if pk in ours}


@functools.lru_cache(maxsize=256)
def _image_png(initials: str, colour: tuple[int, int, int]) -> bytes:
    """A square PNG: flat background, a lighter disc, the product's initials (a few KB)."""
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), colour)
    draw = ImageDraw.Draw(image)
    lighter = tuple(channel + (255 - channel) // 4 for channel in colour)
    margin = IMAGE_SIZE // 8
    draw.ellipse((margin, margin, IMAGE_SIZE - margin, IMAGE_SIZE - margin), fill=lighter)
    red, green, blue = colour
    dark_text = (299 * red + 587 * green + 114 * blue) / 1000 > 160
    ink = (34, 34, 34) if dark_text else (255, 255, 255)
    try:
        font = ImageFont.load_default(size=IMAGE_SIZE // 3)
    except (ImportError, OSError):  # Pillow without FreeType: the disc alone will do
        font = None
    if font is not None:
        centre = IMAGE_SIZE // 2
        draw.text((centre, centre), initials, fill=ink, font=font, anchor="mm")
    buffer = io.BytesIO()
    palette_image = image.quantize(colors=32, method=Image.Quantize.FASTOCTREE)
    palette_image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


# -- logins ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoLogin:
    username: str
    created: bool


@transaction.atomic
def demo_logins_seed(
    *, merchant: Merchant, staff_password: str, operator_password: str
) -> tuple[DemoLogin, DemoLogin]:
    """Create the demo merchant's owner (``demo``) and an operator (``operator``) if missing.

    An account that already exists is left exactly as it is (password, flags), so a changed
    password survives a re-run and an existing account is never promoted; only the staff user's
    membership in ``merchant`` is created when missing. Returns ``(staff, operator)``.
    """
    user_model = get_user_model()
    staff, staff_created = _user_create_if_missing(
        user_model,
        username=DEMO_STAFF_USERNAME,
        password=staff_password,
        email=f"{DEMO_STAFF_USERNAME}@{merchant.slug}.example",
        is_staff=True,
    )
    MerchantMembership.objects.get_or_create(
        user=staff, merchant=merchant, defaults={"role": MerchantMembership.Role.OWNER}
    )
    _, operator_created = _user_create_if_missing(
        user_model,
        username=DEMO_OPERATOR_USERNAME,
        password=operator_password,
        email=f"{DEMO_OPERATOR_USERNAME}@{merchant.slug}.example",
        is_staff=True,
        is_superuser=True,
    )
    return (
        DemoLogin(DEMO_STAFF_USERNAME, staff_created),
        DemoLogin(DEMO_OPERATOR_USERNAME, operator_created),
    )


def _user_create_if_missing(user_model, *, username: str, password: str, **flags):
    user = user_model._default_manager.filter(**{user_model.USERNAME_FIELD: username}).first()
    if user is not None:
        return user, False
    user = user_model(**{user_model.USERNAME_FIELD: username}, **flags)
    user.set_password(password)
    user.save()
    return user, True
