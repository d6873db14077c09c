"""Merchant admin for the catalog. Scoping rules live in ``commerce.admin_tenancy``."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, Max, Min, OuterRef, Subquery, Sum
from django.http import HttpResponseRedirect
from django.utils.html import format_html
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from commerce.admin_csv import ProductCSVAdminMixin
from commerce.admin_tenancy import MerchantScopedAdmin, MerchantScopedInline
from commerce.exceptions import StockChangedError
from commerce.forms import StockCountForm, UniqueSkuInlineFormSet, VariantForm
from commerce.models import Category, Merchant, MerchantMembership, Product, ProductImage, Variant
from commerce.selectors.access import merchants_for_user, user_is_operator, user_is_owner
from core.money import Money


def _money(amount_minor: int | None, currency: str | None) -> str:
    if amount_minor is None or not currency:
        return "–"
    return Money(amount_minor, currency).format(get_language() or "en")


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "default_currency", "default_locale", "is_active"]
    list_filter = ["is_active", "default_currency", "default_locale"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fieldsets = [
        (None, {"fields": ["name", "slug", "is_active"]}),
        (
            _("Language and support"),
            {
                "fields": [
                    "default_currency",
                    "default_locale",
                    "support_email",
                    "support_phone",
                    "support_url",
                ]
            },
        ),
        (
            _("Orders and tax"),
            {
                "fields": [
                    "order_number_prefix",
                    "max_line_quantity",
                    "tax_rate_bp",
                    "prices_include_tax",
                    "tax_label",
                ]
            },
        ),
    ]

    def get_queryset(self, request):
        return merchants_for_user(request.user)

    def get_readonly_fields(self, request, obj=None):
        # Owners run their shop; only operators rename its slug or switch it off (an owner who
        # deactivated their own merchant would lose access to it).
        if user_is_operator(request.user):
            return []
        return ["slug", "is_active"]

    def get_prepopulated_fields(self, request, obj=None):
        return self.prepopulated_fields if user_is_operator(request.user) else {}

    def has_module_permission(self, request):
        return merchants_for_user(request.user).exists()

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return self.has_module_permission(request)
        return merchants_for_user(request.user).filter(pk=obj.pk).exists()

    def has_add_permission(self, request):
        return user_is_operator(request.user)

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return user_is_operator(request.user)
        return user_is_owner(request.user, obj.pk)

    def has_delete_permission(self, request, obj=None):
        return user_is_operator(request.user)


@admin.register(MerchantMembership)
class MerchantMembershipAdmin(admin.ModelAdmin):
    """Operators decide who works for which merchant."""

    list_display = ["user", "merchant", "role", "created_at"]
    list_filter = ["role", "merchant"]
    search_fields = ["user__username", "user__email", "merchant__name"]
    autocomplete_fields = ["user", "merchant"]

    def has_module_permission(self, request):
        return user_is_operator(request.user)

    def has_view_permission(self, request, obj=None):
        return user_is_operator(request.user)

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission


@admin.register(Category)
class CategoryAdmin(MerchantScopedAdmin):
    list_display = ["name", "name_ar", "parent", "merchant", "position", "is_active"]
    list_editable = ["position", "is_active"]
    list_filter = ["merchant", "is_active"]
    search_fields = ["name", "name_ar", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    autocomplete_fields = ["parent"]
    actions = ["activate", "deactivate"]

    @admin.action(permissions=["change"], description=_("Show selected categories in the chat"))
    def activate(self, request, queryset):
        updated = self.editable_rows(request, queryset).update(is_active=True)
        self.message_user(request, _("%d categories shown.") % updated, messages.SUCCESS)

    @admin.action(permissions=["change"], description=_("Hide selected categories from the chat"))
    def deactivate(self, request, queryset):
        updated = self.editable_rows(request, queryset).update(is_active=False)
        self.message_user(request, _("%d categories hidden.") % updated, messages.SUCCESS)


class StockCountAdminMixin:
    """A stock count refused at the last moment is reported, not a server error.

    ``StockCountForm`` catches a stock that moved while the page was open as a field error; a
    sale in the instant between that check and the write raises ``StockChangedError`` from the
    save, inside the admin's transaction. Nothing was saved: say so and show the page again.
    """

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except StockChangedError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())

    def changelist_view(self, request, extra_context=None):
        try:
            return super().changelist_view(request, extra_context)
        except StockChangedError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class VariantInline(MerchantScopedInline, admin.TabularInline):
    model = Variant
    form = VariantForm
    formset = UniqueSkuInlineFormSet
    extra = 1
    fields = [
        "name",
        "name_ar",
        "sku",
        "price",
        "currency",
        "stock_on_hand",
        "is_active",
        "position",
    ]


class ProductImageInline(MerchantScopedInline, admin.TabularInline):
    model = ProductImage
    extra = 1
    fields = ["preview", "image", "alt_text", "position"]
    readonly_fields = ["preview"]

    @admin.display(description=_("preview"))
    def preview(self, obj):
        if not obj.pk or not obj.image:
            return "–"
        return format_html('<img src="{}" alt="" style="max-height:64px">', obj.image.url)


@admin.register(Product)
class ProductAdmin(StockCountAdminMixin, ProductCSVAdminMixin, MerchantScopedAdmin):
    list_display = [
        "title",
        "title_ar",
        "category",
        "merchant",
        "price_range",
        "stock",
        "variant_count",
        "is_active",
    ]
    list_filter = ["merchant", "is_active", "category"]
    list_select_related = ["category", "merchant"]
    search_fields = ["title", "title_ar", "handle", "variants__sku"]
    prepopulated_fields = {"handle": ["title"]}
    autocomplete_fields = ["category"]
    inlines = [VariantInline, ProductImageInline]
    actions = ["activate", "deactivate"]

    def get_queryset(self, request):
        # Subqueries, not joins: a search on variants__sku must not multiply these figures.
        def per_product(aggregate):
            return Subquery(
                Variant.objects.filter(product=OuterRef("pk"))
                .order_by()
                .values("product")
                .annotate(value=aggregate)
                .values("value")
            )

        return (
            super()
            .get_queryset(request)
            .annotate(
                _min_price=per_product(Min("price_minor")),
                _max_price=per_product(Max("price_minor")),
                _currency=per_product(Max("currency")),
                _stock=per_product(Sum("stock_on_hand")),
                _variants=per_product(Count("pk")),
            )
        )

    @admin.display(description=_("price"), ordering="_min_price")
    def price_range(self, obj):
        low = _money(obj._min_price, obj._currency)
        if obj._min_price == obj._max_price:
            return low
        return f"{low} – {_money(obj._max_price, obj._currency)}"

    @admin.display(description=_("stock"), ordering="_stock")
    def stock(self, obj):
        return obj._stock or 0

    @admin.display(description=_("variants"), ordering="_variants")
    def variant_count(self, obj):
        return obj._variants or 0

    @admin.action(permissions=["change"], description=_("Show selected products in the chat"))
    def activate(self, request, queryset):
        updated = self.editable_rows(request, queryset).update(is_active=True)
        self.message_user(request, _("%d products shown.") % updated, messages.SUCCESS)

    @admin.action(permissions=["change"], description=_("Hide selected products from the chat"))
    def deactivate(self, request, queryset):
        updated = self.editable_rows(request, queryset).update(is_active=False)
        self.message_user(request, _("%d products hidden.") % updated, messages.SUCCESS)


@admin.register(Variant)
class VariantAdmin(StockCountAdminMixin, MerchantScopedAdmin):
    form = VariantForm
    list_display = [
        "sku",
        "product",
        "name",
        "merchant",
        "price_display",
        "stock_on_hand",
        "is_active",
    ]
    list_editable = ["stock_on_hand", "is_active"]
    list_filter = ["merchant", "is_active", "currency"]
    list_select_related = ["product", "merchant"]
    search_fields = ["sku", "name", "name_ar", "product__title", "product__title_ar"]
    autocomplete_fields = ["product"]
    actions = ["activate", "deactivate"]

    @admin.display(description=_("price"), ordering="price_minor")
    def price_display(self, obj):
        return _money(obj.price_minor, obj.currency)

    def get_changelist_form(self, request, **kwargs):
        # list_editable's stock column is a count too (Django's default form would not know).
        return super().get_changelist_form(request, **{"form": StockCountForm, **kwargs})

    @admin.action(permissions=["change"], description=_("Make selected variants available"))
    def activate(self, request, queryset):
        updated = self.editable_rows(request, queryset).update(is_active=True)
        self.message_user(request, _("%d variants available.") % updated, messages.SUCCESS)

    @admin.action(permissions=["change"], description=_("Make selected variants unavailable"))
    def deactivate(self, request, queryset):
        updated = self.editable_rows(request, queryset).update(is_active=False)
        self.message_user(request, _("%d variants unavailable.") % updated, messages.SUCCESS)


@admin.register(ProductImage)
class ProductImageAdmin(MerchantScopedAdmin):
    merchant_path = "product__merchant"
    list_display = ["__str__", "product", "position", "width", "height"]
    list_select_related = ["product"]
    search_fields = ["alt_text", "product__title"]
    autocomplete_fields = ["product"]


from commerce import admin_api_tokens, admin_orders  # noqa: E402,F401
