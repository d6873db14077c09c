"""The hosted checkout page: what the shopper sees, and what each test card does to the session,
its PaymentIntent and Charge, and the events."""

from __future__ import annotations

import re

import pytest

from sandbox.stripe.models import Event, StripeObject
from tests.sandbox.stripe.helpers import API, AUTH, card_form, pay_path, session_create

pytestmark = pytest.mark.django_db


def _html(response) -> str:
    return response.content.decode()


def _types() -> list[str]:
    return list(Event.objects.order_by("created_at", "pk").values_list("type", flat=True))


def test_page_shows_items_shipping_total_email_and_the_card_form(client):
    session = session_create(client)

    response = client.get(pay_path(session))

    assert response.status_code == 200
    html = _html(response)
    assert '<html lang="en" dir="ltr">' in html
    assert "Linen shirt" in html and "Silk scarf" in html
    assert "$25.00" in html and "$20.00" in html  # 2 × $10.00
    assert re.search(r'data-testid="total">\$50\.00<', html)  # 25 + 20 + 5 shipping
    assert re.search(r'value="layla@example.com"[^>]*data-testid="stripe-email"', html)
    radios = re.findall(r'<input type="radio"[^>]*data-testid="shipping-option"[^>]*>', html)
    assert len(radios) == 1 and "checked" in radios[0] and "Express" in html
    for testid in ("card-number", "card-expiry", "card-cvc", "card-name", "pay"):
        assert f'data-testid="{testid}"' in html
    assert 'placeholder="MM / YY"' in html
    assert 'href="https://shop.example/cancel" data-testid="cancel"' in html
    assert 'data-testid="card-error"' not in html
    assert response["X-Frame-Options"] == "SAMEORIGIN"


def test_zero_and_three_decimal_currencies_are_shown_in_their_units(client):
    session = session_create(
        client,
        **{
            "line_items[0][price_data][currency]": "kwd",
            "line_items[0][price_data][unit_amount]": "12340",
            "line_items[1][price_data][currency]": "kwd",
            "line_items[1][price_data][unit_amount]": "1000",
            "shipping_options[0][shipping_rate_data][fixed_amount][currency]": "kwd",
        },
    )

    html = _html(client.get(pay_path(session)))

    assert "12.340" in html and "14.840" in html  # 12.340 + 2 × 1.000 + 0.500


def test_arabic_session_page_is_right_to_left(client):
    session = session_create(client, locale="auto")

    html = _html(client.get(pay_path(session), HTTP_ACCEPT_LANGUAGE="ar"))

    assert '<html lang="ar" dir="rtl">' in html
    assert "رقم البطاقة" in html  # "Card number"


def test_english_session_stays_english_whatever_the_browser(client):
    session = session_create(client, locale="en")

    html = _html(client.get(pay_path(session), HTTP_ACCEPT_LANGUAGE="ar"))

    assert '<html lang="en" dir="ltr">' in html


def test_4242_pays_completes_the_session_and_redirects_to_success_url(client):
    session = session_create(client)

    response = client.post(pay_path(session), card_form())

    assert response.status_code == 303
    assert response["Location"] == f"https://shop.example/done?session={session['id']}"
    stored = StripeObject.objects.get(pk=session["id"]).data
    assert stored["status"] == "complete" and stored["payment_status"] == "paid"
    assert stored["url"] is None
    assert stored["customer_details"]["email"] == "layla@example.com"
    intent = StripeObject.objects.get(pk=stored["payment_intent"]).data
    assert intent["status"] == "succeeded" and intent["amount_received"] == 5000
    assert intent["metadata"] == {"order_id": "41"}
    charge = StripeObject.objects.get(pk=intent["latest_charge"]).data
    assert charge["paid"] and charge["status"] == "succeeded" and charge["amount"] == 5000
    assert charge["payment_method_details"]["card"]["last4"] == "4242"
    assert _types() == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.succeeded",
        "checkout.session.completed",
    ]
    completed = Event.objects.get(type="checkout.session.completed").payload
    assert completed["data"]["object"]["id"] == session["id"]
    assert completed["livemode"] is False and completed["id"].startswith("evt_")
    assert completed["api_version"] and completed["request"] == {
        "id": None,
        "idempotency_key": None,
    }


@pytest.mark.parametrize(
    ("number", "message", "decline_code"),
    [
        ("4000 0000 0000 0002", "Your card was declined.", "generic_decline"),
        ("4000 0000 0000 9995", "Your card has insufficient funds.", "insufficient_funds"),
    ],
)
def test_declined_cards_show_the_error_and_the_session_stays_open(
    client, number, message, decline_code
):
    session = session_create(client)

    response = client.post(pay_path(session), card_form(number))

    assert response.status_code == 402
    html = _html(response)
    assert f'data-testid="card-error">{message}<' in html.replace("&#x27;", "'")
    assert 'data-testid="pay"' in html  # try again
    stored = StripeObject.objects.get(pk=session["id"]).data
    assert stored["status"] == "open" and stored["payment_status"] == "unpaid"
    intent = StripeObject.objects.get(pk=stored["payment_intent"]).data
    assert intent["status"] == "requires_payment_method"
    assert intent["last_payment_error"]["code"] == "card_declined"
    assert intent["last_payment_error"]["decline_code"] == decline_code
    assert _types() == ["payment_intent.created", "charge.failed", "payment_intent.payment_failed"]


def test_after_a_decline_another_card_pays_on_the_same_intent(client):
    session = session_create(client)
    client.post(pay_path(session), card_form("4000000000000002"))

    response = client.post(pay_path(session), card_form())

    assert response.status_code == 303
    stored = StripeObject.objects.get(pk=session["id"]).data
    assert stored["status"] == "complete"
    assert StripeObject.objects.filter(object="payment_intent").count() == 1
    assert StripeObject.objects.filter(object="charge").count() == 2
    assert _types()[-1] == "checkout.session.completed"


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (card_form("4242 4242"), "Your card number is incomplete."),
        (card_form(card_expiry="01 / 20"), "Your card&#x27;s expiration date is in the past."),
        (card_form(card_cvc=""), "Your card&#x27;s security code is incomplete."),
        (card_form(email="nobody"), "Your email address is invalid."),
    ],
)
def test_incomplete_forms_are_refused_and_nothing_is_charged(client, form, message):
    session = session_create(client)

    response = client.post(pay_path(session), form)

    assert response.status_code == 400
    assert message in _html(response)
    assert StripeObject.objects.get(pk=session["id"]).data["status"] == "open"
    assert not StripeObject.objects.filter(object="charge").exists()
    assert not Event.objects.exists()


def test_a_completed_session_page_says_so_and_cannot_be_paid_again(client):
    session = session_create(client)
    client.post(pay_path(session), card_form())

    page = client.get(pay_path(session))
    again = client.post(pay_path(session), card_form())

    assert page.status_code == again.status_code == 410
    assert "This payment is complete" in _html(page)
    assert 'data-testid="pay"' not in _html(page)
    assert StripeObject.objects.filter(object="charge").count() == 1


def test_an_expired_session_page_says_so(client):
    session = session_create(client)
    client.post(f"{API}/checkout/sessions/{session['id']}/expire", **AUTH)

    response = client.get(pay_path(session))

    assert response.status_code == 410
    assert "This checkout session has expired" in _html(response)
    assert 'data-testid="pay"' not in _html(response)


def test_an_unknown_session_is_404(client):
    assert client.get("/sandbox/stripe/pay/cs_test_nothing/").status_code == 404


def _run_out(session_id: str) -> None:
    row = StripeObject.objects.get(pk=session_id)
    row.data["expires_at"] -= 2 * 60 * 60
    row.save()


def test_paying_after_the_time_ran_out_shows_the_expired_page_and_charges_nothing(client):
    session = session_create(client)
    _run_out(session["id"])

    response = client.post(pay_path(session), card_form())

    assert response.status_code == 410
    assert "This checkout session has expired" in _html(response)
    assert StripeObject.objects.get(pk=session["id"]).data["status"] == "expired"
    assert not StripeObject.objects.filter(object="charge").exists()
    assert _types() == ["checkout.session.expired"]


def test_expiring_a_session_whose_time_ran_out_keeps_its_expiry(client):
    session = session_create(client)
    _run_out(session["id"])

    response = client.post(f"{API}/checkout/sessions/{session['id']}/expire", **AUTH)

    assert response.status_code == 400
    assert "status of `expired`" in response.json()["error"]["message"]
    assert StripeObject.objects.get(pk=session["id"]).data["status"] == "expired"
    assert _types() == ["checkout.session.expired"]
