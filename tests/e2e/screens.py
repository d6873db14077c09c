"""What the shopper and the merchant see, as the journeys use it: the emulator's chat, the
checkout webview (our checkout page, then the Stripe stand-in's hosted page), the admin and the
operators' dashboard.

Only the DOM contracts of the pages are used (``data-testid`` attributes of the emulator and of
the Stripe stand-in, form field names of the admin, the dashboard's rows and forms). Waiting is
always for something to appear, never for a fixed time. Taps go through ``Journey.tap`` so they
are counted; typing, closing the webview and the emulator's own set-up page are not taps of the
purchase.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.utils import timezone
from playwright.sync_api import Locator, Page, expect

from commerce.models import Customer
from tests.e2e.harness import DEMO_OPERATOR, TIMEOUT_MS, Journey, Shop

CARD_OK = "4242 4242 4242 4242"
CARD_DECLINED = "4000 0000 0000 0002"


@dataclass
class Chat:
    journey: Journey
    shop: Shop

    @property
    def page(self) -> Page:
        return self.journey.page

    # -- entering the emulator (set-up, not taps) -------------------------------------------------

    def start_as_new_shopper(
        self, *, first: str, last: str, locale: str, email: str, phone: str
    ) -> str:
        """Create a shopper on ``/sandbox/`` and open their chat; returns the PSID."""
        self.page.goto(self.shop.at("/sandbox/"))
        return self.fill_shopper_form(
            first=first, last=last, locale=locale, email=email, phone=phone
        )

    def open_link_as_new_shopper(
        self, path: str, *, first: str, last: str, locale: str, email: str, phone: str
    ) -> str:
        """Open an entry point (m.me link, ad) as a shopper created on its page."""
        self.page.goto(self.shop.at(path))
        return self.fill_shopper_form(
            first=first, last=last, locale=locale, email=email, phone=phone
        )

    def fill_shopper_form(
        self, *, first: str, last: str, locale: str, email: str, phone: str
    ) -> str:
        page = self.page
        select = page.locator("[data-testid=page-select]")
        if select.count():
            select.select_option(self.shop.page_id)
        page.locator("[data-testid=shopper-first-name]").fill(first)
        page.locator("[data-testid=shopper-last-name]").fill(last)
        page.locator("[data-testid=shopper-locale]").select_option(locale)
        page.locator("[data-testid=shopper-email]").fill(email)
        page.locator("[data-testid=shopper-phone]").fill(phone)
        page.locator("[data-testid=start-chat]").click()
        page.wait_for_url("**/sandbox/chat/**")
        return self.psid

    def open(self, psid: str) -> None:
        self.page.goto(self.shop.at(f"/sandbox/chat/{self.shop.page_id}/{psid}/"))
        expect(self.conversation).to_be_visible()

    @property
    def psid(self) -> str:
        return urlsplit(self.page.url).path.rstrip("/").rsplit("/", 1)[-1]

    # -- what is on screen ------------------------------------------------------------------------

    @property
    def conversation(self) -> Locator:
        return self.page.locator("[data-testid=conversation]")

    @property
    def replies(self) -> Locator:
        """The shop's messages, oldest first."""
        return self.page.locator("[data-testid=message][data-from=page]")

    def reply_with(self, text: str) -> Locator:
        return self.replies.filter(has_text=text).last

    def card(self, title: str) -> Locator:
        titles = self.page.locator("[data-testid=card-title]", has_text=title)
        return self.page.locator("[data-testid=card]").filter(has=titles).last

    def quick_reply(self, text: str | re.Pattern) -> Locator:
        return self.page.locator("[data-testid=quick-reply]", has_text=text).first

    def quick_reply_of_type(self, content_type: str) -> Locator:
        return self.page.locator(f"[data-testid=quick-reply][data-type={content_type}]")

    @property
    def pay_button(self) -> Locator:
        """The Pay URL button of the latest order summary."""
        summary = self.page.locator("[data-testid=button-template]").last
        return summary.locator("[data-testid=button][data-type=web_url]")

    @property
    def receipt(self) -> Locator:
        return self.page.locator("[data-testid=receipt]").last

    # -- taps -------------------------------------------------------------------------------------

    def get_started(self) -> None:
        self.journey.tap(self.page.locator("[data-testid=get-started]"), "Get Started")

    def tap_card_button(self, title: str, button: str) -> None:
        card = self.card(title)
        self.journey.tap(
            card.locator("[data-testid=button]", has_text=button), f"{button} ({title})"
        )

    def tap_quick_reply(self, text: str | re.Pattern) -> None:
        self.journey.tap(self.quick_reply(text), str(getattr(text, "pattern", text)))

    def tap_contact(self, content_type: str) -> None:
        """The ``user_email`` / ``user_phone_number`` chip Messenger fills from the profile."""
        self.journey.tap(self.quick_reply_of_type(content_type), content_type)

    def tap_pay(self) -> None:
        """The Pay button: our checkout page opens in the webview (tall)."""
        self.journey.tap(self.pay_button, "Pay (chat)")
        expect(self.webview).to_have_attribute("data-height-ratio", "tall")
        expect(self.webview_frame.locator("button.pay")).to_be_visible()

    def type(self, text: str) -> None:
        """Typing is not a tap: the composer and its Send button."""
        self.page.locator("[data-testid=composer]").fill(text)
        self.page.locator("[data-testid=send]").click()

    # -- the webview ------------------------------------------------------------------------------

    @property
    def webview(self) -> Locator:
        return self.page.locator("[data-testid=webview]")

    @property
    def webview_frame(self):
        return self.page.frame_locator("[data-testid=webview]")

    def close_webview(self) -> None:
        close = self.page.locator("[data-testid=webview-close]")
        if close.is_visible():
            close.click()

    def pay_in_webview(
        self, *, card: str, name: str, expect_error: bool = False, shot: str = ""
    ) -> None:
        """Our checkout page's Pay, then the card on the Stripe stand-in's page and its Pay."""
        frame = self.webview_frame
        if frame.locator("[data-testid=card-number]").count() == 0:
            self.journey.tap(frame.locator("button.pay"), "Pay (checkout page)")
        expect(frame.locator("[data-testid=card-number]")).to_be_visible()
        email = frame.locator("[data-testid=stripe-email]")
        if not email.input_value():
            email.fill("shopper@example.com")
        frame.locator("[data-testid=card-number]").fill(card)
        frame.locator("[data-testid=card-expiry]").fill("12 / 34")
        frame.locator("[data-testid=card-cvc]").fill("123")
        frame.locator("[data-testid=card-name]").fill(name)
        if shot:
            self.journey.shot(shot)
        self.journey.tap(frame.locator("[data-testid=pay]"), "Pay (Stripe)")
        if expect_error:
            expect(frame.locator("[data-testid=card-error]")).to_be_visible()
        else:
            expect(frame.locator("[data-testid=card-number]")).to_have_count(0)

    def wait_for_receipt(self) -> Locator:
        expect(self.receipt).to_be_visible(timeout=TIMEOUT_MS)
        return self.receipt


def checkout_as_new_shopper(chat: Chat, *, address: str) -> None:
    """Email and phone with Messenger's quick replies, the address typed, then the Pay button."""
    expect(chat.quick_reply_of_type("user_email")).to_be_visible()
    chat.tap_contact("user_email")
    expect(chat.quick_reply_of_type("user_phone_number")).to_be_visible()
    chat.tap_contact("user_phone_number")
    expect(chat.page.locator("[data-testid=quick-reply]")).to_have_count(1)  # only Cart is left
    chat.type(address)
    expect(chat.pay_button).to_be_visible()


def a_day_passes(chat: Chat, psid: str) -> None:
    """The shopper's last message is 25 hours old, for the emulator and for the service.

    Outside Messenger's 24-hour window the shop may only send tagged messages, so a shipping
    update then goes out tagged ``POST_PURCHASE_UPDATE``, which the emulator shows.
    """
    chat.page.locator("button[name=action][value=close_window]").click()
    expect(chat.conversation).to_be_visible()
    Customer.objects.filter(psid=psid).update(
        last_interaction_at=timezone.now() - timedelta(hours=25)
    )


@dataclass
class Admin:
    """The Django admin in its own tab, logged in as the demo shop's owner."""

    journey: Journey
    shop: Shop
    page: Page | None = None

    def open(self, path: str) -> Page:
        if self.page is None:
            self.page = self.journey.page.context.new_page()
            self.page.goto(self.shop.at(f"/admin/login/?next={path}"))
            username, password = self.shop.staff
            self.page.locator("input[name=username]").fill(username)
            self.page.locator("input[name=password]").fill(password)
            self.page.locator("input[type=submit], button[type=submit]").first.click()
            self.page.wait_for_url(f"**{path}")
        else:
            self.page.goto(self.shop.at(path))
        return self.page

    def order_page(self, order) -> Page:
        return self.open(f"/admin/commerce/order/{order.pk}/change/")


@dataclass
class Dashboard:
    """The operators' dashboard (``/dashboard/``) in a desktop window of its own."""

    page: Page
    shop: Shop

    def sign_in(self, login: tuple[str, str] = DEMO_OPERATOR) -> None:
        """The dashboard's own sign-in form; it lands on the orders list."""
        self.page.goto(self.shop.at("/dashboard/login/"))
        username, password = login
        self.page.locator("input[name=username]").fill(username)
        self.page.locator("input[name=password]").fill(password)
        self.page.locator('form[action$="/login/"] button[type=submit]').click()
        expect(self.orders_table).to_be_visible()

    # -- the orders list ---------------------------------------------------------------------------

    @property
    def orders_table(self) -> Locator:
        return self.page.locator("table.orders")

    @property
    def live_status(self) -> Locator:
        return self.page.locator("[data-live-status]")

    def order_row(self, order) -> Locator:
        return self.orders_table.locator(f'tbody tr[data-id="{order.pk}"]')

    def mark_page(self) -> None:
        """Leave a mark in the page's JavaScript state: a reload or a navigation would wipe it."""
        self.page.evaluate("() => { window.__notReloaded = true; }")

    def page_is_marked(self) -> bool:
        return self.page.evaluate("() => window.__notReloaded === true")

    def open_order_from_list(self, order) -> None:
        self.order_row(order).locator("a.order-number").click()
        self.page.wait_for_url(f"**/dashboard/orders/{order.pk}/")

    # -- the order page ----------------------------------------------------------------------------

    @property
    def order_status(self) -> Locator:
        return self.page.locator("[data-status]").first

    @property
    def flash(self) -> Locator:
        return self.page.locator("ul.flash")

    def fulfil(self, *, carrier: str, tracking_number: str, tracking_url: str) -> None:
        """The order page's fulfil form, then its Ship button (the confirmation)."""
        form = self.page.locator("form.fulfil")
        form.locator("input[name=carrier]").fill(carrier)
        form.locator("input[name=tracking_number]").fill(tracking_number)
        form.locator("input[name=tracking_url]").fill(tracking_url)
        form.locator("button[type=submit]").click()
        expect(self.flash).to_be_visible()
