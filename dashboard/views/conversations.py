"""Conversations: who is waiting for a person, the thread, a reply box, *Resume bot*."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from commerce.models import Customer
from core.exceptions import ApplicationError
from dashboard.access import can_handle, dashboard_view, get_scoped_or_404, require
from dashboard.forms import ReplyForm
from dashboard.selectors.conversations import (
    conversation_thread,
    conversations_waiting,
    inbound_summary,
)
from dashboard.services.conversations import conversation_reply
from dashboard.views import form_errors_flash
from messenger.services.handover import conversation_pause, conversation_resume
from messenger.services.outbox import HUMAN_AGENT_WINDOW, STANDARD_WINDOW


def _customer(request: HttpRequest, customer_id: int) -> Customer:
    return get_scoped_or_404(request, Customer.objects.select_related("merchant"), pk=customer_id)


def _back(customer: Customer) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("dashboard:conversation", args=[customer.pk]))


@require_GET
@dashboard_view
def conversations_list(request: HttpRequest) -> HttpResponse:
    waiting = list(conversations_waiting(scope=request.dashboard)[:200])
    for customer in waiting:
        customer.last_text = inbound_summary(customer.last_kind or "", customer.last_payload)
    if request.GET.get("fragment") == "rows":  # the page's own refresh every few seconds
        return render(request, "dashboard/_waiting_rows.html", {"waiting": waiting})
    return render(request, "dashboard/conversations.html", {"waiting": waiting})


def _window(customer: Customer) -> str:
    """``open`` (24 h), ``human_agent`` (up to 7 days, tagged) or ``closed``."""
    last = customer.last_interaction_at
    if last is None:
        return "closed"
    since = timezone.now() - last
    if since <= STANDARD_WINDOW:
        return "open"
    return "human_agent" if since <= HUMAN_AGENT_WINDOW else "closed"


@require_GET
@dashboard_view
def conversation(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = _customer(request, customer_id)
    thread = conversation_thread(customer=customer)
    if request.GET.get("fragment") == "thread":  # the page's own refresh every few seconds
        return render(request, "dashboard/_thread.html", {"thread": thread})
    context = {
        "customer": customer,
        "thread": thread,
        "window": _window(customer),
        "can_act": can_handle(request.user, customer.merchant_id),
        "form": ReplyForm(),
    }
    return render(request, "dashboard/conversation.html", context)


@require_POST
@dashboard_view
def conversation_reply_view(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = _customer(request, customer_id)
    require(can_handle(request.user, customer.merchant_id))
    form = ReplyForm(request.POST)
    if not form.is_valid():
        form_errors_flash(request, form)
        return _back(customer)
    try:
        row = conversation_reply(
            customer=customer,
            text=form.cleaned_data["text"],
            submission_key=form.cleaned_data["submission_key"],
        )
    except ApplicationError as error:
        messages.error(request, error.message)
    else:
        if row.replayed:
            messages.info(request, _("This reply was already queued; it is not sent twice."))
        else:
            messages.success(request, _("Reply queued; it is on its way to Messenger."))
    return _back(customer)


@require_POST
@dashboard_view
def conversation_resume_view(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = _customer(request, customer_id)
    require(can_handle(request.user, customer.merchant_id))
    if conversation_resume(customer=customer):
        messages.success(request, _("The bot answers %(name)s again.") % {"name": customer})
    else:
        messages.info(request, _("The bot was already answering this customer."))
    return HttpResponseRedirect(reverse("dashboard:conversations"))


@require_POST
@dashboard_view
def conversation_take_over_view(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = _customer(request, customer_id)
    require(can_handle(request.user, customer.merchant_id))
    conversation_pause(customer=customer)
    messages.success(request, _("The bot is paused for this customer: you answer them now."))
    return _back(customer)
