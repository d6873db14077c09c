"""Stripe's webhook deliveries arrive duplicated, late and out of order across 100 orders
(DESIGN.md 6.2 and 8: store then process, every task idempotent).

Four stories, 25 orders each, all opened through the Stripe stand-in:

- **paid**: one session, completed;
- **second try**: the first session expired, the second completed; the ``expired`` event of
  the first may arrive before or after the ``completed`` of the second;
- **abandoned**: the reservation ran out and the session expired;
- **paid too late**: the reservation ran out and our own expiry job closed the order before
  the ``completed`` event was processed (the shopper paid in the last second).

Every event is signed like Stripe signs it and POSTed to the real webhook 1 to 3 times (Stripe
retries), in a shuffled order, in two waves (the second wave comes after the first was
processed: late events); the worker's processing of each stored event runs twice, shuffled.
The final state of every order must be exactly what its story says.
"""

from __future__ import annotations

import json
import random
from datetime import timedelta

import pytest
from django.utils import timezone

from commerce.models import Cart, CartLine, Order, OrderEvent, Variant
from commerce.services.orders import order_create_from_cart, order_expire_due
from messenger.models import MessengerPage, OutboundMessage
from payments.models import Payment, ProviderEvent
from payments.services.events import provider_event_process
from tests.factories import customer_create, merchant_create, variant_create
from tests.payments.stripe_stub import stripe_event
from tests.payments.webhook_helpers import checkout_start, enqueue_recorder, post_event

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

PAGE_ID = "104412345678901"
ORDERS_PER_STORY = 25
STORIES = ("paid", "second_try", "abandoned", "paid_too_late")
STOCK = 1000


@pytest.fixture
def shop():
    page = MessengerPage.objects.create(
        merchant=merchant_create(name="Souq Layla"),
        page_id=PAGE_ID,
        name="Souq Layla",
        access_token="EAAfaulttesttoken",
    )
    variant = variant_create(merchant=page.merchant, price_minor=2500, stock=STOCK)
    return page, variant


def _order(page, variant) -> Order:
    customer = customer_create(
        merchant=page.merchant, page_id=PAGE_ID, last_interaction_at=timezone.now()
    )
    cart = Cart.objects.create(merchant=page.merchant, customer=customer)
    CartLine.objects.create(cart=cart, variant=variant, quantity=2)
    return order_create_from_cart(cart=cart)


def _reservation_runs_out(order: Order) -> None:
    Order.objects.filter(pk=order.pk).update(reserved_until=timezone.now() - timedelta(minutes=1))


def _signed(type_: str, session: dict) -> tuple[bytes, str]:
    return stripe_event(type_, session)


def test_duplicated_late_and_reordered_events_leave_every_order_right(
    client, monkeypatch, stripe_stub, shop
):
    page, variant = shop
    rng = random.Random(20261125)  # reproducible chaos
    stories: dict[int, str] = {}
    events: list[tuple[bytes, str]] = []  # (body, signature) of every distinct event
    expected_paid_payment: dict[int, int] = {}

    for story in STORIES:
        for _ in range(ORDERS_PER_STORY):
            order = _order(page, variant)
            stories[order.pk] = story
            if story == "paid":
                payment = checkout_start(order)
                session = stripe_stub.session_complete(payment.checkout_session_id)
                events.append(_signed("checkout.session.completed", session))
                expected_paid_payment[order.pk] = payment.pk
            elif story == "second_try":
                first = checkout_start(order)
                second = checkout_start(order)
                expired = stripe_stub.session_expire(first.checkout_session_id)
                paid = stripe_stub.session_complete(second.checkout_session_id)
                events.append(_signed("checkout.session.expired", expired))
                events.append(_signed("checkout.session.completed", paid))
                expected_paid_payment[order.pk] = second.pk
            elif story == "abandoned":
                payment = checkout_start(order)
                _reservation_runs_out(order)
                events.append(
                    _signed(
                        "checkout.session.expired",
                        stripe_stub.session_expire(payment.checkout_session_id),
                    )
                )
            else:  # paid_too_late
                payment = checkout_start(order)
                session = stripe_stub.session_complete(payment.checkout_session_id)
                _reservation_runs_out(order)
                events.append(_signed("checkout.session.completed", session))

    # Our own expiry job runs before the late payments are processed.
    assert order_expire_due() == 2 * ORDERS_PER_STORY  # abandoned + paid too late

    deliveries = [event for event in events for _ in range(rng.randint(1, 3))]
    rng.shuffle(deliveries)
    half = len(deliveries) // 2
    enqueued: list[int] = []
    with enqueue_recorder(monkeypatch) as recorded:
        for wave in (deliveries[:half], deliveries[half:]):
            for body, signature in wave:
                response = post_event(client, body, signature)
                assert response.status_code == 200, response.content
            # The worker catches up on what this wave stored: each task twice, shuffled.
            tasks = recorded[len(enqueued) :] * 2
            enqueued.extend(recorded[len(enqueued) :])
            rng.shuffle(tasks)
            for event_id in tasks:
                provider_event_process(event_id=event_id)

    # Each distinct event stored once, enqueued once, processed.
    event_ids = {json.loads(body)["id"] for body, _signature in events}
    stored = ProviderEvent.objects.all()
    assert {event.event_id for event in stored} == event_ids
    assert sorted(enqueued) == sorted(event.pk for event in stored)
    assert {event.status for event in stored} == {ProviderEvent.Status.PROCESSED}

    for order in Order.objects.filter(pk__in=stories):
        story = stories[order.pk]
        succeeded = list(
            order.payments.filter(status=Payment.Status.SUCCEEDED).values_list("pk", flat=True)
        )
        paid_events = order.events.filter(kind=OrderEvent.Kind.PAID).count()
        receipts = OutboundMessage.objects.filter(dedupe_key=f"receipt:{order.pk}").count()
        state = (order.status, succeeded, paid_events, receipts, order.needs_review)
        if story in ("paid", "second_try"):
            expected = (Order.Status.PAID, [expected_paid_payment[order.pk]], 1, 1, False)
        elif story == "abandoned":
            expected = (Order.Status.EXPIRED, [], 0, 0, False)
        else:  # the money is recorded, the order is not revived, a person looks at it
            expected = (Order.Status.EXPIRED, succeeded[:1], 0, 0, True)
            assert len(succeeded) == 1
        assert state == expected, f"order {order.pk} ({story})"
        assert not order.payments.filter(status=Payment.Status.PENDING).exists(), story

    # Stock: sold for the paid orders, released for the others, nothing left reserved.
    paid_orders = sum(1 for story in stories.values() if story in ("paid", "second_try"))
    variant = Variant.objects.get(pk=variant.pk)
    assert (variant.stock_on_hand, variant.stock_reserved) == (STOCK - 2 * paid_orders, 0)
