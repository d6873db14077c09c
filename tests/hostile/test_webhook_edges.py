"""The cases the fuzzers of ``test_webhook_fuzz.py`` found, pinned down one by one, and replays
that try to change what was stored.

Each was a 500 on PostgreSQL before it was fixed: Meta and Stripe retry a 5xx for hours or days
and end up disabling the endpoint, so a signed body must never get one. Meta treats a 4xx the
same way, so a signed Messenger body that cannot be used is stored with its reason and answered
200; the Stripe webhook still answers such a body 400.
"""

from __future__ import annotations

import json
import time

import pytest
from django.conf import settings

from commerce.models import CartLine, Order
from messenger.models import InboundEvent
from messenger.services.inbox import inbound_events_drain
from messenger.webhook.signature import signature_header_value
from payments.models import ProviderEvent
from payments.services.events import provider_event_process
from tests.hostile.conftest import PAGE_ID, order_place
from tests.payments.stripe_stub import stripe_event, stripe_signature

pytestmark = [pytest.mark.hostile, pytest.mark.django_db]

MESSENGER_URL = "/messenger/webhook/"
STRIPE_URL = "/payments/stripe/webhook/"


def _messenger_post(client, body: bytes):
    signature = signature_header_value(body, secret=settings.MESSENGER_APP_SECRET)
    return client.post(
        MESSENGER_URL,
        data=body,
        content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=signature,
    )


def _stripe_post(client, body: bytes, signature: str | None = None):
    signature = signature or stripe_signature(
        body, secret=settings.STRIPE_WEBHOOK_SECRET.split(",")[0], timestamp=int(time.time())
    )
    return client.post(
        STRIPE_URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_a_signed_messenger_body_with_nan_is_kept_unprocessed_with_its_reason(
    client, shop, constant
):
    body = (
        b'{"object":"page","entry":[{"id":"' + PAGE_ID.encode() + b'","messaging":[{'
        b'"sender":{"id":"2401"},"timestamp":' + constant + b',"message":{"mid":"m_nan"}}]}]}'
    )

    response = _messenger_post(client, body)

    assert response.status_code == 200
    row = InboundEvent.objects.get()
    assert (row.status, row.error) == (InboundEvent.Status.FAILED, "The body is not valid JSON.")
    assert row.payload == {"body": body.decode()}
    inbound_events_drain()
    assert not CartLine.objects.exists()


@pytest.mark.parametrize(
    "body",
    [b"null", b"[]", b'"evt"', b"42", b'{"id": "evt_1", "type": "x", "n": NaN}', b"[" * 100_000],
    ids=["null", "list", "string", "number", "nan", "nesting-bomb"],
)
def test_a_signed_stripe_body_that_is_not_an_event_object_is_refused(client, db, body):
    response = _stripe_post(client, body)

    assert response.status_code == 400
    assert response.json()["code"] == "webhook_payload_invalid"
    assert not ProviderEvent.objects.exists()


@pytest.mark.parametrize("field", ["id", "type"])
@pytest.mark.parametrize("value", ["evt\x00x", "evt\ud800", "evt\nx", "évt"])
def test_a_stripe_event_whose_id_or_type_is_not_printable_ascii_is_refused(
    client, db, field, value
):
    event = {"id": "evt_ok", "type": "checkout.session.completed", "data": {"object": {}}}
    event[field] = value

    response = _stripe_post(client, json.dumps(event).encode())

    assert response.status_code == 400
    assert not ProviderEvent.objects.exists()


def test_a_stripe_event_with_nul_and_lone_surrogates_is_stored_with_them_replaced(client, db):
    body = (
        b'{"id":"evt_nul","type":"customer.updated","data":{"object":'
        b'{"name":"a\\u0000b","note":"\\ud800 \\ud83d\\ude00","k\\u0000":1}}}'
    )

    response = _stripe_post(client, body)

    assert response.status_code == 200
    stored = ProviderEvent.objects.get(event_id="evt_nul").payload["data"]["object"]
    assert stored == {"name": "a\ufffdb", "note": "? \U0001f600", "k\ufffd": 1}


def test_a_replayed_stripe_event_id_with_another_body_changes_nothing(client, shop, stripe_stub):
    """Stripe never changes an event; a body under a known id that differs is someone's replay
    of a captured id with a forged body (only possible with the secret, or by Stripe's own
    mistake): the first stored body stays, and the order is not paid by the second one."""
    order = order_place(shop)
    session = {
        "id": "cs_test_replay",
        "object": "checkout.session",
        "client_reference_id": str(order.pk),
        "metadata": {"order_id": str(order.pk)},
        "payment_status": "unpaid",
        "status": "expired",
        "amount_total": order.total_minor,
        "currency": order.currency.lower(),
    }
    body, signature = stripe_event(
        "checkout.session.async_payment_failed", session, event_id="evt_same"
    )
    assert _stripe_post(client, body, signature).status_code == 200
    paid = {**session, "payment_status": "paid", "status": "complete"}
    body, signature = stripe_event("checkout.session.completed", paid, event_id="evt_same")

    response = _stripe_post(client, body, signature)

    assert response.status_code == 200
    stored = ProviderEvent.objects.get(event_id="evt_same")
    assert stored.type == "checkout.session.async_payment_failed"
    assert stored.payload["data"]["object"]["payment_status"] == "unpaid"
    provider_event_process(event_id=stored.pk)
    order.refresh_from_db()
    assert order.status != Order.Status.PAID


def test_a_replayed_mid_with_another_body_is_not_stored_or_answered_again(client, shop, graph_stub):
    """Meta redelivers with the same ``mid``; a replay whose body was changed (a tool, a proxy,
    or anyone holding the app secret) must not act a second time under that id."""
    graph_stub.set_profile("2408000000000001", locale="en_US")
    item = {
        "sender": {"id": "2408000000000001"},
        "recipient": {"id": PAGE_ID},
        "timestamp": int(time.time() * 1000),
        "message": {"mid": "m_replayed", "text": "menu"},
    }
    first = {"object": "page", "entry": [{"id": PAGE_ID, "messaging": [item]}]}
    assert _messenger_post(client, json.dumps(first).encode()).status_code == 200
    inbound_events_drain()
    item["message"] = {
        "mid": "m_replayed",
        "text": "add",
        "quick_reply": {"payload": f"ADD:variant={shop.variant.pk},qty=3"},
    }

    response = _messenger_post(client, json.dumps(first).encode())
    inbound_events_drain()

    assert response.status_code == 200
    [row] = InboundEvent.objects.filter(sender_psid="2408000000000001")
    assert row.payload["message"]["text"] == "menu"
    assert not CartLine.objects.exists()
