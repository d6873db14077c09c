"""Correctly signed but damaged webhook bodies: the webhooks never answer 5xx, store nothing for a
body they refuse, and the worker never crashes on what they stored.

Signed bodies matter most: a body without a valid signature never reaches a parser (the webhook
tests check that), but Meta and Stripe sign whatever they send, so a change on their side, a
replay tool or a bug in a proxy reaches our parsers with a valid signature. A 5xx there makes
Meta retry and eventually disable the webhook, and makes Stripe retry for days.

The bodies start from the realistic fixtures in ``tests/messenger/fixtures`` and
``tests/payments/fixtures`` (see ``tests/hostile/mutations.py`` for what is done to them). For each
accepted body the worker's processing runs right away, as the worker would (the inbox drain, the
payment event processing): each stored row must end ``processed``, ``ignored`` or ``failed`` with
a reason, and no handler may raise on it (an exception logged by the worker is a failure here).
"""

from __future__ import annotations

import itertools
import json
import logging
import time

import pytest
from django.conf import settings
from hypothesis import event, given
from hypothesis import strategies as st

from commerce.models import Variant
from messenger.models import InboundEvent
from messenger.services.inbox import inbound_events_drain
from messenger.webhook.signature import signature_header_value
from payments.gateways import WebhookSignatureError, gateway_for
from payments.models import ProviderEvent
from payments.services.events import MAX_ATTEMPTS, ProviderEventRetry, provider_event_process
from tests.hostile.conftest import fuzz_settings, order_place
from tests.hostile.mutations import (
    JSON_VALUES,
    MESSENGER_FIXTURES,
    STRIPE_FIXTURES,
    damaged_bytes,
    load,
    mutated_document,
)
from tests.payments.stripe_stub import stripe_signature

pytestmark = [pytest.mark.hostile, pytest.mark.django_db]

MESSENGER_URL = "/messenger/webhook/"
STRIPE_URL = "/payments/stripe/webhook/"
_serial = itertools.count(1)


class CrashLog(logging.Handler):
    """Records the worker's logged exceptions: on hostile input they are crashes, not noise."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)

    def explain(self) -> str:
        return "\n".join(self.format(record) for record in self.records)


@pytest.fixture
def crashes():
    handler = CrashLog()
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    loggers = [logging.getLogger(name) for name in ("messenger", "payments", "commerce")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


# -- Messenger ------------------------------------------------------------------------------------


def _freshened(document: dict) -> dict:
    """The fixture with unique mids and current timestamps, so every example is new to the
    inbox (not a replay) and inside the 24-hour window (answers really go out)."""
    now_ms = int(time.time() * 1000)
    for entry in document.get("entry", []):
        for item in entry.get("messaging", []):
            item["timestamp"] = now_ms
            for key in ("message", "postback"):
                if isinstance(item.get(key), dict) and "mid" in item[key]:
                    item[key]["mid"] = f"{item[key]['mid']}_{next(_serial)}"
    return document


def _messenger_post(client, body: bytes):
    headers = {"HTTP_X_HUB_SIGNATURE_256": signature_header_value(body, secret=_app_secret())}
    return client.post(MESSENGER_URL, data=body, content_type="application/json", **headers)


def _app_secret() -> str:
    return settings.MESSENGER_APP_SECRET


def _messenger_check(client, body: bytes, crashes: CrashLog) -> None:
    before = InboundEvent.objects.count()
    seen = set(InboundEvent.objects.values_list("pk", flat=True))
    response = _messenger_post(client, body)

    assert response.status_code < 500, response.content[:300]
    stored = InboundEvent.objects.exclude(pk__in=seen)
    if response.status_code != 200:
        event(f"refused: {response.status_code}")
        assert response.status_code in (400, 413), response.status_code
        assert InboundEvent.objects.count() == before, "a refused body stored rows"
        assert response.json()["message"]
        return

    inbound_events_drain(include_retries=True)
    assert not crashes.records, crashes.explain()
    for row in stored:
        event(f"{row.kind}: {row.status}")
        assert row.status != InboundEvent.Status.PENDING, (row.kind, row.error, row.payload)
        if row.status == InboundEvent.Status.FAILED:
            assert row.error


@fuzz_settings(max_examples=70)
@given(data=st.data())
def test_mutated_messenger_bodies_never_5xx_and_never_crash_the_worker(
    client, shop, graph_stub, crashes, data
):
    fixture = data.draw(st.sampled_from(MESSENGER_FIXTURES), label="fixture")
    document = data.draw(mutated_document(_freshened(load(fixture))), label="body")
    body = json.dumps(document).encode()

    _messenger_check(client, body, crashes)


@fuzz_settings(max_examples=40)
@given(data=st.data())
def test_byte_damaged_messenger_bodies_are_refused_or_stored_cleanly(
    client, shop, graph_stub, crashes, data
):
    fixture = data.draw(st.sampled_from(MESSENGER_FIXTURES), label="fixture")
    body = json.dumps(_freshened(load(fixture))).encode()
    body = data.draw(damaged_bytes(body), label="body")

    _messenger_check(client, body, crashes)


@fuzz_settings(max_examples=30)
@given(document=JSON_VALUES)
def test_arbitrary_signed_json_never_5xx(client, shop, graph_stub, crashes, document):
    body = json.dumps(document).encode()

    _messenger_check(client, body, crashes)


# -- Stripe ---------------------------------------------------------------------------------------


def _stripe_post(client, body: bytes):
    signature = stripe_signature(
        body, secret=settings.STRIPE_WEBHOOK_SECRET.split(",")[0], timestamp=int(time.time())
    )
    return client.post(
        STRIPE_URL, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=signature
    )


def _aimed_at(event: dict, order) -> dict:
    """The fixture event with a new id, pointing at ``order`` with its real amount (so the
    handlers get past "which order?" and work on a real one)."""
    event["id"] = f"evt_hostile_{next(_serial)}"
    event["created"] = int(time.time())
    obj = event.get("data", {}).get("object", {})
    if isinstance(obj.get("id"), str):  # a new session / charge each time, not a replay
        obj["id"] = f"{obj['id']}_{next(_serial)}"
    if "client_reference_id" in obj:
        obj["client_reference_id"] = str(order.pk)
    if isinstance(obj.get("metadata"), dict):
        obj["metadata"]["order_id"] = str(order.pk)
    for key in ("amount_total", "amount", "amount_captured"):
        if key in obj:
            obj[key] = order.total_minor
    if "currency" in obj:
        obj["currency"] = order.currency.lower()
    return event


def _stripe_process(row: ProviderEvent) -> None:
    """Run the worker's processing until the event leaves ``pending`` (retries included)."""
    for _ in range(MAX_ATTEMPTS + 1):
        try:
            provider_event_process(event_id=row.pk)
        except ProviderEventRetry:
            continue
        break
    row.refresh_from_db()


@pytest.fixture
def plenty(shop):
    """Shop A's shirt in stock for every example's order."""
    Variant.objects.filter(pk=shop.variant.pk).update(stock_on_hand=100_000)
    return shop


def _stripe_check(client, body: bytes, crashes: CrashLog) -> None:
    before = ProviderEvent.objects.count()
    seen = set(ProviderEvent.objects.values_list("pk", flat=True))
    response = _stripe_post(client, body)

    assert response.status_code < 500, response.content[:300]
    if response.status_code != 200:
        event(f"refused: {response.status_code}")
        assert response.status_code in (400, 413), response.status_code
        assert response.json()["message"]
        assert ProviderEvent.objects.count() == before, "a refused body stored an event"
        return
    for row in ProviderEvent.objects.exclude(pk__in=seen):
        _stripe_process(row)
        assert not crashes.records, crashes.explain()
        event(f"{row.type}: {row.status}")
        assert row.status in ("processed", "ignored", "failed"), (row.status, row.error)
        if row.status == "failed":
            assert row.error


@fuzz_settings(max_examples=70)
@given(data=st.data())
def test_mutated_stripe_events_never_5xx_and_never_crash_the_worker(
    client, plenty, stripe_stub, crashes, data
):
    order = order_place(plenty)
    fixture = data.draw(st.sampled_from(STRIPE_FIXTURES), label="fixture")
    document = data.draw(mutated_document(_aimed_at(load(fixture), order)), label="body")
    body = json.dumps(document).encode()

    _stripe_check(client, body, crashes)


@fuzz_settings(max_examples=30)
@given(data=st.data())
def test_byte_damaged_stripe_events_are_refused_or_stored_cleanly(
    client, plenty, stripe_stub, crashes, data
):
    order = order_place(plenty)
    fixture = data.draw(st.sampled_from(STRIPE_FIXTURES), label="fixture")
    body = json.dumps(_aimed_at(load(fixture), order)).encode()
    body = data.draw(damaged_bytes(body), label="body")

    _stripe_check(client, body, crashes)


@fuzz_settings(max_examples=60)
@given(
    body=st.binary(max_size=300)
    | JSON_VALUES.map(lambda value: json.dumps(value).encode())
    | st.dictionaries(st.sampled_from(["id", "type", "data", "object"]), JSON_VALUES).map(
        lambda value: json.dumps(value).encode()
    )
)
def test_the_gateway_parser_returns_an_event_or_refuses(body):
    """``webhook_parse`` on any correctly signed bytes: an event dict with an id and a type, or
    ``WebhookSignatureError`` (which the view answers with 400); never another exception."""
    signature = stripe_signature(
        body, secret=settings.STRIPE_WEBHOOK_SECRET.split(",")[0], timestamp=int(time.time())
    )
    try:
        event = gateway_for("stripe").webhook_parse(payload=body, signature_header=signature)
    except WebhookSignatureError as error:
        assert error.code == "webhook_payload_invalid", error.code
    else:
        assert isinstance(event, dict) and "id" in event and "type" in event
