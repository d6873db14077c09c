"""A shopper who paid twice: refunds are per payment, and the order follows what is left paid.

Both payments go through the real path (a Checkout Session completed on the Stripe stub and its
``checkout.session.completed`` delivered to the webhook); the service flags the second one
("paid twice, refund one"). Refunding that duplicate in full leaves the order paid, shippable
and its revenue whole; only money given back of what the order cost makes it (partially)
refunded.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from commerce.exceptions import RefundError
from commerce.models import DailySales, MerchantMembership, Order, OrderEvent
from commerce.services.orders import order_fulfil
from dashboard.access import DashboardScope
from dashboard.selectors.metrics import metrics_summary
from payments.models import Payment, Refund
from payments.services.refunds import refund_remaining_minor, refund_request
from tests.factories import staff_create
from tests.payments.webhook_helpers import deliver_and_process, pay

pytestmark = pytest.mark.django_db

Status = Order.Status


@pytest.fixture
def paid_twice(client, monkeypatch, stripe_stub, make_order):
    """An order of 40.00 USD paid through two Checkout Sessions, and both payments."""
    order = make_order(prices=(2500, 1000), shipping_minor=500)
    first = pay(client, monkeypatch, stripe_stub, order)
    second = pay(client, monkeypatch, stripe_stub, order)
    assert (first.status, second.status) == (Payment.Status.SUCCEEDED, Payment.Status.SUCCEEDED)
    assert order.status == Status.PAID and order.needs_review
    assert "Paid twice" in order.review_reason
    return order, first, second


@pytest.fixture
def owner(paid_twice):
    order, _first, _second = paid_twice
    return staff_create(merchant=order.merchant, role=MerchantMembership.Role.OWNER)


def _succeed(client, monkeypatch, stub, refund: Refund) -> None:
    obj = dict(stub.refunds[refund.provider_refund_id], status="succeeded")
    deliver_and_process(client, monkeypatch, "refund.updated", obj)


def _sales(order: Order) -> DailySales:
    return DailySales.objects.get(merchant=order.merchant, currency=order.currency)


def test_refunding_the_duplicate_payment_in_full_leaves_the_order_paid_and_shippable(
    client, monkeypatch, stripe_stub, paid_twice, owner
):
    order, first, second = paid_twice

    refund = refund_request(order=order, payment=second, amount_minor=4000, user=owner)
    _succeed(client, monkeypatch, stripe_stub, refund)

    refund.refresh_from_db()
    order.refresh_from_db()
    assert (refund.payment, refund.status) == (second, Refund.Status.SUCCEEDED)
    assert (order.status, order.refunded_minor) == (Status.PAID, 0)
    event = order.events.filter(kind=OrderEvent.Kind.REFUNDED).get()
    assert event.data["status_unchanged"] == Status.PAID
    assert event.data["net_paid_minor"] == 4000
    # Still to ship, and shipping works.
    order_fulfil(order=order, carrier="Aramex", tracking_number="AX1")
    assert order.status == Status.FULFILLED
    # The sale still brought in its 40.00: the duplicate was never revenue.
    assert (_sales(order).revenue_minor, _sales(order).refunded_minor) == (4000, 0)
    scope = DashboardScope(user=owner, is_operator=False, merchants=[order.merchant])
    (figures,) = metrics_summary(scope=scope)
    assert figures.periods["today"].current.net_minor == 4000
    # What is left to refund is the first payment, all of it.
    assert refund_remaining_minor(payment=first) == 4000
    assert refund_remaining_minor(payment=second) == 0


def test_money_given_back_of_the_order_itself_makes_it_partially_then_fully_refunded(
    client, monkeypatch, stripe_stub, paid_twice, owner
):
    order, first, second = paid_twice
    duplicate = refund_request(order=order, payment=second, amount_minor=4000, user=owner)
    _succeed(client, monkeypatch, stripe_stub, duplicate)

    part = refund_request(order=order, payment=first, amount_minor=1500, user=owner)
    _succeed(client, monkeypatch, stripe_stub, part)
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (Status.PARTIALLY_REFUNDED, 1500)
    assert _sales(order).refunded_minor == 1500

    rest = refund_request(order=order, payment=first, amount_minor=2500, user=owner)
    _succeed(client, monkeypatch, stripe_stub, rest)
    order.refresh_from_db()
    assert (order.status, order.refunded_minor) == (Status.REFUNDED, 4000)
    assert _sales(order).refunded_minor == 4000


def test_a_payment_cannot_give_back_more_than_it_collected(stripe_stub, paid_twice, owner):
    order, first, second = paid_twice
    refund_request(order=order, payment=second, amount_minor=3000, user=owner)

    with pytest.raises(RefundError) as refused:
        refund_request(order=order, payment=second, amount_minor=1001, user=owner)

    assert refused.value.code == "refund_exceeds_paid"
    assert refused.value.extra == {"amount_minor": 1001, "remaining_minor": 1000}
    assert "of this payment" in refused.value.message
    assert Refund.objects.filter(payment=second).count() == 1
    assert refund_remaining_minor(payment=first) == 4000


# -- the admin, the dashboard and the API: a refund's maximum is its payment's ------------------


def test_the_admin_refund_page_offers_what_is_left_of_that_payment(
    client, stripe_stub, paid_twice, owner
):
    order, first, second = paid_twice
    refund_request(order=order, payment=second, amount_minor=4000, user=owner)
    client.force_login(owner)

    page = client.get(f"/admin/payments/payment/{first.pk}/refund/").content.decode()
    assert "$40.00 can still be refunded" in page
    duplicate = client.get(f"/admin/payments/payment/{second.pk}/change/").content.decode()
    assert f"/admin/payments/payment/{second.pk}/refund/" not in duplicate  # nothing left

    response = client.post(f"/admin/payments/payment/{first.pk}/refund/", {"amount": "40.01"})
    assert "At most $40.00 can still be refunded." in response.content.decode()
    assert Refund.objects.filter(payment=first).count() == 0


def test_the_dashboard_has_one_refund_form_per_payment_and_refunds_the_one_chosen(
    client, stripe_stub, paid_twice, owner
):
    order, first, second = paid_twice
    client.force_login(owner)
    page = client.get(reverse("dashboard:order_detail", args=[order.pk])).content.decode()
    assert page.count('name="payment"') == 2
    assert page.count("Up to $40.00 can be refunded.") == 2
    assert "Up to $80.00" not in page

    client.post(
        reverse("dashboard:order_refund", args=[order.pk]),
        {"payment": str(second.pk), "amount": "40.00", "reason": "Paid twice"},
    )

    refund = Refund.objects.get(order=order)
    assert (refund.payment, refund.amount_minor) == (second, 4000)
    page = client.get(reverse("dashboard:order_detail", args=[order.pk])).content.decode()
    assert page.count('name="payment"') == 1
    assert f'name="payment" value="{first.pk}"' in page


def test_the_dashboard_asks_which_payment_when_there_are_two(
    client, stripe_stub, paid_twice, owner
):
    order, _first, _second = paid_twice
    client.force_login(owner)

    response = client.post(
        reverse("dashboard:order_refund", args=[order.pk]), {"amount": "10.00"}, follow=True
    )

    assert "Choose which payment to refund." in response.content.decode()
    assert not Refund.objects.exists()
    assert not stripe_stub.requests_to("/v1/refunds", method="POST")


def test_the_api_refunds_the_payment_it_names_up_to_what_that_payment_holds(
    stripe_stub, paid_twice, owner, make_order
):
    order, _first, second = paid_twice
    api = APIClient()
    api.force_authenticate(owner)
    url = f"/api/orders/{order.pk}/refunds/"

    too_much = api.post(url, {"amount_minor": 4001, "payment": second.pk}, format="json")
    assert too_much.status_code == 409
    assert too_much.json()["code"] == "refund_exceeds_paid"
    assert too_much.json()["extra"]["remaining_minor"] == 4000

    created = api.post(
        url, {"amount_minor": 4000, "payment": second.pk, "reason": "Twice"}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["payment"] == second.pk
    assert Refund.objects.get().payment == second

    stranger = make_order()
    strangers_payment = Payment.objects.create(
        order=stranger,
        gateway=Payment.Gateway.STRIPE_CHECKOUT,
        amount_minor=stranger.total_minor,
        currency=stranger.currency,
        idempotency_key="checkout:stranger:1",
    )
    refused = api.post(url, {"amount_minor": 100, "payment": strangers_payment.pk}, format="json")
    assert refused.status_code == 400
    assert refused.json()["extra"]["fields"] == {"payment": ["Not a payment of this order."]}
    assert Refund.objects.count() == 1
