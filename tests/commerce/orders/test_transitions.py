"""Order status transitions: every legal move, every illegal one, stock exactly once, notices."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.utils import timezone

from commerce.exceptions import InvalidTransition, RefundError
from commerce.models import (
    Merchant,
    Order,
    OrderEvent,
    Shipment,
    StockReservation,
    Variant,
    Voucher,
)
from commerce.notifications import OrderNotice, order_subscribe
from commerce.services.orders import (
    TRANSITIONS,
    order_add_note,
    order_cancel,
    order_create_from_cart,
    order_expire,
    order_expire_due,
    order_flag_for_review,
    order_fulfil,
    order_mark_delivered,
    order_mark_paid,
    order_mark_paid_if_pending,
    order_payment_failed,
    order_record_refund,
    order_record_refund_reversal,
)
from commerce.services.stock import stock_release, stock_sell
from commerce.tasks import expire_unpaid_orders
from core.exceptions import ApplicationError
from tests.factories import customer_create, staff_create, variant_create

pytestmark = pytest.mark.django_db

S = Order.Status
Kind = OrderEvent.Kind
FAR_FUTURE = timezone.now() + timedelta(days=3650)


# -- building an order in each status through the services themselves --------------------------


def _paid(order: Order) -> Order:
    return order_mark_paid(order=order)


def _shipped(order: Order) -> Order:
    order = _paid(order)
    order_fulfil(order=order, carrier="Aramex", tracking_number="AX1")
    return order


BUILD: dict[str, Callable[[Order], Order]] = {
    S.PENDING_PAYMENT: lambda order: order,
    S.PAID: _paid,
    S.FULFILLED: _shipped,
    S.DELIVERED: lambda order: order_mark_delivered(order=_shipped(order)),
    S.EXPIRED: lambda order: order_expire(order=order, now=FAR_FUTURE),
    S.CANCELLED: lambda order: order_cancel(order=order),
    S.PAYMENT_FAILED: lambda order: order_payment_failed(order=order, reason="card_declined"),
    # Shipped, then partly refunded: so "delivered" and "another shipment" are both possible.
    S.PARTIALLY_REFUNDED: lambda order: order_record_refund(order=_shipped(order), amount_minor=1),
    S.REFUNDED: lambda order: order_record_refund(order=_paid(order), amount_minor=2000),
}

# transition name -> (call, status afterwards, event kind, notice)
CALLS: dict[str, tuple[Callable[[Order], object], str, str, OrderNotice]] = {
    "mark_paid": (lambda o: order_mark_paid(order=o), S.PAID, Kind.PAID, OrderNotice.PAID),
    "payment_failed": (
        lambda o: order_payment_failed(order=o, reason="card_declined"),
        S.PAYMENT_FAILED,
        Kind.PAYMENT_FAILED,
        OrderNotice.PAYMENT_FAILED,
    ),
    "expire": (
        lambda o: order_expire(order=o, now=FAR_FUTURE),
        S.EXPIRED,
        Kind.EXPIRED,
        OrderNotice.EXPIRED,
    ),
    "cancel": (lambda o: order_cancel(order=o), S.CANCELLED, Kind.CANCELLED, OrderNotice.CANCELLED),
    "fulfil": (
        lambda o: order_fulfil(order=o, carrier="DHL", tracking_url="https://dhl.example/t/1"),
        S.FULFILLED,
        Kind.FULFILLED,
        OrderNotice.FULFILLED,
    ),
    "mark_delivered": (
        lambda o: order_mark_delivered(order=o),
        S.DELIVERED,
        Kind.DELIVERED,
        OrderNotice.DELIVERED,
    ),
    "refund_part": (
        lambda o: order_record_refund(order=o, amount_minor=100),
        S.PARTIALLY_REFUNDED,
        Kind.REFUNDED,
        OrderNotice.REFUNDED,
    ),
    "refund_rest": (
        lambda o: order_record_refund(order=o, amount_minor=o.total_minor - o.refunded_minor),
        S.REFUNDED,
        Kind.REFUNDED,
        OrderNotice.REFUNDED,
    ),
}

# Written out independently of the implementation's table: DESIGN.md section 4 plus the issue.
LEGAL: dict[str, set[str]] = {
    S.PENDING_PAYMENT: {"mark_paid", "payment_failed", "expire", "cancel"},
    S.PAYMENT_FAILED: {"cancel"},
    S.PAID: {"fulfil", "refund_part", "refund_rest"},
    # "fulfil" on a fulfilled order is a further (partial) shipment.
    S.FULFILLED: {"fulfil", "mark_delivered", "refund_part", "refund_rest"},
    S.DELIVERED: {"refund_part", "refund_rest"},
    S.PARTIALLY_REFUNDED: {"fulfil", "mark_delivered", "refund_part", "refund_rest"},
    S.EXPIRED: set(),
    S.CANCELLED: set(),
    S.REFUNDED: set(),
}


def test_the_transition_table_is_the_documented_one():
    assert {
        S.PENDING_PAYMENT: {S.PAID, S.EXPIRED, S.CANCELLED, S.PAYMENT_FAILED},
        S.PAYMENT_FAILED: {S.CANCELLED},
        S.PAID: {S.FULFILLED, S.PARTIALLY_REFUNDED, S.REFUNDED},
        S.FULFILLED: {S.DELIVERED, S.PARTIALLY_REFUNDED, S.REFUNDED},
        S.DELIVERED: {S.PARTIALLY_REFUNDED, S.REFUNDED},
        S.PARTIALLY_REFUNDED: {S.FULFILLED, S.DELIVERED, S.PARTIALLY_REFUNDED, S.REFUNDED},
        S.EXPIRED: set(),
        S.CANCELLED: set(),
        S.REFUNDED: set(),
    } == TRANSITIONS
    assert set(TRANSITIONS) == set(S.values)


def _snapshot(order: Order) -> dict:
    """Everything a transition could change, to compare before and after a refusal."""
    return {
        "order": Order.objects.filter(pk=order.pk).values().get(),
        "events": list(OrderEvent.objects.filter(order=order).values_list("pk", flat=True)),
        "reservations": list(
            StockReservation.objects.filter(order=order).values_list("pk", "status")
        ),
        "shipments": list(Shipment.objects.filter(order=order).values()),
        "stock": list(
            Variant.objects.order_by("pk").values_list("stock_on_hand", "stock_reserved")
        ),
    }


@pytest.mark.parametrize("transition", list(CALLS))
@pytest.mark.parametrize("from_status", list(LEGAL))
def test_every_transition_from_every_status(from_status, transition, place, notices):
    """Legal moves change the status, record an event and announce; others change nothing."""
    order = BUILD[from_status](place(qty=2))  # 2 × 10.00 USD
    order.refresh_from_db()
    assert order.status == from_status
    call, to_status, kind, notice = CALLS[transition]
    notices.clear()
    before = _snapshot(order)
    events_of_kind = order.events.filter(kind=kind).count()

    if transition in LEGAL[from_status]:
        call(order)
        order.refresh_from_db()
        assert order.status == to_status
        assert order.events.filter(kind=kind).count() == events_of_kind + 1
        assert [(n, pk) for n, pk, _data in notices] == [(notice, order.pk)]
    else:
        with pytest.raises(InvalidTransition) as caught:
            call(order)
        assert caught.value.code == "invalid_transition"
        assert caught.value.extra["from"] == from_status
        # A refund of a fully refunded order (nothing left) is refused as "to refunded".
        attempted = {to_status, S.REFUNDED} if kind == Kind.REFUNDED else {to_status}
        assert caught.value.extra["to"] in attempted
        assert caught.value.message.startswith(f"Order {order.number} is ")
        assert _snapshot(order) == before
        assert notices == []


def test_refusal_message_names_the_order_and_both_states(place):
    order = order_expire(order=place(), now=FAR_FUTURE)
    with pytest.raises(InvalidTransition) as caught:
        order_mark_paid(order=order)
    assert caught.value.message == f"Order {order.number} is expired; it cannot be marked paid."
    assert caught.value.status_code == 409


def test_transitions_set_their_timestamps_and_actors(place):
    staff = staff_create(merchant=place().merchant)
    order = place()

    order_mark_paid(order=order, data={"payment_intent": "pi_123"})
    assert order.paid_at is not None
    paid = order.events.get(kind=Kind.PAID)
    assert paid.actor == OrderEvent.Actor.PROVIDER
    assert paid.data["payment_intent"] == "pi_123"

    shipped_at = timezone.now() - timedelta(hours=2)
    order_fulfil(order=order, carrier="Aramex", user=staff, shipped_at=shipped_at)
    assert order.fulfilled_at == shipped_at
    event = order.events.get(kind=Kind.FULFILLED)
    assert (event.actor, event.actor_user) == (OrderEvent.Actor.STAFF, staff)

    order_mark_delivered(order=order)
    assert order.delivered_at is not None
    assert order.shipments.get().delivered_at == order.delivered_at

    cancelled = order_cancel(order=place(), actor=OrderEvent.Actor.CUSTOMER, reason="Changed mind")
    assert cancelled.closed_at is not None
    event = cancelled.events.get(kind=Kind.CANCELLED)
    assert (event.actor, event.message) == (OrderEvent.Actor.CUSTOMER, "Changed mind")


# -- stock exactly once -----------------------------------------------------------------------


def _stock(variant: Variant) -> tuple[int, int]:
    variant.refresh_from_db()
    return variant.stock_on_hand, variant.stock_reserved


def test_paying_twice_sells_the_stock_once(place, variant):
    order = place(qty=2)
    assert _stock(variant) == (10, 2)

    order_mark_paid(order=order)
    with pytest.raises(InvalidTransition):
        order_mark_paid(order=order)

    assert _stock(variant) == (8, 0)
    assert order.reservations.get().status == StockReservation.Status.SOLD
    assert order.events.filter(kind=Kind.PAID).count() == 1
    assert order.events.filter(kind=Kind.STOCK_SOLD).count() == 1


def test_mark_paid_if_pending_is_idempotent(place, variant, notices):
    order = place(qty=2)

    assert order_mark_paid_if_pending(order=order) is True
    assert order_mark_paid_if_pending(order=order) is False

    assert order.status == S.PAID
    assert _stock(variant) == (8, 0)
    assert [n for n, _pk, _data in notices] == [OrderNotice.PAID]
    # Shipped meanwhile: a replayed payment event still changes nothing.
    order_fulfil(order=order, carrier="DHL")
    assert order_mark_paid_if_pending(order=order) is False
    assert _stock(variant) == (8, 0)


@pytest.mark.parametrize("status", [S.EXPIRED, S.CANCELLED, S.PAYMENT_FAILED])
def test_mark_paid_if_pending_refuses_orders_given_up(status, place):
    order = BUILD[status](place())
    with pytest.raises(InvalidTransition):
        order_mark_paid_if_pending(order=order)


def test_expire_then_cancel_releases_once(place, variant):
    order = place(qty=3)

    order_expire(order=order, now=FAR_FUTURE)
    with pytest.raises(InvalidTransition):
        order_cancel(order=order)

    assert _stock(variant) == (10, 0)
    assert order.reservations.get().status == StockReservation.Status.RELEASED
    assert order.events.filter(kind=Kind.STOCK_RELEASED).count() == 1


def test_payment_failed_then_cancel_releases_once(place, variant):
    order = place(qty=3)
    order_payment_failed(order=order, reason="card_declined")
    assert _stock(variant) == (10, 0)

    order_cancel(order=order)

    assert order.status == S.CANCELLED
    assert _stock(variant) == (10, 0)
    assert order.events.filter(kind=Kind.STOCK_RELEASED).count() == 1


def test_stock_services_act_only_on_active_reservations(place, variant):
    """Called twice, or sell after release, the second call changes nothing."""
    order = place(qty=4)

    first = stock_release(order=order)
    second = stock_release(order=order)
    sold = stock_sell(order=order)

    assert first.quantities == {variant.pk: 4}
    assert not second
    assert not sold
    assert _stock(variant) == (10, 0)


def test_selling_never_takes_stock_below_zero(place, variant):
    """Staff lowered stock on hand under the reserved units: the sale stops at zero."""
    order = place(qty=5)
    Variant.objects.filter(pk=variant.pk).update(stock_on_hand=3)
    order_mark_paid(order=order)
    assert _stock(variant) == (0, 0)


def test_leaving_pending_payment_unpaid_gives_the_voucher_use_back(shop, make_cart, variant):
    voucher = Voucher.objects.create(
        merchant=shop, code="ONCE", kind="percentage", percent_bp=500, usage_limit=1
    )
    customer = customer_create(merchant=shop)

    order = order_create_from_cart(cart=make_cart(customer, [(variant, 1)], voucher_code="ONCE"))
    voucher.refresh_from_db()
    assert voucher.times_used == 1

    order_payment_failed(order=order)
    order_cancel(order=order)

    voucher.refresh_from_db()
    assert voucher.times_used == 0


# -- expiry -----------------------------------------------------------------------------------


def test_expire_refuses_before_the_reservation_runs_out(place, variant):
    order = place(qty=1)
    with pytest.raises(InvalidTransition) as caught:
        order_expire(order=order, now=order.reserved_until - timedelta(seconds=1))
    assert caught.value.code == "not_expired_yet"
    assert Order.objects.get(pk=order.pk).status == S.PENDING_PAYMENT
    assert _stock(variant) == (10, 1)

    order_expire(order=order, now=order.reserved_until)
    assert order.status == S.EXPIRED


def test_expire_due_expires_only_unpaid_orders_past_their_reservation(place, variant, notices):
    now = timezone.now()
    due = place(now=now - timedelta(hours=2))
    also_due = place(now=now - timedelta(hours=1))
    paid = order_mark_paid(order=place(now=now - timedelta(hours=2)))
    fresh = place(now=now)

    assert order_expire_due(now=now) == 2
    assert order_expire_due(now=now) == 0

    statuses = dict(Order.objects.values_list("pk", "status"))
    assert statuses == {
        due.pk: S.EXPIRED,
        also_due.pk: S.EXPIRED,
        paid.pk: S.PAID,
        fresh.pk: S.PENDING_PAYMENT,
    }
    assert _stock(variant) == (9, 1)
    assert sorted(pk for n, pk, _d in notices if n == OrderNotice.EXPIRED) == sorted(
        [due.pk, also_due.pk]
    )


def test_expire_due_respects_the_limit(place):
    past = timezone.now() - timedelta(hours=1)
    for _ in range(3):
        place(now=past)
    assert order_expire_due(limit=2) == 2
    assert order_expire_due(limit=2) == 1


def test_expire_due_keeps_going_when_one_order_fails(place, variant, shop):
    past = timezone.now() - timedelta(hours=1)
    broken_variant = variant_create(merchant=shop, price_minor=1000, stock=10)
    first, second = place(variant=broken_variant, now=past), place(now=past)
    # A counter that lost the first order's reservation: releasing it breaks the CHECK.
    Variant.objects.filter(pk=broken_variant.pk).update(stock_reserved=0)

    assert order_expire_due() == 1

    assert Order.objects.get(pk=first.pk).status == S.PENDING_PAYMENT
    assert Order.objects.get(pk=second.pk).status == S.EXPIRED
    assert _stock(variant) == (10, 0)


def test_a_failing_subscriber_does_not_block_the_expiry_sweep(place, variant):
    past = timezone.now() - timedelta(hours=1)
    first, second = place(now=past), place(now=past)

    def refuse_first(order, **data):
        if order.pk == first.pk:
            raise RuntimeError("outbox down")

    order_subscribe(OrderNotice.EXPIRED, refuse_first)
    assert order_expire_due() == 2

    assert Order.objects.get(pk=first.pk).status == S.EXPIRED
    assert Order.objects.get(pk=second.pk).status == S.EXPIRED
    assert _stock(variant) == (10, 0)
    assert first.events.filter(kind=Kind.NOTICE_FAILED).count() == 1
    assert not second.events.filter(kind=Kind.NOTICE_FAILED).exists()


def test_expiry_task_calls_the_service(place):
    place(now=timezone.now() - timedelta(hours=1))
    assert expire_unpaid_orders() == 1
    assert Order.objects.get().status == S.EXPIRED


def test_expiry_task_is_scheduled_every_minute(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["commerce-expire-unpaid-orders"]
    assert entry["task"] == expire_unpaid_orders.name == "commerce.tasks.expire_unpaid_orders"
    assert entry["schedule"] == timedelta(minutes=1)


# -- fulfilment -------------------------------------------------------------------------------


def test_further_shipments_are_recorded_without_a_status_change(place, notices):
    order = _paid(place(qty=2))
    notices.clear()
    first = order_fulfil(order=order, carrier="Aramex", tracking_number="AX1")
    fulfilled_at = order.fulfilled_at
    second = order_fulfil(
        order=order,
        carrier="DHL",
        tracking_number="DH2",
        tracking_url="https://dhl.example/track/DH2",
    )

    assert order.status == S.FULFILLED
    assert order.fulfilled_at == fulfilled_at
    assert list(order.shipments.all()) == [first, second]
    assert second.tracking_url == "https://dhl.example/track/DH2"
    assert order.events.filter(kind=Kind.FULFILLED).count() == 2
    assert [(n, d["shipment"]) for n, _pk, d in notices] == [
        (OrderNotice.FULFILLED, first),
        (OrderNotice.FULFILLED, second),
    ]


def test_fulfil_refuses_a_bad_tracking_url_or_no_carrier(place):
    order = _paid(place())
    for options in ({"carrier": ""}, {"carrier": "DHL", "tracking_url": "javascript:alert(1)"}):
        with pytest.raises(ApplicationError) as caught:
            order_fulfil(order=order, **options)
        assert caught.value.code == "shipment_invalid"
    assert not order.shipments.exists()
    assert Order.objects.get(pk=order.pk).status == S.PAID


def test_delivering_one_of_two_shipments_keeps_the_order_shipped(place, notices):
    order = _paid(place(qty=2))
    first = order_fulfil(order=order, carrier="Aramex")
    second = order_fulfil(order=order, carrier="DHL")
    notices.clear()

    order_mark_delivered(order=order, shipment=first)
    assert order.status == S.FULFILLED
    first.refresh_from_db()
    assert first.delivered_at is not None
    with pytest.raises(InvalidTransition) as caught:
        order_mark_delivered(order=order, shipment=first)
    assert caught.value.code == "already_delivered"

    order_mark_delivered(order=order, shipment=second)
    assert order.status == S.DELIVERED
    assert order.delivered_at is not None
    assert [(n, d["shipments"]) for n, _pk, d in notices] == [
        (OrderNotice.DELIVERED, [first]),
        (OrderNotice.DELIVERED, [second]),
    ]


def test_partially_refunded_order_never_shipped_cannot_be_delivered(place):
    order = order_record_refund(order=_paid(place()), amount_minor=100)
    with pytest.raises(InvalidTransition) as caught:
        order_mark_delivered(order=order)
    assert caught.value.code == "not_shipped"
    assert Order.objects.get(pk=order.pk).status == S.PARTIALLY_REFUNDED


# -- refunds ----------------------------------------------------------------------------------


def test_partial_then_full_refund(place, notices):
    order = _paid(place(qty=2))  # 20.00 USD
    notices.clear()

    order_record_refund(order=order, amount_minor=500, reference="re_1")
    assert (order.status, order.refunded_minor) == (S.PARTIALLY_REFUNDED, 500)
    order_record_refund(order=order, amount_minor=700, reference="re_2")
    assert (order.status, order.refunded_minor) == (S.PARTIALLY_REFUNDED, 1200)
    order_record_refund(order=order, amount_minor=800, reference="re_3")
    assert (order.status, order.refunded_minor) == (S.REFUNDED, 2000)

    assert [d for _n, _pk, d in notices] == [
        {"amount_minor": 500, "reference": "re_1", "fully_refunded": False},
        {"amount_minor": 700, "reference": "re_2", "fully_refunded": False},
        {"amount_minor": 800, "reference": "re_3", "fully_refunded": True},
    ]
    assert order.events.filter(kind=Kind.REFUNDED).count() == 3


@pytest.mark.parametrize("amount", [0, -1, 1501, 1.5, "100"])
def test_refund_outside_what_is_left_is_refused(amount, place):
    order = order_record_refund(order=_paid(place(qty=2)), amount_minor=500)
    events = order.events.count()

    with pytest.raises(RefundError) as caught:
        order_record_refund(order=order, amount_minor=amount)

    assert caught.value.extra["remaining_minor"] == 1500
    fresh = Order.objects.get(pk=order.pk)
    assert (fresh.status, fresh.refunded_minor) == (S.PARTIALLY_REFUNDED, 500)
    assert fresh.events.count() == events


def test_giving_back_a_duplicate_payment_keeps_the_order_paid_and_shippable(place, notices):
    """Paid twice (40.00 collected for a 20.00 order): 20.00 back still leaves it paid."""
    order = _paid(place(qty=2))
    notices.clear()

    order_record_refund(order=order, amount_minor=2000, net_paid_minor=2000, reference="re_dup")

    assert (order.status, order.refunded_minor) == (S.PAID, 0)
    event = order.events.get(kind=Kind.REFUNDED)
    assert event.data["status_unchanged"] == S.PAID
    assert [(n, d["fully_refunded"]) for n, _pk, d in notices] == [(OrderNotice.REFUNDED, False)]
    order_fulfil(order=order, carrier="Aramex")
    assert order.status == S.FULFILLED

    order_record_refund(order=order, amount_minor=500, net_paid_minor=1500, reference="re_2")
    assert (order.status, order.refunded_minor) == (S.PARTIALLY_REFUNDED, 500)
    order_record_refund(order=order, amount_minor=1500, net_paid_minor=0, reference="re_3")
    assert (order.status, order.refunded_minor) == (S.REFUNDED, 2000)


@pytest.mark.parametrize(
    ("build", "back_to"),
    [(_paid, S.PAID), (_shipped, S.FULFILLED), (BUILD[S.DELIVERED], S.DELIVERED)],
)
def test_a_refund_taken_back_returns_the_order_to_where_it_was(place, notices, build, back_to):
    order = build(place(qty=2))  # 20.00
    order_record_refund(order=order, amount_minor=2000, reference="re_1")
    assert order.status == S.REFUNDED
    notices.clear()

    order_record_refund_reversal(
        order=order, amount_minor=2000, net_paid_minor=2000, reason="card closed", reference="re_1"
    )

    assert (order.status, order.refunded_minor) == (back_to, 0)
    event = order.events.get(kind=Kind.REFUND_FAILED)
    assert (event.data["from"], event.data["to"], event.message) == (
        S.REFUNDED,
        back_to,
        "card closed",
    )
    assert notices == [
        (OrderNotice.REFUND_FAILED, order.pk, {"amount_minor": 2000, "reference": "re_1"})
    ]


def test_one_of_two_refunds_taken_back_leaves_the_order_partially_refunded(place):
    order = _paid(place(qty=2))
    order_record_refund(order=order, amount_minor=500, reference="re_1")
    order_record_refund(order=order, amount_minor=1500, reference="re_2")

    order_record_refund_reversal(order=order, amount_minor=500, net_paid_minor=500)

    assert (order.status, order.refunded_minor) == (S.PARTIALLY_REFUNDED, 1500)


def test_unpaid_order_cannot_be_refunded(place):
    with pytest.raises(InvalidTransition):
        order_record_refund(order=place(), amount_minor=100)


# -- notices ----------------------------------------------------------------------------------


def test_a_failing_subscriber_never_blocks_the_payment_and_leaves_a_visible_failure(
    place, variant, shop, notices
):
    """A handler that breaks (here after a failed SQL statement, which on PostgreSQL aborts
    the transaction unless it ran in its own savepoint) is recorded; the payment commits."""
    order = place(qty=2)
    later = []

    def outbox_down(order, **data):
        Merchant.objects.create(name="Clash", slug=shop.slug)  # IntegrityError: slug taken
        raise RuntimeError("cannot write the receipt")

    order_subscribe(OrderNotice.PAID, outbox_down)
    order_subscribe(OrderNotice.PAID, lambda order, **data: later.append(order.pk))

    paid = order_mark_paid(order=order)

    fresh = Order.objects.get(pk=order.pk)
    assert fresh.status == S.PAID and fresh.paid_at is not None
    assert _stock(variant) == (8, 0)
    assert order.reservations.get().status == StockReservation.Status.SOLD
    assert fresh.events.filter(kind__in=[Kind.PAID, Kind.STOCK_SOLD]).count() == 2
    # The other subscribers still heard of it, and the failure is on the order for a person.
    assert later == [order.pk] and (OrderNotice.PAID, order.pk, {}) in notices
    failure = fresh.events.get(kind=Kind.NOTICE_FAILED)
    assert failure.data["notice"] == "paid" and failure.data["error"] == "IntegrityError"
    assert fresh.needs_review and paid.needs_review
    assert fresh.review_reason.startswith("The customer could not be notified (paid)")
    assert not Merchant.objects.filter(name="Clash").exists()


def test_a_failing_subscriber_never_blocks_a_shipment(place):
    order = _paid(place())

    def broken(order, **data):
        raise ValueError("no template")

    order_subscribe(OrderNotice.FULFILLED, broken)
    shipment = order_fulfil(order=order, carrier="Aramex", tracking_number="AX9")

    fresh = Order.objects.get(pk=order.pk)
    assert fresh.status == S.FULFILLED
    assert list(fresh.shipments.all()) == [shipment]
    assert fresh.events.get(kind=Kind.NOTICE_FAILED).data["notice"] == "fulfilled"


def test_subscribers_see_the_changed_order_inside_the_transaction(place):
    seen = []
    order_subscribe(
        OrderNotice.PAID,
        lambda order, **data: seen.append(Order.objects.get(pk=order.pk).status),
    )
    order_mark_paid(order=place())
    assert seen == [S.PAID]


# -- annotations ------------------------------------------------------------------------------


def test_flag_for_review_and_notes_leave_the_status_alone(place):
    order = _paid(place())
    staff = staff_create(merchant=order.merchant)

    order_flag_for_review(order=order, reason="Amount mismatch: 1999 paid, 2000 due")
    note = order_add_note(order=order, message="Customer asked for gift wrap.", user=staff)

    assert order.needs_review is True
    assert order.review_reason == "Amount mismatch: 1999 paid, 2000 due"
    assert order.status == S.PAID
    assert order.events.get(kind=Kind.REVIEW_FLAGGED).message.startswith("Amount mismatch")
    assert (note.kind, note.actor, note.actor_user) == (Kind.NOTE, OrderEvent.Actor.STAFF, staff)
