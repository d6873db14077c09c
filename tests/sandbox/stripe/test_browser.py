"""A real browser (Debian's chromium) pays with 4242 inside a same-origin iframe, the way the
sandbox's Messenger emulator shows the checkout webview: our checkout page shows its Pay form in
the frame, the stand-in's hosted page takes the card, and the frame lands on the thank-you page."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from celery.exceptions import Retry

from commerce.models import Order
from payments.models import Payment, ProviderEvent
from payments.services.checkout_links import checkout_token_create
from payments.tasks import process_provider_event
from sandbox.stripe.models import EventDelivery, StripeObject
from sandbox.stripe.tasks import deliver_event

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_shopper_pays_with_4242_in_a_same_origin_iframe(stand_in, make_order):
    sync_api = pytest.importorskip("playwright.sync_api")
    order = make_order(email="layla@example.com")
    checkout = f"/checkout/{checkout_token_create(order=order)}/?lang=en"
    host = f"{stand_in.url}/sandbox-frame-host/"
    ARTIFACTS.mkdir(exist_ok=True)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            page = browser.new_page(viewport={"width": 420, "height": 900})
            page.route(
                host,
                lambda route: route.fulfill(
                    status=200,
                    content_type="text/html",
                    body=(
                        "<!doctype html><title>webview</title>"
                        f'<iframe name="webview" src="{checkout}" '
                        'style="width:400px;height:860px;border:0"></iframe>'
                    ),
                ),
            )
            page.goto(host)
            frame = page.frame_locator("iframe[name=webview]")
            frame.locator("button.pay").click()  # our Pay form, shown because same-origin

            sync_api.expect(frame.locator("[data-testid=card-number]")).to_be_visible()
            sync_api.expect(frame.locator("[data-testid=stripe-email]")).to_have_value(
                "layla@example.com"
            )
            sync_api.expect(frame.locator("[data-testid=total]")).to_have_text("$40.00")
            sync_api.expect(frame.locator("[data-testid=shipping-option]")).to_be_checked()
            frame.locator("[data-testid=card-number]").fill("4242 4242 4242 4242")
            frame.locator("[data-testid=card-expiry]").fill("12 / 34")
            frame.locator("[data-testid=card-cvc]").fill("123")
            frame.locator("[data-testid=card-name]").fill("Layla Haddad")
            page.screenshot(path=str(ARTIFACTS / "sandbox-stripe-hosted-page.png"))
            frame.locator("[data-testid=pay]").click()

            sync_api.expect(frame.locator("body")).to_contain_text(
                "Thank you — your receipt will arrive in Messenger"
            )
            page.screenshot(path=str(ARTIFACTS / "sandbox-stripe-paid.png"))
        finally:
            browser.close()

    payment = Payment.objects.get(order=order)
    session = StripeObject.objects.get(pk=payment.checkout_session_id).data
    assert session["status"] == "complete" and session["payment_status"] == "paid"
    for delivery in EventDelivery.objects.filter(state=EventDelivery.State.PENDING):
        with contextlib.suppress(Retry):
            deliver_event.run(delivery.pk)
    for event in ProviderEvent.objects.filter(status=ProviderEvent.Status.PENDING):
        process_provider_event.run(event.pk)
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
