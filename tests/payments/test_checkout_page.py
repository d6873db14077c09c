"""The checkout page: the order in the shopper's language, and a Pay button that opens one Stripe
Checkout Session per attempt (reused while open), checked at the Stripe stub."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from commerce.models import Order, OrderEvent
from commerce.notifications import order_subscribers_clear, order_subscribers_restore
from commerce.services.orders import (
    order_cancel,
    order_expire,
    order_mark_paid,
    order_payment_failed,
)
from core.exceptions import ConflictError
from payments.gateways import GatewayError
from payments.gateways.stripe import MAX_NETWORK_RETRIES
from payments.models import Payment
from payments.services.checkout import RETRY_WINDOW, checkout_session_start
from payments.services.checkout_links import SALT, _StampedSigner, checkout_token_create
from payments.views import LINK_MAX_AGE

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_order_notice_subscribers():
    """Transitions made here to set up a state must not reach other apps' handlers."""
    saved = order_subscribers_clear()
    yield
    order_subscribers_clear()
    order_subscribers_restore(saved)


def _path(order: Order) -> str:
    return f"/checkout/{checkout_token_create(order=order)}/"


def _pay(client: Client, order: Order, **data):
    return client.post(_path(order), {"lang": "en", **data})


def _html(response) -> str:
    return response.content.decode()


def _session_posts(stub):
    return stub.requests_to("/v1/checkout/sessions", method="POST")


# -- the page ---------------------------------------------------------------------------------


def test_english_page_shows_lines_images_shipping_tax_discount_and_total(client, make_order):
    order = make_order(
        prices=[2500, 1000],
        quantities=[1, 2],
        tax_rate_bp=500,
        voucher={"kind": "percentage", "percent_bp": 1000},
        titles=["Linen shirt", "Silk scarf"],
    )

    response = client.get(_path(order))

    assert response.status_code == 200
    html = _html(response)
    assert '<html lang="en" dir="ltr">' in html
    assert response["Content-Language"] == "en"
    for line in order.lines.all():
        assert f'<img src="{line.image_url}" alt="{line.product_title}"' in html
    assert "Linen shirt" in html and "Silk scarf" in html
    assert "1 × $25.00" in html and "2 × $10.00" in html and "$20.00" in html
    assert "Subtotal" in html and "$45.00" in html
    assert "Discount (EID10)" in html and "-$4.50" in html
    assert "Shipping · Express" in html and "$5.00" in html
    assert "Tax (5%)" in html and "$2.28" in html
    assert "$47.78" in html and order.total_minor == 4778
    assert re.search(r'<form method="post" action="/checkout/[^"]+/">', html)
    assert 'name="csrfmiddlewaretoken"' in html
    assert "Pay $47.78</button>" in html
    assert "https://www.messenger.com/closeWindow/?" in html
    assert "Your items are held for 30 more minutes." in html


def test_inclusive_tax_is_worded_as_included(client, make_order):
    order = make_order(prices=[2100], shipping_minor=None, tax_rate_bp=500, prices_include_tax=True)

    html = _html(client.get(_path(order)))

    assert "Includes Tax (5%)" in html and "$1.00" in html
    assert "$21.00</bdi></dd></div>\n</dl>" in html  # the total is the price, tax inside


def test_arabic_page_is_right_to_left_with_arabic_text_and_totals(client, make_order):
    order = make_order(
        locale="ar_AR",
        prices=[2500],
        titles=["Linen shirt"],
        titles_ar=["قميص كتان"],
        tax_rate_bp=500,
    )

    response = client.get(_path(order))

    html = _html(response)
    assert response.status_code == 200
    assert '<html lang="ar" dir="rtl">' in html
    assert response["Content-Language"] == "ar"
    assert "قميص كتان" in html
    # Arabic pattern ("\u200f31.50\xa0US$"), a left-to-right mark keeping "US$" in one piece.
    total = order.total.format("ar") + "\u200e"
    assert total in html
    assert "طلبك" in html  # "Your order"
    assert f"ادفع {total}</button>" in html  # the Pay button
    assert "شحن سريع" in html  # the shipping method's Arabic name
    assert f'<img src="{order.lines.get().image_url}" alt="قميص كتان"' in html
    assert '<input type="hidden" name="lang" value="ar">' in html


@pytest.mark.parametrize(
    ("query", "accept", "order_locale", "expected"),
    [
        ("?lang=en", "ar", "ar_AR", "en"),
        ("?lang=ar", "en", "en_US", "ar"),
        ("", "en", "ar_AR", "ar"),
        ("", "ar-KW,ar;q=0.9,en;q=0.5", "", "ar"),
        ("", "fr-FR,en;q=0.8", "", "en"),
    ],
)
def test_language_is_the_query_then_the_order_then_the_browser(
    client, make_order, query, accept, order_locale, expected
):
    order = make_order(locale=order_locale)

    response = client.get(_path(order) + query, HTTP_ACCEPT_LANGUAGE=accept)

    assert response["Content-Language"] == expected
    assert f'<html lang="{expected}"' in _html(response)


def test_page_may_be_framed_by_messenger_only_and_loads_nothing_external(client, make_order):
    order = make_order()

    response = client.get(_path(order))

    assert "X-Frame-Options" not in response
    policy = response["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://www.messenger.com https://www.facebook.com" in policy
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert "no-store" in response["Cache-Control"]
    html = _html(response)
    assert "<script" not in html
    assert re.findall(r'<link[^>]+href="([^"]+)"', html) == ["/static/payments/checkout.css"]


def test_framed_page_opens_the_payment_in_a_new_tab_instead_of_posting(client, make_order):
    """In messenger.com's iframe our CSRF cookie is third-party and Stripe refuses frames."""
    order = make_order()

    html = _html(client.get(_path(order), HTTP_SEC_FETCH_DEST="iframe"))

    assert "<form" not in html
    assert re.search(
        r'<a class="button pay" href="/checkout/[^"]+/\?lang=en" target="_blank"', html
    )


def test_page_framed_by_our_own_site_shows_the_pay_form(client, make_order):
    """The sandbox's Messenger emulator frames webviews on our own origin: the CSRF cookie is
    first-party there, so the shopper pays in the frame."""
    order = make_order()

    html = _html(
        client.get(_path(order), HTTP_SEC_FETCH_DEST="iframe", HTTP_SEC_FETCH_SITE="same-origin")
    )
    cross_site = _html(
        client.get(_path(order), HTTP_SEC_FETCH_DEST="iframe", HTTP_SEC_FETCH_SITE="cross-site")
    )

    assert re.search(r'<form method="post" action="/checkout/[^"]+/">', html)
    assert 'target="_blank"' not in html
    assert "<form" not in cross_site and 'target="_blank"' in cross_site


# -- paying -----------------------------------------------------------------------------------


def test_pay_creates_one_session_and_redirects_to_it(client, make_order, stripe_stub):
    order = make_order(tax_rate_bp=500, voucher={"kind": "fixed", "amount_minor": 500})

    response = _pay(client, order)

    assert response.status_code == 303
    payment = Payment.objects.get(order=order)
    assert response["Location"] == payment.checkout_url
    assert urlsplit(payment.checkout_url).path == f"/c/pay/{payment.checkout_session_id}"
    assert (payment.attempt, payment.status) == (1, Payment.Status.PENDING)
    assert payment.idempotency_key == f"checkout:{order.pk}:1"
    assert (payment.amount_minor, payment.currency) == (order.total_minor, "USD")
    assert payment.is_test is True
    session = stripe_stub.sessions[payment.checkout_session_id]
    assert payment.expires_at.timestamp() == session["expires_at"]
    assert session["amount_total"] == order.total_minor
    [request] = _session_posts(stripe_stub)
    assert request.idempotency_key == f"checkout:{order.pk}:1"
    assert request.params["client_reference_id"] == str(order.pk)
    assert request.params["metadata"]["payment_id"] == str(payment.pk)
    token = checkout_token_create(order=order)
    assert request.params["success_url"] == f"http://127.0.0.1:8000/checkout/{token}/done/?lang=en"
    assert request.params["cancel_url"] == f"http://127.0.0.1:8000/checkout/{token}/cancel/?lang=en"
    event = OrderEvent.objects.get(order=order, kind=OrderEvent.Kind.PAYMENT_STARTED)
    assert event.actor == OrderEvent.Actor.CUSTOMER
    assert event.data["session_id"] == payment.checkout_session_id
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT


def test_pay_pressed_twice_reuses_the_open_session(client, make_order, stripe_stub):
    order = make_order()

    first = _pay(client, order)
    second = _pay(client, order)

    assert first["Location"] == second["Location"]
    assert len(_session_posts(stripe_stub)) == 1
    assert Payment.objects.filter(order=order).count() == 1
    assert OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.PAYMENT_STARTED).count() == 1


def test_an_expired_session_is_replaced_by_attempt_two(client, make_order, stripe_stub):
    order = make_order()
    _pay(client, order)
    first = Payment.objects.get(order=order)
    stripe_stub.session_expire(first.checkout_session_id)
    Payment.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    response = _pay(client, order)

    second = Payment.objects.get(order=order, attempt=2)
    assert response["Location"] == second.checkout_url != first.checkout_url
    assert second.idempotency_key == f"checkout:{order.pk}:2"
    posts = _session_posts(stripe_stub)
    assert [p.idempotency_key for p in posts] == [
        f"checkout:{order.pk}:1",
        f"checkout:{order.pk}:2",
    ]


def test_a_session_about_to_expire_is_not_reused(make_order, stripe_stub):
    order = make_order()
    first = checkout_session_start(order=order, locale="en")
    Payment.objects.filter(pk=first.pk).update(expires_at=timezone.now() + timedelta(seconds=30))

    second = checkout_session_start(order=order, locale="en")

    assert second.attempt == 2


def test_payment_service_down_shows_try_again_and_the_retry_reuses_the_key(
    client, make_order, stripe_stub
):
    order = make_order()
    stripe_stub.fail_always(status=503, path="/v1/checkout/sessions")

    response = _pay(client, order)

    assert response.status_code == 503
    assert "The payment service is not answering, try again." in _html(response)
    assert 'name="csrfmiddlewaretoken"' in _html(response)  # the Pay button is still there
    payment = Payment.objects.get(order=order)
    assert payment.status == Payment.Status.PENDING
    assert payment.checkout_session_id is None and payment.checkout_url == ""
    assert not OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.PAYMENT_STARTED)

    stripe_stub.reset_failures()
    retried = _pay(client, order)

    assert retried.status_code == 303
    payment.refresh_from_db()
    assert retried["Location"] == payment.checkout_url
    assert Payment.objects.filter(order=order).count() == 1
    assert {p.idempotency_key for p in _session_posts(stripe_stub)} == {f"checkout:{order.pk}:1"}


def test_a_lost_answer_is_recovered_by_the_retry_without_a_second_session(make_order, stripe_stub):
    """Stripe made the session but we never heard back (the connection dropped after the work,
    on the library's own retries too): the same key gets the same session."""
    order = make_order()
    stripe_stub.lose_answers(1 + MAX_NETWORK_RETRIES, path="/v1/checkout/sessions")

    with pytest.raises(GatewayError) as lost:
        checkout_session_start(order=order, locale="en")
    assert lost.value.transient
    assert len(stripe_stub.sessions) == 1  # made at Stripe, unknown here

    payment = checkout_session_start(order=order, locale="en")

    assert list(stripe_stub.sessions) == [payment.checkout_session_id]
    assert payment.attempt == 1
    posts = stripe_stub.requests_to("/v1/checkout/sessions", method="POST")
    assert {p.headers["idempotency-key"] for p in posts} == {f"checkout:{order.pk}:1"}
    assert posts[-1].headers.get("x-stub-replayed") == "true"


def test_a_failed_attempt_too_old_to_retry_is_closed_and_a_new_one_started(make_order, stripe_stub):
    order = make_order()
    stripe_stub.fail_next(status=500, path="/v1/checkout/sessions")
    with pytest.raises(GatewayError):
        checkout_session_start(order=order, locale="en")
    Payment.objects.filter(order=order).update(
        created_at=timezone.now() - RETRY_WINDOW - timedelta(seconds=1)
    )

    payment = checkout_session_start(order=order, locale="en")

    assert payment.attempt == 2 and payment.checkout_session_id
    first = Payment.objects.get(order=order, attempt=1)
    assert first.status == Payment.Status.FAILED


def test_service_refuses_an_order_that_is_not_payable(make_order, stripe_stub):
    order = make_order()
    order_cancel(order=order)

    with pytest.raises(ConflictError) as caught:
        checkout_session_start(order=order, locale="en")

    assert caught.value.code == "order_not_payable"
    assert caught.value.extra["status"] == "cancelled"
    assert not Payment.objects.filter(order=order).exists()
    assert stripe_stub.requests == []


def test_pay_on_an_order_whose_reservation_ran_out_shows_the_expired_page(
    client, make_order, stripe_stub
):
    order = make_order()
    Order.objects.filter(pk=order.pk).update(reserved_until=timezone.now() - timedelta(seconds=1))

    response = _pay(client, order)

    assert response.status_code == 410
    assert "This order has expired" in _html(response)
    assert stripe_stub.requests == []
    assert not Payment.objects.filter(order=order).exists()


def test_pay_after_money_arrived_for_a_pending_order_is_refused(client, make_order, stripe_stub):
    """A mismatched payment leaves the order pending for review: no second payment."""
    order = make_order()
    Payment.objects.create(
        order=order,
        gateway=Payment.Gateway.STRIPE_CHECKOUT,
        status=Payment.Status.MISMATCH,
        amount_minor=1,
        currency="USD",
        idempotency_key=f"checkout:{order.pk}:1",
    )

    for response in (client.get(_path(order)), _pay(client, order)):
        assert response.status_code == 409
        assert "We are checking your payment" in _html(response)
        assert "<form" not in _html(response)
    assert stripe_stub.requests == []


# -- pages instead of the Pay button ----------------------------------------------------------


def test_paid_order_shows_already_paid(client, make_order, stripe_stub):
    order = make_order()
    order_mark_paid(order=order)

    for response in (client.get(_path(order)), _pay(client, order)):
        assert response.status_code == 200
        html = _html(response)
        assert "Already paid, thank you" in html
        assert "<form" not in html
        assert order.number in html
    assert stripe_stub.requests == []


@pytest.mark.parametrize(
    ("close", "heading"),
    [
        ("expire", "This order has expired"),
        ("cancel", "This order was cancelled"),
        ("fail", "The payment did not go through"),
    ],
)
def test_closed_orders_show_a_clear_page_with_a_way_back_to_the_chat(
    client, make_order, close, heading
):
    order = make_order()
    if close == "expire":
        order_expire(order=order, now=order.reserved_until + timedelta(seconds=1))
    elif close == "cancel":
        order_cancel(order=order)
    else:
        order_payment_failed(order=order)

    response = client.get(_path(order))

    assert response.status_code == 410
    html = _html(response)
    assert heading in html
    assert "<form" not in html
    assert 'class="button" href="https://www.messenger.com/closeWindow/?' in html


def test_closed_order_page_in_arabic(client, make_order):
    order = make_order(locale="ar_AR")
    order_cancel(order=order)

    response = client.get(_path(order))

    assert response.status_code == 410
    assert 'dir="rtl"' in _html(response)
    assert "تم إلغاء هذا الطلب" in _html(response)


def test_tampered_token_shows_a_clear_page(client, make_order):
    order = make_order()
    token = checkout_token_create(order=order)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")

    response = client.get(f"/checkout/{tampered}/", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 400
    html = _html(response)
    assert "This link does not work" in html
    assert "This payment link is not valid. Please open it again from Messenger." in html
    assert "<form" not in html


def test_token_naming_another_order_id_cannot_be_forged(client, make_order, stripe_stub):
    order, another = make_order(), make_order()
    token = checkout_token_create(order=order)
    forged = f"{another.pk}:" + token.split(":", 1)[1]

    shown = client.get(f"/checkout/{forged}/")
    paid = client.post(f"/checkout/{forged}/")

    assert (shown.status_code, paid.status_code) == (400, 400)
    assert another.number not in _html(shown)
    assert not Payment.objects.exists()  # no session opened for either order
    assert stripe_stub.requests_to("/v1/checkout/sessions") == []


def test_expired_token_shows_a_clear_page_in_arabic(client, make_order):
    order = make_order()
    old = int(timezone.now().timestamp()) - LINK_MAX_AGE - 60
    token = _StampedSigner(at=old, salt=SALT).sign(str(order.pk))

    response = client.get(f"/checkout/{token}/?lang=ar")

    assert response.status_code == 410
    assert 'dir="rtl"' in _html(response)
    assert "انتهت صلاحية هذا الرابط" in _html(response)


def test_token_for_a_deleted_order_is_not_found(client):
    token = _StampedSigner(at=int(timezone.now().timestamp()), salt=SALT).sign("999999")

    assert client.get(f"/checkout/{token}/").status_code == 404
    assert client.post(f"/checkout/{token}/").status_code == 404
    assert not Payment.objects.exists()


def test_done_page_thanks_without_marking_anything_paid(client, make_order, stripe_stub):
    order = make_order(locale="ar_AR")
    _pay(client, order)

    response = client.get(_path(order) + "done/")

    assert response.status_code == 200
    html = _html(response)
    assert "شكرًا" in html  # "Thank you — your receipt will arrive in Messenger", in Arabic
    assert order.total.format("ar") + "\u200e" in html
    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT
    assert Payment.objects.get(order=order).status == Payment.Status.PENDING


def test_done_page_works_after_the_reservation_ran_out(client, make_order):
    """Stripe may send the shopper back after the reservation: the webhook decides, we thank."""
    order = make_order()
    Order.objects.filter(pk=order.pk).update(reserved_until=timezone.now() - timedelta(hours=2))

    response = client.get(_path(order) + "done/?lang=en")

    assert response.status_code == 200
    assert "Thank you — your receipt will arrive in Messenger" in _html(response)


def test_cancel_url_returns_to_the_checkout_page(client, make_order):
    order = make_order()

    response = client.get(_path(order) + "cancel/?lang=en")

    assert response.status_code == 303
    assert response["Location"] == _path(order) + "?cancelled=1&lang=en"
    page = client.get(response["Location"])
    assert "The payment was not completed" in _html(page)
    assert "Pay $" in _html(page)


def test_pay_without_the_csrf_token_is_refused(make_order, stripe_stub):
    order = make_order()
    strict = Client(enforce_csrf_checks=True)

    assert strict.post(_path(order), {"lang": "en"}).status_code == 403
    page = strict.get(_path(order))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', _html(page)).group(1)
    assert (
        strict.post(_path(order), {"lang": "en", "csrfmiddlewaretoken": token}).status_code == 303
    )
    assert len(_session_posts(stripe_stub)) == 1


# -- a real browser at a phone's size ----------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
@pytest.mark.parametrize("language", ["en", "ar"])
def test_page_fits_a_phone_and_the_pay_button_is_visible(
    live_server, transactional_db, make_order, settings, language
):
    """375×812 (iPhone X-sized) viewport: Pay is on screen, nothing scrolls sideways."""
    sync_api = pytest.importorskip("playwright.sync_api")
    settings.PUBLIC_BASE_URL = live_server.url
    order = make_order(
        locale="ar_AR" if language == "ar" else "en_US",
        prices=[2500, 1000, 4999],
        quantities=[1, 2, 1],
        tax_rate_bp=500,
        voucher={"kind": "percentage", "percent_bp": 1000},
        titles=["Linen shirt with a long descriptive name", "Silk scarf", "Leather sandals"],
        titles_ar=["قميص كتان بأكمام طويلة واسم وصفي طويل", "وشاح حرير", "صندل جلد"],
        with_images=False,
    )
    # Two lines with the placeholder image served by the live server, one with no image.
    placeholder = f"{live_server.url}/static/payments/placeholder.svg"
    for line in order.lines.all()[:2]:
        line.image_url = placeholder
        line.save(update_fields=["image_url"])
    url = f"{live_server.url}{_path(order)}?lang={language}"
    artifacts = Path(__file__).resolve().parents[2] / "test-artifacts"
    artifacts.mkdir(exist_ok=True)

    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            page = browser.new_page(
                viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True
            )
            response = page.goto(url)
            assert response is not None and response.status == 200
            page.screenshot(path=str(artifacts / f"checkout-{language}-375x812.png"))
            pay = page.locator("button.pay")
            assert pay.is_visible()
            box = pay.bounding_box()
            assert box is not None
            assert box["x"] >= 0 and box["x"] + box["width"] <= 375
            assert box["y"] >= 0 and box["y"] + box["height"] <= 812  # on screen, no scrolling
            widths = page.evaluate(
                "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
            )
            assert widths[0] <= widths[1] == 375
            assert page.evaluate("() => document.documentElement.dir") == (
                "rtl" if language == "ar" else "ltr"
            )
            images = page.evaluate(
                "() => Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
            )
            assert images == [True, True, True]
        finally:
            browser.close()


# -- concurrency (real PostgreSQL) ------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_pay_pressed_on_two_devices_at_once_opens_one_session(make_order, stripe_stub):
    """Both presses send the same key; the second gets Stripe's replay of the first."""
    import threading

    from django.db import connection

    order = make_order()
    stripe_stub.delay(0.3, times=2)  # both requests are in flight together
    barrier = threading.Barrier(3)
    results: list[object] = [None] * 3

    def press(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = checkout_session_start(order=order, locale="en")
        except BaseException as error:
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=press, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert all(isinstance(result, Payment) for result in results), results
    assert {result.checkout_session_id for result in results} == set(stripe_stub.sessions)
    assert len(stripe_stub.sessions) == 1
    assert Payment.objects.filter(order=order).count() == 1
    assert OrderEvent.objects.filter(order=order, kind=OrderEvent.Kind.PAYMENT_STARTED).count() == 1
