"""An order is marked paid only for exactly its total, in its currency, read as an integer: on
every path that settles a payment.

The paths are driven from their public entry points, as the platforms drive them:

- Checkout Session events (``checkout.session.completed``, ``async_payment_succeeded``): a
  session opened on the Stripe stub through the gateway and completed there, its signed event
  POSTed to the Stripe webhook, then the worker's task (``process_provider_event``) run;
- PaymentIntent and charge events: the same webhook and task;
- the legacy v1.2 buy button: a signed ``payment`` POSTed to the Messenger webhook, then the
  inbox worker's drain, which retrieves the charge from the Stripe stub.

Both directions of a wrong amount (less and more than the total), another currency, and amounts
a provider never sends as money (a float, a numeric string, a boolean, null, negative, beyond a
64-bit integer, missing) are all recorded and flagged, never paid. One control per path shows
the exact total does pay, so the refusals are not an accident of the set-up.
"""

from __future__ import annotations

import copy

import pytest
from django.core import mail
from django.test import TestCase

from commerce.models import Order, OrderEvent, StockReservation
from commerce.tasks import order_paid_alert_staff
from messenger.models import InboundEvent
from messenger.services import inbox
from messenger.services.inbox import inbound_events_drain
from messenger.tasks.outbox import outbox_deliver
from payments.models import Payment, ProviderEvent
from payments.tasks import process_provider_event
from tests.messenger.webhook.helpers import SECRET, URL, signed_headers
from tests.payments.buy_button_support import (
    legacy_body,
    payment_item,
    shop_create,
    stripe_charge,
)
from tests.payments.stripe_stub import stripe_event
from tests.payments.webhook_helpers import (
    checkout_start,
    enqueue_recorder,
    fixture_object,
    post_event,
)

pytestmark = pytest.mark.django_db

PAID_STATUSES = {
    Order.Status.PAID,
    Order.Status.FULFILLED,
    Order.Status.DELIVERED,
    Order.Status.PARTIALLY_REFUNDED,
    Order.Status.REFUNDED,
}
SESSION_PAID_EVENTS = [
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
]
TOTAL = 4000  # make_order's default: 25.00 + 10.00 + 5.00 shipping, USD
MISSING = object()


def unreadable(total: int) -> dict:
    """Amounts Stripe never sends for money (its amounts are JSON integers in minor units), most
    of them close to ``total`` so that a lenient reading would take them for it."""
    return {
        "float-equal-to-the-total": float(total),
        "float-with-cents": total + 0.5,
        "numeric-string": str(total),
        "major-units-string": f"{total // 100}.{total % 100:02d}",
        "true": True,
        "null": None,
        "negative": -total,
        "beyond-64-bits": 2**63 + total,
        "huge": 10**30,
        "missing": MISSING,
    }


UNREADABLE = list(unreadable(TOTAL))
WRONG = {
    "one-cent-less": TOTAL - 1,
    "half": TOTAL // 2,
    "one-cent-more": TOTAL + 1,
    "twice": TOTAL * 2,
    "zero": 0,
}


@pytest.fixture(autouse=True)
def _alerts_and_broker(settings, monkeypatch):
    """Operators to alert; the Messenger app secret; tasks published after a paid order stay
    at the broker boundary (recorded, not sent to Redis)."""
    settings.ADMINS = [("Operators", "ops@example.com")]
    settings.MESSENGER_APP_SECRET = SECRET
    inbox.inbox_page_cache_clear()
    monkeypatch.setattr(inbox, "_nudge_state", {"covered_until": 0.0, "redis_down_until": 0.0})
    monkeypatch.setattr(outbox_deliver, "apply_async", lambda *args, **kwargs: None)
    monkeypatch.setattr(order_paid_alert_staff, "delay", lambda *args, **kwargs: None)
    yield
    inbox.inbox_page_cache_clear()


@pytest.fixture
def order(make_order):
    order = make_order(prices=(2500, 1000), shipping_minor=500)
    assert (order.total_minor, order.currency) == (TOTAL, "USD")
    return order


def _with_amount(obj: dict, key: str, value) -> dict:
    obj = copy.deepcopy(obj)
    if value is MISSING:
        obj.pop(key, None)
    else:
        obj[key] = value
    return obj


def _deliver_to_worker(client, monkeypatch, type_: str, obj: dict) -> ProviderEvent:
    """POST the signed event to the Stripe webhook, then run the worker's task on what the
    webhook enqueued (the broker's hop is the only step skipped)."""
    body, signature = stripe_event(type_, obj)
    with enqueue_recorder(monkeypatch) as enqueued:
        response = post_event(client, body, signature)
    assert response.status_code == 200, response.content
    assert len(enqueued) == 1
    with TestCase.captureOnCommitCallbacks(execute=True):
        process_provider_event.apply(args=[enqueued[0]])
    return ProviderEvent.objects.get(pk=enqueued[0])


def _assert_never_paid(order: Order) -> None:
    order.refresh_from_db()
    assert order.status not in PAID_STATUSES, order.status
    assert order.paid_at is None
    assert not order.events.filter(kind=OrderEvent.Kind.PAID).exists()
    assert not order.payments.filter(status=Payment.Status.SUCCEEDED).exists()
    assert not order.reservations.filter(status=StockReservation.Status.SOLD).exists()


def _assert_flagged_with_an_alert(order: Order) -> None:
    order.refresh_from_db()
    assert order.needs_review is True
    assert order.events.filter(kind=OrderEvent.Kind.REVIEW_FLAGGED).exists()
    assert any(order.number in message.subject for message in mail.outbox), [
        m.subject for m in mail.outbox
    ]


# -- Checkout Session events ------------------------------------------------------------------


@pytest.mark.parametrize("type_", SESSION_PAID_EVENTS)
def test_a_session_paying_exactly_the_total_marks_the_order_paid(
    client, monkeypatch, stripe_stub, order, type_
):
    payment = checkout_start(order)
    session = stripe_stub.session_complete(payment.checkout_session_id)

    event = _deliver_to_worker(client, monkeypatch, type_, session)

    order.refresh_from_db()
    payment.refresh_from_db()
    assert event.status == ProviderEvent.Status.PROCESSED
    assert order.status == Order.Status.PAID
    assert payment.status == Payment.Status.SUCCEEDED
    assert order.needs_review is False


@pytest.mark.parametrize("type_", SESSION_PAID_EVENTS)
@pytest.mark.parametrize("amount", list(WRONG.values()), ids=list(WRONG))
def test_a_session_paying_less_or_more_than_the_total_is_flagged_never_paid(
    client, monkeypatch, stripe_stub, order, type_, amount
):
    payment = checkout_start(order)
    session = stripe_stub.session_complete(payment.checkout_session_id, amount_total=amount)

    event = _deliver_to_worker(client, monkeypatch, type_, session)

    assert event.status == ProviderEvent.Status.PROCESSED
    _assert_never_paid(order)
    _assert_flagged_with_an_alert(order)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.MISMATCH
    assert "mismatch" in order.review_reason.lower()


@pytest.mark.parametrize("type_", SESSION_PAID_EVENTS)
@pytest.mark.parametrize("currency", ["eur", "kwd", "jpy", "xxx", ""])
def test_a_session_paying_the_same_number_in_another_currency_is_flagged_never_paid(
    client, monkeypatch, stripe_stub, order, type_, currency
):
    payment = checkout_start(order)
    session = stripe_stub.session_complete(payment.checkout_session_id)
    session["currency"] = currency

    event = _deliver_to_worker(client, monkeypatch, type_, session)

    assert event.status == ProviderEvent.Status.PROCESSED
    _assert_never_paid(order)
    _assert_flagged_with_an_alert(order)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.MISMATCH


@pytest.mark.parametrize("type_", SESSION_PAID_EVENTS)
@pytest.mark.parametrize("kind", UNREADABLE)
def test_an_unreadable_session_amount_is_flagged_never_taken_as_the_total(
    client, monkeypatch, stripe_stub, order, type_, kind
):
    payment = checkout_start(order)
    session = stripe_stub.session_complete(payment.checkout_session_id)
    session = _with_amount(session, "amount_total", unreadable(TOTAL)[kind])

    event = _deliver_to_worker(client, monkeypatch, type_, session)

    assert event.status == ProviderEvent.Status.PROCESSED, event.error
    _assert_never_paid(order)
    _assert_flagged_with_an_alert(order)
    payment.refresh_from_db()
    assert payment.status == Payment.Status.MISMATCH
    assert payment.amount_minor == TOTAL  # what was asked for stays recorded


@pytest.mark.parametrize("amount", [2**63, 10**30, -TOTAL])
def test_a_session_we_never_opened_with_an_absurd_amount_is_settled_with_a_reason_never_paid(
    client, monkeypatch, stripe_stub, order, amount
):
    """No payment row of ours names the session: whatever is done with it, an amount beyond
    what we can record never fails the event for good (it failed with "bigint out of range"
    after six tries) and never pays the order."""
    session = fixture_object(
        "checkout_session_completed",
        id="cs_test_never_opened_here",
        client_reference_id=str(order.pk),
        metadata={"order_id": str(order.pk)},
        amount_total=amount,
        currency="usd",
    )

    event = _deliver_to_worker(client, monkeypatch, "checkout.session.completed", session)

    assert event.status in (ProviderEvent.Status.PROCESSED, ProviderEvent.Status.IGNORED), (
        event.status,
        event.error,
    )
    assert event.error  # what was done, for the operators
    _assert_never_paid(order)


# -- PaymentIntent and charge events ----------------------------------------------------------


@pytest.mark.parametrize(
    "type_",
    [
        "payment_intent.succeeded",
        "payment_intent.amount_capturable_updated",
        "charge.succeeded",
        "charge.captured",
        "charge.updated",
    ],
)
@pytest.mark.parametrize("kind", ["less", "more", *UNREADABLE])
def test_payment_intent_and_charge_events_with_a_wrong_amount_never_mark_paid(
    client, monkeypatch, stripe_stub, order, type_, kind
):
    """Whatever these events do for an order of ours (today: nothing, the session settles),
    an amount that is not exactly the total never pays it."""
    payment = checkout_start(order)
    session = stripe_stub.session_complete(payment.checkout_session_id)
    intent = stripe_stub.payment_intents[session["payment_intent"]]
    if type_.startswith("charge."):
        obj = copy.deepcopy(stripe_stub.charges[intent["latest_charge"]])
        keys = ("amount", "amount_captured")
    else:
        obj = copy.deepcopy(intent)
        keys = ("amount", "amount_received", "amount_capturable")
    obj["metadata"] = {**(obj.get("metadata") or {}), "order_id": str(order.pk)}
    amount = {"less": TOTAL - 1, "more": TOTAL + 1, **unreadable(TOTAL)}[kind]
    for key in keys:
        obj = _with_amount(obj, key, amount)

    event = _deliver_to_worker(client, monkeypatch, type_, obj)

    assert event.status != ProviderEvent.Status.PENDING
    _assert_never_paid(order)
    payment.refresh_from_db()
    assert payment.status != Payment.Status.SUCCEEDED


# -- the legacy buy button (Messenger webhook -> inbox worker -> charge at Stripe) -------------


def _messenger_payment(client, shop, item) -> InboundEvent:
    """POST the signed ``payment`` to the Messenger webhook, then run the inbox worker."""
    body = legacy_body(item)
    response = client.post(URL, data=body, content_type="application/json", **signed_headers(body))
    assert response.status_code == 200, response.content
    with TestCase.captureOnCommitCallbacks(execute=True):
        inbound_events_drain()
    return InboundEvent.objects.get(kind="payment")


def _assert_no_paid_order_and_someone_told(charge_id: str) -> None:
    """Never paid; the money is either on an order flagged for review or in an alert to the
    operators (a charge whose amount cannot be read is not turned into an order)."""
    assert not Order.objects.filter(status__in=PAID_STATUSES).exists()
    assert not Payment.objects.filter(status=Payment.Status.SUCCEEDED).exists()
    flagged = Order.objects.filter(needs_review=True).exists()
    alerted = any(charge_id in message.body for message in mail.outbox)
    assert flagged or alerted, [m.subject for m in mail.outbox]
    for order in Order.objects.all():
        assert not order.reservations.filter(status=StockReservation.Status.SOLD).exists()


def test_a_messenger_payment_of_exactly_the_total_marks_the_order_paid(client, stripe_stub):
    shop = shop_create(price_minor=2500)
    stripe_charge(stripe_stub, charge_id="ch_3Exact", amount=2500)

    row = _messenger_payment(client, shop, payment_item(shop, charge_id="ch_3Exact"))

    order = Order.objects.get()
    assert (row.status, order.status, order.total_minor) == ("processed", Order.Status.PAID, 2500)
    assert order.payments.get().status == Payment.Status.SUCCEEDED


@pytest.mark.parametrize(
    ("charged", "shown"),
    [(2400, "24.00"), (2499, "24.99"), (2501, "25.01"), (2600, "26.00"), (5000, "50.00")],
    ids=["less", "one-cent-less", "one-cent-more", "more", "twice"],
)
def test_a_messenger_payment_of_less_or_more_than_the_total_is_flagged_never_paid(
    client, stripe_stub, charged, shown
):
    """The charge and the dialog agree with each other, not with the order's total."""
    shop = shop_create(price_minor=2500)
    stripe_charge(stripe_stub, charge_id="ch_3Wrong", amount=charged)

    row = _messenger_payment(client, shop, payment_item(shop, charge_id="ch_3Wrong", amount=shown))

    assert row.status == "processed"
    _assert_no_paid_order_and_someone_told("ch_3Wrong")
    order = Order.objects.get()
    _assert_flagged_with_an_alert(order)
    assert order.payments.get().status == Payment.Status.MISMATCH


@pytest.mark.parametrize("currency", ["eur", "kwd", "jpy", "xxx", ""])
def test_a_messenger_payment_in_another_currency_is_flagged_never_paid(
    client, stripe_stub, currency
):
    shop = shop_create(price_minor=2500)
    stripe_charge(stripe_stub, charge_id="ch_3Currency", amount=2500, currency=currency)
    shown = {"kwd": "2.500", "jpy": "2500"}.get(currency, "25.00")

    row = _messenger_payment(
        client,
        shop,
        payment_item(shop, charge_id="ch_3Currency", amount=shown, currency=currency.upper()),
    )

    assert row.status == "processed"
    _assert_no_paid_order_and_someone_told("ch_3Currency")


@pytest.mark.parametrize("kind", UNREADABLE)
def test_a_messenger_payment_whose_charge_amount_is_unreadable_is_never_paid(
    client, stripe_stub, kind
):
    """The charge Stripe returns is what settles a buy-button payment: an amount in it that is
    not an integer of minor units is never read as the total (the dialog said 25.00)."""
    shop = shop_create(price_minor=2500)
    charge = stripe_charge(stripe_stub, charge_id="ch_3Unreadable", amount=2500)
    with stripe_stub.lock:
        stripe_stub.charges["ch_3Unreadable"] = _with_amount(
            charge, "amount", unreadable(2500)[kind]
        )

    row = _messenger_payment(client, shop, payment_item(shop, charge_id="ch_3Unreadable"))

    assert row.status == "processed", (row.status, row.error)
    _assert_no_paid_order_and_someone_told("ch_3Unreadable")
    # Nothing half-done: the unit is either on a flagged order or back in stock.
    shop.variant.refresh_from_db()
    reserved = sum(
        r.quantity for r in StockReservation.objects.filter(status=StockReservation.Status.ACTIVE)
    )
    assert shop.variant.stock_reserved == reserved
