"""Tenant scoping for the Django admin, shared by every app's ModelAdmin of merchant-owned rows.

Merchant staff see and change only their merchants' rows: in the change list, the change view by
id (another merchant's id answers "does not exist"), foreign-key choices, autocomplete, search
and bulk actions, because all of them start from ``get_queryset``. The merchant of a new row is
taken from the user, never from the form. Operators see everything.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import NotRelationField, get_fields_from_path
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from commerce.models import (
    Cart,
    Category,
    Customer,
    Merchant,
    Order,
    Product,
    ShippingMethod,
    Variant,
    Voucher,
)
from commerce.selectors.access import (
    merchant_ids_for_user,
    merchants_for_user,
    scope_queryset,
    user_can_edit_catalog,
    user_can_view_merchant,
    user_is_operator,
    user_roles,
)

# Foreign keys to these models get their choices scoped to the user's merchants.
SCOPED_CHOICES: dict[type[models.Model], str] = {
    Merchant: "pk",
    Category: "merchant",
    Product: "merchant",
    Variant: "merchant",
    Customer: "merchant",
    Cart: "merchant",
    ShippingMethod: "merchant",
    Voucher: "merchant",
    Order: "merchant",
}


def editable_merchants(user):
    """Merchants in which the user may create and change rows (not those where they only read)."""
    merchants = merchants_for_user(user)
    if user_is_operator(user):
        return merchants
    return merchants.filter(
        pk__in=[pk for pk in merchant_ids_for_user(user) if user_can_edit_catalog(user, pk)]
    )


def register_scoped_choices(model: type[models.Model], merchant_path: str) -> None:
    """Let another app scope foreign-key choices to its own merchant-owned model.

    ``messenger`` registers its pages here in ``AppConfig.ready``; commerce never imports it.
    """
    SCOPED_CHOICES[model] = merchant_path


def scoped_choices(model: type[models.Model], queryset, user):
    """Choices for a foreign key in a form: rows of merchants the user may write to."""
    if model is Merchant:
        return editable_merchants(user)
    path = SCOPED_CHOICES.get(model)
    if path is None or user_is_operator(user):
        return queryset
    editable_ids = editable_merchants(user).values_list("pk", flat=True)
    return queryset.filter(**{f"{path}__in": list(editable_ids)})


class _ArabicFieldsRightToLeft:
    """Arabic text fields (``*_ar``) are typed right-to-left in every admin form."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if field is not None and db_field.name.endswith("_ar"):
            field.widget.attrs.update({"dir": "rtl", "lang": "ar"})
        return field


class _ScopedPermissions(_ArabicFieldsRightToLeft):
    """Permissions by membership role instead of Django's per-model permissions."""

    merchant_path = "merchant"

    def _merchant_id_of(self, obj) -> int | None:
        target = obj
        for part in self.merchant_path.split("__"):
            target = getattr(target, part, None)
            if target is None:
                return None
        return target.pk

    def has_module_permission(self, request) -> bool:
        return user_is_operator(request.user) or bool(user_roles(request.user))

    def has_view_permission(self, request, obj=None) -> bool:
        if obj is None:
            return self.has_module_permission(request)
        return user_can_view_merchant(request.user, self._merchant_id_of(obj))

    def has_add_permission(self, request, *args) -> bool:
        return user_can_edit_catalog(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        merchant_id = None if obj is None else self._merchant_id_of(obj)
        if obj is not None and merchant_id is None:
            return user_can_edit_catalog(request.user)
        return user_can_edit_catalog(request.user, merchant_id)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self.has_change_permission(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and db_field.related_model in SCOPED_CHOICES:
            field.queryset = scoped_choices(db_field.related_model, field.queryset, request.user)
        return field


class MerchantScopedAdmin(_ScopedPermissions, admin.ModelAdmin):
    """ModelAdmin for rows that belong to a merchant (directly or through ``merchant_path``)."""

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return scope_queryset(queryset, user=request.user, merchant_path=self.merchant_path)

    def editable_rows(self, request, queryset):
        """Narrow a queryset of visible rows to those the user may change.

        Bulk actions start from every row the user can *see*; staff who are support in one
        merchant and manager in another must only change the second one's rows.
        """
        if user_is_operator(request.user):
            return queryset
        editable_ids = list(editable_merchants(request.user).values_list("pk", flat=True))
        return queryset.filter(**{f"{self.merchant_path}__in": editable_ids})

    def delete_queryset(self, request, queryset):
        super().delete_queryset(request, self.editable_rows(request, queryset))

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        if self._has_read_only_merchants(request):
            changelist.list_editable = ()  # inline edits could reach read-only rows
        return changelist

    def _has_read_only_merchants(self, request) -> bool:
        return not user_is_operator(request.user) and any(
            not user_can_edit_catalog(request.user, pk)
            for pk in merchant_ids_for_user(request.user)
        )

    def _owns_merchant_field(self) -> bool:
        return self.merchant_path == "merchant" and any(
            f.name == "merchant" and f.editable for f in self.model._meta.fields
        )

    def get_exclude(self, request, obj=None):
        exclude = list(super().get_exclude(request, obj) or [])
        # Staff of a single merchant never choose the merchant: it is theirs.
        if self._owns_merchant_field() and not self._user_chooses_merchant(request):
            exclude.append("merchant")
        return exclude

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is not None or not self._owns_merchant_field():
            return form
        if self._user_chooses_merchant(request):
            return form
        merchant_id = self._single_editable_merchant_id(request)
        if merchant_id is None:
            return form

        class MerchantSetForm(form):
            """Sets the user's merchant before validation, so model checks see it."""

            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.instance.merchant_id = merchant_id

        return MerchantSetForm

    def _user_chooses_merchant(self, request) -> bool:
        return user_is_operator(request.user) or len(merchant_ids_for_user(request.user)) > 1

    def _single_editable_merchant_id(self, request) -> int | None:
        ids = list(editable_merchants(request.user).values_list("pk", flat=True)[:2])
        return ids[0] if len(ids) == 1 else None

    def get_list_display(self, request):
        display = list(super().get_list_display(request))
        if not self._user_chooses_merchant(request) and "merchant" in display:
            display.remove("merchant")
        return display

    def get_list_filter(self, request):
        """Filters on a relation offer only the related rows of visible rows: Django's default
        ``RelatedFieldListFilter`` lists every row of the related model, so a merchant or a
        category filter would show every merchant's names to any merchant's staff."""
        filters = list(super().get_list_filter(request))
        if "merchant" in filters and not self._user_chooses_merchant(request):
            filters.remove("merchant")
        return [self._scoped_list_filter(entry) for entry in filters]

    def _scoped_list_filter(self, entry):
        if not isinstance(entry, str):
            return entry
        try:
            field = get_fields_from_path(self.model, entry)[-1]
        except (FieldDoesNotExist, NotRelationField):
            return entry
        if field.is_relation:
            return (entry, admin.RelatedOnlyFieldListFilter)
        return entry

    def save_model(self, request, obj, form, change):
        if self._owns_merchant_field() and not change and not obj.merchant_id:
            obj.merchant_id = self._single_editable_merchant_id(request)
        super().save_model(request, obj, form, change)


class MerchantScopedInline(_ScopedPermissions):
    """Mixin for inlines of a scoped parent; the parent's scoping already limits their rows.

    Django passes the *parent* object to an inline's permission checks, so the merchant is found
    from the parent (``parent_merchant_path``), whatever the inline model's own path is.
    """

    parent_merchant_path = "merchant"

    def _merchant_id_of(self, obj) -> int | None:
        merchant = getattr(obj, self.parent_merchant_path, None)
        return None if merchant is None else merchant.pk
