"""The hosted checkout page at the session's ``url``: ``/sandbox/stripe/pay/<session id>/``.

What Stripe Checkout shows, in the sandbox's plain HTML: the line items and amounts, the
shopper's email (prefilled from ``customer_email``), the shipping options (first one chosen),
card number, expiry (MM / YY), CVC and name, a Pay button and a link back to ``cancel_url``.
Paying with a test card (see :mod:`sandbox.stripe.cards`) completes the session and answers
``303`` to ``success_url`` (``{CHECKOUT_SESSION_ID}`` filled in); a declined card shows Stripe's
message and leaves the session open for another try; an expired or completed session says so.

Language: Arabic (right to left) when the session's ``locale`` is ``ar``, or ``auto`` and the
browser prefers Arabic (the service sends ``auto`` for Arabic shoppers: Stripe has no ``ar``);
English otherwise. The page may be framed by our own site only (the Messenger emulator shows
webviews in a same-origin iframe).

Stable hooks for browser tests (``data-testid``): ``stripe-email``, ``card-number``,
``card-expiry``, ``card-cvc``, ``card-name``, ``shipping-option`` (radio inputs), ``pay``,
``card-error``, ``total``, ``cancel``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone, translation
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_http_methods

from sandbox.stripe.amounts import amount_format
from sandbox.stripe.cards import CardInvalid, card_check
from sandbox.stripe.errors import StripeError
from sandbox.stripe.models import StripeObject
from sandbox.stripe.services.checkout import (
    EmailInvalid,
    SessionClosed,
    session_pay,
    session_read,
    success_redirect,
)
from sandbox.stripe.services.events import deliveries_sweep_lazily
from sandbox.stripe.services.objects import object_get


@dataclass(frozen=True)
class _Option:
    id: str
    name: str
    amount: str
    total: str
    checked: bool


def _language(request: HttpRequest, session: dict[str, Any]) -> str:
    locale = session.get("locale") or "auto"
    if locale == "ar":
        return "ar"
    if locale == "auto" and getattr(request, "LANGUAGE_CODE", "en") == "ar":
        return "ar"
    return "en"


def _context(row: StripeObject, language: str, chosen: str = "") -> dict[str, Any]:
    session = row.data
    currency = session["currency"]

    def money(amount: int) -> str:
        return amount_format(amount, currency, language=language)

    lines = [
        {
            "name": line["description"],
            "quantity": line["quantity"],
            "unit": money(line["price"]["unit_amount"]),
            "total": money(line["amount_total"]),
            "image": (line.get("images") or [""])[0],
        }
        for line in row.private.get("line_items", [])
    ]
    discount = session["total_details"]["amount_discount"]
    before_shipping = session["amount_subtotal"] - discount
    options = []
    rate_ids = [option["shipping_rate"] for option in session.get("shipping_options") or []]
    selected = chosen if chosen in rate_ids else (rate_ids[0] if rate_ids else "")
    if session["status"] == "complete" and session.get("shipping_cost"):
        selected = session["shipping_cost"]["shipping_rate"]
    for rate_id in rate_ids:
        rate = object_get(kind="shipping_rate", object_id=rate_id).data
        amount = rate["fixed_amount"]["amount"]
        options.append(
            _Option(
                id=rate_id,
                name=rate["display_name"],
                amount=money(amount) if amount else _("Free"),
                total=money(before_shipping + amount),
                checked=rate_id == selected,
            )
        )
    total = next((o.total for o in options if o.checked), money(session["amount_total"]))
    return {
        "session": session,
        "lines": lines,
        "subtotal": money(session["amount_subtotal"]),
        "discount": money(discount) if discount else "",
        "options": options,
        "total": total,
        "language": language,
        "direction": "rtl" if language == "ar" else "ltr",
    }


def _page(
    request: HttpRequest,
    row: StripeObject,
    language: str,
    *,
    status: int = 200,
    error: str = "",
    error_field: str = "",
    form: dict[str, str] | None = None,
) -> HttpResponse:
    with translation.override(language):
        context = _context(row, language, chosen=(form or {}).get("shipping_rate", ""))
        session = row.data
        context.update(
            state=session["status"],
            error=error,
            error_field=error_field,
            email=(form or {}).get("email", session.get("customer_email") or ""),
            name=(form or {}).get("name", ""),
            success_url=success_redirect(session),
        )
        response = render(request, "sandbox_stripe/pay.html", context, status=status)
    response["Content-Language"] = language
    patch_cache_control(response, private=True, no_store=True, max_age=0)
    return response


def _see_other(url: str) -> HttpResponse:
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


@require_http_methods(["GET", "HEAD", "POST"])
@xframe_options_sameorigin
def pay_page(request: HttpRequest, session_id: str) -> HttpResponse:
    """Show the session; POST pays it with the card entered (see the module docstring)."""
    try:
        row = session_read(session_id=session_id)
    except StripeError:
        with translation.override(getattr(request, "LANGUAGE_CODE", "en")):
            return render(request, "sandbox_stripe/missing.html", status=404)
    language = _language(request, row.data)
    deliveries_sweep_lazily()
    if request.method != "POST" or row.data["status"] != "open":
        return _page(request, row, language, status=200 if row.data["status"] == "open" else 410)

    form = {
        "email": request.POST.get("email", ""),
        "name": request.POST.get("name", "").strip()[:200],
        "shipping_rate": request.POST.get("shipping_rate", ""),
    }
    with translation.override(language):
        try:
            card = card_check(
                number=request.POST.get("card_number", ""),
                expiry=request.POST.get("card_expiry", ""),
                cvc=request.POST.get("card_cvc", ""),
                today=timezone.localdate(),
            )
            outcome = session_pay(
                session_id=session_id,
                card=card,
                email=form["email"],
                name=form["name"],
                shipping_rate=form["shipping_rate"],
            )
        except CardInvalid as invalid:
            return _page(
                request,
                row,
                language,
                status=400,
                error=invalid.message,
                error_field=invalid.field,
                form=form,
            )
        except EmailInvalid:
            return _page(
                request,
                row,
                language,
                status=400,
                error=_("Your email address is invalid."),
                error_field="stripe-email",
                form=form,
            )
        except SessionClosed:
            row = session_read(session_id=session_id)  # expires it if its time ran out
            return _page(request, row, language, status=410)
        if outcome.decline is not None:
            row.refresh_from_db()
            return _page(
                request,
                row,
                language,
                status=402,
                error=str(outcome.decline.message),
                error_field="card-number",
                form=form,
            )
    if outcome.redirect_url:
        return _see_other(outcome.redirect_url)
    row.refresh_from_db()
    return _page(request, row, language)
