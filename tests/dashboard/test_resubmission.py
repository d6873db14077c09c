"""The dashboard's other actions that create rows or messages are harmless to submit twice: a
note, a reply to a shopper (ADR 0007). Each form carries a one-time token read from the page as
the browser sends it. (Fulfil: tests/commerce/test_fulfil_once.py; refunds:
tests/payments/test_refund_once.py; mark delivered and cancel change a status once and are
refused the second time by the state machine.)"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from commerce.models import OrderEvent
from messenger.models import MessengerPage, OutboundMessage
from tests.factories import customer_create

pytestmark = pytest.mark.django_db


def _token(html: str, action: str) -> str:
    """The submission token of the form that posts to ``action``."""
    form = re.search(rf'<form[^>]*action="{re.escape(action)}".*?</form>', html, re.S)
    assert form, f"no form posts to {action}"
    token = re.search(r'name="submission_key" value="([0-9a-f]{32})"', form.group(0))
    assert token, f"the form posting to {action} carries no submission token"
    return token.group(1)


def _flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_a_note_submitted_twice_is_added_once(staff_a_client, placed_order):
    url = reverse("dashboard:order_note", args=[placed_order.pk])
    page = staff_a_client.get(reverse("dashboard:order_detail", args=[placed_order.pk]))
    token = _token(page.content.decode(), url)

    first = staff_a_client.post(url, {"message": "Gift wrap, please", "submission_key": token})
    again = staff_a_client.post(url, {"message": "Gift wrap, please", "submission_key": token})

    notes = placed_order.events.filter(kind=OrderEvent.Kind.NOTE)
    assert [n.message for n in notes] == ["Gift wrap, please"]
    assert _flash(first) == ["Note added."]
    assert _flash(again)[-1] == "This note was already added."


def test_a_reply_submitted_twice_reaches_the_shopper_once(staff_a_client, merchant_a):
    page = MessengerPage.objects.create(
        merchant=merchant_a, page_id="104412345678901", name="Souq A", access_token="EAAtoken"
    )
    customer = customer_create(
        merchant=merchant_a,
        page_id=page.page_id,
        last_interaction_at=timezone.now() - timedelta(minutes=5),
    )
    url = reverse("dashboard:conversation_reply", args=[customer.pk])
    html = staff_a_client.get(reverse("dashboard:conversation", args=[customer.pk]))
    token = _token(html.content.decode(), url)

    staff_a_client.post(url, {"text": "It leaves today.", "submission_key": token})
    again = staff_a_client.post(url, {"text": "It leaves today.", "submission_key": token})

    (row,) = OutboundMessage.objects.filter(customer=customer)
    assert row.message == {"text": "It leaves today."}
    assert _flash(again)[-1] == "This reply was already queued; it is not sent twice."
    # The same token with another text is refused: the page was edited after it was sent.
    edited = staff_a_client.post(url, {"text": "It leaves tomorrow.", "submission_key": token})
    assert "already sent with other details" in _flash(edited)[-1]
    assert OutboundMessage.objects.filter(customer=customer).count() == 1
    # A fresh page (after the redirect) carries a new token: the next reply goes out.
    html = staff_a_client.get(reverse("dashboard:conversation", args=[customer.pk]))
    staff_a_client.post(
        url, {"text": "Tracking: AX1", "submission_key": _token(html.content.decode(), url)}
    )
    assert OutboundMessage.objects.filter(customer=customer).count() == 2
