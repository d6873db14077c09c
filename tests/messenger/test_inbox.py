"""Processing the webhook inbox: one customer at a time, in timestamp order, each row once.

Rows are stored through the real ingest (``inbound_events_store`` over signed-fixture bytes)
and processed by the real drain, customers service and conversation engine; the Graph API is
the local stub, and Celery publishes are recorded at the broker boundary.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from commerce.models import Customer
from messenger.conversation import engine
from messenger.models import InboundEvent, MessengerPage, OutboundMessage
from messenger.services import inbox
from messenger.services.inbox import (
    MAX_ATTEMPTS,
    inbound_event_process,
    inbound_events_drain,
    inbound_events_store,
)
from messenger.tasks.inbox import inbox_drain, inbox_sweep
from messenger.tasks.outbox import outbox_deliver
from tests.factories import merchant_create
from tests.messenger.webhook.helpers import (
    PAGE_ID,
    PSID,
    body_of,
    fixture_bytes,
    message_item,
)

Status = InboundEvent.Status


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, settings, graph_stub, tmp_path):
    """Fresh inbox caches and a private cache; Celery publishes recorded instead of sent (the
    broker boundary)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": str(tmp_path),
        }
    }
    inbox.inbox_page_cache_clear()
    monkeypatch.setattr(inbox, "_nudge_state", {"covered_until": 0.0, "redis_down_until": 0.0})
    monkeypatch.setattr(outbox_deliver, "apply_async", lambda *a, **kw: None)
    yield
    inbox.inbox_page_cache_clear()


@pytest.fixture
def drains(monkeypatch) -> list[dict]:
    calls: list[dict] = []
    monkeypatch.setattr(inbox_drain, "apply_async", lambda *a, **kw: calls.append(kw))
    monkeypatch.setattr(inbox_drain, "delay", lambda *a, **kw: calls.append(kw))
    return calls


@pytest.fixture
def page(db) -> MessengerPage:
    return MessengerPage.objects.create(
        merchant=merchant_create(), page_id=PAGE_ID, name="Demo shop", access_token="EAAtoken"
    )


@pytest.fixture
def handled(monkeypatch) -> list[tuple[int, str, str]]:
    """Every call of the real ``conversation_handle``: (inbound id, PSID, mid or kind)."""
    calls: list[tuple[int, str, str]] = []
    real = engine.conversation_handle

    def spy(*, customer, page, event, inbound_event_id):
        calls.append((inbound_event_id, customer.psid, getattr(event, "mid", "")))
        return real(customer=customer, page=page, event=event, inbound_event_id=inbound_event_id)

    monkeypatch.setattr(engine, "conversation_handle", spy)
    return calls


def _store(*names: str) -> None:
    for name in names:
        inbound_events_store(raw_body=fixture_bytes(name))


# --------------------------------------------------------------------------------------------
# What each kind of event does
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_text_message_creates_the_customer_and_reaches_the_conversation(
    page, graph_stub, handled
):
    _store("text_message")

    result = inbound_events_drain()

    assert result.processed == 1
    row = InboundEvent.objects.get()
    assert (row.status, row.attempts, row.error) == (Status.PROCESSED, 1, "")
    assert row.processed_at is not None
    customer = Customer.objects.get(page_id=PAGE_ID, psid=PSID)
    assert customer.merchant == page.merchant
    assert (customer.first_name, customer.last_name, customer.locale) == (
        "Layla",
        "Haddad",
        "ar_AR",
    )
    assert customer.last_interaction_at == datetime(2025, 11, 25, 10, 40, tzinfo=UTC)
    assert handled == [(row.pk, PSID, "m_txt_0001")]
    assert OutboundMessage.objects.filter(customer=customer).exists()  # the engine answered
    assert len(graph_stub.requests_to(f"/{PSID}")) == 1  # one profile fetch


@pytest.mark.django_db
def test_the_same_payload_three_times_is_answered_once(page, handled):
    for _ in range(3):
        _store("get_started")
    inbound_events_drain()
    inbound_events_drain()

    assert len(handled) == 1
    replies = OutboundMessage.objects.values_list("dedupe_key", flat=True)
    row = InboundEvent.objects.get()
    assert replies and all(key.startswith(f"reply:{row.pk}:") for key in replies)


@pytest.mark.django_db
def test_a_processed_row_is_not_processed_again(page, handled):
    _store("text_message")
    row = InboundEvent.objects.get()
    assert inbound_event_process(event_id=row.pk).status == Status.PROCESSED
    assert inbound_event_process(event_id=row.pk) is None
    assert len(handled) == 1


@pytest.mark.django_db
def test_an_echo_is_processed_without_a_customer_or_an_answer(page, handled):
    _store("echo")
    inbound_events_drain()
    assert InboundEvent.objects.get().status == Status.PROCESSED
    assert not Customer.objects.exists()
    assert handled == []


@pytest.mark.django_db
def test_an_ad_referral_is_kept_on_the_customer(page, handled):
    _store("referral_from_ad")
    inbound_events_drain()
    customer = Customer.objects.get()
    assert (customer.referral_ref, customer.referral_source, customer.referral_ad_id) == (
        "product-TSHIRT-WHITE",
        "ADS",
        "6045246247433",
    )
    assert len(handled) == 1


@pytest.mark.django_db
def test_a_get_started_referral_is_kept_on_the_customer(page, handled):
    _store("get_started_with_referral")
    inbound_events_drain()
    customer = Customer.objects.get()
    assert (customer.referral_ref, customer.referral_source) == (
        "product-TSHIRT-WHITE",
        "SHORTLINK",
    )


@pytest.mark.django_db
def test_delivery_and_read_mark_the_outbox(page, handled):
    customer = Customer.objects.create(merchant=page.merchant, page_id=PAGE_ID, psid=PSID)
    sent = OutboundMessage.objects.create(
        page=page,
        customer=customer,
        message={"text": "hi"},
        status=OutboundMessage.Status.SENT,
        graph_message_id="m_out_0001",
        sent_at=datetime(2025, 11, 25, 10, 39, tzinfo=UTC),
    )
    _store("delivery_and_read")

    inbound_events_drain()

    assert set(InboundEvent.objects.values_list("status", flat=True)) == {Status.PROCESSED}
    sent.refresh_from_db()
    assert sent.status == OutboundMessage.Status.READ
    assert sent.delivered_at is not None
    assert handled == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["legacy_pre_checkout", "legacy_checkout_update", "legacy_payment"]
)
def test_legacy_payment_events_of_a_checkout_page_shop_are_recorded_and_ignored(
    page, handled, name
):
    """The v1.2 buy button is off for this page (its own tests live with the payments app)."""
    _store(name)
    inbound_events_drain()
    row = InboundEvent.objects.get()
    assert (row.status, row.error) == (Status.IGNORED, "the page is not in buy-button mode")
    assert handled == []


@pytest.mark.django_db
def test_an_unknown_kind_is_recorded_and_ignored(page, handled):
    item = {
        "sender": {"id": PSID},
        "recipient": {"id": PAGE_ID},
        "timestamp": 1764067200000,
        "message_edit": {"mid": "m_edit_1", "text": "typo fixed", "num_edit": 1},
    }
    inbound_events_store(raw_body=body_of(item))
    inbound_events_drain()
    row = InboundEvent.objects.get()
    assert row.status == Status.IGNORED
    assert "unknown" in row.error
    assert row.payload == item


@pytest.mark.django_db
def test_a_standby_message_updates_the_customer_but_is_not_answered(page, handled):
    inbound_events_store(raw_body=body_of(standby=(message_item(mid="m_sb"),)))
    inbound_events_drain()
    row = InboundEvent.objects.get()
    assert (row.status, row.error) == (Status.PROCESSED, "standby")
    assert Customer.objects.get().last_interaction_at is not None
    assert handled == []


@pytest.mark.django_db
def test_rows_of_a_page_disconnected_after_ingest_are_ignored(page, handled):
    _store("text_message")
    page.delete()
    inbound_events_drain()
    assert InboundEvent.objects.get().status == Status.IGNORED
    assert handled == []


@pytest.mark.django_db
def test_rows_stored_as_ignored_are_never_processed(db, handled):
    _store("text_message")  # no page: stored as ignored
    assert inbound_events_drain().processed == 0
    assert handled == []


@pytest.mark.django_db
def test_the_profile_api_failing_does_not_stop_the_conversation(page, graph_stub, handled):
    graph_stub.fail_always(status=500)
    _store("text_message")
    inbound_events_drain()
    assert InboundEvent.objects.get().status == Status.PROCESSED
    customer = Customer.objects.get()
    assert (customer.first_name, customer.last_name) == ("", "")
    assert len(handled) == 1


# --------------------------------------------------------------------------------------------
# Failures and retries
# --------------------------------------------------------------------------------------------


@pytest.fixture
def broken_engine(monkeypatch) -> list[int]:
    """The conversation raises for events whose text is "boom"."""
    calls: list[int] = []
    real = engine.conversation_handle

    def handle(*, customer, page, event, inbound_event_id):
        calls.append(inbound_event_id)
        if getattr(event, "text", "") == "boom":
            raise RuntimeError("the flow broke")
        return real(customer=customer, page=page, event=event, inbound_event_id=inbound_event_id)

    monkeypatch.setattr(engine, "conversation_handle", handle)
    return calls


@pytest.mark.django_db
def test_a_failing_handler_is_recorded_and_blocks_only_its_customer(page, broken_engine):
    inbound_events_store(
        raw_body=body_of(
            message_item(mid="m_boom", text="boom", timestamp=1),
            message_item(mid="m_after", text="hi", timestamp=2),
            message_item(mid="m_other", text="hi", psid="2409999999999999", timestamp=3),
        )
    )

    inbound_events_drain()

    rows = {row.dedupe_key: row for row in InboundEvent.objects.all()}
    boom, after, other = rows["message:m_boom"], rows["message:m_after"], rows["message:m_other"]
    assert (boom.status, boom.attempts) == (Status.PENDING, 1)
    assert boom.error == "RuntimeError: the flow broke"
    assert (after.status, after.attempts) == (Status.PENDING, 0)  # waits behind it, in order
    assert other.status == Status.PROCESSED
    assert not OutboundMessage.objects.filter(dedupe_key__startswith=f"reply:{boom.pk}:").exists()

    inbound_events_drain()  # an ordinary nudge does not retry it
    boom.refresh_from_db()
    assert boom.attempts == 1


@pytest.mark.django_db
def test_a_row_failing_every_retry_ends_failed_and_the_customer_moves_on(page, broken_engine):
    inbound_events_store(
        raw_body=body_of(
            message_item(mid="m_boom", text="boom", timestamp=1),
            message_item(mid="m_after", text="hi", timestamp=2),
        )
    )
    for _ in range(MAX_ATTEMPTS):
        inbound_events_drain(include_retries=True)

    boom = InboundEvent.objects.get(dedupe_key="message:m_boom")
    after = InboundEvent.objects.get(dedupe_key="message:m_after")
    assert (boom.status, boom.attempts) == (Status.FAILED, MAX_ATTEMPTS)
    assert boom.processed_at is not None
    assert after.status == Status.PROCESSED


@pytest.mark.django_db
def test_the_drain_stops_at_its_bound_and_says_more_is_waiting(page, handled):
    inbound_events_store(
        raw_body=body_of(*(message_item(mid=f"m_{n}", timestamp=n) for n in range(3)))
    )
    result = inbound_events_drain(max_events=2)
    assert (result.processed, result.more) == (2, True)
    assert inbound_events_drain().processed == 1


@pytest.mark.django_db
def test_the_drain_task_queues_its_continuation_at_the_bound(page, handled, drains, monkeypatch):
    monkeypatch.setattr(inbox, "DRAIN_MAX_EVENTS", 1)
    inbound_events_store(
        raw_body=body_of(*(message_item(mid=f"m_{n}", timestamp=n) for n in range(2)))
    )
    monkeypatch.setattr(
        "messenger.tasks.inbox.inbound_events_drain",
        lambda include_retries: inbound_events_drain(include_retries=include_retries, max_events=1),
    )
    assert inbox_drain.run() == 1
    assert drains == [{"kwargs": {"include_retries": False}}]


# --------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_sweep_publishes_a_drain_for_rows_pending_over_a_minute(page, drains):
    _store("text_message")
    assert inbox_sweep.run() is False  # fresh: its nudge will take care of it
    assert drains == []

    InboundEvent.objects.update(received_at=timezone.now() - timedelta(seconds=61))

    assert inbox_sweep.run() is True
    assert drains == [{"include_retries": True}]


@pytest.mark.django_db
def test_the_sweep_ignores_old_rows_that_are_done(page, drains, handled):
    _store("text_message")
    inbound_events_drain()
    InboundEvent.objects.update(received_at=timezone.now() - timedelta(minutes=5))
    assert inbox_sweep.run() is False
    assert drains == []


def test_the_sweep_runs_every_30_seconds(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["messenger-inbox-sweep"]
    assert entry["task"] == "messenger.tasks.inbox.inbox_sweep"
    assert entry["schedule"] == timedelta(seconds=30)


# --------------------------------------------------------------------------------------------
# Two workers at once (PostgreSQL)
# --------------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_drains_process_each_customer_in_order_exactly_once(page, monkeypatch):
    """Three customers, events stored out of order; two drains race. Each customer's events
    are handled one at a time, in timestamp order, each exactly once."""
    customers = ["2400000000000001", "2400000000000002", "2400000000000003"]
    items = [
        message_item(mid=f"m_{psid[-1]}_{n}", psid=psid, timestamp=1764067200000 + n)
        for psid in customers
        for n in range(8)
    ]
    # Arrival order differs from timestamp order: later events first, in two bodies.
    inbound_events_store(raw_body=body_of(*items[::-2]))
    inbound_events_store(raw_body=body_of(*items[-2::-2]))
    assert InboundEvent.objects.filter(status=Status.PENDING).count() == 24

    seen: dict[str, list[int]] = defaultdict(list)
    active: dict[str, int] = defaultdict(int)
    overlaps: list[str] = []
    guard = threading.Lock()
    real = engine.conversation_handle

    def handle(*, customer, page, event, inbound_event_id):
        with guard:
            active[customer.psid] += 1
            if active[customer.psid] > 1:
                overlaps.append(customer.psid)
            seen[customer.psid].append(event.timestamp_ms)
        time.sleep(0.01)  # widen the window for the other drain
        try:
            return real(
                customer=customer, page=page, event=event, inbound_event_id=inbound_event_id
            )
        finally:
            with guard:
                active[customer.psid] -= 1

    monkeypatch.setattr(engine, "conversation_handle", handle)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def drain() -> None:
        try:
            barrier.wait(timeout=30)
            inbound_events_drain()
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=drain) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    # Whatever the first two drains skipped (a customer locked by the other), a later one takes.
    inbound_events_drain()

    assert overlaps == []
    for psid in customers:
        assert seen[psid] == [1764067200000 + n for n in range(8)], psid
    assert set(InboundEvent.objects.values_list("status", flat=True)) == {Status.PROCESSED}
    assert set(InboundEvent.objects.values_list("attempts", flat=True)) == {1}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_row_claimed_by_another_transaction_is_skipped_not_waited_for(page, handled):
    """SKIP LOCKED: while one worker holds a row, a second process call returns at once."""
    _store("text_message")
    row = InboundEvent.objects.get()
    locked = threading.Event()
    release = threading.Event()

    def hold() -> None:
        from django.db import transaction

        try:
            with transaction.atomic():
                InboundEvent.objects.select_for_update().get(pk=row.pk)
                locked.set()
                release.wait(timeout=30)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(timeout=30)
        assert inbound_event_process(event_id=row.pk) is None
        # It came back while the other transaction still held the row (that one lets go only
        # when told, or after 30 s): skipped, not waited for. A waiting call would have got the
        # row once it was let go and processed it.
        assert holder.is_alive() and not release.is_set()
        assert not handled
    finally:
        release.set()
        holder.join(timeout=30)
    assert inbound_event_process(event_id=row.pk).status == Status.PROCESSED
    assert len(handled) == 1


def test_store_payload_is_kept_verbatim(db):
    item = json.loads(fixture_bytes("image_attachment"))["entry"][0]["messaging"][0]
    inbound_events_store(raw_body=fixture_bytes("image_attachment"))
    assert InboundEvent.objects.get().payload == item
