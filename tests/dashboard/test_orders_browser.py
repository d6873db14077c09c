"""The dashboard in a real browser (Debian's chromium through Playwright, against the live
server): an open orders list shows a new order without a reload, and the order page ships it.

The full journey (an order paid through the sandbox appearing, its shipping update reaching the
chat) lives in tests/e2e; this one creates the order in the database while the page is open.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connections
from django.test import Client
from django.urls import reverse

from commerce.models import Order

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 20_000
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"


@pytest.fixture
def browser_page(live_server, operator, monkeypatch):
    """A chromium page signed in as the operator (the session cookie of a forced login)."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the test reads the database
    # between browser steps, which Django would otherwise refuse there.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    client = Client()
    client.force_login(operator)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.add_cookies(
                [
                    {
                        "name": django_settings.SESSION_COOKIE_NAME,
                        "value": cookie.value,
                        "url": live_server.url,
                    }
                ]
            )
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()
            # Code run inside Playwright's context gets its own database connection (Django's
            # connections are context-local); close it, or dropping the test database fails.
            connections.close_all()


def test_open_orders_list_shows_a_new_order_without_reload(
    live_server, browser_page, merchant_a, make_order, orders
):
    page = browser_page
    page.goto(f"{live_server.url}{reverse('dashboard:orders')}")
    page.wait_for_selector(f'tr[data-id="{orders["a"][0].pk}"]')
    page.evaluate("() => { window.__notReloaded = true; }")

    new = make_order(merchant=merchant_a, status=Order.Status.PAID, first_name="Nadia")

    row = page.wait_for_selector(f'tr[data-id="{new.pk}"]')
    assert new.number in row.inner_text() and "Nadia" in row.inner_text()
    assert page.evaluate("() => window.__notReloaded") is True  # the same page, not reloaded
    first = page.locator("table.orders tbody tr").first
    assert first.get_attribute("data-id") == str(new.pk)  # on top, the newest
    assert "is-new" in (first.get_attribute("class") or "")  # highlighted
    assert "1 new since the page opened" in page.inner_text("[data-live-status]")
    page.screenshot(path=str(ARTIFACTS / "orders-live-new-order.png"))


def test_fulfilling_from_the_order_page_ships_it(live_server, browser_page, merchant_a, make_order):
    order = make_order(merchant=merchant_a, status=Order.Status.PAID, total_minor=4000)
    page = browser_page
    page.goto(f"{live_server.url}{reverse('dashboard:order_detail', args=[order.pk])}")

    page.fill("form.fulfil input[name=carrier]", "Aramex")
    page.fill("form.fulfil input[name=tracking_number]", "AX-778812")
    page.fill("form.fulfil input[name=tracking_url]", "https://track.example/AX-778812")
    page.click("form.fulfil button[type=submit]")

    page.wait_for_selector('[data-status="fulfilled"]')
    assert "shipped with Aramex AX-778812" in page.inner_text("ul.flash")
    page.screenshot(path=str(ARTIFACTS / "order-fulfilled.png"))
    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLED
    shipment = order.shipments.get()
    assert (shipment.carrier, shipment.tracking_number) == ("Aramex", "AX-778812")
