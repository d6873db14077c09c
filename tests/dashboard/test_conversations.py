"""Conversations: customers waiting for a person, the thread, replies through the outbox (sent
to the Graph stub with the right messaging type and tag), Resume bot and taking over."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from commerce.models import Customer
from messenger.models import InboundEvent, MessengerPage, OutboundMessage
from messenger.services.outbox import outbox_deliver_customer
from tests.factories import customer_create
from tests.messenger.graph_stub import graph_stub  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

PAGE_ID = "104412345678901"


def _flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def page_a(merchant_a) -> MessengerPage:
    return MessengerPage.objects.create(
        merchant=merchant_a, page_id=PAGE_ID, name="Souq A", access_token="EAAtoken-a"
    )


@pytest.fixture
def page_b(merchant_b) -> MessengerPage:
    return MessengerPage.objects.create(
        merchant=merchant_b, page_id="104499999999999", name="Souq B", access_token="EAAtoken-b"
    )


def _customer(
    merchant, page, *, waiting_minutes: int | None, wrote_ago=timedelta(minutes=5), **fields
):
    customer = customer_create(merchant=merchant, page_id=page.page_id, **fields)
    now = timezone.now()
    customer.last_interaction_at = now - wrote_ago
    if waiting_minutes is not None:
        customer.bot_paused_at = now - timedelta(minutes=waiting_minutes)
    customer.save()
    return customer


_mids = iter(range(1, 10_000))


def _inbound(customer: Customer, text: str, *, ago: timedelta) -> InboundEvent:
    at_ms = int((timezone.now() - ago).timestamp() * 1000)
    mid = next(_mids)
    return InboundEvent.objects.create(
        page_id=customer.page_id,
        sender_psid=customer.psid,
        dedupe_key=f"message:m_{customer.pk}_{mid}",
        kind="message",
        timestamp_ms=at_ms,
        payload={
            "sender": {"id": customer.psid},
            "timestamp": at_ms,
            "message": {"mid": f"m_{mid}", "text": text},
        },
        status=InboundEvent.Status.PROCESSED,
    )


# -- waiting list and thread ------------------------------------------------------------------


def test_waiting_list_shows_paused_customers_longest_waiting_first_with_their_last_message(
    staff_a_client, merchant_a, merchant_b, page_a, page_b
):
    recent = _customer(merchant_a, page_a, waiting_minutes=2, first_name="Recent")
    oldest = _customer(merchant_a, page_a, waiting_minutes=30, first_name="Oldest")
    _customer(merchant_a, page_a, waiting_minutes=None, first_name="BotHandles")
    _customer(merchant_b, page_b, waiting_minutes=10, first_name="OtherShop")
    _inbound(oldest, "Where is my parcel?", ago=timedelta(minutes=31))
    _inbound(oldest, "Hello? Anyone?", ago=timedelta(minutes=3))

    html = staff_a_client.get(reverse("dashboard:conversations")).content.decode()

    assert html.index("Oldest") < html.index("Recent")
    assert "Hello? Anyone?" in html and "Where is my parcel?" not in html
    assert "BotHandles" not in html and "OtherShop" not in html
    assert reverse("dashboard:conversation", args=[recent.pk]) in html


def test_thread_merges_what_the_customer_said_and_what_was_sent(staff_a_client, merchant_a, page_a):
    customer = _customer(merchant_a, page_a, waiting_minutes=5)
    _inbound(customer, "Do you have it in blue?", ago=timedelta(minutes=10))
    sent = OutboundMessage.objects.create(
        page=page_a,
        customer=customer,
        kind=OutboundMessage.Kind.HUMAN_AGENT,
        message={"text": "Yes, size M and L"},
        status=OutboundMessage.Status.DELIVERED,
        sent_at=timezone.now() - timedelta(minutes=4),
    )
    _inbound(customer, "Great, M please", ago=timedelta(minutes=2))

    html = staff_a_client.get(
        reverse("dashboard:conversation", args=[customer.pk])
    ).content.decode()

    first, second, third = (
        html.index("Do you have it in blue?"),
        html.index("Yes, size M and L"),
        html.index("Great, M please"),
    )
    assert first < second < third
    assert sent.get_status_display() in html
    assert "Resume bot" in html


def test_waiting_list_query_count_does_not_grow(
    staff_a_client, merchant_a, page_a, django_assert_max_num_queries
):
    for i in range(5):
        _inbound(_customer(merchant_a, page_a, waiting_minutes=i), "hi", ago=timedelta(minutes=1))
    with CaptureQueriesContext(connection) as few:
        staff_a_client.get(reverse("dashboard:conversations"))
    for i in range(45):
        _inbound(_customer(merchant_a, page_a, waiting_minutes=i), "hi", ago=timedelta(minutes=1))

    with django_assert_max_num_queries(len(few)):
        response = staff_a_client.get(reverse("dashboard:conversations"))
    assert response.content.decode().count('<tr data-customer="') == 50


# -- replies ----------------------------------------------------------------------------------


def _reply(client, customer, text="Your parcel leaves today."):
    return client.post(reverse("dashboard:conversation_reply", args=[customer.pk]), {"text": text})


def test_reply_inside_24_hours_goes_out_as_a_response(
    staff_a_support_client,
    merchant_a,
    page_a,
    graph_stub,
):
    customer = _customer(merchant_a, page_a, waiting_minutes=5, wrote_ago=timedelta(hours=2))

    response = _reply(staff_a_support_client, customer)

    row = OutboundMessage.objects.get(customer=customer)
    assert row.kind == OutboundMessage.Kind.HUMAN_AGENT and row.message == {
        "text": "Your parcel leaves today."
    }
    assert "Reply queued" in " ".join(_flash(response))
    assert outbox_deliver_customer(customer_id=customer.pk) == 1
    (body,) = graph_stub.sent_messages()
    assert body["messaging_type"] == "RESPONSE" and "tag" not in body
    assert body["recipient"] == {"id": customer.psid}
    assert body["message"] == {"text": "Your parcel leaves today."}


def test_reply_after_24_hours_goes_out_with_the_human_agent_tag(
    staff_a_client,
    merchant_a,
    page_a,
    graph_stub,
):
    customer = _customer(merchant_a, page_a, waiting_minutes=60, wrote_ago=timedelta(days=3))

    _reply(staff_a_client, customer)

    assert outbox_deliver_customer(customer_id=customer.pk) == 1
    (body,) = graph_stub.sent_messages()
    assert (body["messaging_type"], body["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
    row = OutboundMessage.objects.get(customer=customer)
    assert (row.status, row.tag) == (OutboundMessage.Status.SENT, "HUMAN_AGENT")


def test_reply_after_7_days_is_refused_with_the_reason_and_nothing_queued(
    staff_a_client, merchant_a, page_a
):
    customer = _customer(merchant_a, page_a, waiting_minutes=60, wrote_ago=timedelta(days=8))

    page = staff_a_client.get(
        reverse("dashboard:conversation", args=[customer.pk])
    ).content.decode()
    response = _reply(staff_a_client, customer)

    assert "more than 7 days ago" in page
    assert any("more than 7 days ago" in m for m in _flash(response))
    assert not OutboundMessage.objects.filter(customer=customer).exists()


def test_empty_reply_is_refused(staff_a_client, merchant_a, page_a):
    customer = _customer(merchant_a, page_a, waiting_minutes=1)

    response = _reply(staff_a_client, customer, text="   ")

    assert _flash(response)
    assert not OutboundMessage.objects.filter(customer=customer).exists()


def test_replying_to_a_bot_conversation_pauses_the_bot(staff_a_client, merchant_a, page_a):
    customer = _customer(merchant_a, page_a, waiting_minutes=None)

    _reply(staff_a_client, customer)

    customer.refresh_from_db()
    assert customer.bot_paused_at is not None


# -- handing back and taking over -------------------------------------------------------------


def test_resume_bot_hands_the_conversation_back(staff_a_support_client, merchant_a, page_a):
    customer = _customer(merchant_a, page_a, waiting_minutes=5, first_name="Waiting")
    Customer.objects.filter(pk=customer.pk).update(conversation_state="awaiting_email")

    response = staff_a_support_client.post(
        reverse("dashboard:conversation_resume", args=[customer.pk])
    )

    customer.refresh_from_db()
    assert customer.bot_paused_at is None and customer.conversation_state == ""
    assert response["Location"] == reverse("dashboard:conversations")
    assert any("The bot answers Waiting again." in m for m in _flash(response))
    listing = staff_a_support_client.get(reverse("dashboard:conversations")).content.decode()
    assert reverse("dashboard:conversation", args=[customer.pk]) not in listing


def test_take_over_pauses_the_bot(staff_a_client, merchant_a, page_a):
    customer = _customer(merchant_a, page_a, waiting_minutes=None)

    staff_a_client.post(reverse("dashboard:conversation_take_over", args=[customer.pk]))

    customer.refresh_from_db()
    assert customer.bot_paused_at is not None


def test_thread_and_waiting_list_fragments_refresh_with_new_messages(
    staff_a_client, merchant_a, page_a
):
    customer = _customer(merchant_a, page_a, waiting_minutes=5)
    page = staff_a_client.get(reverse("dashboard:conversation", args=[customer.pk]))
    assert "?fragment=thread" in page.content.decode()  # the page re-reads its thread

    _inbound(customer, "Still there?", ago=timedelta(seconds=5))
    thread = staff_a_client.get(
        reverse("dashboard:conversation", args=[customer.pk]), {"fragment": "thread"}
    )
    rows = staff_a_client.get(reverse("dashboard:conversations"), {"fragment": "rows"})

    assert "Still there?" in thread.content.decode()
    assert "<html" not in thread.content.decode()  # only the fragment
    assert "Still there?" in rows.content.decode() and "<html" not in rows.content.decode()


def test_thread_query_count_does_not_grow_with_the_messages(
    staff_a_client, merchant_a, page_a, django_assert_max_num_queries
):
    customer = _customer(merchant_a, page_a, waiting_minutes=5)
    url = reverse("dashboard:conversation", args=[customer.pk])

    def talk(n: int) -> None:
        for i in range(n):
            _inbound(customer, f"question {i}", ago=timedelta(minutes=n - i))
            OutboundMessage.objects.create(
                page=page_a, customer=customer, message={"text": f"answer {i}"}
            )

    talk(5)
    with CaptureQueriesContext(connection) as few:
        staff_a_client.get(url)
    talk(45)

    with django_assert_max_num_queries(len(few)):
        html = staff_a_client.get(url).content.decode()
    assert "question 44" in html and "answer 44" in html


def test_every_page_shows_how_many_of_my_customers_wait_for_a_person(
    staff_a_client, merchant_a, merchant_b, page_a, page_b
):
    assert "data-waiting" not in staff_a_client.get(reverse("dashboard:orders")).content.decode()
    for minutes in (1, 2):
        _customer(merchant_a, page_a, waiting_minutes=minutes)
    _customer(merchant_b, page_b, waiting_minutes=3)  # another merchant's: not counted

    html = staff_a_client.get(reverse("dashboard:orders")).content.decode()

    assert "data-waiting>2</span>" in html
