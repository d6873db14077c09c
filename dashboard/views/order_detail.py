"""The order page and its actions: fulfil, mark delivered, cancel, refund, add a note.

Every action is a POST (CSRF-checked) that checks the role, calls the same service as the admin
and the API, and redirects back to the order with a success or error message: a refused action
(``ApplicationError``: an illegal status move, a bad tracking link, a refund over what is left)
shows the service's own message and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from commerce.forms import FulfilForm, fulfil_done_message, submission_key_new
from commerce.models import Order, OrderStatus
from commerce.services.orders import (
    TRANSITIONS,
    order_add_note,
    order_cancel,
    order_fulfil,
    order_mark_delivered,
)
from core.exceptions import ApplicationError
from core.money import Money
from dashboard.access import can_cancel, can_handle, can_refund, dashboard_view, require
from dashboard.access import get_scoped_or_404 as scoped_or_404
from dashboard.forms import CancelForm, NoteForm
from dashboard.selectors.order_detail import order_detail_load
from dashboard.views import form_errors_flash
from payments.forms import RefundForm
from payments.models import Payment
from payments.services.refunds import refund_request


def _order(request: HttpRequest, order_id: int) -> Order:
    queryset = Order.objects.select_related("merchant", "customer")
    return scoped_or_404(request, queryset, pk=order_id)


def _back(order: Order) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("dashboard:order_detail", args=[order.pk]))


def _allowed(order: Order) -> frozenset[str]:
    return TRANSITIONS.get(order.status, frozenset())


@dataclass(frozen=True)
class RefundTarget:
    """One refund form of the order page: a payment with something left to refund."""

    payment: Payment
    remaining: str  # formatted in the page's language
    remaining_major: str  # pre-fills the amount field
    given_back: str  # formatted; "" when nothing was given back yet
    submission_key: str  # the form's one-time token (ADR 0007)


def _refund_targets(detail) -> list[RefundTarget]:
    language = get_language() or "en"
    targets = []
    for payment in detail.refundable_payments:
        remaining = Money(detail.refundable[payment.pk], payment.currency)
        given_back = detail.given_back_minor(payment)
        targets.append(
            RefundTarget(
                payment=payment,
                remaining=remaining.format(language),
                remaining_major=f"{remaining.to_major():f}",
                given_back=Money(given_back, payment.currency).format(language)
                if given_back
                else "",
                submission_key=submission_key_new(),
            )
        )
    return targets


@require_GET
@dashboard_view
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    order = _order(request, order_id)
    detail = order_detail_load(order=order)
    user, merchant_id = request.user, order.merchant_id
    allowed = _allowed(order)
    context = {
        "order": order,
        "detail": detail,
        "can_fulfil": can_handle(user, merchant_id)
        and (OrderStatus.FULFILLED in allowed or order.status == OrderStatus.FULFILLED),
        "can_deliver": can_handle(user, merchant_id)
        and OrderStatus.DELIVERED in allowed
        and bool(detail.undelivered_shipments),
        "can_cancel": can_cancel(user, merchant_id) and OrderStatus.CANCELLED in allowed,
        "can_refund": can_refund(user, merchant_id) and detail.refundable_minor > 0,
        "can_note": can_handle(user, merchant_id),
        "refund_targets": _refund_targets(detail),
        "fulfil_form": FulfilForm(),
        "cancel_form": CancelForm(),
        "note_form": NoteForm(),
    }
    return render(request, "dashboard/order_detail.html", context)


@require_POST
@dashboard_view
def order_fulfil_view(request: HttpRequest, order_id: int) -> HttpResponse:
    order = _order(request, order_id)
    require(can_handle(request.user, order.merchant_id))
    form = FulfilForm(request.POST)
    if not form.is_valid():
        form_errors_flash(request, form)
        return _back(order)
    try:
        shipment = order_fulfil(order=order, user=request.user, **form.cleaned_data)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, fulfil_done_message(order, shipment))
    return _back(order)


@require_POST
@dashboard_view
def order_deliver_view(request: HttpRequest, order_id: int) -> HttpResponse:
    """Every shipment on its way delivered, or only ``shipment`` (one of several parcels)."""
    order = _order(request, order_id)
    require(can_handle(request.user, order.merchant_id))
    shipment = None
    if request.POST.get("shipment"):
        raw = request.POST["shipment"]
        shipment = order.shipments.filter(pk=int(raw)).first() if raw.isdigit() else None
        if shipment is None:
            messages.error(request, _("This order has no such shipment."))
            return _back(order)
    try:
        order_mark_delivered(order=order, user=request.user, shipment=shipment)
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        order.refresh_from_db(fields=["status"])
        if order.status == OrderStatus.DELIVERED:
            messages.success(request, _("Order %(number)s marked delivered.") % {"number": order})
        else:
            messages.success(
                request,
                _("Parcel %(shipment)s delivered; other parcels of %(number)s are on their way.")
                % {"shipment": shipment, "number": order},
            )
    return _back(order)


@require_POST
@dashboard_view
def order_cancel_view(request: HttpRequest, order_id: int) -> HttpResponse:
    order = _order(request, order_id)
    require(can_cancel(request.user, order.merchant_id), "cancel")
    form = CancelForm(request.POST)
    if not form.is_valid():
        form_errors_flash(request, form)
        return _back(order)
    try:
        order_cancel(order=order, user=request.user, reason=form.cleaned_data["reason"])
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, _("Order %(number)s cancelled.") % {"number": order})
    return _back(order)


@require_POST
@dashboard_view
def order_refund_view(request: HttpRequest, order_id: int) -> HttpResponse:
    order = _order(request, order_id)
    require(can_refund(request.user, order.merchant_id), "cancel")
    detail = order_detail_load(order=order)
    payment = _refund_payment(request, detail)
    if payment is None:
        return _back(order)
    form = RefundForm(
        request.POST, currency=payment.currency, remaining_minor=detail.refundable[payment.pk]
    )
    if not form.is_valid():
        form_errors_flash(request, form)
        return _back(order)
    try:
        refund = refund_request(
            order=order,
            payment=payment,
            amount_minor=form.cleaned_data["amount"],
            user=request.user,
            reason=form.cleaned_data["reason"],
            submission_key=form.cleaned_data["submission_key"],
        )
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        (messages.info if refund.replayed else messages.success)(
            request,
            _(
                "Refund of %(amount)s requested for order %(number)s; it completes when the "
                "payment provider confirms it."
            )
            % {
                "amount": Money(refund.amount_minor, refund.currency).format(
                    get_language() or "en"
                ),
                "number": order,
            },
        )
    return _back(order)


def _refund_payment(request: HttpRequest, detail) -> Payment | None:
    """The payment a refund form names (``payment``), or the order's only refundable one; None
    with an error message shown when there is none or the choice is missing or unknown."""
    targets = detail.refundable_payments
    raw = request.POST.get("payment", "")
    if raw:
        chosen = [p for p in targets if str(p.pk) == raw]
        if chosen:
            return chosen[0]
        messages.error(request, _("This payment has nothing left to refund."))
        return None
    if len(targets) == 1:
        return targets[0]
    if not targets:
        messages.error(request, _("Nothing is left to refund on this order."))
    else:
        messages.error(request, _("Choose which payment to refund."))
    return None


@require_POST
@dashboard_view
def order_note_view(request: HttpRequest, order_id: int) -> HttpResponse:
    order = _order(request, order_id)
    require(can_handle(request.user, order.merchant_id))
    form = NoteForm(request.POST)
    if not form.is_valid():
        form_errors_flash(request, form)
        return _back(order)
    try:
        note = order_add_note(
            order=order,
            message=form.cleaned_data["message"],
            user=request.user,
            submission_key=form.cleaned_data["submission_key"],
        )
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        if note.replayed:
            messages.info(request, _("This note was already added."))
        else:
            messages.success(request, _("Note added."))
    return _back(order)
