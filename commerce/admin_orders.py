"""Merchant admin for orders, customers, carts, shipping methods and vouchers.

Orders are read-only here: their status changes only through ``commerce.services.orders``, which
the fulfil / mark delivered / cancel actions call once per order. Who may run which action is
decided by the membership role (``user_can_handle_orders``, ``user_can_cancel_orders``); which
rows a user sees is decided by ``MerchantScopedAdmin``, as everywhere in the admin.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import flatten_fieldsets, quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import F, Max, OuterRef, Subquery, Sum
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import get_language, ngettext_lazy
from django.utils.translation import gettext_lazy as _

from commerce.admin_tenancy import MerchantScopedAdmin
from commerce.forms import FulfilForm, fulfil_done_message
from commerce.models import (
    Address,
    Cart,
    CartLine,
    Customer,
    Merchant,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    Shipment,
    ShippingMethod,
    Voucher,
)
from commerce.models.customers import COUNTRY_CODES
from commerce.selectors.access import (
    user_can_cancel_orders,
    user_can_edit_catalog,
    user_can_handle_orders,
    user_can_view_merchant,
    user_is_operator,
    user_roles,
)
from commerce.services.orders import (
    TRANSITIONS,
    order_cancel,
    order_fulfil,
    order_mark_delivered,
)
from core.currencies import UnknownCurrencyError
from core.exceptions import ApplicationError
from core.money import Money

# --- display helpers -------------------------------------------------------------------------


def _money(amount_minor: int | None, currency: str | None) -> str:
    if amount_minor is None or not currency:
        return "–"
    return Money(amount_minor, currency).format(get_language() or "en")


def _percent(basis_points: int | None) -> str:
    if basis_points is None:
        return "–"
    return f"{(Decimal(basis_points) / 100).normalize():f}%"


STATUS_COLOURS = {
    OrderStatus.PENDING_PAYMENT: "#9a6700",
    OrderStatus.PAID: "#0b62a4",
    OrderStatus.FULFILLED: "#00707a",
    OrderStatus.DELIVERED: "#2e7d32",
    OrderStatus.EXPIRED: "#6b6b6b",
    OrderStatus.CANCELLED: "#6b6b6b",
    OrderStatus.PAYMENT_FAILED: "#b3261e",
    OrderStatus.PARTIALLY_REFUNDED: "#6a3d9a",
    OrderStatus.REFUNDED: "#6a3d9a",
}


def _aggregate_per(model, *, parent: str, expression):
    """A subquery of one aggregate per parent row: no join, so search cannot multiply it."""
    return Subquery(
        model.objects.filter(**{parent: OuterRef("pk")})
        .order_by()
        .values(parent)
        .annotate(value=expression)
        .values("value")
    )


class ReadOnlyInline(admin.TabularInline):
    """An inline shown for reading only. Its rows are the parent's, which is already scoped;
    Django passes the *parent* (an order, customer or cart) as ``obj``."""

    template = "admin/commerce/edit_inline/readonly_tabular.html"
    empty_text = _("None yet.")
    extra = 0
    max_num = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return list(self.fields)

    def has_view_permission(self, request, obj=None):
        if obj is None:
            return user_is_operator(request.user) or bool(user_roles(request.user))
        return user_can_view_merchant(request.user, obj.merchant_id)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ScopedAdmin(MerchantScopedAdmin):
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        # Staff of several merchants may put a row only where they edit, not where they support.
        user = request.user
        if field is not None and db_field.related_model is Merchant and not user_is_operator(user):
            editable = [pk for pk in user_roles(user) if user_can_edit_catalog(user, pk)]
            field.queryset = field.queryset.filter(pk__in=editable)
        return field


class ReadOnlyScopedAdmin(ScopedAdmin):
    """A scoped admin where nobody adds, changes or deletes rows: everything is read-only."""

    def get_readonly_fields(self, request, obj=None):
        if self.fieldsets:
            return flatten_fieldsets(self.fieldsets)
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# --- orders ----------------------------------------------------------------------------------


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ["title", "variant", "sku", "unit_price", "quantity", "line_total"]
    verbose_name_plural = _("lines")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order", "variant__product")

    @admin.display(description=_("title"))
    def title(self, obj):
        return (
            f"{obj.product_title} – {obj.variant_name}" if obj.variant_name else obj.product_title
        )

    @admin.display(description=_("unit price"))
    def unit_price(self, obj):
        return _money(obj.unit_price_minor, obj.order.currency)

    @admin.display(description=_("total"))
    def line_total(self, obj):
        return _money(obj.total_minor, obj.order.currency)


class ShipmentInline(ReadOnlyInline):
    model = Shipment
    empty_text = _("Not shipped yet.")
    fields = [
        "carrier",
        "tracking_number",
        "tracking_link",
        "shipped_at",
        "delivered_at",
        "created_by",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")

    @admin.display(description=_("tracking URL"))
    def tracking_link(self, obj):
        if not obj.tracking_url:
            return "–"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>',
            obj.tracking_url,
            obj.tracking_url,
        )


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ["created_at", "kind", "actor", "actor_user", "message"]
    ordering = ["created_at", "id"]
    verbose_name_plural = _("timeline")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor_user")


class CancelForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=250,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=_("Kept on the order's timeline."),
    )


@admin.register(Order)
class OrderAdmin(ReadOnlyScopedAdmin):
    list_display = [
        "number",
        "merchant",
        "customer",
        "status_badge",
        "total_display",
        "items",
        "created_at",
        "paid_at",
        "needs_review",
    ]
    list_filter = [
        "status",
        "merchant",
        "created_at",
        "needs_review",
        "shipping_country",
        "referral_source",
    ]
    list_select_related = ["merchant", "customer"]
    search_fields = [
        "number",
        "customer__first_name",
        "customer__last_name",
        "contact_email",
        "contact_phone",
        "referral_ad_id",
    ]
    search_help_text = _("Order number, customer name, email, phone or ad id.")
    date_hierarchy = "created_at"
    inlines = [OrderLineInline, ShipmentInline, OrderEventInline]
    actions = ["fulfil", "mark_delivered", "cancel"]
    fieldsets = [
        (
            _("Summary"),
            {
                "fields": [
                    "number",
                    "merchant",
                    "status_badge",
                    ("created_at", "paid_at"),
                    ("fulfilled_at", "delivered_at", "closed_at"),
                    "subtotal_display",
                    ("discount_display", "voucher_code"),
                    ("shipping_display", "shipping_method_name"),
                    ("tax_display", "tax_rate_display"),
                    "total_display",
                    "refunded_display",
                ]
            },
        ),
        (
            _("Customer & contact"),
            {"fields": ["customer", "contact_email", "contact_phone", "locale"]},
        ),
        (
            _("Shipping address"),
            {
                "fields": [
                    "shipping_name",
                    "shipping_line1",
                    "shipping_line2",
                    ("shipping_city", "shipping_region", "shipping_postal_code"),
                    "shipping_country",
                ]
            },
        ),
        (_("Attribution"), {"fields": ["referral_source", "referral_ref", "referral_ad_id"]}),
        (_("Review"), {"fields": ["needs_review", "review_reason", "reserved_until"]}),
    ]

    def get_queryset(self, request):
        items = _aggregate_per(OrderLine, parent="order", expression=Sum("quantity"))
        return super().get_queryset(request).annotate(_items=items)

    # -- permissions: nobody edits an order; the actions go through the order services --------

    def has_fulfil_permission(self, request, obj=None):
        return user_can_handle_orders(request.user, obj and obj.merchant_id)

    def has_deliver_permission(self, request, obj=None):
        return user_can_handle_orders(request.user, obj and obj.merchant_id)

    def has_cancel_permission(self, request, obj=None):
        return user_can_cancel_orders(request.user, obj and obj.merchant_id)

    # -- columns and read-only fields --------------------------------------------------------

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj):
        return format_html(
            '<span style="background:{};color:#fff;padding:2px 8px;border-radius:10px;'
            'white-space:nowrap;font-size:0.9em">{}</span>',
            STATUS_COLOURS.get(obj.status, "#6b6b6b"),
            obj.get_status_display(),
        )

    @admin.display(description=_("items"), ordering="_items")
    def items(self, obj):
        return getattr(obj, "_items", None) or 0

    @admin.display(description=_("subtotal"), ordering="subtotal_minor")
    def subtotal_display(self, obj):
        return _money(obj.subtotal_minor, obj.currency)

    @admin.display(description=_("discount"))
    def discount_display(self, obj):
        return _money(obj.discount_minor, obj.currency)

    @admin.display(description=_("shipping"))
    def shipping_display(self, obj):
        return _money(obj.shipping_minor, obj.currency)

    @admin.display(description=_("tax"))
    def tax_display(self, obj):
        return _money(obj.tax_minor, obj.currency)

    @admin.display(description=_("tax rate"))
    def tax_rate_display(self, obj):
        rate = _percent(obj.tax_rate_bp)
        return f"{rate} ({_('included in prices')})" if obj.prices_include_tax else rate

    @admin.display(description=_("total"), ordering="total_minor")
    def total_display(self, obj):
        return _money(obj.total_minor, obj.currency)

    @admin.display(description=_("refunded"))
    def refunded_display(self, obj):
        return _money(obj.refunded_minor, obj.currency)

    # -- buttons on the order page -------------------------------------------------------------

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            # Offer only the buttons the state machine allows now; the services still decide.
            # A shipped order may get further (partial) shipments, hence "or FULFILLED".
            allowed = TRANSITIONS.get(obj.status, frozenset())
            context.update(
                can_fulfil=self.has_fulfil_permission(request, obj)
                and (OrderStatus.FULFILLED in allowed or obj.status == OrderStatus.FULFILLED),
                can_deliver=self.has_deliver_permission(request, obj)
                and OrderStatus.DELIVERED in allowed,
                can_cancel=self.has_cancel_permission(request, obj)
                and OrderStatus.CANCELLED in allowed,
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        def url(route, view, name):
            name = f"{self.opts.app_label}_{self.opts.model_name}_{name}"
            return path(route, self.admin_site.admin_view(view), name=name)

        return [
            url("<path:object_id>/fulfil/", self.fulfil_view, "fulfil"),
            url("<path:object_id>/deliver/", self.deliver_view, "deliver"),
            url("<path:object_id>/cancel/", self.cancel_view, "cancel"),
            *super().get_urls(),
        ]

    def _change_url(self, order) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
            args=[quote(order.pk)],
            current_app=self.admin_site.name,
        )

    def _order_for(self, request, object_id, may_act):
        """The order if the user may see it (else ``None``); refused if they may not act on it."""
        order = self.get_object(request, unquote(object_id))
        if order is not None and not may_act(request, order):
            raise PermissionDenied
        return order

    def _render(self, request, template: str, title: str, **context):
        return TemplateResponse(
            request,
            f"admin/{self.opts.app_label}/{self.opts.model_name}/{template}",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": title,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                **context,
            },
        )

    def _apply(self, request, orders, *, may_act, call, done: str) -> None:
        """Call the service for each order and report: one success line, one error per refusal.

        ``done`` is a message with ``%(count)d`` and ``%(numbers)s``.
        """
        succeeded = []
        for order in orders:
            if not may_act(request, order):
                messages.error(request, _("%(number)s: you may not do this.") % {"number": order})
                continue
            try:
                call(order)
            except ApplicationError as exc:  # InvalidTransition and friends: say why, go on
                messages.error(request, exc.message)
            else:
                succeeded.append(order.number)
        if succeeded:
            numbers = ", ".join(succeeded)
            messages.success(request, done % {"count": len(succeeded), "numbers": numbers})

    # -- fulfil ------------------------------------------------------------------------------

    @admin.action(permissions=["fulfil"], description=_("Fulfil the selected order (ship it)"))
    def fulfil(self, request, queryset):
        orders = list(queryset[:2])
        if len(orders) != 1:
            messages.error(request, _("Select exactly one order to fulfil."))
            return None
        url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_fulfil",
            args=[quote(orders[0].pk)],
            current_app=self.admin_site.name,
        )
        return HttpResponseRedirect(url)

    def fulfil_view(self, request, object_id):
        order = self._order_for(request, object_id, self.has_fulfil_permission)
        if order is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        form = FulfilForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                shipment = order_fulfil(order=order, user=request.user, **form.cleaned_data)
            except ApplicationError as exc:  # InvalidTransition, shipment_invalid, ...
                messages.error(request, exc.message)
            else:
                messages.success(request, fulfil_done_message(order, shipment))
            return HttpResponseRedirect(self._change_url(order))
        return self._render(
            request,
            "fulfil.html",
            _("Fulfil order %(number)s") % {"number": order.number},
            original=order,
            total=_money(order.total_minor, order.currency),
            form=form,
            media=self.media + form.media,
        )

    # -- mark delivered ----------------------------------------------------------------------

    def _deliver(self, request, orders) -> None:
        self._apply(
            request,
            orders,
            may_act=self.has_deliver_permission,
            call=lambda order: order_mark_delivered(order=order, user=request.user),
            done=ngettext_lazy(
                "Marked %(count)d order delivered: %(numbers)s.",
                "Marked %(count)d orders delivered: %(numbers)s.",
                "count",
            ),
        )

    @admin.action(permissions=["deliver"], description=_("Mark the selected orders delivered"))
    def mark_delivered(self, request, queryset):
        if request.POST.get("post") == "yes":
            self._deliver(request, queryset.select_related("merchant"))
            return None
        return self._confirm(request, queryset, step="deliver", action="mark_delivered")

    def deliver_view(self, request, object_id):
        order = self._order_for(request, object_id, self.has_deliver_permission)
        if order is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if request.method == "POST":
            self._deliver(request, [order])
            return HttpResponseRedirect(self._change_url(order))
        return self._confirm(request, [order], step="deliver", action=None, original=order)

    # -- cancel ------------------------------------------------------------------------------

    def _cancel(self, request, orders, reason: str) -> None:
        self._apply(
            request,
            orders,
            may_act=self.has_cancel_permission,
            call=lambda order: order_cancel(order=order, user=request.user, reason=reason),
            done=ngettext_lazy(
                "Cancelled %(count)d order: %(numbers)s.",
                "Cancelled %(count)d orders: %(numbers)s.",
                "count",
            ),
        )

    @admin.action(permissions=["cancel"], description=_("Cancel the selected orders"))
    def cancel(self, request, queryset):
        form = CancelForm(request.POST if request.POST.get("post") == "yes" else None)
        if form.is_valid():
            self._cancel(request, queryset.select_related("merchant"), form.cleaned_data["reason"])
            return None
        return self._confirm(request, queryset, step="cancel", action="cancel", form=form)

    def cancel_view(self, request, object_id):
        order = self._order_for(request, object_id, self.has_cancel_permission)
        if order is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        form = CancelForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            self._cancel(request, [order], form.cleaned_data["reason"])
            return HttpResponseRedirect(self._change_url(order))
        return self._confirm(
            request, [order], step="cancel", action=None, form=form, original=order
        )

    def _confirm(self, request, orders, *, step: str, action: str | None, form=None, original=None):
        """The page that asks "are you sure?" for the changelist actions and the order buttons.

        With ``action`` it posts back to the change list through Django's action flow (like
        "delete selected"); without, to the order's own URL.
        """
        title, question, submit = self.CONFIRM_WORDING[step]
        return self._render(
            request,
            "confirm_action.html",
            title,
            question=question,
            submit_label=submit,
            rows=[(order, _money(order.total_minor, order.currency)) for order in orders],
            action=action,
            form=form,
            original=original,
            media=self.media,
        )

    CONFIRM_WORDING = {
        "deliver": (
            _("Mark orders delivered"),
            _("Mark these orders delivered?"),
            _("Yes, they were delivered"),
        ),
        "cancel": (
            _("Cancel orders"),
            _("Cancel these orders? Their reserved stock is released."),
            _("Yes, cancel them"),
        ),
    }


# --- customers and carts ---------------------------------------------------------------------


class AddressInline(ReadOnlyInline):
    model = Address
    fields = [
        "name",
        "line1",
        "line2",
        "city",
        "region",
        "postal_code",
        "country",
        "phone",
        "is_default",
    ]


@admin.register(Customer)
class CustomerAdmin(ReadOnlyScopedAdmin):
    """Customers come from the chat; staff read them here (contact details change in chat)."""

    list_display = [
        "name",
        "merchant",
        "psid",
        "locale",
        "email",
        "phone",
        "last_interaction_at",
        "bot_paused",
    ]
    list_filter = ["merchant", ("bot_paused_at", admin.EmptyFieldListFilter), "referral_source"]
    list_select_related = ["merchant"]
    search_fields = ["first_name", "last_name", "email", "phone", "psid"]
    inlines = [AddressInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "merchant",
                    ("first_name", "last_name"),
                    ("email", "phone"),
                    ("locale", "timezone_offset"),
                ]
            },
        ),
        (
            _("Messenger"),
            {
                "fields": [
                    ("page_id", "psid"),
                    "last_interaction_at",
                    "bot_paused_at",
                    "conversation_state",
                    "conversation_context",
                ]
            },
        ),
        (_("Attribution"), {"fields": ["referral_source", "referral_ref", "referral_ad_id"]}),
        (_("Record"), {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description=_("name"), ordering="first_name")
    def name(self, obj):
        return str(obj)

    @admin.display(description=_("bot paused"), boolean=True, ordering="bot_paused_at")
    def bot_paused(self, obj):
        return obj.bot_paused_at is not None


class CartLineInline(ReadOnlyInline):
    model = CartLine
    fields = ["variant", "sku", "quantity", "unit_price", "line_total", "available"]
    verbose_name_plural = _("lines (current catalog prices)")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("variant__product")

    @admin.display(description="SKU")
    def sku(self, obj):
        return obj.variant.sku

    @admin.display(description=_("unit price"))
    def unit_price(self, obj):
        return obj.variant.price.format(get_language() or "en")

    @admin.display(description=_("total"))
    def line_total(self, obj):
        return (obj.variant.price * obj.quantity).format(get_language() or "en")

    @admin.display(description=_("in stock"))
    def available(self, obj):
        return obj.variant.stock_available


@admin.register(Cart)
class CartAdmin(ReadOnlyScopedAdmin):
    list_display = [
        "id",
        "customer",
        "merchant",
        "status",
        "items",
        "value",
        "updated_at",
        "reminder_sent_at",
    ]
    list_display_links = ["id", "customer"]
    list_filter = ["status", "merchant"]
    list_select_related = ["customer", "merchant"]
    search_fields = ["customer__first_name", "customer__last_name", "customer__psid"]
    inlines = [CartLineInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "merchant",
                    "customer",
                    "status",
                    "voucher_code",
                    "value",
                    ("created_at", "updated_at"),
                    "reminder_sent_at",
                ]
            },
        ),
    ]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _items=_aggregate_per(CartLine, parent="cart", expression=Sum("quantity")),
                _value=_aggregate_per(
                    CartLine,
                    parent="cart",
                    expression=Sum(F("variant__price_minor") * F("quantity")),
                ),
                _currency=_aggregate_per(
                    CartLine, parent="cart", expression=Max("variant__currency")
                ),
            )
        )

    @admin.display(description=_("items"), ordering="_items")
    def items(self, obj):
        return obj._items or 0

    @admin.display(description=_("value now"), ordering="_value")
    def value(self, obj):
        return _money(obj._value, obj._currency)


# --- shipping methods and vouchers: amounts typed in major units -----------------------------


def _to_minor(form, field: str, currency: str) -> int | None:
    """Convert ``form.cleaned_data[field]`` ("12.50") to minor units, or add an error to it."""
    raw = (form.cleaned_data.get(field) or "").strip()
    if not raw:
        return None
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        form.add_error(field, _("Enter a number such as 12.50."))
        return None
    if not amount.is_finite():
        form.add_error(field, _("Enter a number such as 12.50."))
        return None
    if amount < 0:
        form.add_error(field, _("The amount cannot be negative."))
        return None
    try:
        return Money.from_major(amount, currency).amount_minor
    except (ValueError, UnknownCurrencyError) as exc:
        form.add_error(field, str(exc))
        return None


def _major(amount_minor: int | None, currency: str) -> str:
    if amount_minor is None or not currency:
        return ""
    return str(Money(amount_minor, currency).to_major())


def _amount_field(label, help_text=None, required=False):
    return forms.CharField(
        label=label,
        max_length=24,
        required=required,
        help_text=help_text
        or _("In the currency's major unit, e.g. 12.50 (USD), 500 (JPY), 1.250 (KWD)."),
    )


class _MerchantCurrencyForm(forms.ModelForm):
    """Base for forms whose amounts default to the merchant's currency."""

    def _merchant(self) -> Merchant | None:
        merchant = self.cleaned_data.get("merchant")
        if merchant is None and self.instance.merchant_id:
            merchant = Merchant.objects.filter(pk=self.instance.merchant_id).first()
        return merchant

    def _currency(self) -> str:
        merchant = self._merchant()
        return self.cleaned_data.get("currency") or (merchant.default_currency if merchant else "")


class ShippingMethodForm(_MerchantCurrencyForm):
    price = _amount_field(_("price"), required=True)
    free_over = _amount_field(
        _("free over"), _("Free when the discounted subtotal reaches this amount. Empty: never.")
    )
    countries = forms.CharField(
        label=_("countries"),
        required=False,
        help_text=_("ISO codes separated by commas, e.g. KW, AE. Empty: ships everywhere."),
    )

    class Meta:
        model = ShippingMethod
        fields = [
            "merchant",
            "name",
            "name_ar",
            "price",
            "currency",
            "free_over",
            "countries",
            "delivery_estimate",
            "delivery_estimate_ar",
            "is_active",
            "position",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["currency"].required = False
        self.fields["currency"].help_text = _("Empty: the shop's currency.")
        instance = self.instance
        if instance.pk:
            self.initial["price"] = _major(instance.price_minor, instance.currency)
            self.initial["free_over"] = _major(instance.free_over_minor, instance.currency)
            self.initial["countries"] = ", ".join(instance.countries or [])

    def clean_countries(self) -> list[str]:
        raw = self.cleaned_data.get("countries") or ""
        codes = [code.strip().upper() for code in raw.replace(";", ",").split(",") if code.strip()]
        unknown = [code for code in codes if code not in COUNTRY_CODES]
        if unknown:
            raise forms.ValidationError(
                _("Unknown country codes: %(codes)s. Use ISO codes such as US, AE, KW."),
                params={"codes": ", ".join(unknown)},
            )
        return list(dict.fromkeys(codes))

    def clean(self):
        cleaned = super().clean()
        currency = self._currency()
        if not currency:
            return cleaned
        cleaned["currency"] = currency
        self.instance.currency = currency
        price = _to_minor(self, "price", currency)
        if price is not None:
            self.instance.price_minor = price
        if "free_over" not in self.errors:
            self.instance.free_over_minor = _to_minor(self, "free_over", currency)
        return cleaned


class VoucherForm(_MerchantCurrencyForm):
    percent = forms.CharField(
        label=_("percentage off"),
        max_length=8,
        required=False,
        help_text=_("For percentage vouchers: 12.5 is 12.5% off."),
    )
    amount = _amount_field(_("amount off"), _("For fixed-amount vouchers, e.g. 5.00."))
    min_spend = _amount_field(_("minimum spend"), _("Subtotal needed to use the code. Optional."))

    class Meta:
        model = Voucher
        fields = [
            "merchant",
            "code",
            "kind",
            "percent",
            "amount",
            "currency",
            "min_spend",
            "valid_from",
            "valid_until",
            "usage_limit",
            "is_active",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["currency"].help_text = _("Empty: the shop's currency.")
        instance = self.instance
        if instance.pk:
            if instance.percent_bp is not None:
                self.initial["percent"] = _percent(instance.percent_bp).rstrip("%")
            self.initial["amount"] = _major(instance.amount_minor, instance.currency)
            self.initial["min_spend"] = _major(instance.min_spend_minor, instance.currency)

    def clean_code(self) -> str:
        return self.cleaned_data["code"].strip().upper()

    def clean(self):
        cleaned = super().clean()
        merchant = self._merchant()
        code = cleaned.get("code")
        if merchant and code:
            clash = Voucher.objects.filter(merchant=merchant, code=code).exclude(
                pk=self.instance.pk
            )
            if clash.exists():
                self.add_error("code", _("Another voucher of this shop already uses this code."))
        valid_from, valid_until = cleaned.get("valid_from"), cleaned.get("valid_until")
        if valid_from and valid_until and valid_until <= valid_from:
            self.add_error("valid_until", _("The end must come after the start."))

        currency = self._currency()
        if not currency:
            return cleaned
        cleaned["currency"] = currency
        self.instance.currency = currency
        if "min_spend" not in self.errors:
            self.instance.min_spend_minor = _to_minor(self, "min_spend", currency)
        kind = cleaned.get("kind")
        if kind == Voucher.Kind.PERCENTAGE:
            self.instance.amount_minor = None
            self.instance.percent_bp = self._percent_bp()
        elif kind == Voucher.Kind.FIXED:
            self.instance.percent_bp = None
            self.instance.amount_minor = _to_minor(self, "amount", currency)
            if self.instance.amount_minor is None and "amount" not in self.errors:
                self.add_error("amount", _("Enter the amount off for a fixed-amount voucher."))
            elif self.instance.amount_minor == 0:
                self.add_error("amount", _("The amount off must be more than zero."))
        return cleaned

    def _percent_bp(self) -> int | None:
        raw = (self.cleaned_data.get("percent") or "").strip().rstrip("%").strip()
        if not raw:
            self.add_error("percent", _("Enter the percentage off, e.g. 12.5."))
            return None
        try:
            basis_points = Decimal(raw) * 100
        except InvalidOperation:
            self.add_error("percent", _("Enter a number such as 12.5."))
            return None
        if not basis_points.is_finite() or basis_points != basis_points.to_integral_value():
            self.add_error("percent", _("Use at most two decimal places, e.g. 12.25."))
            return None
        if not 1 <= basis_points <= 10000:
            self.add_error("percent", _("Enter a percentage between 0.01 and 100."))
            return None
        return int(basis_points)


@admin.register(ShippingMethod)
class ShippingMethodAdmin(ScopedAdmin):
    form = ShippingMethodForm
    list_display = [
        "name",
        "merchant",
        "price_display",
        "free_over_display",
        "countries_display",
        "delivery_estimate",
        "is_active",
        "position",
    ]
    list_filter = ["merchant", "is_active"]
    list_select_related = ["merchant"]
    search_fields = ["name", "name_ar"]

    @admin.display(description=_("price"), ordering="price_minor")
    def price_display(self, obj):
        return _money(obj.price_minor, obj.currency)

    @admin.display(description=_("free over"), ordering="free_over_minor")
    def free_over_display(self, obj):
        return _money(obj.free_over_minor, obj.currency)

    @admin.display(description=_("countries"))
    def countries_display(self, obj):
        return ", ".join(obj.countries) or _("all")


@admin.register(Voucher)
class VoucherAdmin(ScopedAdmin):
    form = VoucherForm
    list_display = [
        "code",
        "merchant",
        "kind",
        "value",
        "min_spend_display",
        "valid_from",
        "valid_until",
        "usage",
        "is_active",
    ]
    list_filter = ["merchant", "kind", "is_active"]
    list_select_related = ["merchant"]
    search_fields = ["code"]

    @admin.display(description=_("value"))
    def value(self, obj):
        if obj.kind == Voucher.Kind.PERCENTAGE:
            return _percent(obj.percent_bp)
        return _money(obj.amount_minor, obj.currency)

    @admin.display(description=_("minimum spend"), ordering="min_spend_minor")
    def min_spend_display(self, obj):
        return _money(obj.min_spend_minor, obj.currency)

    @admin.display(description=_("used"))
    def usage(self, obj):
        if obj.usage_limit is None:
            return str(obj.times_used)
        return f"{obj.times_used} / {obj.usage_limit}"
