"""Admin for payments, refunds and the Stripe webhook inbox. Everything here is read-only;
money moves only through ``payments.services``.

- Payments and refunds are merchant-owned (through their order) and scoped like every other
  merchant row (``MerchantScopedAdmin``, ``merchant_path="order__merchant"``).
- A payment's page has a *Refund* button (owners, managers and operators, while something is
  left to refund of *that payment*) that opens ``admin/payments/payment/<id>/refund/``: amount
  in major units (at most what the payment collected minus its refunds) and a reason, then
  ``refund_request`` against that payment. It lives here because commerce's order admin must not
  import payments.
- Provider events (the webhook inbox) are for operators only, with a *Re-process* action for
  failed or ignored ones.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext_lazy as _

from commerce.admin_tenancy import MerchantScopedAdmin
from commerce.selectors.access import user_can_cancel_orders, user_is_operator
from core.exceptions import ApplicationError
from core.money import Money
from payments.forms import RefundForm
from payments.models import Payment, ProviderEvent, Refund
from payments.services.events import provider_event_requeue
from payments.services.refunds import refund_remaining_minor, refund_request
from payments.tasks import enqueue_provider_event


def _money(amount_minor: int | None, currency: str | None) -> str:
    if amount_minor is None or not currency:
        return "–"
    return Money(amount_minor, currency).format(get_language() or "en")


def _order_link(order) -> str:
    url = reverse("admin:commerce_order_change", args=[quote(order.pk)])
    return format_html('<a href="{}">{}</a>', url, order.number)


class _ReadOnlyScopedAdmin(MerchantScopedAdmin):
    """Rows of the user's merchants, shown but never added, changed or deleted here."""

    merchant_path = "order__merchant"

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RefundInline(admin.TabularInline):
    """The payment's refunds; the parent payment is already scoped."""

    model = Refund
    fk_name = "payment"
    fields = ["created_at", "amount_display", "status", "reason", "requested_by", "completed_at"]
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return True  # only reached through a payment the user may see

    @admin.display(description=_("amount"))
    def amount_display(self, obj):
        return _money(obj.amount_minor, obj.currency)


@admin.register(Payment)
class PaymentAdmin(_ReadOnlyScopedAdmin):
    list_display = [
        "id",
        "order_link",
        "gateway",
        "status",
        "amount_display",
        "card",
        "succeeded_at",
        "created_at",
    ]
    list_filter = ["status", "gateway", "is_test"]
    list_select_related = ["order"]
    search_fields = [
        "order__number",
        "checkout_session_id",
        "payment_intent_id",
        "charge_id",
    ]
    date_hierarchy = "created_at"
    inlines = [RefundInline]

    @admin.display(description=_("order"), ordering="order__number")
    def order_link(self, obj):
        return _order_link(obj.order)

    @admin.display(description=_("amount"), ordering="amount_minor")
    def amount_display(self, obj):
        return _money(obj.amount_minor, obj.currency)

    @admin.display(description=_("card"))
    def card(self, obj):
        return " ".join(part for part in (obj.card_brand.title(), obj.card_last4) if part) or "–"

    # -- refund page ---------------------------------------------------------------------------

    def has_refund_permission(self, request, obj=None) -> bool:
        merchant_id = None if obj is None else obj.order.merchant_id
        return user_can_cancel_orders(request.user, merchant_id)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["can_refund"] = (
                obj.status == Payment.Status.SUCCEEDED
                and self.has_refund_permission(request, obj)
                and refund_remaining_minor(payment=obj) > 0
            )
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_refund"
        return [
            path(
                "<path:object_id>/refund/",
                self.admin_site.admin_view(self.refund_view),
                name=name,
            ),
            *super().get_urls(),
        ]

    def _change_url(self, payment) -> str:
        return reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
            args=[quote(payment.pk)],
            current_app=self.admin_site.name,
        )

    def refund_view(self, request, object_id):
        payment = self.get_object(request, unquote(object_id))
        if payment is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_refund_permission(request, payment):
            raise PermissionDenied
        order = payment.order
        remaining = refund_remaining_minor(payment=payment)  # of this payment, not the order
        form = RefundForm(
            request.POST if request.method == "POST" else None,
            currency=payment.currency,
            remaining_minor=remaining,
        )
        if request.method == "POST" and form.is_valid():
            try:
                refund = refund_request(
                    order=order,
                    payment=payment,
                    amount_minor=form.cleaned_data["amount"],
                    user=request.user,
                    reason=form.cleaned_data["reason"],
                    submission_key=form.cleaned_data["submission_key"],
                )
            except ApplicationError as exc:  # RefundError: too much, refused by the provider
                messages.error(request, exc.message)
            else:
                (messages.info if refund.replayed else messages.success)(
                    request,
                    _(
                        "Refund of %(amount)s requested for order %(number)s; it completes "
                        "when the payment provider confirms it."
                    )
                    % {"amount": _money(refund.amount_minor, refund.currency), "number": order},
                )
                return HttpResponseRedirect(self._change_url(payment))
        return TemplateResponse(
            request,
            "admin/payments/payment/refund.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": _("Refund order %(number)s") % {"number": order.number},
                "original": payment,
                "order": order,
                "paid": _money(payment.amount_minor, payment.currency),
                "remaining": _money(remaining, payment.currency),
                "form": form,
                "media": self.media + form.media,
            },
        )


@admin.register(Refund)
class RefundAdmin(_ReadOnlyScopedAdmin):
    list_display = [
        "id",
        "order_link",
        "amount_display",
        "status",
        "reason",
        "requested_by",
        "provider_refund_id",
        "created_at",
        "completed_at",
    ]
    list_filter = ["status"]
    list_select_related = ["order", "requested_by"]
    search_fields = ["order__number", "provider_refund_id", "reason"]
    date_hierarchy = "created_at"

    @admin.display(description=_("order"), ordering="order__number")
    def order_link(self, obj):
        return _order_link(obj.order)

    @admin.display(description=_("amount"), ordering="amount_minor")
    def amount_display(self, obj):
        return _money(obj.amount_minor, obj.currency)


@admin.register(ProviderEvent)
class ProviderEventAdmin(admin.ModelAdmin):
    """The webhook inbox, for operators: what Stripe sent and what became of it."""

    list_display = ["event_id", "type", "status", "attempts", "received_at", "processed_at"]
    list_filter = ["status", "type", "livemode"]
    search_fields = ["event_id", "type"]
    date_hierarchy = "received_at"
    actions = ["reprocess"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_module_permission(self, request):
        return user_is_operator(request.user)

    def has_view_permission(self, request, obj=None):
        return user_is_operator(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_reprocess_permission(self, request):
        return user_is_operator(request.user)

    @admin.action(permissions=["reprocess"], description=_("Re-process the selected events"))
    def reprocess(self, request, queryset):
        queued = 0
        for event in queryset:
            if provider_event_requeue(event=event):
                enqueue_provider_event(event.pk)
                queued += 1
        skipped = queryset.count() - queued
        if queued:
            messages.success(
                request,
                ngettext(
                    "%(count)d event queued for processing.",
                    "%(count)d events queued for processing.",
                    queued,
                )
                % {"count": queued},
            )
        if skipped:
            messages.warning(
                request,
                ngettext(
                    "%(count)d event was skipped: only failed or ignored events are re-processed.",
                    "%(count)d events were skipped: only failed or ignored events are "
                    "re-processed.",
                    skipped,
                )
                % {"count": skipped},
            )
