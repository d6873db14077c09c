"""The checkout page opened from the Pay button in the Messenger webview, and Stripe's return pages.

``GET /checkout/<token>/`` shows the order (lines with images, shipping, tax, discount, total)
in the shopper's language; its Pay form (``POST``, CSRF-protected) starts a Stripe Checkout
Session through :func:`payments.services.checkout.checkout_session_start` and answers ``303``
to it. An order that is paid, expired, cancelled or failed shows a clear page instead, with a
way back to the chat (Messenger's ``closeWindow`` redirect). ``/done/`` only thanks the shopper
(the webhook is the truth); ``/cancel/`` goes back to the checkout page.

Links: the token names one order and is checked for its signature. Paying needs the order's
reservation to be running (the service checks it under the row lock), which is when the token
"expires"; for showing an order's outcome (Stripe's return pages, a paid order opened again) a
token is read for up to :data:`LINK_MAX_AGE`.

Language: ``?lang=ar|en``, else the order's locale, else ``Accept-Language``, else the shop's.
Arabic pages are right-to-left. No external assets: one stylesheet of ours, no scripts.

Framing (``X-Frame-Options``): the mobile Messenger apps open the page in their own webview,
not in a frame, but messenger.com and facebook.com on a computer show webviews inside an
iframe, which the project's ``X-Frame-Options: DENY`` would blank. These views are exempt from
that header and send ``Content-Security-Policy: frame-ancestors`` instead, allowing only our
own site, www.messenger.com and www.facebook.com (``ALLOW-FROM`` is ignored by current
browsers, CSP is what they honour). Clickjacking stays out of reach of other sites. Inside a
frame of another site the Pay form could not work (our CSRF cookie is a third-party cookie
there, and Stripe's hosted page refuses to be framed), so a page framed cross-site
(``Sec-Fetch-Dest: iframe`` and ``Sec-Fetch-Site`` other than ``same-origin``) offers a link
that opens the same page in a new tab instead of the form. In a frame of our own site (the
sandbox's Messenger emulator shows webviews in a same-origin iframe, and its Stripe stand-in
allows same-origin frames) the cookie is first-party, so the normal Pay form is shown.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from urllib.parse import urlencode, urlsplit

from babel.numbers import format_percent
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_http_methods, require_safe

from commerce.models import Order
from core.exceptions import ApplicationError
from core.money import Money
from payments.exceptions import CheckoutLinkError
from payments.gateways import GatewayError
from payments.models import Payment
from payments.services.checkout import ORDER_NOT_PAYABLE, checkout_session_start
from payments.services.checkout_links import checkout_token_read

LANGUAGES = ("en", "ar")
LINK_MAX_AGE = 7 * 24 * 60 * 60
FRAME_ANCESTORS = "'self' https://www.messenger.com https://www.facebook.com"
STRIPE_CHECKOUT_ORIGIN = "https://checkout.stripe.com"

# In a right-to-left page a currency symbol such as "US$" would show as "$US": the "$" takes
# the paragraph's direction. A left-to-right mark after such a symbol keeps it in one piece.
_LATIN_SYMBOL = re.compile(r"(?<=[A-Za-z])([^\sA-Za-z0-9\u0600-\u06ff\u200e\u200f]+)")

_MONEY_RECEIVED = (Payment.Status.SUCCEEDED, Payment.Status.MISMATCH)
_PAID = frozenset(
    {
        Order.Status.PAID,
        Order.Status.FULFILLED,
        Order.Status.DELIVERED,
        Order.Status.PARTIALLY_REFUNDED,
        Order.Status.REFUNDED,
    }
)


# -- language and links ----------------------------------------------------------------------


def _accept_language(header: str) -> str | None:
    """The first of our languages in an ``Accept-Language`` header, by quality."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _eq, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().replace("_", "-").split("-")[0].lower()
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else None


def _language(request: HttpRequest, order: Order | None = None) -> str:
    """``?lang=`` (or the Pay form's ``lang``), else the order's locale, else the browser's."""
    asked = request.POST.get("lang") or request.GET.get("lang", "")
    if asked in LANGUAGES:
        return asked
    if order is not None:
        primary = (order.locale or "").replace("-", "_").split("_")[0].lower()
        if primary in LANGUAGES:
            return primary
    accepted = _accept_language(request.META.get("HTTP_ACCEPT_LANGUAGE", ""))
    if accepted:
        return accepted
    if order is not None and order.merchant.default_locale in LANGUAGES:
        return order.merchant.default_locale
    return "en"


def _close_window_url() -> str:
    """Messenger's redirect that closes the webview and returns to the conversation."""
    return "https://www.messenger.com/closeWindow/?" + urlencode(
        {"display_text": _("Back to the chat")}
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _content_security_policy() -> str:
    # The Pay form answers with a redirect to Stripe's page: form-action must allow it (the
    # sandbox and the tests serve it from STRIPE_API_BASE's origin).
    form_targets = ["'self'", STRIPE_CHECKOUT_ORIGIN]
    api_origin = _origin(settings.STRIPE_API_BASE)
    if api_origin and api_origin != "https://api.stripe.com":
        form_targets.append(api_origin)
    images = ["'self'", "https:", "data:"]
    public_origin = _origin(settings.PUBLIC_BASE_URL)
    if public_origin.startswith("http://"):
        images.append(public_origin)
    return (
        f"default-src 'none'; img-src {' '.join(images)}; style-src 'self'; "
        f"form-action {' '.join(form_targets)}; frame-ancestors {FRAME_ANCESTORS}; "
        "base-uri 'none'"
    )


def _respond(
    request: HttpRequest, template: str, context: dict, *, language: str, status: int
) -> HttpResponse:
    with translation.override(language):
        context = {
            "language": language,
            "direction": "rtl" if language == "ar" else "ltr",
            "other_language": "en" if language == "ar" else "ar",
            "close_url": _close_window_url(),
            **context,
        }
        response = render(request, template, context, status=status)
    response["Content-Language"] = language
    response["Content-Security-Policy"] = _content_security_policy()
    response["Referrer-Policy"] = "same-origin"
    patch_cache_control(response, private=True, no_store=True, max_age=0)
    patch_vary_headers(response, ["Accept-Language", "Cookie"])
    return response


# -- the order as shown ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    title: str
    variant: str
    image_url: str
    quantity: int
    unit_price: str
    total: str


def _load_order(order_id: int) -> Order | None:
    return (
        Order.objects.select_related("merchant")
        .prefetch_related("lines__variant__product")
        .filter(pk=order_id)
        .first()
    )


def _percent(rate_bp: int, language: str) -> str:
    return format_percent(Decimal(rate_bp) / 10000, format="#,##0.##%", locale=language)


def _order_context(order: Order, language: str) -> dict:
    """Everything the templates show of ``order``, formatted for ``language``."""

    def money(amount_minor: int) -> str:
        text = Money(amount_minor, order.currency).format(language)
        if language == "ar":
            text = _LATIN_SYMBOL.sub(lambda match: match.group(1) + "\u200e", text)
        return text

    lines = []
    for line in order.lines.all():
        title = line.product_title
        variant = line.variant_name
        if line.variant is not None:  # the catalog's wording in the page's language
            title = line.variant.product.localized_title(language) or title
            variant = line.variant.localized_name(language) or variant
        lines.append(
            _Line(
                title=title,
                variant=variant,
                image_url=line.image_url,
                quantity=line.quantity,
                unit_price=money(line.unit_price_minor),
                total=money(line.total_minor),
            )
        )
    tax_label = order.merchant.tax_label.strip()
    if not tax_label or tax_label == "Tax":
        tax_label = _("Tax")
    rate = _percent(order.tax_rate_bp, language) if order.tax_rate_bp else ""
    if order.prices_include_tax:
        tax_text = (
            _("Includes %(tax)s (%(rate)s)") % {"tax": tax_label, "rate": rate}
            if rate
            else _("Includes %(tax)s") % {"tax": tax_label}
        )
    else:
        tax_text = _("%(tax)s (%(rate)s)") % {"tax": tax_label, "rate": rate} if rate else tax_label
    return {
        "order": order,
        "merchant": order.merchant,
        "lines": lines,
        "item_count": sum(line.quantity for line in lines),
        "subtotal": money(order.subtotal_minor),
        "discount": money(-order.discount_minor) if order.discount_minor else "",
        "voucher_code": order.voucher_code,
        "shipping": money(order.shipping_minor) if order.shipping_minor else "",
        "shipping_name": order.shipping_method_name,
        "has_shipping": bool(order.shipping_minor or order.shipping_method_name),
        "tax": money(order.tax_minor) if order.tax_minor else "",
        "tax_text": tax_text,
        "tax_included": order.prices_include_tax,
        "total": money(order.total_minor),
    }


def _minutes_left(order: Order) -> int:
    if order.reserved_until is None:
        return 0
    return max(0, math.ceil((order.reserved_until - timezone.now()).total_seconds() / 60))


# -- pages -----------------------------------------------------------------------------------


def _link_error_page(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    language = _language(request)
    expired = error.code == "checkout_link_expired"
    with translation.override(language):
        context = {
            "state": "link_expired" if expired else "link_invalid",
            "heading": _("This link has expired") if expired else _("This link does not work"),
            "message": error.message,
        }
    return _respond(
        request, "payments/status.html", context, language=language, status=410 if expired else 400
    )


def _not_found_page(request: HttpRequest) -> HttpResponse:
    language = _language(request)
    with translation.override(language):
        context = {
            "state": "not_found",
            "heading": _("Order not found"),
            "message": _("This order no longer exists. Please ask for help in Messenger."),
        }
    return _respond(request, "payments/status.html", context, language=language, status=404)


def _order_from_token(request: HttpRequest, token: str) -> Order | HttpResponse:
    try:
        order_id = checkout_token_read(token=token, max_age_seconds=LINK_MAX_AGE)
    except CheckoutLinkError as error:
        return _link_error_page(request, error)
    order = _load_order(order_id)
    if order is None:
        return _not_found_page(request)
    return order


def _state_page(request: HttpRequest, order: Order, language: str) -> HttpResponse | None:
    """The page for an order that cannot be paid now, or None when it can."""
    Status = Order.Status
    with translation.override(language):
        context = {**_order_context(order, language)}
        if order.status in _PAID:
            state, status = "paid", 200
            heading = _("Already paid, thank you")
            message = _(
                "We have received the payment for order %(number)s. Your receipt is in Messenger."
            ) % {"number": order.number}
        elif order.status == Status.CANCELLED:
            state, status = "cancelled", 410
            heading = _("This order was cancelled")
            message = _("Order %(number)s was cancelled, so it can no longer be paid.") % {
                "number": order.number
            }
        elif order.status == Status.PAYMENT_FAILED:
            state, status = "payment_failed", 410
            heading = _("The payment did not go through")
            message = _(
                "Order %(number)s was not paid and is closed. You can order again in Messenger."
            ) % {"number": order.number}
        elif order.status == Status.EXPIRED or _minutes_left(order) == 0:
            state, status = "expired", 410
            heading = _("This order has expired")
            message = _(
                "The items of order %(number)s were held for you for a limited time, which has "
                "run out. You can order again in Messenger."
            ) % {"number": order.number}
        elif Payment.objects.filter(order=order, status__in=_MONEY_RECEIVED).exists():
            # Money arrived but did not match the order: a person is looking at it.
            state, status = "review", 409
            heading = _("We are checking your payment")
            message = _(
                "We received a payment for order %(number)s and are checking it. We will write "
                "to you in Messenger."
            ) % {"number": order.number}
        else:
            return None
        context.update(state=state, heading=heading, message=message)
    return _respond(request, "payments/status.html", context, language=language, status=status)


def _checkout(
    request: HttpRequest,
    order: Order,
    language: str,
    *,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    framed = request.headers.get("Sec-Fetch-Dest", "") in ("iframe", "frame") and (
        request.headers.get("Sec-Fetch-Site", "") != "same-origin"
    )
    minutes = _minutes_left(order)
    with translation.override(language):
        context = {
            **_order_context(order, language),
            "error": error,
            "cancelled": request.GET.get("cancelled") == "1",
            "framed": framed,
            "page_url": f"{request.path}?{urlencode({'lang': language})}",
            "reserved_text": ngettext(
                "Your items are held for %(minutes)s more minute.",
                "Your items are held for %(minutes)s more minutes.",
                minutes,
            )
            % {"minutes": minutes},
        }
    return _respond(request, "payments/checkout.html", context, language=language, status=status)


def _redirect_see_other(url: str) -> HttpResponse:
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


@require_http_methods(["GET", "HEAD", "POST"])
@xframe_options_exempt
def checkout_page(request: HttpRequest, token: str) -> HttpResponse:
    """The order and its Pay button; POST starts (or reuses) the Stripe session and redirects."""
    order = _order_from_token(request, token)
    if isinstance(order, HttpResponse):
        return order
    language = _language(request, order)
    state_page = _state_page(request, order, language)
    if state_page is not None:
        return state_page
    if request.method != "POST":
        return _checkout(request, order, language)
    try:
        with translation.override(language):
            payment = checkout_session_start(order=order, locale=language)
    except GatewayError as error:
        with translation.override(language):
            message = (
                _("The payment service is not answering, try again.")
                if error.transient
                else error.message
            )
        return _checkout(
            request, order, language, error=message, status=503 if error.transient else 502
        )
    except ApplicationError as error:
        if error.code != ORDER_NOT_PAYABLE:
            raise
        order = _load_order(order.pk) or order
        page = _state_page(request, order, language)
        if page is not None:
            return page
        # The order changed between our look and the service's (a race): say what it said.
        with translation.override(language):
            context = {
                **_order_context(order, language),
                "state": "review",
                "heading": _("This order cannot be paid now"),
                "message": error.message,
            }
        return _respond(request, "payments/status.html", context, language=language, status=409)
    return _redirect_see_other(payment.checkout_url)


@require_safe
@xframe_options_exempt
def checkout_done(request: HttpRequest, token: str) -> HttpResponse:
    """Stripe's success URL: a thank-you page. It never marks anything paid: the webhook does."""
    order = _order_from_token(request, token)
    if isinstance(order, HttpResponse):
        return order
    language = _language(request, order)
    with translation.override(language):
        context = {
            **_order_context(order, language),
            "state": "done",
            "heading": _("Thank you — your receipt will arrive in Messenger"),
            "message": _(
                "We are confirming the payment for order %(number)s. You can close this page "
                "and go back to the chat."
            )
            % {"number": order.number},
        }
    return _respond(request, "payments/status.html", context, language=language, status=200)


@require_safe
@xframe_options_exempt
def checkout_cancel(request: HttpRequest, token: str) -> HttpResponse:
    """Stripe's cancel URL: back to the checkout page, which says the payment was not made."""
    query = {"cancelled": "1"}
    if request.GET.get("lang") in LANGUAGES:
        query["lang"] = request.GET["lang"]
    url = reverse("payments:checkout", kwargs={"token": token}) + "?" + urlencode(query)
    return _redirect_see_other(url)
