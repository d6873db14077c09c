"""The order page: what it shows, and its actions going through the real services.

Fulfil, mark delivered and cancel call ``commerce.services.orders``; refunds call
``payments.services.refunds`` against the Stripe stub (the network boundary). Refusals show the
service's own message and change nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from commerce.models import Order, OrderEvent, OrderLine, Shipment, StockReservation
from commerce.services.orders import order_add_note, order_fulfil, order_mark_paid
from dashboard.selectors.order_detail import message_summary
from messenger.models import MessengerPage, OutboundMessage
from payments.models import Refund
from tests.payments.stripe_stub import stripe_stub  # noqa: F401  (fixture)
from tests.payments.webhook_helpers import pay

pytestmark = pytest.mark.django_db

Status = Order.Status


def _flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _page_of(order: Order) -> MessengerPage:
    return MessengerPage.objects.create(
        merchant=order.merchant, page_id=order.customer.page_id, name="Souq A page"
    )


@pytest.fixture
def paid_order(placed_order) -> Order:
    return order_mark_paid(order=placed_order)


def _detail(client, order):
    response = client.get(reverse("dashboard:order_detail", args=[order.pk]))
    assert response.status_code == 200
    return response.content.decode()


# -- what the page shows ----------------------------------------------------------------------


def test_page_shows_lines_totals_customer_address_and_status(staff_a_client, placed_order):
    html = _detail(staff_a_client, placed_order)

    for line in placed_order.lines.all():
        assert line.product_title in html and line.sku in html
    assert "$25.00" in html and "$10.00" in html  # unit prices
    assert "$5.00" in html  # shipping
    assert '<td class="num" data-total>$40.00</td>' in html
    assert "layla@example.com" in html and "+96550012345" in html
    assert "Block 3, Street 12" in html and "Salmiya" in html
    assert 'data-status="pending_payment"' in html
    assert f'{reverse("dashboard:orders")}?q=layla%40example.com" class="their-orders"' in html


def test_timeline_merges_events_and_messenger_messages_with_their_status(
    staff_a_client, paid_order, staff_a
):
    page = _page_of(paid_order)
    now = timezone.now()
    OutboundMessage.objects.create(
        page=page,
        customer=paid_order.customer,
        order=paid_order,
        kind=OutboundMessage.Kind.UPDATE,
        message={"text": "Your order is on its way"},
        status=OutboundMessage.Status.READ,
        sent_at=now,
        read_at=now,
    )
    OutboundMessage.objects.create(
        page=page,
        customer=paid_order.customer,
        order=paid_order,
        message={"text": "We could not reach you"},
        status=OutboundMessage.Status.FAILED,
        error_code="551",
        error_message="This person isn't available right now.",
    )
    order_add_note(order=paid_order, message="Gift wrap requested", user=staff_a)

    html = _detail(staff_a_client, paid_order)

    assert "Order placed" in html and "Paid" in html
    assert "Gift wrap requested" in html and "amal-owner-a" in html
    assert "Your order is on its way" in html and 'class="badge msg-read">Read<' in html
    assert "We could not reach you" in html and "This person isn&#x27;t available" in html
    assert html.index("Order placed") < html.index("Your order is on its way")


def test_message_summary_describes_templates_in_words():
    receipt = {
        "attachment": {
            "type": "template",
            "payload": {"template_type": "receipt", "order_number": "SA-1001"},
        }
    }
    button = {
        "attachment": {
            "type": "template",
            "payload": {
                "template_type": "button",
                "text": "Shipped!",
                "buttons": [{"title": "Track"}],
            },
        }
    }

    assert message_summary({"text": "Hello"}) == "Hello"
    assert "SA-1001" in message_summary(receipt)
    assert message_summary(button) == "Shipped! [Track]"
    assert message_summary({"attachment": {"type": "image", "payload": {}}}) == "[image]"


def test_buttons_follow_the_order_status(staff_a_client, placed_order, paid_order):
    html = _detail(staff_a_client, paid_order)

    assert reverse("dashboard:order_fulfil", args=[paid_order.pk]) in html
    assert reverse("dashboard:order_cancel", args=[paid_order.pk]) not in html  # paid: refund
    assert reverse("dashboard:order_deliver", args=[paid_order.pk]) not in html  # not shipped


# -- fulfil and deliver -----------------------------------------------------------------------


def test_fulfil_ships_the_order_through_the_service_and_queues_the_shipping_update(
    staff_a_support_client, staff_a_support, paid_order
):
    _page_of(paid_order)

    response = staff_a_support_client.post(
        reverse("dashboard:order_fulfil", args=[paid_order.pk]),
        {
            "carrier": "Aramex",
            "tracking_number": "AX123",
            "tracking_url": "https://track.example/AX123",
        },
    )

    assert response.status_code == 302
    paid_order.refresh_from_db()
    assert paid_order.status == Status.FULFILLED
    shipment = Shipment.objects.get(order=paid_order)
    assert (shipment.carrier, shipment.tracking_number) == ("Aramex", "AX123")
    assert shipment.created_by == staff_a_support
    event = paid_order.events.get(kind=OrderEvent.Kind.FULFILLED)
    assert event.actor_user == staff_a_support
    assert "shipped with Aramex AX123" in " ".join(_flash(response))
    # The shopper's shipping update is in the outbox and on the order's timeline.
    update = OutboundMessage.objects.get(order=paid_order, kind=OutboundMessage.Kind.UPDATE)
    html = _detail(staff_a_support_client, paid_order)
    assert message_summary(update.message) in html


def test_fulfil_with_a_bad_tracking_link_says_why_and_changes_nothing(staff_a_client, paid_order):
    response = staff_a_client.post(
        reverse("dashboard:order_fulfil", args=[paid_order.pk]),
        {"carrier": "Aramex", "tracking_url": "javascript:alert(1)"},
    )

    assert response.status_code == 302
    assert any("Enter a valid URL" in m for m in _flash(response))
    paid_order.refresh_from_db()
    assert paid_order.status == Status.PAID and not paid_order.shipments.exists()


def test_fulfil_of_an_unpaid_order_shows_the_services_refusal(staff_a_client, placed_order):
    response = staff_a_client.post(
        reverse("dashboard:order_fulfil", args=[placed_order.pk]), {"carrier": "Aramex"}
    )

    (message,) = _flash(response)
    assert placed_order.number in message and "cannot be shipped" in message
    placed_order.refresh_from_db()
    assert placed_order.status == Status.PENDING_PAYMENT and not placed_order.shipments.exists()


def test_mark_delivered_after_shipping(staff_a_client, paid_order):
    order_fulfil(order=paid_order, carrier="DHL")

    response = staff_a_client.post(reverse("dashboard:order_deliver", args=[paid_order.pk]))

    assert "marked delivered" in " ".join(_flash(response))
    paid_order.refresh_from_db()
    assert paid_order.status == Status.DELIVERED
    assert paid_order.shipments.get().delivered_at is not None


def test_mark_delivered_before_shipping_is_refused_plainly(staff_a_client, paid_order):
    response = staff_a_client.post(reverse("dashboard:order_deliver", args=[paid_order.pk]))

    (message,) = _flash(response)
    assert paid_order.number in message
    paid_order.refresh_from_db()
    assert paid_order.status == Status.PAID


# -- cancel -----------------------------------------------------------------------------------


def test_cancel_releases_the_stock_and_records_the_reason(staff_a_client, staff_a, placed_order):
    response = staff_a_client.post(
        reverse("dashboard:order_cancel", args=[placed_order.pk]), {"reason": "Duplicate order"}
    )

    assert "cancelled" in " ".join(_flash(response))
    placed_order.refresh_from_db()
    assert placed_order.status == Status.CANCELLED
    assert not placed_order.reservations.filter(status=StockReservation.Status.ACTIVE).exists()
    event = placed_order.events.get(kind=OrderEvent.Kind.CANCELLED)
    assert (event.message, event.actor_user) == ("Duplicate order", staff_a)


def test_cancel_of_a_paid_order_is_refused(staff_a_client, paid_order):
    response = staff_a_client.post(reverse("dashboard:order_cancel", args=[paid_order.pk]), {})

    (message,) = _flash(response)
    assert "cannot be cancelled" in message
    paid_order.refresh_from_db()
    assert paid_order.status == Status.PAID


# -- refunds ----------------------------------------------------------------------------------


@pytest.fixture
def stripe_paid(client, monkeypatch, stripe_stub, placed_order):
    payment = pay(client, monkeypatch, stripe_stub, placed_order)
    assert placed_order.status == Status.PAID
    return placed_order, payment


def test_partial_refund_goes_to_stripe_with_its_idempotency_key(
    staff_a_client,
    staff_a,
    stripe_paid,
    stripe_stub,
):
    order, payment = stripe_paid

    response = staff_a_client.post(
        reverse("dashboard:order_refund", args=[order.pk]),
        {"amount": "15.00", "reason": "Too small"},
    )

    refund = Refund.objects.get(order=order)
    assert (refund.amount_minor, refund.payment, refund.requested_by) == (1500, payment, staff_a)
    assert refund.status == Refund.Status.PENDING and refund.provider_refund_id
    (sent,) = stripe_stub.requests_to("/v1/refunds", method="POST")
    assert sent.params["amount"] == "1500"
    assert sent.headers["idempotency-key"] == f"refund:{refund.pk}"
    assert "Refund of $15.00 requested" in " ".join(_flash(response))
    html = _detail(staff_a_client, order)
    assert "Up to $25.00 can be refunded." in html  # the pending refund holds its amount


def test_full_refund_prefilled_with_what_is_left(staff_a_client, stripe_paid, stripe_stub):
    order, _payment = stripe_paid
    html = _detail(staff_a_client, order)
    assert 'name="amount" value="40.00"' in html

    staff_a_client.post(reverse("dashboard:order_refund", args=[order.pk]), {"amount": "40.00"})

    assert Refund.objects.get(order=order).amount_minor == 4000
    assert reverse("dashboard:order_refund", args=[order.pk]) not in _detail(staff_a_client, order)


@pytest.mark.parametrize(
    ("amount", "says"),
    [
        ("40.01", "At most $40.00 can still be refunded."),
        ("0", "more than zero"),
        ("1.005", "Enter an amount such as 12.50"),
        ("ten", "Enter an amount such as 12.50"),
    ],
)
def test_bad_refund_amounts_are_refused_and_nothing_reaches_stripe(
    staff_a_client,
    stripe_paid,
    stripe_stub,
    amount,
    says,
):
    order, _payment = stripe_paid

    response = staff_a_client.post(
        reverse("dashboard:order_refund", args=[order.pk]), {"amount": amount}
    )

    assert any(says in m for m in _flash(response))
    assert not Refund.objects.filter(order=order).exists()
    assert not stripe_stub.requests_to("/v1/refunds", method="POST")


def test_refund_refused_by_stripe_is_shown_and_recorded_as_failed(
    staff_a_client,
    stripe_paid,
    stripe_stub,
):
    order, _payment = stripe_paid
    stripe_stub.fail_next(
        status=400, type="invalid_request_error", code="charge_disputed", path="/v1/refunds"
    )

    response = staff_a_client.post(
        reverse("dashboard:order_refund", args=[order.pk]), {"amount": "5.00"}
    )

    assert any("refused the refund" in m for m in _flash(response))
    assert Refund.objects.get(order=order).status == Refund.Status.FAILED
    order.refresh_from_db()
    assert order.refunded_minor == 0


# -- query counts -----------------------------------------------------------------------------


def test_query_count_does_not_grow_with_lines_events_shipments_and_messages(
    staff_a_client, staff_a, paid_order, django_assert_max_num_queries
):
    page = _page_of(paid_order)

    def grow(n: int) -> None:
        for i in range(n):
            OrderLine.objects.create(
                order=paid_order,
                product_title=f"Extra {i}",
                sku=f"X-{i}-{timezone.now().timestamp()}",
                unit_price_minor=100,
                quantity=1,
                total_minor=100,
            )
            order_add_note(order=paid_order, message=f"note {i}", user=staff_a)
            OutboundMessage.objects.create(
                page=page, customer=paid_order.customer, order=paid_order, message={"text": f"m{i}"}
            )
            Shipment.objects.create(
                order=paid_order,
                carrier="DHL",
                shipped_at=timezone.now() - timedelta(minutes=i),
                created_by=staff_a,
            )

    grow(5)
    url = reverse("dashboard:order_detail", args=[paid_order.pk])
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as few:
        assert staff_a_client.get(url).status_code == 200
    grow(45)
    with django_assert_max_num_queries(len(few)):
        assert staff_a_client.get(url).status_code == 200


def test_one_of_several_parcels_delivered_then_the_last(staff_a_client, paid_order):
    first = order_fulfil(order=paid_order, carrier="DHL", tracking_number="D1")
    second = order_fulfil(order=paid_order, carrier="Aramex", tracking_number="A2")
    url = reverse("dashboard:order_deliver", args=[paid_order.pk])
    assert 'class="inline deliver-one"' in _detail(staff_a_client, paid_order)

    one = staff_a_client.post(url, {"shipment": first.pk})

    assert "Parcel DHL D1 delivered" in " ".join(_flash(one))
    paid_order.refresh_from_db()
    first.refresh_from_db()
    assert paid_order.status == Status.FULFILLED and first.delivered_at is not None
    staff_a_client.post(url, {"shipment": second.pk})
    paid_order.refresh_from_db()
    assert paid_order.status == Status.DELIVERED


def test_delivering_a_shipment_of_another_order_is_refused(
    staff_a_client, paid_order, merchant_a, make_order
):
    order_fulfil(order=paid_order, carrier="DHL")
    other = order_fulfil(order=make_order(merchant=merchant_a, status=Status.PAID), carrier="UPS")
    for bad in (str(other.pk), "999999", "abc"):
        response = staff_a_client.post(
            reverse("dashboard:order_deliver", args=[paid_order.pk]), {"shipment": bad}
        )
        assert "no such shipment" in " ".join(_flash(response))
    paid_order.refresh_from_db()
    other.refresh_from_db()
    assert paid_order.status == Status.FULFILLED and other.delivered_at is None
