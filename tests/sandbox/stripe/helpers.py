"""Creating sessions at the stand-in through the Django test client (no server needed)."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from tests.sandbox.stripe.conftest import SECRET_KEY

AUTH = {"HTTP_AUTHORIZATION": f"Bearer {SECRET_KEY}"}
API = "/sandbox/stripe/v1"


def session_params(**overrides: Any) -> dict[str, str]:
    params = {
        "mode": "payment",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "2500",
        "line_items[0][price_data][product_data][name]": "Linen shirt",
        "line_items[0][quantity]": "1",
        "line_items[1][price_data][currency]": "usd",
        "line_items[1][price_data][unit_amount]": "1000",
        "line_items[1][price_data][product_data][name]": "Silk scarf",
        "line_items[1][quantity]": "2",
        "shipping_options[0][shipping_rate_data][type]": "fixed_amount",
        "shipping_options[0][shipping_rate_data][fixed_amount][amount]": "500",
        "shipping_options[0][shipping_rate_data][fixed_amount][currency]": "usd",
        "shipping_options[0][shipping_rate_data][display_name]": "Express",
        "client_reference_id": "41",
        "metadata[order_id]": "41",
        "payment_intent_data[metadata][order_id]": "41",
        "customer_email": "layla@example.com",
        "expires_at": str(int(time.time()) + 3600),
        "locale": "en",
        "success_url": "https://shop.example/done?session={CHECKOUT_SESSION_ID}",
        "cancel_url": "https://shop.example/cancel",
    }
    params.update(overrides)
    return {key: value for key, value in params.items() if value is not None}


def session_create(client, **overrides: Any) -> dict[str, Any]:
    response = client.post(
        f"{API}/checkout/sessions",
        urlencode(session_params(**overrides)),
        content_type="application/x-www-form-urlencoded",
        **AUTH,
    )
    assert response.status_code == 200, response.content
    return response.json()


def pay_path(session: dict[str, Any]) -> str:
    return f"/sandbox/stripe/pay/{session['id']}/"


def card_form(number: str = "4242 4242 4242 4242", **overrides: str) -> dict[str, str]:
    form = {
        "email": "layla@example.com",
        "card_number": number,
        "card_expiry": "12 / 34",
        "card_cvc": "123",
        "name": "Layla Haddad",
    }
    form.update(overrides)
    return form
