"""Tenant scoping for the Django admin, shared by every app's ModelAdmin of merchant-owned rows.

Merchant staff see and change only their merchants' rows: in the change list, the change view by
id (another merchant's id answers "does not exist"), foreign-key choices, autocomplete, search
and bulk actions, because all of them start from ``get_queryset``. The merchant of a new row is
taken from the user, never from the form. Operators see everything.
"""

from __future__ import annotations

from django.contrib import admin
from django.db import models

from commerce.models import Category, Merchant, Product, Variant
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
}


def scoped_choices(model: type[models.Model], queryset, user):
    if model is Merchant:
        return merchants_for_user(user)
    path = SCOPED_CHOICES.get(model)
    return scope_queryset(queryset, user=user, merchant_path=path) if path else queryset


class _ScopedPermissions:
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
        if self._user_chooses_merchant(request) or not merchant_ids_for_user(request.user):
            return form
        merchant_id = merchant_ids_for_user(request.user)[0]

        class MerchantSetForm(form):
            """Sets the user's merchant before validation, so model checks see it."""

            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                self.instance.merchant_id = merchant_id

        return MerchantSetForm

    def _user_chooses_merchant(self, request) -> bool:
        return user_is_operator(request.user) or len(merchant_ids_for_user(request.user)) > 1

    def get_list_display(self, request):
        display = list(super().get_list_display(request))
        if not self._user_chooses_merchant(request) and "merchant" in display:
            display.remove("merchant")
        return display

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if not self._user_chooses_merchant(request) and "merchant" in filters:
            filters.remove("merchant")
        return filters

    def save_model(self, request, obj, form, change):
        if self._owns_merchant_field() and not change and not obj.merchant_id:
            obj.merchant_id = merchant_ids_for_user(request.user)[0]
        super().save_model(request, obj, form, change)


class MerchantScopedInline(_ScopedPermissions):
    """Mixin for inlines of a scoped parent; the parent's scoping already limits their rows."""
