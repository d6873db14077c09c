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

import copy
import itertools
import json
import logging
import time

import pytest
from django.conf import settings
from hypothesis import event, given
from hypothesis import strategies as st

from commerce.models import Order, Variant
from messenger.models import InboundEvent, MessengerPage
from messenger.services.inbox import inbound_events_drain
from messenger.webhook.signature import signature_header_value
from payments.gateways import WebhookSignatureError, gateway_for
from payments.models import Payment, ProviderEvent
from payments.services.buy_button import buy_button_payload_build
from payments.services.events import MAX_ATTEMPTS, ProviderEventRetry, provider_event_process
from tests.factories import customer_create
from tests.hostile.conftest import PAGE_ID, fuzz_settings, order_place
from tests.hostile.mutations import (
    HUGE_NUMBERS,
    JSON_VALUES,
    MESSENGER_FIXTURES,
    STRIPE_FIXTURES,
    damaged_bytes,
    load,
    mutated_document,
)
from tests.payments.buy_button_support import legacy_body, legacy_item, stripe_charge
from tests.payments.stripe_stub import stripe_signature
from tests.payments.webhook_helpers import checkout_start

pytestmark = [pytest.mark.hostile, pytest.mark.django_db]

MESSENGER_URL = "/messenger/webhook/"
STRIPE_URL = "/payments/stripe/webhook/"
_serial = itertools.count(1)
PAID_STATUSES = {
    Order.Status.PAID,
    Order.Status.FULFILLED,
    Order.Status.DELIVERED,
    Order.Status.PARTIALLY_REFUNDED,
    Order.Status.REFUNDED,
}


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


def _exactly_the_total(obj, order) -> bool:
    """The event's session paid exactly ``order``'s total in its currency: an integer of minor
    units (not a float, a string or a boolean) and the same currency code."""
    if not isinstance(obj, dict):
        return False
    amount, currency = obj.get("amount_total"), obj.get("currency")
    return (
        type(amount) is int
        and amount == order.total_minor
        and isinstance(currency, str)
        and currency.upper() == order.currency
    )


def _assert_paid_only_for_the_total(order, document) -> None:
    """A fuzzed amount never marks an order paid: if ``order`` is paid now, the body that paid
    it named exactly its total."""
    order.refresh_from_db()
    paid = (
        order.status in PAID_STATUSES
        or order.payments.filter(status=Payment.Status.SUCCEEDED).exists()
    )
    if not paid:
        return
    data = document.get("data") if isinstance(document, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    event("paid")
    assert _exactly_the_total(obj, order), (
        f"order {order.number} ({order.total_minor} {order.currency}) was marked paid by "
        f"amount_total={obj.get('amount_total') if isinstance(obj, dict) else obj!r}, "
        f"currency={obj.get('currency') if isinstance(obj, dict) else None!r}"
    )


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
    _assert_paid_only_for_the_total(order, document)


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


# -- amounts: a fuzzed amount never marks an order paid ------------------------------------------

_MISSING = "<missing>"


def _often(data, likely, other, *, label: str):
    """``likely`` three times in four, else a draw from ``other``: hypothesis's choice among
    ``one_of`` branches is not uniform, and the interesting cases must come up in every run."""
    if data.draw(st.integers(0, 3), label=f"{label}: likely?") > 0:
        return data.draw(likely, label=label)
    return data.draw(other, label=label)


def _amount_around(data, total: int):
    """Amounts an attacker or a broken sender would try: mostly a near miss of ``total`` (the
    same number as a float or a string, a cent more or less, a boolean, null, missing, out of
    range...), else anything JSON holds; the exact total now and then too (the property must
    still let a genuine payment through)."""
    near = st.sampled_from(
        [
            total,
            float(total),
            total + 0.5,
            str(total),
            f"{total // 100}.{total % 100:02d}",
            True,
            None,
            _MISSING,
            -total,
            total - 1,
            total + 1,
            2 * total,
            2**63 + total,
            [total],
        ]
    )
    anything = st.one_of(
        st.sampled_from(HUGE_NUMBERS),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
        JSON_VALUES,
    )
    return _often(data, near, anything, label="amount")


def _currency_for(data, ours: str):
    """Mostly the order's own currency (so the amount is what decides), else anything."""
    other = st.one_of(
        st.sampled_from([ours.upper(), "eur", "kwd", "jpy", "xxx", "", f"{ours} ", None]),
        st.text(max_size=5),
        JSON_VALUES,
    )
    return _often(data, st.just(ours.lower()), other, label="currency")


def _leniently(amount) -> int | None:
    """What a lenient reader would take ``amount`` for (``int(float(x))``), else None."""
    try:
        return int(float(amount)) if not isinstance(amount, bool) else None
    except (TypeError, ValueError, OverflowError):
        return None


def _set(obj: dict, key: str, value) -> None:
    if value == _MISSING and isinstance(value, str):
        obj.pop(key, None)
    else:
        obj[key] = value


@fuzz_settings(max_examples=100)
@given(data=st.data())
def test_a_fuzzed_stripe_amount_never_marks_an_order_paid(
    client, plenty, stripe_stub, crashes, data
):
    """A genuine session of a real order, completed on the Stripe stub, then delivered with a
    fuzzed amount and currency on a settling event type: the order is paid only when the body
    says exactly its total, as an integer, in its currency."""
    order = order_place(plenty)
    payment = checkout_start(order)
    session = stripe_stub.session_complete(payment.checkout_session_id)
    kind = data.draw(
        st.sampled_from(
            [
                "checkout.session.completed",
                "checkout.session.completed",
                "checkout.session.async_payment_succeeded",
                "payment_intent.succeeded",
                "charge.succeeded",
            ]
        ),
        label="type",
    )
    amount = _amount_around(data, order.total_minor)
    currency = _currency_for(data, order.currency)
    if kind.startswith("checkout."):
        obj = session
        _set(obj, "amount_total", amount)
    else:
        intent = copy.deepcopy(stripe_stub.payment_intents[session["payment_intent"]])
        obj = (
            copy.deepcopy(stripe_stub.charges[intent["latest_charge"]])
            if kind.startswith("charge.")
            else intent
        )
        obj["metadata"] = {**(obj.get("metadata") or {}), "order_id": str(order.pk)}
        for key in ("amount", "amount_received", "amount_captured"):
            _set(obj, key, amount)
    _set(obj, "currency", currency)
    document = {
        "id": f"evt_amount_{next(_serial)}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }

    _stripe_check(client, json.dumps(document).encode(), crashes)

    order.refresh_from_db()
    if kind.startswith("checkout."):
        _assert_paid_only_for_the_total(order, document)
    else:  # no PaymentIntent or charge event carries a session's amount_total
        assert order.status not in PAID_STATUSES, (kind, amount, currency)
        assert not order.payments.filter(status=Payment.Status.SUCCEEDED).exists()


@fuzz_settings(max_examples=80)
@given(data=st.data())
def test_a_fuzzed_buy_button_charge_never_marks_an_order_paid(
    client, plenty, stripe_stub, crashes, data
):
    """A legacy v1.2 ``payment`` through the Messenger webhook whose charge, retrieved from the
    Stripe stub by the inbox worker, carries a fuzzed amount and currency (and the dialog a
    fuzzed amount): an order is paid only for a charge of exactly its total, as an integer."""
    MessengerPage.objects.filter(pk=plenty.page.pk).update(
        mode=MessengerPage.Mode.BUY_BUTTON, is_test_mode=False
    )
    customer = customer_create(
        merchant=plenty.merchant, page_id=PAGE_ID, psid=f"2409{next(_serial):012d}"
    )
    price = plenty.variant.price_minor
    charge_id = f"ch_fuzz_{next(_serial)}"
    amount = _amount_around(data, price)
    currency = _currency_for(data, "usd")
    charge = stripe_charge(stripe_stub, charge_id=charge_id, amount=price)
    _set(charge, "amount", amount)
    _set(charge, "currency", currency)
    # The dialog's amount: mostly what the charge says, read leniently (so the charge's own
    # amount is what decides), else the price or anything.
    lenient = _leniently(amount)
    same = f"{lenient // 100}.{lenient % 100:02d}" if lenient is not None and lenient >= 0 else None
    shown = _often(
        data,
        st.just(same),
        st.sampled_from([f"{price // 100}.{price % 100:02d}", float(price) / 100])
        | st.text(max_size=8),
        label="dialog amount",
    )
    item = legacy_item(
        "payment",
        psid=customer.psid,
        payload=buy_button_payload_build(variant_id=plenty.variant.pk, customer_id=customer.pk),
        amount={"currency": "USD", "amount": shown},
        payment_credential={
            "provider_type": "stripe",
            "charge_id": charge_id,
            "fb_payment_id": str(next(_serial)),
        },
        shipping_option_id=None,
    )
    item["timestamp"] = int(time.time() * 1000)
    seen = set(Order.objects.values_list("pk", flat=True))

    _messenger_check(client, legacy_body(item, page_id=PAGE_ID), crashes)

    genuine = type(amount) is int and amount == price and str(currency).upper() == "USD"
    for order in Order.objects.exclude(pk__in=seen):
        event(f"order {order.status}")
        if order.status in PAID_STATUSES:
            assert genuine, (amount, currency, order.total_minor)
            assert order.total_minor == amount
        else:
            assert not order.payments.filter(status=Payment.Status.SUCCEEDED).exists()
