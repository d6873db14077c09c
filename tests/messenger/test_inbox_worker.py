"""The inbox worker's promises that the rest of the suite does not pin down on its own:

- a row committed in the instant its customer's drain lets go is answered by that drain, not
  left for the sweep (issue 12, item 13: the drain's outer loop looks again; this pins it);
- the network (the User Profile API) is asked outside the row's transaction (item 14; the
  suite-wide ``network_calls_in_transactions`` fixture fails any test that does otherwise);
- a Chat Plugin user, known only by ``sender.user_ref``, is answered with ``recipient.user_ref``
  and never looked up in the User Profile API; a Checkbox Plugin opt-in makes a customer of its
  ``optin.user_ref`` (item 15).

Real webhook ingest, drain, customers service, conversation engine and outbox; Graph is the local
stub, Celery publishes are recorded at the broker boundary.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db import connection

from commerce.models import Customer
from messenger.models import InboundEvent, MessengerPage, OutboundMessage
from messenger.services import inbox
from messenger.services.inbox import inbound_events_drain, inbound_events_store
from messenger.services.outbox import outbox_deliver_customer
from messenger.tasks.inbox import inbox_drain
from messenger.tasks.outbox import outbox_deliver
from tests.factories import merchant_create
from tests.messenger.webhook.helpers import PAGE_ID, PSID, body_of, message_item

Status = InboundEvent.Status


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, settings, tmp_path):
    """A private cache (the profiles), fresh inbox memories, publishes recorded."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": str(tmp_path),
        }
    }
    inbox.inbox_page_cache_clear()
    monkeypatch.setattr(inbox, "_nudge_state", {"covered_until": 0.0, "redis_down_until": 0.0})
    monkeypatch.setattr(outbox_deliver, "apply_async", lambda *a, **kw: None)
    monkeypatch.setattr(inbox_drain, "apply_async", lambda *a, **kw: None)
    yield
    inbox.inbox_page_cache_clear()


@pytest.fixture
def page(db) -> MessengerPage:
    return MessengerPage.objects.create(
        merchant=merchant_create(), page_id=PAGE_ID, name="Demo shop", access_token="EAAtoken"
    )


def _replies(customer: Customer) -> list[OutboundMessage]:
    return list(OutboundMessage.objects.filter(customer=customer).order_by("id"))


# --------------------------------------------------------------------------------------------
# Item 13: the drain looks again after letting go of the customer
# --------------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_row_committed_as_the_drain_lets_go_of_the_customer_is_answered_by_that_drain(
    page, graph_stub
):
    """The interleaving of the lost reply, made to happen: the drain has found nothing more
    for the customer and is about to release the customer's lock when the shopper's next
    message is committed (by another connection) and its own drain runs, finds the lock taken
    and leaves. Without a second look the message would wait for the sweep (60-90 s)."""
    graph_stub.set_profile(PSID, first_name="Layla", locale="en_US")
    inbound_events_store(raw_body=body_of(message_item(mid="m_first", text="menu")))
    late: dict[str, object] = {}

    def the_shopper_writes_again_now() -> None:
        try:
            inbound_events_store(
                raw_body=body_of(message_item(mid="m_late", text="cart", timestamp=1764067201000))
            )
            late["its_drain"] = inbound_events_drain()  # as the nudge's drain would run
        finally:
            connection.close()

    def at_the_release(execute, sql, params, many, context):
        if "pg_advisory_unlock" in sql and not late:
            thread = threading.Thread(target=the_shopper_writes_again_now)
            thread.start()
            thread.join(timeout=60)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(at_the_release):
        result = inbound_events_drain()

    assert late["its_drain"].processed == 0  # the lock was taken: that drain left at once
    assert result.processed == 2
    rows = dict(InboundEvent.objects.values_list("dedupe_key", "status"))
    assert rows == {"message:m_first": Status.PROCESSED, "message:m_late": Status.PROCESSED}
    late_row = InboundEvent.objects.get(dedupe_key="message:m_late")
    assert OutboundMessage.objects.filter(dedupe_key=f"reply:{late_row.pk}:0").exists()


# --------------------------------------------------------------------------------------------
# Item 14: the profile is fetched outside the row's transaction
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_user_profile_is_asked_outside_the_inbox_transaction(
    page, graph_stub, network_calls_in_transactions
):
    graph_stub.set_profile(PSID, first_name="Omar", last_name="Khalil", locale="ar_AR")
    inbound_events_store(raw_body=body_of(message_item(mid="m_new", text="menu")))

    assert inbound_events_drain().processed == 1

    assert len(graph_stub.requests_to(f"/{PSID}")) == 1  # a new customer: the API was asked
    assert network_calls_in_transactions == []
    customer = Customer.objects.get(psid=PSID)
    assert (customer.first_name, customer.language) == ("Omar", "ar")
    assert _replies(customer)  # and answered, in Arabic, in the same turn


# --------------------------------------------------------------------------------------------
# Item 15: plugin users, known by user_ref
# --------------------------------------------------------------------------------------------


def test_a_chat_plugin_user_is_answered_by_user_ref_without_a_profile_lookup(page, graph_stub):
    item = {
        "sender": {"user_ref": "cp-5f1d0c"},
        "recipient": {"id": PAGE_ID},
        "timestamp": int(time.time() * 1000),  # just now: inside the 24-hour window
        "postback": {"mid": "m_cp_1", "title": "Get Started", "payload": "GET_STARTED"},
    }
    inbound_events_store(raw_body=body_of(item))

    assert inbound_events_drain().processed == 1

    customer = Customer.objects.get(page_id=PAGE_ID, psid="ref:cp-5f1d0c")
    assert customer.merchant == page.merchant
    assert customer.last_interaction_at is not None  # the 24-hour window is open
    assert outbox_deliver_customer(customer_id=customer.pk) == len(_replies(customer)) > 0
    sent = graph_stub.sent_messages()
    assert sent and all(body["recipient"] == {"user_ref": "cp-5f1d0c"} for body in sent)
    assert all(body["messaging_type"] == "RESPONSE" for body in sent)
    assert graph_stub.requests_to("/cp-5f1d0c") == []  # the User Profile API takes a PSID
    assert InboundEvent.objects.get().status == Status.PROCESSED


def test_a_checkbox_opt_in_makes_a_customer_of_its_user_ref(page, graph_stub):
    item = {
        "recipient": {"id": PAGE_ID},
        "timestamp": 1764067200000,
        "optin": {"ref": "order-form", "user_ref": "cb-77e2"},
    }
    inbound_events_store(raw_body=body_of(item))

    assert inbound_events_drain().processed == 1

    row = InboundEvent.objects.get()
    assert (row.status, row.sender_psid) == (Status.PROCESSED, "ref:cb-77e2")
    customer = Customer.objects.get(psid="ref:cb-77e2")
    assert customer.last_interaction_at is not None
