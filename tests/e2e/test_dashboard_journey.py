"""The operator's side of a sale, live: an order paid through the sandbox appears on an open
dashboard without a reload, the operator ships it from the order page, and the shipping update
reaches the shopper's chat.

Two windows of the same chromium: the operator's desktop-sized dashboard, signed in through its
own form with the orders list open, and the shopper's phone (the ``journey`` fixture) in the
Messenger emulator. Everything between them is the real service (web, Celery worker, Redis,
PostgreSQL) with the sandbox standing in for Meta and Stripe; see ``conftest.py``.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from commerce.models import Order
from tests.e2e.harness import DESKTOP, TIMEOUT_MS
from tests.e2e.screens import CARD_OK, Chat, Dashboard, a_day_passes, checkout_as_new_shopper

# seed_demo's featured T-shirt; the size's quick reply reads "M · $19.00".
TEE = "Desert T-shirt"
SIZE_M = re.compile(r"^\s*M\b")
# The orders list polls every 3 s; the worker, the webhooks and Stripe's event come first.
LIVE_TIMEOUT_MS = 3 * TIMEOUT_MS

CARRIER, TRACKING = "Aramex", "AWB987654321"
TRACKING_URL = f"https://track.example/{TRACKING}"


@pytest.fixture
def dashboard(browser, shop, journey, request) -> Iterator[Dashboard]:
    """The operator's dashboard in a desktop window of its own (its own cookies), signed in."""
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(TIMEOUT_MS)
    screen = Dashboard(page=context.new_page(), shop=shop)
    try:
        screen.sign_in()
        yield screen
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            with contextlib.suppress(Exception):
                screen.page.screenshot(path=str(journey.folder / "failed-dashboard.png"))
        context.close()


def test_an_order_paid_in_the_chat_appears_live_on_the_dashboard_and_ships_from_there(
    journey, shop, dashboard
):
    # The operator has the orders list open, and leaves it alone: no reload from here on.
    expect(dashboard.live_status).to_be_visible()
    dashboard.mark_page()
    journey.shot("dashboard-before", page=dashboard.page)

    # A new shopper buys the T-shirt in the chat and pays with 4242 on the Stripe stand-in.
    chat = Chat(journey, shop)
    psid = chat.start_as_new_shopper(
        first="Hana", last="Karim", locale="en_US", email="hana@example.com", phone="+14155550177"
    )
    chat.get_started()
    chat.tap_card_button(TEE, "Buy now")
    chat.tap_quick_reply(SIZE_M)
    checkout_as_new_shopper(chat, address="Hana Karim, 8 Harbor Road, Oakland, USA")
    chat.tap_pay()
    chat.pay_in_webview(card=CARD_OK, name="Hana Karim")
    chat.close_webview()
    chat.wait_for_receipt()
    journey.shot("receipt")
    order = Order.objects.get(customer__psid=psid)
    assert order.status == Order.Status.PAID

    # The open list shows it by itself, on top, marked paid.
    row = dashboard.order_row(order)
    expect(row.locator(".badge.paid")).to_have_text("Paid", timeout=LIVE_TIMEOUT_MS)
    expect(row).to_contain_text(order.number)
    expect(row).to_contain_text("Hana Karim")
    expect(row).to_contain_text("$24.00")  # $19.00 and Standard shipping
    expect(row).to_have_class(re.compile(r"\bis-new\b"))
    expect(dashboard.orders_table.locator("tbody tr").first).to_have_attribute(
        "data-id", str(order.pk)
    )
    expect(dashboard.live_status).to_contain_text("1 new since the page opened")
    assert dashboard.page_is_marked(), "the orders list was reloaded"
    journey.shot("dashboard-new-order-live", page=dashboard.page)

    # A day later (outside the 24-hour window, so the update must go out tagged), the operator
    # opens the order from the list and ships it.
    a_day_passes(chat, psid)
    dashboard.open_order_from_list(order)
    expect(dashboard.order_status).to_have_attribute("data-status", "paid")
    dashboard.fulfil(carrier=CARRIER, tracking_number=TRACKING, tracking_url=TRACKING_URL)
    expect(dashboard.order_status).to_have_attribute("data-status", "fulfilled")
    expect(dashboard.flash).to_contain_text(f"shipped with {CARRIER} {TRACKING}")
    journey.shot("dashboard-order-fulfilled", page=dashboard.page)

    order.refresh_from_db()
    assert order.status == Order.Status.FULFILLED
    shipment = order.shipments.get()
    assert (shipment.carrier, shipment.tracking_number, shipment.tracking_url) == (
        CARRIER,
        TRACKING,
        TRACKING_URL,
    )

    # The shopper's chat gets the tagged shipping update with its Track package button.
    update = chat.reply_with(f"has shipped with {CARRIER}")
    expect(update).to_be_visible()
    expect(update).to_contain_text(order.number)
    expect(update).to_contain_text(f"Tracking number: {TRACKING}")
    expect(update).to_have_attribute("data-tag", "POST_PURCHASE_UPDATE")
    expect(update.locator("[data-testid=button]", has_text="Track package")).to_be_visible()
    journey.shot("chat-shipping-update")
