"""Shopper-facing pages of the messenger app: the product page opened in the Messenger webview.

``GET /shop/<merchant slug>/<product handle>/`` shows a product in the shopper's language with an
m.me link (``ref=product-<SKU>``) to share it: opening the link starts, or resumes, the
conversation at that product, as a click-to-Messenger ad with the same ``ref`` does. The page
loads nothing from the internet: one stylesheet of ours, images from our media, a few lines of
inline script.
"""

from __future__ import annotations

import secrets
from urllib.parse import quote, urlencode, urljoin

from django.conf import settings
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.http import require_safe

from commerce.models import Merchant, Product, Variant

LANGUAGES = ("en", "ar")
PRODUCT_REF_PREFIX = "product-"
LOW_STOCK = 5
CACHE_SECONDS = 60  # stock and prices change: shared caches may keep the page a minute
# messenger.com (desktop) shows the webview in a frame; the mobile apps do not frame it.
FRAME_ANCESTORS = "'self' https://www.messenger.com https://www.facebook.com"


# -- links (also used by the conversation to build *Details* buttons) ------------------------


def product_share_ref(sku: str) -> str:
    """The m.me / click-to-Messenger ad ``ref`` that opens a product: ``product-<SKU>``."""
    return f"{PRODUCT_REF_PREFIX}{sku}"


def m_me_link(*, page_id: str, ref: str) -> str:
    """``https://m.me/<page id>?ref=<ref>`` (Messenger passes ``ref`` to the webhook)."""
    return f"https://m.me/{page_id}?ref={quote(ref, safe='-_=.')}"


def product_page_url(*, product: Product, language: str | None = None) -> str:
    """The absolute URL of ``product``'s page, in ``language`` (``ar``/``en``) when given."""
    path = reverse(
        "messenger:product_page",
        kwargs={"merchant_slug": product.merchant.slug, "handle": product.handle},
    )
    url = urljoin(settings.PUBLIC_BASE_URL, path)
    return f"{url}?lang={language}" if language in LANGUAGES else url


def _absolute(url: str) -> str:
    return urljoin(settings.PUBLIC_BASE_URL, url)


def _close_window_url(*, image_url: str | None) -> str:
    """Messenger's redirect that closes the webview and goes back to the thread."""
    params = {"display_text": _("Back to the chat")}
    if image_url:
        params = {"image_url": image_url, **params}
    return "https://www.messenger.com/closeWindow/?" + urlencode(params)


# -- language --------------------------------------------------------------------------------


def _accept_language(header: str) -> str | None:
    """The first of our languages in an ``Accept-Language`` header, by quality."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _sep, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _eq, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().split("-")[0].split("_")[0].lower()
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else None


def _language(request: HttpRequest, merchant: Merchant | None) -> str:
    """``?lang=ar|en``, else the browser's Accept-Language, else the shop's default language.

    Deliberately not the language cookie: shared caches vary on Accept-Language only.
    """
    asked = request.GET.get("lang", "")
    if asked in LANGUAGES:
        return asked
    accepted = _accept_language(request.META.get("HTTP_ACCEPT_LANGUAGE", ""))
    if accepted:
        return accepted
    if merchant is not None and merchant.default_locale in LANGUAGES:
        return merchant.default_locale
    return settings.LANGUAGE_CODE if settings.LANGUAGE_CODE in LANGUAGES else "en"


# -- the page --------------------------------------------------------------------------------


def _availability(variant: Variant) -> tuple[str, str]:
    """(css class, text) for a variant's stock."""
    available = variant.stock_available
    if available <= 0:
        return "out", _("Out of stock")
    if available <= LOW_STOCK:
        return "low", ngettext("Only %(count)d left", "Only %(count)d left", available) % {
            "count": available
        }
    return "in", _("In stock")


def _product_context(product: Product, language: str) -> dict:
    locale = language  # Babel locale for prices, as the conversation uses
    variants = product.active_variants
    images = [
        {
            "url": image.image.url,
            "alt": image.alt_text or product.localized_title(language),
            "width": image.width,
            "height": image.height,
        }
        for image in product.images.all()
    ]
    rows = []
    for variant in variants:
        css, availability = _availability(variant)
        rows.append(
            {
                "name": variant.localized_name(language),
                "sku": variant.sku,
                "price": variant.price.format(locale),
                "availability": availability,
                "css": css,
            }
        )
    headline_price = ""
    if variants:
        cheapest = min(variants, key=lambda v: (v.currency, v.price_minor))
        prices = {(v.currency, v.price_minor) for v in variants}
        text = cheapest.price.format(locale)
        headline_price = _("From %(price)s") % {"price": text} if len(prices) > 1 else text

    page = product.merchant.pages.filter(is_active=True).order_by("pk").first()
    share_link = (
        m_me_link(page_id=page.page_id, ref=product_share_ref(variants[0].sku))
        if page is not None and variants
        else ""
    )
    first_image = _absolute(images[0]["url"]) if images else None
    return {
        "product": product,
        "title": product.localized_title(language),
        "description": product.localized_description(language),
        "images": images,
        "og_image": first_image,
        "variants": rows,
        "headline_price": headline_price,
        "share_link": share_link,
        "page_url": product_page_url(product=product),
        "close_url": _close_window_url(image_url=first_image),
    }


def _respond(request: HttpRequest, context: dict, *, language: str, status: int) -> HttpResponse:
    nonce = secrets.token_urlsafe(16)
    with translation.override(language):
        context = {
            **context,
            "language": language,
            "direction": "rtl" if language == "ar" else "ltr",
            "other_language": "en" if language == "ar" else "ar",
            "nonce": nonce,
        }
        if "close_url" not in context:
            context["close_url"] = _close_window_url(image_url=None)
        response = render(request, "messenger/product.html", context, status=status)
    response["Content-Language"] = language
    response["Content-Security-Policy"] = (
        "default-src 'none'; img-src 'self' https: data:; style-src 'self' https:; "
        f"script-src 'nonce-{nonce}'; frame-ancestors {FRAME_ANCESTORS}; "
        "base-uri 'none'; form-action 'none'"
    )
    response["Referrer-Policy"] = "strict-origin-when-cross-origin"
    patch_cache_control(response, public=True, max_age=CACHE_SECONDS)
    patch_vary_headers(response, ["Accept-Language"])
    return response


@require_safe
@xframe_options_exempt
def product_page(request: HttpRequest, merchant_slug: str, handle: str) -> HttpResponse:
    """A product of an active shop, or a 404 page in the shopper's language."""
    merchant = Merchant.objects.filter(slug=merchant_slug, is_active=True).first()
    product = None
    if merchant is not None:
        product = (
            Product.objects.filter(merchant=merchant, handle=handle, is_active=True)
            .select_related("merchant")
            .prefetch_related(
                Prefetch(
                    "variants",
                    queryset=Variant.objects.filter(is_active=True).order_by("position", "id"),
                    to_attr="active_variants",
                ),
                "images",
            )
            .first()
        )
    language = _language(request, merchant)
    if product is None:
        context = {"product": None, "merchant": merchant}
        return _respond(request, context, language=language, status=404)
    with translation.override(language):
        context = {"merchant": merchant, **_product_context(product, language)}
    return _respond(request, context, language=language, status=200)
