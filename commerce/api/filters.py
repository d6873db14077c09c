"""Query-string filters of the list endpoints (django-filter: a malformed value is a 400).

django-filter also lets drf-spectacular document every parameter from the same declarations.
"""

from __future__ import annotations

import datetime

from django import forms
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema_field

from commerce.models import Cart, Category, Order, OrderStatus, Product, Variant

MAX_ID = 2**63 - 1


class _UtcIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, refused (400) when it cannot be expressed in UTC.

    ``9999-12-31T23:59:59-05:00`` parses, but converting it to UTC for the database overflows;
    without this check that surfaces as a 500 inside the query.
    """

    default_error_messages = {"invalid": _("Enter an ISO 8601 date-time, e.g. 2025-01-31T18:00Z.")}

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None:
            return None
        try:
            return parsed.astimezone(datetime.UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None


class IsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = _UtcIsoDateTimeField


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": MAX_ID})
class IdFilter(filters.NumberFilter):
    """A row id: a positive integer (``NumberFilter`` alone would accept ``1.5`` or ``1e400``)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class CategoryFilter(filters.FilterSet):
    parent = IdFilter(field_name="parent_id", help_text="Only the children of this category.")
    is_active = filters.BooleanFilter()

    class Meta:
        model = Category
        fields = ["parent", "is_active"]


class ProductFilter(filters.FilterSet):
    category = IdFilter(field_name="category_id", help_text="Only products of this category.")
    is_active = filters.BooleanFilter()
    in_stock = filters.BooleanFilter(
        method="filter_in_stock",
        help_text="true: products with at least one variant available (on hand minus reserved); "
        "false: products with none.",
    )

    class Meta:
        model = Product
        fields = ["category", "is_active", "in_stock"]

    def filter_in_stock(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        available = Variant.objects.filter(
            product_id=OuterRef("pk"), stock_on_hand__gt=F("stock_reserved")
        )
        return queryset.filter(Exists(available)) if value else queryset.exclude(Exists(available))


class VariantFilter(filters.FilterSet):
    product = IdFilter(field_name="product_id", help_text="Only variants of this product.")
    is_active = filters.BooleanFilter()
    sku = filters.CharFilter(help_text="Exact SKU.")
    in_stock = filters.BooleanFilter(
        method="filter_in_stock", help_text="true: available (on hand minus reserved) > 0."
    )

    class Meta:
        model = Variant
        fields = ["product", "is_active", "sku", "in_stock"]

    def filter_in_stock(self, queryset: QuerySet, name: str, value: bool | None) -> QuerySet:
        if value is None:
            return queryset
        in_stock = {"stock_on_hand__gt": F("stock_reserved")}
        return queryset.filter(**in_stock) if value else queryset.exclude(**in_stock)


class OrderFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(
        choices=OrderStatus.choices,
        help_text="One or more statuses: ?status=paid&status=fulfilled.",
    )
    created_after = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="ISO 8601; inclusive."
    )
    created_before = IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="ISO 8601; exclusive."
    )
    customer = IdFilter(field_name="customer_id", help_text="Only this customer's orders.")
    number = filters.CharFilter(
        field_name="number", lookup_expr="iexact", help_text="The order number, e.g. A1B2-1042."
    )

    class Meta:
        model = Order
        fields = ["status", "created_after", "created_before", "customer", "number"]


class CartFilter(filters.FilterSet):
    status = filters.MultipleChoiceFilter(choices=Cart.Status.choices)
    customer = IdFilter(field_name="customer_id", help_text="Only this customer's carts.")

    class Meta:
        model = Cart
        fields = ["status", "customer"]


class FilterBackend(DjangoFilterBackend):
    """django-filter's backend without its browsable-API filter form.

    The form's template ships in the ``django_filters`` app, which is not in ``INSTALLED_APPS``
    (the API needs none of its models or templates otherwise); rendering it would be a 500 for
    anyone opening a list in a browser.
    """

    def to_html(self, request, queryset, view):
        return None
