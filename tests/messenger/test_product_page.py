"""The product page opened in the Messenger webview: language, prices, share link, 404s."""

from __future__ import annotations

import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from commerce.models import ProductImage
from core.money import Money
from messenger.models import MessengerPage
from messenger.views import m_me_link, product_page_url, product_share_ref
from tests.factories import merchant_create, product_create, variant_create

pytestmark = pytest.mark.django_db

PAGE_ID = "104412345678901"


@pytest.fixture
def shop():
    merchant = merchant_create(name="Alpha Shop")
    product = product_create(
        merchant=merchant,
        title="Linen shirt",
        title_ar="قميص كتان",
        description="Light and cool.\nMade in Egypt.",
        description_ar="خفيف ومنعش.",
    )
    retired = variant_create(product=product, sku="LIN-XS", name="XS", position=0, is_active=False)
    small = variant_create(
        product=product, sku="LIN-S", name="S", name_ar="صغير", position=1, price_minor=1250
    )
    large = variant_create(
        product=product, sku="LIN-L", name="L", position=2, price_minor=1450, stock=0
    )
    page = MessengerPage.objects.create(
        merchant=merchant, page_id=PAGE_ID, name="Alpha", access_token="EAAtoken-1234567890"
    )
    return {
        "merchant": merchant,
        "product": product,
        "retired": retired,
        "small": small,
        "large": large,
        "page": page,
    }


def _url(merchant, handle: str) -> str:
    return reverse(
        "messenger:product_page", kwargs={"merchant_slug": merchant.slug, "handle": handle}
    )


def _get(client, shop, **extra):
    query = extra.pop("query", "")
    return client.get(_url(shop["merchant"], shop["product"].handle) + query, **extra)


def test_english_page_shows_product_prices_and_stock(client, shop):
    response = _get(client, shop, HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    assert response.status_code == 200
    content = response.content.decode()
    assert '<html lang="en" dir="ltr">' in content
    assert "<h1>Linen shirt</h1>" in content
    assert "Light and cool.<br>Made in Egypt." in content
    assert "From $12.50" in content
    assert "$14.50" in content
    assert "In stock" in content and "Out of stock" in content
    assert "XS" not in content  # the inactive variant
    assert response["Content-Language"] == "en"


def test_arabic_page_is_right_to_left_with_arabic_text_and_prices(client, shop):
    response = _get(client, shop, query="?lang=ar", HTTP_ACCEPT_LANGUAGE="en")

    content = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="ar" dir="rtl">' in content
    assert "<h1>قميص كتان</h1>" in content
    assert "خفيف ومنعش." in content
    assert "صغير" in content
    price = Money(1250, "USD").format("ar")
    assert price == "\u200f12.50\xa0US$"
    assert price in content
    assert "شارك هذا المنتج" in content
    assert "نفد من المخزون" in content
    assert response["Content-Language"] == "ar"


def test_arabic_comes_from_accept_language(client, shop):
    response = _get(client, shop, HTTP_ACCEPT_LANGUAGE="ar-SA,ar;q=0.9,en;q=0.5")

    assert '<html lang="ar" dir="rtl">' in response.content.decode()


def test_accept_language_quality_decides(client, shop):
    response = _get(client, shop, HTTP_ACCEPT_LANGUAGE="fr-FR, ar;q=0.4, en;q=0.8")

    assert '<html lang="en" dir="ltr">' in response.content.decode()


def test_without_any_language_hint_the_shops_language_is_used(client, shop):
    shop["merchant"].default_locale = "ar"
    shop["merchant"].save()

    response = _get(client, shop)

    assert '<html lang="ar" dir="rtl">' in response.content.decode()


def test_share_link_opens_the_conversation_at_the_first_active_variant(client, shop):
    content = _get(client, shop).content.decode()

    link = f"https://m.me/{PAGE_ID}?ref=product-LIN-S"
    assert f'value="{link}"' in content
    assert f'href="{link}"' in content
    assert "Copy link" in content


def test_share_link_uses_the_first_active_page_of_the_merchant(client, shop):
    shop["page"].is_active = False
    shop["page"].save()
    MessengerPage.objects.create(merchant=shop["merchant"], page_id="555", name="Second")
    other = merchant_create()
    MessengerPage.objects.create(merchant=other, page_id="999", name="Someone else's")

    content = _get(client, shop).content.decode()

    assert "https://m.me/555?ref=product-LIN-S" in content
    assert "m.me/999" not in content


def test_no_share_block_without_an_active_page(client, shop):
    shop["page"].is_active = False
    shop["page"].save()

    content = _get(client, shop).content.decode()

    assert "m.me" not in content
    assert "<script" not in content


def test_a_product_without_active_variants_shows_as_unavailable(client, shop):
    shop["product"].variants.update(is_active=False)

    response = _get(client, shop)

    assert response.status_code == 200
    content = response.content.decode()
    assert "This product is currently unavailable." in content
    assert "m.me" not in content


def test_back_to_chat_closes_the_webview(client, shop):
    content = _get(client, shop, query="?lang=ar").content.decode()

    [href] = re.findall(r'href="(https://www\.messenger\.com/closeWindow/[^"]*)"', content)
    query = parse_qs(urlsplit(href.replace("&amp;", "&")).query)
    assert query == {"display_text": ["العودة إلى المحادثة"]}


def test_images_are_ours_and_the_close_window_shows_the_first(client, shop, media_root, settings):
    settings.PUBLIC_BASE_URL = "https://shop.example.com"
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 120, 200)).save(buffer, format="PNG")
    image = ProductImage.objects.create(
        product=shop["product"],
        image=SimpleUploadedFile("shirt.png", buffer.getvalue(), "image/png"),
        alt_text="Blue linen shirt",
    )

    content = _get(client, shop).content.decode()

    assert f'<img src="{image.image.url}" alt="Blue linen shirt" width="8" height="8"' in content
    assert f'content="https://shop.example.com{image.image.url}"' in content  # og:image
    [href] = re.findall(r'href="(https://www\.messenger\.com/closeWindow/[^"]*)"', content)
    query = parse_qs(urlsplit(href.replace("&amp;", "&")).query)
    assert query["image_url"] == [f"https://shop.example.com{image.image.url}"]


def test_nothing_is_loaded_from_another_site(client, shop):
    content = _get(client, shop).content.decode()

    assets = re.findall(r'<(?:script|img|link|iframe)[^>]*?(?:src|href)="([^"]*)"', content)
    assert assets  # the stylesheet at least
    assert all(not url.startswith(("http:", "https:", "//")) for url in assets)
    assert 'rel="stylesheet" href="/static/messenger/product.css"' in content


def test_headers_allow_short_caching_and_the_messenger_frame(client, shop):
    response = _get(client, shop)

    assert response["Cache-Control"] == "public, max-age=60"
    assert "Accept-Language" in response["Vary"]
    assert "X-Frame-Options" not in response
    csp = response["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://www.messenger.com https://www.facebook.com" in csp
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)
    assert f'<script nonce="{nonce}">' in response.content.decode()


def test_queries_do_not_grow_with_variants_and_images(client, shop, django_assert_max_num_queries):
    for n in range(5):
        variant_create(product=shop["product"], sku=f"LIN-X{n}")

    with django_assert_max_num_queries(5):
        assert _get(client, shop).status_code == 200


def test_inactive_product_is_a_404_in_the_shoppers_language(client, shop):
    shop["product"].is_active = False
    shop["product"].save()

    response = _get(client, shop, query="?lang=ar")

    assert response.status_code == 404
    content = response.content.decode()
    assert '<html lang="ar" dir="rtl">' in content
    assert "المنتج غير موجود" in content
    assert "قميص كتان" not in content


def test_another_merchants_handle_is_a_404(client, shop):
    other = merchant_create(name="Beta")

    response = client.get(_url(other, shop["product"].handle), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 404
    content = response.content.decode()
    assert "Product not found" in content
    assert "Linen shirt" not in content


def test_unknown_or_inactive_merchant_is_a_404(client, shop):
    assert client.get("/shop/no-such-shop/anything/").status_code == 404
    shop["merchant"].is_active = False
    shop["merchant"].save()
    assert _get(client, shop).status_code == 404


def test_unicode_handles_work(client, shop):
    shop["product"].handle = "قميص-كتان"
    shop["product"].save()

    url = product_page_url(product=shop["product"])

    assert client.get(urlsplit(url).path).status_code == 200


def test_only_get_and_head(client, shop):
    url = _url(shop["merchant"], shop["product"].handle)
    assert client.head(url).status_code == 200
    assert client.post(url).status_code == 405


def test_link_helpers(shop, settings):
    settings.PUBLIC_BASE_URL = "https://shop.example.com"
    product = shop["product"]

    assert product_share_ref("LIN-S") == "product-LIN-S"
    assert m_me_link(page_id=PAGE_ID, ref="product-A B/1") == (
        f"https://m.me/{PAGE_ID}?ref=product-A%20B%2F1"
    )
    assert product_page_url(product=product, language="ar") == (
        f"https://shop.example.com/shop/{shop['merchant'].slug}/{product.handle}/?lang=ar"
    )
