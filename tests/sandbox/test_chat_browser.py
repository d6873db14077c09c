"""The chat page in a real browser (Debian's chromium through Playwright): what the page sent is
rendered like Messenger, and taps reach the service."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from messenger.models import InboundEvent, MessengerPage
from sandbox.meta.models import GraphMessage
from sandbox.meta.services.graph import message_id_new
from tests.factories import merchant_create, product_create, variant_create
from tests.sandbox.conftest import PAGE_ID, TOKEN

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
    pytest.mark.django_db(transaction=True),
]


def _sent(shopper, message: dict, seconds_ago: int) -> GraphMessage:
    """A message as if the service had sent it through the Send API."""
    return GraphMessage.objects.create(
        page=shopper.page,
        shopper=shopper,
        recipient_psid=shopper.psid,
        message_id=message_id_new(),
        body={"recipient": {"id": shopper.psid}, "messaging_type": "RESPONSE", "message": message},
        messaging_type="RESPONSE",
        received_at=timezone.now() - timedelta(seconds=seconds_ago),
    )


def _card(title: str, price: str, image: str, product: int, checkout: str) -> dict:
    return {
        "title": title,
        "subtitle": f"{price} · in stock",
        "image_url": image,
        "buttons": [
            {"type": "postback", "title": "Add to cart", "payload": f"ADD:variant={product}"},
            {
                "type": "web_url",
                "title": "Details",
                "url": checkout,
                "webview_height_ratio": "tall",
            },
        ],
    }


def test_carousel_quick_replies_and_webview_render_and_taps_reach_the_service(
    live_server, settings, sandbox_page, make_shopper
):
    sync_api = pytest.importorskip("playwright.sync_api")
    settings.PUBLIC_BASE_URL = live_server.url
    settings.GRAPH_API_BASE = f"{live_server.url}/sandbox/graph"
    merchant = merchant_create()
    MessengerPage.objects.create(
        merchant=merchant, page_id=PAGE_ID, name="Souq Demo", access_token=TOKEN
    )
    product = product_create(merchant=merchant, title="Linen shirt")
    variant_create(product=product, price_minor=2500)
    sandbox_page.messenger_profile = {
        "get_started": {"payload": "GET_STARTED"},
        "persistent_menu": [
            {
                "locale": "default",
                "call_to_actions": [
                    {"type": "postback", "title": "Shop", "payload": "SHOP"},
                    {"type": "postback", "title": "My orders", "payload": "ORDERS"},
                ],
            }
        ],
    }
    sandbox_page.save()
    shopper = make_shopper(email="emma@example.com", phone="+14155550123")
    image = f"{live_server.url}/static/payments/placeholder.svg"
    details = f"{live_server.url}/shop/{merchant.slug}/{product.handle}/"  # the product page
    _sent(shopper, {"text": "Hi Emma! Here are our T-shirts:"}, 30)
    _sent(
        shopper,
        {
            "attachment": {
                "type": "template",
                "payload": {
                    "template_type": "generic",
                    "image_aspect_ratio": "square",
                    "elements": [
                        _card("Linen shirt", "$25.00", image, 1, details),
                        _card("Cotton tee", "$15.00", image, 2, details),
                        _card("Hoodie", "$45.00", image, 3, details),
                    ],
                },
            },
            "quick_replies": [
                {"content_type": "text", "title": "More", "payload": "MORE"},
                {"content_type": "user_email"},
                {"content_type": "user_phone_number"},
            ],
        },
        20,
    )
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(f"{live_server.url}/sandbox/chat/{PAGE_ID}/{shopper.psid}/")
            expect = sync_api.expect

            cards = page.locator("[data-testid=card]")
            expect(cards).to_have_count(3)
            expect(cards.nth(0).locator("[data-testid=card-title]")).to_have_text("Linen shirt")
            expect(cards.nth(0).locator("[data-testid=button]")).to_have_text(
                ["Add to cart", "Details"]
            )
            replies = page.locator("[data-testid=quick-reply]")
            expect(replies).to_have_text(["More", "emma@example.com", "+14155550123"])
            expect(page.locator("[data-testid=conversation]")).to_have_attribute("dir", "ltr")
            # Loading is asynchronous: wait for every image to finish (loaded or broken),
            # then check that each one actually rendered.
            page.wait_for_function(
                "() => Array.from(document.querySelectorAll('.card-image img'))"
                ".every(i => i.complete)"
            )
            images = page.evaluate(
                "() => Array.from(document.querySelectorAll('.card-image img'))"
                ".map(i => i.complete && i.naturalWidth > 0)"
            )
            assert images == [True, True, True]
            page.screenshot(path=str(ARTIFACTS / "sandbox-chat-carousel.png"))

            # A URL button opens the webview at its height ratio; closing removes it.
            cards.nth(1).locator("[data-testid=button]", has_text="Details").click()
            webview = page.locator("[data-testid=webview]")
            expect(webview).to_be_visible()
            expect(webview).to_have_attribute("data-height-ratio", "tall")
            page.locator("[data-testid=webview-close]").click()
            expect(webview).to_have_count(0)

            # The product page's own Back to the chat (Messenger's closeWindow address) closes it.
            cards.nth(0).locator("[data-testid=button]", has_text="Details").click()
            expect(webview).to_be_visible()
            frame = page.frame_locator("[data-testid=webview]")
            expect(frame.locator("body")).to_contain_text("Linen shirt")
            back = frame.locator("a", has_text="Back to the chat")
            assert back.get_attribute("href").startswith("https://www.messenger.com/closeWindow/")
            back.click()
            expect(webview).to_have_count(0)

            # The email quick reply sends the shopper's address, as Messenger does.
            replies.nth(1).click()
            mine = page.locator("[data-testid=message][data-from=shopper]")
            expect(mine).to_have_text(["emma@example.com"])
            expect(replies).to_have_count(0)  # gone once the shopper answered

            # The persistent menu posts a postback.
            page.locator("[data-testid=menu-toggle]").click()
            page.locator("[data-testid=menu-item]", has_text="My orders").click()
            expect(mine).to_have_text(["emma@example.com", "My orders"])
        finally:
            browser.close()

    kinds = list(InboundEvent.objects.order_by("id").values_list("kind", flat=True))
    assert kinds == ["message", "postback"]
    email = InboundEvent.objects.get(kind="message").payload["message"]
    assert email["quick_reply"] == {"payload": "emma@example.com"}
    assert InboundEvent.objects.get(kind="postback").payload["postback"]["payload"] == "ORDERS"


def test_arabic_welcome_screen_then_a_right_to_left_conversation_with_a_receipt(
    live_server, settings, sandbox_page, make_shopper, monkeypatch
):
    sync_api = pytest.importorskip("playwright.sync_api")
    # The test writes the shop's replies while the browser runs (Playwright's sync API runs an
    # event loop in this thread, which Django would otherwise take for async code).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.PUBLIC_BASE_URL = live_server.url
    MessengerPage.objects.create(
        merchant=merchant_create(), page_id=PAGE_ID, name="Souq Demo", access_token=TOKEN
    )
    sandbox_page.messenger_profile = {
        "get_started": {"payload": "GET_STARTED"},
        "greeting": [
            {"locale": "default", "text": "Hi {{user_first_name}}!"},
            {"locale": "ar_AR", "text": "أهلًا {{user_first_name}}! مرحبًا بك في سوق ديمو."},
        ],
    }
    sandbox_page.save()
    layla = make_shopper(first_name="ليلى", last_name="حداد", locale="ar_AR", last_message_at=None)
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(f"{live_server.url}/sandbox/chat/{PAGE_ID}/{layla.psid}/")
            expect = sync_api.expect
            expect(page.locator("[data-testid=greeting]")).to_have_text(
                "أهلًا ليلى! مرحبًا بك في سوق ديمو."
            )
            expect(page.locator("[data-testid=composer]")).to_be_hidden()
            page.screenshot(path=str(ARTIFACTS / "sandbox-chat-welcome-ar.png"))
            page.locator("[data-testid=get-started]").click()
            expect(page.locator("[data-testid=composer]")).to_be_visible()
            expect(page.locator("[data-testid=greeting]")).to_be_hidden()
            assert InboundEvent.objects.get().payload["postback"]["payload"] == "GET_STARTED"

            # The shop answers (as its worker would): a button template, then the receipt.
            _sent(
                layla,
                {
                    "attachment": {
                        "type": "template",
                        "payload": {
                            "template_type": "button",
                            "text": "طلبك A1B2-1042: المجموع 30.50 US$",
                            "buttons": [
                                {"type": "postback", "title": "طلباتي", "payload": "ORDERS"}
                            ],
                        },
                    }
                },
                0,
            )
            _sent(layla, RECEIPT_AR, 0)
            expect(page.locator("[data-testid=receipt]")).to_be_visible()
            expect(page.locator("[data-testid=button]")).to_have_text(["طلباتي"])
            conversation = page.locator("[data-testid=conversation]")
            expect(conversation).to_have_attribute("dir", "rtl")
            assert (
                page.evaluate(
                    "() => getComputedStyle(document.querySelector('[data-testid=conversation]'))"
                    ".direction"
                )
                == "rtl"
            )
            page.screenshot(path=str(ARTIFACTS / "sandbox-chat-receipt-ar.png"))
        finally:
            browser.close()


RECEIPT_AR = {
    "attachment": {
        "type": "template",
        "payload": {
            "template_type": "receipt",
            "recipient_name": "ليلى حداد",
            "order_number": "A1B2-1042",
            "currency": "USD",
            "payment_method": "Visa 4242",
            "timestamp": "1764067200",
            "address": {
                "street_1": "شارع الملك فهد 12",
                "street_2": "",
                "city": "الرياض",
                "postal_code": "12211",
                "state": "",
                "country": "SA",
            },
            "summary": {"subtotal": 25.5, "shipping_cost": 5, "total_cost": 30.5},
            "elements": [{"title": "قميص كتان", "subtitle": "M", "quantity": 1, "price": 25.5}],
        },
    }
}
