"""Who may open which dashboard page and take which action.

Anonymous visitors are sent to the login page; operators see every merchant; staff see only
their merchant (another merchant's order or conversation by URL is a 404); cancelling and
refunding need the owner or manager role (support staff get a 403 that says so); every action
is a POST that needs the CSRF token.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from commerce.models import Order
from tests.dashboard.conftest import login

pytestmark = pytest.mark.django_db


def _pages(order: Order) -> list[str]:
    return [
        reverse("dashboard:orders"),
        reverse("dashboard:orders_live") + "?since=0",
        reverse("dashboard:orders_export"),
        reverse("dashboard:order_detail", args=[order.pk]),
        reverse("dashboard:conversations"),
        reverse("dashboard:conversation", args=[order.customer_id]),
    ]


def _actions(order: Order) -> list[tuple[str, dict]]:
    return [
        (reverse("dashboard:order_fulfil", args=[order.pk]), {"carrier": "Aramex"}),
        (reverse("dashboard:order_deliver", args=[order.pk]), {}),
        (reverse("dashboard:order_cancel", args=[order.pk]), {"reason": "asked"}),
        (reverse("dashboard:order_refund", args=[order.pk]), {"amount": "1.00"}),
        (reverse("dashboard:order_note", args=[order.pk]), {"message": "Called the customer"}),
        (reverse("dashboard:conversation_reply", args=[order.customer_id]), {"text": "Hi"}),
        (reverse("dashboard:conversation_resume", args=[order.customer_id]), {}),
        (reverse("dashboard:conversation_take_over", args=[order.customer_id]), {}),
    ]


def test_anonymous_visitors_are_sent_to_the_login_page_from_every_page(anonymous_client, orders):
    order = orders["a"][0]
    for url in _pages(order):
        response = anonymous_client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("dashboard:login") + "?next="), url


def test_anonymous_actions_change_nothing_and_redirect_to_login(anonymous_client, orders):
    order = orders["a"][0]
    for url, data in _actions(order):
        response = anonymous_client.post(url, data)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("dashboard:login")), url
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert not order.events.exists()


def test_a_user_without_merchant_or_operator_role_gets_a_clear_403(orders):
    user = get_user_model().objects.create_user("nobody", password="pw-123456789")
    client = login(Client(), user)

    response = client.get(reverse("dashboard:orders"))

    assert response.status_code == 403
    assert "no access to the dashboard" in response.content.decode()


def test_operator_opens_every_page_of_every_merchant(operator_client, orders):
    for order in orders["a"][:1] + orders["b"][:1]:
        for url in _pages(order):
            assert operator_client.get(url).status_code == 200, url


def test_staff_open_their_merchants_pages(staff_a_client, orders):
    for url in _pages(orders["a"][0]):
        assert staff_a_client.get(url).status_code == 200, url


def test_staff_get_404_for_another_merchants_order_and_conversation(staff_a_client, orders):
    other = orders["b"][0]
    detail = staff_a_client.get(reverse("dashboard:order_detail", args=[other.pk]))
    thread = staff_a_client.get(reverse("dashboard:conversation", args=[other.customer_id]))

    assert detail.status_code == 404
    assert thread.status_code == 404


def test_staff_actions_on_another_merchants_order_are_404_and_change_nothing(
    staff_b_client, orders
):
    order = orders["a"][0]
    for url, data in _actions(order):
        assert staff_b_client.post(url, data).status_code == 404, url
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    assert not order.events.exists() and not order.shipments.exists()


def test_staff_list_shows_only_their_merchants_orders(staff_a_client, staff_b_client, orders):
    page_a = staff_a_client.get(reverse("dashboard:orders")).content.decode()
    page_b = staff_b_client.get(reverse("dashboard:orders")).content.decode()

    assert all(o.number in page_a for o in orders["a"])
    assert not any(o.number in page_a for o in orders["b"])
    assert all(o.number in page_b for o in orders["b"])
    assert not any(o.number in page_b for o in orders["a"])


def test_staff_cannot_switch_to_another_merchant(staff_a_client, merchant_b, orders):
    response = staff_a_client.get(reverse("dashboard:orders"), {"merchant": merchant_b.slug})

    assert response.status_code == 404


def test_operator_switcher_narrows_every_page_to_one_merchant_and_back(
    operator_client, merchant_a, merchant_b, orders
):
    picked = operator_client.get(reverse("dashboard:orders"), {"merchant": merchant_b.slug})
    html = picked.content.decode()
    assert all(o.number in html for o in orders["b"])
    assert not any(o.number in html for o in orders["a"])
    # The pick is remembered for the next page...
    again = operator_client.get(reverse("dashboard:orders")).content.decode()
    assert not any(o.number in again for o in orders["a"])
    # ...and an empty pick shows every merchant again.
    every = operator_client.get(reverse("dashboard:orders"), {"merchant": ""}).content.decode()
    assert all(o.number in every for o in orders["a"] + orders["b"])


def test_support_staff_may_ship_but_not_cancel_or_refund(staff_a_support_client, placed_order):
    cancel = staff_a_support_client.post(
        reverse("dashboard:order_cancel", args=[placed_order.pk]), {"reason": "asked"}
    )
    refund = staff_a_support_client.post(
        reverse("dashboard:order_refund", args=[placed_order.pk]), {"amount": "1.00"}
    )
    note = staff_a_support_client.post(
        reverse("dashboard:order_note", args=[placed_order.pk]), {"message": "Called"}
    )

    assert cancel.status_code == 403
    assert "owner or manager role" in cancel.content.decode()
    assert refund.status_code == 403
    assert note.status_code == 302
    placed_order.refresh_from_db()
    assert placed_order.status == Order.Status.PENDING_PAYMENT


def test_support_staff_see_no_cancel_or_refund_buttons(
    staff_a_support_client, staff_a_client, placed_order
):
    url = reverse("dashboard:order_detail", args=[placed_order.pk])
    support = staff_a_support_client.get(url).content.decode()
    owner = staff_a_client.get(url).content.decode()

    assert reverse("dashboard:order_cancel", args=[placed_order.pk]) not in support
    assert reverse("dashboard:order_cancel", args=[placed_order.pk]) in owner


def test_actions_without_the_csrf_token_are_refused(staff_a, placed_order):
    client = login(Client(enforce_csrf_checks=True), staff_a)
    for url, data in _actions(placed_order):
        assert client.post(url, data).status_code == 403, url
    placed_order.refresh_from_db()
    assert placed_order.status == Order.Status.PENDING_PAYMENT
    assert not placed_order.events.filter(kind="cancelled").exists()


def test_actions_refuse_get(staff_a_client, placed_order):
    for url, _data in _actions(placed_order):
        assert staff_a_client.get(url).status_code == 405, url
