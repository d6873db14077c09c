"""Product CSV import and export in the admin. The rules live in ``commerce.services.catalog_csv``.

The merchant of an import comes from the user: staff who edit one merchant's catalog import into
it whatever the request says; operators, and staff editing several merchants, pick one from a
list limited to what they may edit.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IS_POPUP_VAR, IncorrectLookupParameters
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from commerce.admin_tenancy import editable_merchants
from commerce.exceptions import CatalogImportError
from commerce.models import Merchant
from commerce.selectors.access import user_can_edit_catalog, user_is_operator
from commerce.services.catalog_csv import catalog_csv_export, catalog_csv_import


class ProductImportForm(forms.Form):
    merchant = forms.ModelChoiceField(
        label=gettext_lazy("Merchant"), queryset=Merchant.objects.none(), required=True
    )
    file = forms.FileField(
        label=gettext_lazy("CSV file"),
        help_text=gettext_lazy(
            "One row per variant, UTF-8. Export the catalog to get a file in the right format."
        ),
        widget=forms.FileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def __init__(self, *args, merchants, choose_merchant: bool, **kwargs):
        super().__init__(*args, **kwargs)
        if choose_merchant:
            self.fields["merchant"].queryset = merchants
        else:
            # Not a choice: anything posted under this name is ignored.
            del self.fields["merchant"]


class ProductCSVAdminMixin:
    """Adds CSV import and export to the product admin (a ``MerchantScopedAdmin``)."""

    import_template = "admin/commerce/product/import.html"

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        wrap = self.admin_site.admin_view
        return [
            path("import/", wrap(self.import_view), name="{}_{}_import".format(*info)),
            path("export/", wrap(self.export_view), name="{}_{}_export".format(*info)),
            *super().get_urls(),
        ]

    def get_actions(self, request):
        actions = super().get_actions(request)
        if IS_POPUP_VAR not in request.GET and self.has_view_permission(request):
            action = self.get_action("export_selected_csv")
            actions[action[1]] = action
        return actions

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_import_csv": self._can_import(request)}
        return super().changelist_view(request, extra_context)

    def _can_import(self, request) -> bool:
        return user_can_edit_catalog(request.user)

    # -- export -------------------------------------------------------------------------------

    @admin.action(description=gettext_lazy("Export selected products as CSV"), permissions=["view"])
    def export_selected_csv(self, request, queryset):
        return self._csv_response(queryset)

    def export_view(self, request):
        """The products of the change list, with its current filters and search."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest(_("These filters are not valid."))
        return self._csv_response(changelist.queryset)

    def _csv_response(self, queryset):
        response = StreamingHttpResponse(
            catalog_csv_export(queryset_of_products=queryset),
            content_type="text/csv; charset=utf-8",
        )
        filename = f"products-{timezone.localdate():%Y-%m-%d}.csv"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    # -- import -------------------------------------------------------------------------------

    def import_view(self, request):
        """Upload form; on POST, import into the user's merchant and show counts or bad rows."""
        if not self._can_import(request):
            raise PermissionDenied
        merchants = editable_merchants(request.user)
        choose = user_is_operator(request.user) or merchants.count() > 1
        form = ProductImportForm(
            request.POST if request.method == "POST" else None,
            request.FILES if request.method == "POST" else None,
            merchants=merchants,
            choose_merchant=choose,
        )
        result = error = merchant = None
        if form.is_valid():
            merchant = form.cleaned_data["merchant"] if choose else merchants.get()
            try:
                result = catalog_csv_import(merchant=merchant, file=form.cleaned_data["file"])
            except CatalogImportError as exc:
                error = exc
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Import products from CSV"),
            "form": form,
            "merchant": merchant,
            "result": result,
            "error": error,
        }
        return TemplateResponse(request, self.import_template, context)
