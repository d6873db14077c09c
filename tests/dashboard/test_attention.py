"""Needs attention: every kind of problem is listed, only for the merchants the user sees."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from commerce.models import Customer
from dashboard.selectors import attention
from messenger.models import InboundEvent, MessengerPage, OutboundMessage
from payments.models import ProviderEvent
from tests.factories import customer_create

pytestmark = pytest.mark.django_db


def _page(merchant, page_id: str, **fields) -> MessengerPage:
    return MessengerPage.objects.create(
        merchant=merchant, page_id=page_id, name=f"{merchant.name} page", **fields
    )


@pytest.fixture
def problems(merchant_a, merchant_b, make_order):
    """One of each problem for merchant A and for merchant B, plus rows that are fine."""
    now = timezone.now()
    made = {}
    for key, merchant, page_id in (("a", merchant_a, "1001"), ("b", merchant_b, "2002")):
        page = _page(merchant, page_id, token_invalid_at=now - timedelta(hours=1))
        _page(merchant, page_id + "9")  # a page whose token works
        customer = customer_create(merchant=merchant, page_id=page_id, first_name=f"Cust{key}")
        flagged = make_order(
            merchant=merchant, needs_review=True, review_reason=f"Paid 9.00, expected 10.00 {key}"
        )
        no_receipt = make_order(merchant=merchant, paid_at=now - timedelta(hours=1))
        receipt_ok = make_order(merchant=merchant, paid_at=now - timedelta(hours=1))
        OutboundMessage.objects.create(
            page=page, customer=receipt_ok.customer, order=receipt_ok, message={"text": "r"},
            dedupe_key=f"receipt:{receipt_ok.pk}", status=OutboundMessage.Status.DELIVERED,
        )  # fmt: skip
        just_paid = make_order(merchant=merchant, paid_at=now - timedelta(minutes=1))
        failed = OutboundMessage.objects.create(
            page=page, customer=customer, message={"text": "hi"},
            status=OutboundMessage.Status.FAILED, error_code="551",
            error_message=f"This person is not available right now ({key})",
        )  # fmt: skip
        overdue = make_order(
            merchant=merchant, status="pending_payment", reserved_until=now - timedelta(minutes=9)
        )
        reserved = make_order(
            merchant=merchant, status="pending_payment", reserved_until=now + timedelta(minutes=9)
        )
        stuck = InboundEvent.objects.create(
            page_id=page_id, sender_psid=customer.psid, dedupe_key=f"stuck-{key}", kind="message",
            payload={}, status=InboundEvent.Status.FAILED, error=f"boom {key}",
        )  # fmt: skip
        fresh = InboundEvent.objects.create(
            page_id=page_id, sender_psid=customer.psid, dedupe_key=f"fresh-{key}",
            kind="message", payload={},
        )  # fmt: skip
        waiting = customer_create(
            merchant=merchant, first_name=f"Waiting{key}", bot_paused_at=now - timedelta(hours=2)
        )
        made[key] = {
            "flagged": flagged, "no_receipt": no_receipt, "receipt_ok": receipt_ok,
            "just_paid": just_paid, "failed": failed, "overdue": overdue, "stuck": stuck,
            "waiting": waiting, "page": page, "reserved": reserved, "fresh": fresh,
        }  # fmt: skip
    made["provider"] = ProviderEvent.objects.create(
        event_id="evt_failed_1", type="checkout.session.completed", payload={},
        status=ProviderEvent.Status.FAILED, error="KeyError metadata",
    )  # fmt: skip
    return made


def _section(html: str, kind: str) -> str:
    match = re.search(rf'<section[^>]*data-kind="{kind}".*?</section>', html, re.S)
    return match.group(0) if match else ""


def _assert_lists(html: str, rows: dict) -> None:
    assert rows["flagged"].number in _section(html, "review")
    assert rows["flagged"].review_reason in _section(html, "review")
    receipts = _section(html, "receipt")
    assert rows["no_receipt"].number in receipts
    assert rows["receipt_ok"].number not in receipts  # delivered
    assert rows["just_paid"].number not in receipts  # still within the grace minutes
    outbox = _section(html, "outbox")
    assert rows["failed"].error_message in outbox and ">551<" in outbox
    assert rows["page"].page_id in _section(html, "token")
    overdue = _section(html, "overdue")
    assert rows["overdue"].number in overdue
    assert rows["reserved"].number not in overdue  # still reserved: not overdue
    inbox = _section(html, "inbox")
    assert rows["stuck"].error in inbox
    assert f'data-event="{rows["fresh"].pk}"' not in inbox  # pending for seconds: not stuck
    assert f'data-customer="{rows["waiting"].pk}"' in _section(html, "waiting")


def test_staff_see_each_problem_of_their_merchant_only(problems, staff_a_client):
    response = staff_a_client.get(reverse("dashboard:attention"))
    assert response.status_code == 200
    html = response.content.decode()
    _assert_lists(html, problems["a"])
    for row in ("flagged", "no_receipt", "overdue"):
        assert problems["b"][row].number not in html
    assert problems["b"]["failed"].error_message not in html
    assert problems["b"]["page"].page_id not in html
    assert problems["b"]["stuck"].error not in html
    assert f'data-customer="{problems["b"]["waiting"].pk}"' not in html
    assert 'data-kind="provider"' not in html  # payment events carry no merchant


def test_operator_sees_every_merchant_and_the_payment_webhook(problems, operator_client):
    html = operator_client.get(reverse("dashboard:attention")).content.decode()
    _assert_lists(html, problems["a"])
    _assert_lists(html, problems["b"])
    provider = _section(html, "provider")
    assert "evt_failed_1" in provider and "KeyError" in provider


def test_operator_narrowed_to_one_merchant(problems, operator_client, merchant_b):
    html = operator_client.get(
        reverse("dashboard:attention"), {"merchant": merchant_b.slug}
    ).content.decode()
    _assert_lists(html, problems["b"])
    assert problems["a"]["flagged"].number not in html
    assert problems["a"]["stuck"].error not in html


def test_links_lead_to_the_order_and_the_conversation(problems, staff_a_client):
    html = staff_a_client.get(reverse("dashboard:attention")).content.decode()
    order_url = reverse("dashboard:order_detail", args=[problems["a"]["flagged"].pk])
    chat_url = reverse("dashboard:conversation", args=[problems["a"]["waiting"].pk])
    assert f'href="{order_url}"' in html and f'href="{chat_url}"' in html
    assert staff_a_client.get(order_url).status_code == 200


def test_lists_are_bounded_and_counts_capped(merchant_a, make_order, staff_a_client, monkeypatch):
    monkeypatch.setattr(attention, "COUNT_CAP", 23)
    for _ in range(25):
        make_order(merchant=merchant_a, needs_review=True, review_reason="mismatch")
    html = staff_a_client.get(reverse("dashboard:attention")).content.decode()
    review = _section(html, "review")
    assert review.count('data-order="') == attention.LIST_LIMIT
    assert ">23+<" in review
    monkeypatch.setattr(attention, "COUNT_CAP", 100)
    review = _section(staff_a_client.get(reverse("dashboard:attention")).content.decode(), "review")
    assert ">25<" in review


def test_nothing_to_see_says_so(staff_a_client):
    html = staff_a_client.get(reverse("dashboard:attention")).content.decode()
    assert html.count("Nothing here.") == 7  # every kind but the operators-only one


def test_attention_permissions(anonymous_client, problems):
    url = reverse("dashboard:attention")
    response = anonymous_client.get(url)
    assert response.status_code == 302 and reverse("dashboard:login") in response["Location"]


def test_signed_in_user_without_a_merchant_is_refused(client, django_user_model, problems):
    client.force_login(django_user_model.objects.create_user("nobody", password="pw-12345678"))
    response = client.get(reverse("dashboard:attention"))
    assert response.status_code == 403
    assert problems["a"]["flagged"].number not in response.content.decode()


def test_waiting_conversations_hide_customers_the_bot_still_answers(problems, staff_a_client):
    Customer.objects.filter(pk=problems["a"]["waiting"].pk).update(bot_paused_at=None)
    html = staff_a_client.get(reverse("dashboard:attention")).content.decode()
    assert f'data-customer="{problems["a"]["waiting"].pk}"' not in html
