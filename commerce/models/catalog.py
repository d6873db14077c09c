from __future__ import annotations

import uuid
from pathlib import PurePath

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from commerce.models.merchants import Merchant
from commerce.validators import validate_product_image
from core.currencies import CURRENCY_CHOICES
from core.models import ServiceOwnedColumns, TimeStampedModel
from core.money import Money


def _refuse_duplicate_in_merchant(obj, field: str, message: str) -> None:
    """Check a per-merchant unique field in ``clean()``.

    The admin hides ``merchant`` from staff forms, and Django skips constraints on fields a form
    leaves out, so without this a duplicate would reach the database as an IntegrityError.
    """
    value = getattr(obj, field)
    if not value or not obj.merchant_id:
        return
    clash = type(obj)._default_manager.filter(merchant_id=obj.merchant_id, **{field: value})
    if obj.pk:
        clash = clash.exclude(pk=obj.pk)
    if clash.exists():
        raise ValidationError({field: message})


def _localized(obj, field: str, locale: str | None) -> str:
    """The Arabic text when asked for Arabic and present, else the default text."""
    if locale and locale.lower().startswith("ar"):
        arabic = getattr(obj, f"{field}_ar", "")
        if arabic:
            return arabic
    return getattr(obj, field)


class Category(TimeStampedModel):
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="categories")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
    )
    name = models.CharField(max_length=80)
    name_ar = models.CharField(_("name (Arabic)"), max_length=80, blank=True)
    slug = models.SlugField(max_length=80, allow_unicode=True)
    position = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "name"]
        verbose_name_plural = "categories"
        constraints = [
            models.UniqueConstraint(fields=["merchant", "slug"], name="uniq_category_slug"),
        ]
        indexes = [models.Index(fields=["merchant", "is_active", "position"])]

    def __str__(self) -> str:
        return self.name

    def localized_name(self, locale: str | None) -> str:
        return _localized(self, "name", locale)

    def clean(self) -> None:
        if self.parent_id and self.parent.merchant_id != self.merchant_id:
            raise ValidationError({"parent": _("The parent category belongs to another shop.")})
        if self.parent_id and self.pk and self.parent_id == self.pk:
            raise ValidationError({"parent": _("A category cannot be its own parent.")})
        _refuse_duplicate_in_merchant(self, "slug", _("Another category already uses this slug."))


class Product(TimeStampedModel):
    merchant = models.ForeignKey(Merchant, on_delete=models.CASCADE, related_name="products")
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="products"
    )
    handle = models.SlugField(
        max_length=80,
        allow_unicode=True,
        help_text=_("Short unique name used in links and CSV files, e.g. linen-shirt."),
    )
    title = models.CharField(max_length=80)
    title_ar = models.CharField(_("title (Arabic)"), max_length=80, blank=True)
    description = models.TextField(blank=True, max_length=2000)
    description_ar = models.TextField(_("description (Arabic)"), blank=True, max_length=2000)
    is_active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "title"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "handle"], name="uniq_product_handle"),
        ]
        indexes = [
            models.Index(fields=["merchant", "is_active", "category", "position"]),
            models.Index(fields=["merchant", "title"]),
        ]

    def __str__(self) -> str:
        return self.title

    def localized_title(self, locale: str | None) -> str:
        return _localized(self, "title", locale)

    def localized_description(self, locale: str | None) -> str:
        return _localized(self, "description", locale)

    def clean(self) -> None:
        if self.category_id and self.merchant_id and self.category.merchant_id != self.merchant_id:
            raise ValidationError({"category": _("The category belongs to another shop.")})
        _refuse_duplicate_in_merchant(
            self, "handle", _("Another product already uses this handle.")
        )


class Variant(ServiceOwnedColumns, TimeStampedModel):
    """A buyable version of a product (size, colour...). SKUs are unique within a merchant.

    Both stock counters are service-owned (ADR 0002, 0004): ``save()`` of an existing variant
    never writes them. ``stock_reserved`` changes only in ``commerce.services.stock``;
    ``stock_on_hand`` is also lowered there by sales, and staff set it through
    ``stock_on_hand_set``, which applies a count only where the stock is still what they saw.
    """

    service_owned_fields = ("stock_on_hand", "stock_reserved")

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="variants")
    # Copied from the product on save: lets the database enforce SKU uniqueness per merchant.
    merchant = models.ForeignKey(
        Merchant, on_delete=models.CASCADE, related_name="variants", editable=False
    )
    name = models.CharField(max_length=40, help_text=_("Shown on the size/colour buttons."))
    name_ar = models.CharField(_("name (Arabic)"), max_length=40, blank=True)
    sku = models.CharField("SKU", max_length=64)
    options = models.JSONField(
        default=dict, blank=True, help_text=_('Option values, e.g. {"size": "M", "colour": "red"}.')
    )
    price_minor = models.BigIntegerField(
        _("price (minor units)"),
        validators=[MinValueValidator(0, _("The price cannot be negative."))],
        help_text=_("In the currency's smallest unit: 1250 is 12.50 USD, 500 is 500 JPY."),
    )
    currency = models.CharField(max_length=3, choices=CURRENCY_CHOICES)
    stock_on_hand = models.IntegerField(
        default=0, validators=[MinValueValidator(0, _("Stock cannot be negative."))]
    )
    # Units held by unpaid orders. Changed only by the stock services with conditional F() updates.
    stock_reserved = models.IntegerField(default=0, editable=False)
    is_active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "sku"], name="uniq_variant_sku_per_merchant"
            ),
            models.CheckConstraint(
                condition=Q(price_minor__gte=0), name="variant_price_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(stock_on_hand__gte=0), name="variant_stock_not_negative"
            ),
            models.CheckConstraint(
                condition=Q(stock_reserved__gte=0), name="variant_reserved_not_negative"
            ),
        ]
        indexes = [models.Index(fields=["product", "is_active", "position"])]

    def __str__(self) -> str:
        return f"{self.product} – {self.name} ({self.sku})"

    @property
    def price(self) -> Money:
        return Money(self.price_minor, self.currency)

    @property
    def stock_available(self) -> int:
        return max(self.stock_on_hand - self.stock_reserved, 0)

    def localized_name(self, locale: str | None) -> str:
        return _localized(self, "name", locale)

    def clean(self) -> None:
        # In an admin add view the product may not be saved yet, so use the object, not the id.
        try:
            product = self.product
        except Product.DoesNotExist:
            product = None
        if product is not None and product.merchant_id:
            self.merchant_id = product.merchant_id
            if not self.currency:
                self.currency = product.merchant.default_currency
        _refuse_duplicate_in_merchant(self, "sku", _("This SKU is already used in this shop."))

    def save(self, *args, **kwargs) -> None:
        self.merchant_id = self.product.merchant_id
        if not self.currency:
            self.currency = self.product.merchant.default_currency
        super().save(*args, **kwargs)


def product_image_path(instance: ProductImage, filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()[:5] or ".jpg"
    return f"products/{instance.product.merchant_id}/{uuid.uuid4().hex}{suffix}"


class ProductImage(TimeStampedModel):
    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="images")
    image = models.ImageField(
        upload_to=product_image_path,
        width_field="width",
        height_field="height",
        validators=[validate_product_image],
    )
    width = models.PositiveIntegerField(null=True, editable=False)
    height = models.PositiveIntegerField(null=True, editable=False)
    alt_text = models.CharField(max_length=120, blank=True)
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["position", "id"]
        indexes = [models.Index(fields=["product", "position"])]

    def __str__(self) -> str:
        return self.alt_text or PurePath(self.image.name).name
