"""The outbox: written in the causing transaction, delivered in order through the Graph stub,
retried on transient errors, recorded on permanent ones, sent by the 24-hour rule."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from messenger.client import appsecret_proof
from messenger.models import MessengerPage, OutboundMessage
from messenger.services import outbox as outbox_module
from messenger.services.outbox import (
    messaging_for,
    outbox_deliver_customer,
    outbox_due_customer_ids,
    outbox_enqueue,
    outbox_mark_delivered,
    outbox_mark_read,
    outbox_sweep,
    retry_delay_seconds,
)
from messenger.tasks.outbox import outbox_deliver
from tests.factories import customer_create, merchant_create

Status = OutboundMessage.Status
Kind = OutboundMessage.Kind
NOW = timezone.now


@pytest.fixture
def published(monkeypatch) -> list[tuple[int, float | None]]:
    """Celery publishes of ``outbox_deliver`` (the Redis boundary), as (customer id, countdown)."""
    calls: list[tuple[int, float | None]] = []

    def apply_async(args=(), kwargs=None, countdown=None, **options):
        calls.append((args[0], countdown))

    monkeypatch.setattr(outbox_deliver, "apply_async", apply_async)
    return calls


def _enqueue(customer, page, text: str, **fields) -> OutboundMessage:
    row = outbox_enqueue(customer=customer, page=page, message={"text": text}, **fields)
    assert row is not None
    return row


def _texts(stub) -> list[str]:
    return [body["message"]["text"] for body in stub.sent_messages()]


def _make_due(*rows: OutboundMessage) -> None:
    OutboundMessage.objects.filter(pk__in=[r.pk for r in rows]).update(
        next_attempt_at=NOW() - timedelta(seconds=1)
    )


# --------------------------------------------------------------------------------------------
# Sending
# --------------------------------------------------------------------------------------------


def test_send_posts_the_send_api_body_with_token_and_appsecret_proof(
    graph_stub, messenger_page, messenger_customer, settings, published
):
    row = _enqueue(messenger_customer, messenger_page, "Welcome!")

    assert outbox_deliver_customer(customer_id=messenger_customer.pk) == 1

    (request,) = graph_stub.requests
    assert request.method == "POST"
    assert request.path == f"/{settings.GRAPH_API_VERSION}/me/messages"
    assert request.body == {
        "recipient": {"id": messenger_customer.psid},
        "messaging_type": "RESPONSE",
        "message": {"text": "Welcome!"},
    }
    token = messenger_page.access_token
    assert request.query["access_token"] == token
    assert request.query["appsecret_proof"] == appsecret_proof(token, settings.MESSENGER_APP_SECRET)
    row.refresh_from_db()
    assert row.status == Status.SENT
    assert row.graph_message_id == "m_1"
    assert row.sent_at is not None
    assert (row.messaging_type, row.tag, row.attempts) == ("RESPONSE", "", 1)


def test_sends_to_one_customer_leave_in_id_order(
    graph_stub, messenger_page, messenger_customer, published
):
    for text in ["one", "two", "three"]:
        _enqueue(messenger_customer, messenger_page, text)

    assert outbox_deliver_customer(customer_id=messenger_customer.pk) == 3
    assert _texts(graph_stub) == ["one", "two", "three"]
    # Nothing is sent twice.
    assert outbox_deliver_customer(customer_id=messenger_customer.pk) == 0
    assert len(graph_stub.sent_messages()) == 3


def test_decimal_amounts_reach_graph_as_exact_numbers(
    graph_stub, messenger_page, messenger_customer, published
):
    message = {
        "attachment": {
            "type": "template",
            "payload": {"template_type": "receipt", "summary": {"total_cost": Decimal("10.125")}},
        }
    }
    outbox_enqueue(customer=messenger_customer, page=messenger_page, message=message)

    outbox_deliver_customer(customer_id=messenger_customer.pk)

    (request,) = graph_stub.requests
    assert '"total_cost":10.125' in request.raw_body


def test_other_customers_rows_are_not_sent(
    graph_stub, messenger_page, messenger_customer, published
):
    other = customer_create(merchant=messenger_page.merchant, last_interaction_at=NOW())
    _enqueue(messenger_customer, messenger_page, "mine")
    _enqueue(other, messenger_page, "theirs")

    outbox_deliver_customer(customer_id=messenger_customer.pk)

    assert _texts(graph_stub) == ["mine"]


# --------------------------------------------------------------------------------------------
# Enqueue: transaction, dedupe, scheduling
# --------------------------------------------------------------------------------------------


def test_enqueue_schedules_delivery_after_commit(
    messenger_page, messenger_customer, published, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _enqueue(messenger_customer, messenger_page, "hi")
        assert published == []  # nothing before the commit

    for callback in callbacks:
        callback()
    assert published == [(messenger_customer.pk, None)]


def test_enqueue_in_a_rolled_back_transaction_leaves_no_row_and_sends_nothing(
    graph_stub, messenger_page, messenger_customer, published, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        _enqueue(messenger_customer, messenger_page, "never")
        raise RuntimeError("the order could not be placed")

    assert callbacks == []
    assert published == []
    assert not OutboundMessage.objects.exists()
    assert outbox_deliver_customer(customer_id=messenger_customer.pk) == 0
    assert graph_stub.requests == []


def test_dedupe_key_writes_one_row(messenger_page, messenger_customer, published):
    first = outbox_enqueue(
        customer=messenger_customer,
        page=messenger_page,
        message={"text": "receipt"},
        kind=Kind.UPDATE,
        dedupe_key="receipt:42",
    )
    second = outbox_enqueue(
        customer=messenger_customer,
        page=messenger_page,
        message={"text": "receipt again"},
        kind=Kind.UPDATE,
        dedupe_key="receipt:42",
    )

    assert first is not None
    assert second is None
    assert OutboundMessage.objects.filter(dedupe_key="receipt:42").count() == 1


def test_duplicate_key_race_keeps_the_callers_transaction_usable(
    messenger_page, messenger_customer, published, monkeypatch
):
    """A concurrent writer won the key between the check and the insert: the insert's
    IntegrityError is contained in a savepoint and the call returns None."""
    _enqueue(messenger_customer, messenger_page, "first", dedupe_key="reply:7:0")
    real_filter = OutboundMessage.objects.filter
    calls = {"n": 0}

    def filter_missing_once(*args, **kwargs):
        calls["n"] += 1
        queryset = real_filter(*args, **kwargs)
        return queryset.none() if calls["n"] == 1 else queryset

    monkeypatch.setattr(OutboundMessage.objects, "filter", filter_missing_once)
    with transaction.atomic():
        again = outbox_enqueue(
            customer=messenger_customer,
            page=messenger_page,
            message={"text": "x"},
            dedupe_key="reply:7:0",
        )
        assert again is None
        assert OutboundMessage.objects.count() == 1  # the transaction still works


def test_publish_failure_is_logged_not_raised(
    messenger_page, messenger_customer, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    from kombu.exceptions import OperationalError

    def broken(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(outbox_deliver, "apply_async", broken)
    with django_capture_on_commit_callbacks(execute=True):
        row = _enqueue(messenger_customer, messenger_page, "hi")

    assert OutboundMessage.objects.filter(pk=row.pk, status=Status.PENDING).exists()
    assert "Could not schedule outbox delivery" in caplog.text


def test_enqueue_refuses_a_customer_of_another_page(messenger_page, published):
    stranger = customer_create(merchant=merchant_create(), page_id="999000111")
    with pytest.raises(ValueError):
        outbox_enqueue(customer=stranger, page=messenger_page, message={"text": "x"})


# --------------------------------------------------------------------------------------------
# Transient errors: retried later with backoff; later rows wait
# --------------------------------------------------------------------------------------------

TRANSIENT = [
    pytest.param(500, None, None, "2", id="5xx"),
    pytest.param(400, 1200, None, "1200", id="1200-temporary-send-failure"),
    pytest.param(400, 4, None, "4", id="4-app-rate-limit"),
    pytest.param(400, 613, None, "613", id="613-rate-limit"),
]


@pytest.mark.parametrize(("status", "code", "subcode", "error_code"), TRANSIENT)
def test_transient_error_defers_the_row_and_keeps_the_order(
    graph_stub,
    messenger_page,
    messenger_customer,
    settings,
    published,
    django_capture_on_commit_callbacks,
    status,
    code,
    subcode,
    error_code,
):
    settings.OUTBOX_RETRY_BASE_SECONDS = 10
    first = _enqueue(messenger_customer, messenger_page, "first")
    second = _enqueue(messenger_customer, messenger_page, "second")
    published.clear()
    graph_stub.fail_next(status=status, code=code, subcode=subcode)

    before = NOW()
    with django_capture_on_commit_callbacks(execute=True):
        assert outbox_deliver_customer(customer_id=messenger_customer.pk) == 0

    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.attempts, first.error_code) == (Status.PENDING, 1, error_code)
    assert before + timedelta(seconds=5) <= first.next_attempt_at <= NOW() + timedelta(seconds=10)
    assert second.status == Status.PENDING and second.attempts == 0
    assert len(graph_stub.requests) == 1  # the second row was not tried before the first
    # The retry is scheduled for when the row is due.
    ((customer_id, countdown),) = published
    assert customer_id == messenger_customer.pk
    assert 4 <= countdown <= 10

    # Not due yet: nothing happens.
    assert outbox_deliver_customer(customer_id=messenger_customer.pk) == 0
    assert len(graph_stub.requests) == 1

    _make_due(first)
    assert outbox_deliver_customer(customer_id=messenger_customer.pk) == 2
    assert _texts(graph_stub) == ["first", "second"]
    first.refresh_from_db()
    assert (first.status, first.attempts, first.error_code) == (Status.SENT, 2, "")


def test_timeout_is_transient(graph_stub, messenger_page, messenger_customer, settings, published):
    settings.GRAPH_API_TIMEOUT = 0.3
    first = _enqueue(messenger_customer, messenger_page, "first")
    _enqueue(messenger_customer, messenger_page, "second")
    graph_stub.delay(1.0, times=1)

    assert outbox_deliver_customer(customer_id=messenger_customer.pk) == 0

    first.refresh_from_db()
    assert (first.status, first.error_code) == (Status.PENDING, "timeout")
    assert first.next_attempt_at > NOW()
    # Let the slow request finish on the stub's side (Graph may well have sent it: at least once).
    deadline = time.monotonic() + 5
    while not graph_stub.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    _make_due(first)
    assert outbox_deliver_customer(customer_id=messenger_customer.pk) == 2
    assert _texts(graph_stub)[-2:] == ["first", "second"]


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap():
    assert retry_delay_seconds(1, base=10, cap=1800, rand=lambda: 0.0) == 5
    assert retry_delay_seconds(1, base=10, cap=1800, rand=lambda: 1.0) == 10
    assert retry_delay_seconds(3, base=10, cap=1800, rand=lambda: 1.0) == 40
    assert retry_delay_seconds(20, base=10, cap=1800, rand=lambda: 1.0) == 1800
    delays = {retry_delay_seconds(2, base=10, cap=1800) for _ in range(50)}
    assert all(10 <= d < 20 for d in delays) and len(delays) > 1


def test_transient_errors_fail_the_row_after_max_attempts_and_the_next_row_follows(
    graph_stub, messenger_page, messenger_customer, settings, published
):
    settings.OUTBOX_MAX_ATTEMPTS = 2
    first = _enqueue(messenger_customer, messenger_page, "first")
    _enqueue(messenger_customer, messenger_page, "second")
    graph_stub.fail_next(2, status=503)

    outbox_deliver_customer(customer_id=messenger_customer.pk)
    _make_due(first)
    assert outbox_deliver_customer(customer_id=messenger_customer.pk) == 1

    first.refresh_from_db()
    assert (first.status, first.attempts, first.error_code) == (Status.FAILED, 2, "2")
    assert "HTTP 503" in first.error_message
    assert _texts(graph_stub) == ["second"]


# --------------------------------------------------------------------------------------------
# Permanent errors: recorded, never retried; the next row follows
# --------------------------------------------------------------------------------------------

PERMANENT = [
    pytest.param(551, None, "551", id="551-person-unavailable"),
    pytest.param(100, 2018001, "100/2018001", id="100-no-matching-user"),
    pytest.param(10, 2018278, "10/2018278", id="10-outside-window"),
]


@pytest.mark.parametrize(("code", "subcode", "error_code"), PERMANENT)
def test_permanent_error_fails_the_row_and_the_next_row_is_sent(
    graph_stub, messenger_page, messenger_customer, published, code, subcode, error_code
):
    first = _enqueue(messenger_customer, messenger_page, "first")
    _enqueue(messenger_customer, messenger_page, "second")
    graph_stub.fail_next(status=400, code=code, subcode=subcode, message="(#x) refused")

    assert outbox_deliver_customer(customer_id=messenger_customer.pk) == 1

    first.refresh_from_db()
    assert (first.status, first.error_code, first.attempts) == (Status.FAILED, error_code, 1)
    assert "(#x) refused" in first.error_message
    assert first.next_attempt_at is None
    assert _texts(graph_stub) == ["second"]
    # Never retried.
    assert outbox_deliver_customer(customer_id=messenger_customer.pk) == 0
    assert len(graph_stub.requests) == 2


def test_token_rejected_flags_the_page_and_fails_its_rows(
    graph_stub, messenger_page, messenger_customer, published
):
    first = _enqueue(messenger_customer, messenger_page, "first")
    second = _enqueue(messenger_customer, messenger_page, "second")
    graph_stub.fail_next(status=400, code=190, subcode=460)

    outbox_deliver_customer(customer_id=messenger_customer.pk)

    messenger_page.refresh_from_db()
    assert messenger_page.token_invalid_at is not None
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.error_code) == (Status.FAILED, "190/460")
    assert (second.status, second.error_code) == (Status.FAILED, "token_invalid")
    assert len(graph_stub.requests) == 1  # the flagged page's token is not tried again


def test_page_without_token_fails_rows_without_calling_graph(
    graph_stub, messenger_page, messenger_customer, published
):
    MessengerPage.objects.filter(pk=messenger_page.pk).update(access_token="")
    row = _enqueue(messenger_customer, messenger_page, "hi")

    outbox_deliver_customer(customer_id=messenger_customer.pk)

    row.refresh_from_db()
    assert (row.status, row.error_code) == (Status.FAILED, "no_token")
    assert "no access token" in row.error_message
    assert graph_stub.requests == []


# --------------------------------------------------------------------------------------------
# The 24-hour window
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "hours_ago", "expected"),
    [
        (Kind.RESPONSE, 1, ("RESPONSE", "")),
        (Kind.UPDATE, 23.9, ("RESPONSE", "")),
        (Kind.HUMAN_AGENT, 2, ("RESPONSE", "")),
        (Kind.UPDATE, 25, ("MESSAGE_TAG", "POST_PURCHASE_UPDATE")),
        (Kind.UPDATE, None, ("MESSAGE_TAG", "POST_PURCHASE_UPDATE")),
        (Kind.HUMAN_AGENT, 24 * 6, ("MESSAGE_TAG", "HUMAN_AGENT")),
        (Kind.HUMAN_AGENT, 24 * 8, None),
        (Kind.RESPONSE, 25, None),
        (Kind.RESPONSE, None, None),
    ],
)
def test_messaging_type_follows_the_24_hour_rule(kind, hours_ago, expected):
    now = NOW()
    last = None if hours_ago is None else now - timedelta(hours=hours_ago)
    assert messaging_for(kind=kind, last_interaction_at=last, now=now) == expected


def _customer_last_seen(page, hours_ago: float):
    return customer_create(
        merchant=page.merchant,
        page_id=page.page_id,
        last_interaction_at=NOW() - timedelta(hours=hours_ago),
    )


def test_update_outside_the_window_is_tagged_post_purchase_update(
    graph_stub, messenger_page, published
):
    customer = _customer_last_seen(messenger_page, 30)
    row = _enqueue(customer, messenger_page, "Your order shipped", kind=Kind.UPDATE)

    outbox_deliver_customer(customer_id=customer.pk)

    (body,) = graph_stub.sent_messages()
    assert body["messaging_type"] == "MESSAGE_TAG"
    assert body["tag"] == "POST_PURCHASE_UPDATE"
    row.refresh_from_db()
    assert (row.status, row.messaging_type, row.tag) == (
        Status.SENT,
        "MESSAGE_TAG",
        "POST_PURCHASE_UPDATE",
    )


def test_response_outside_the_window_is_skipped_not_sent(graph_stub, messenger_page, published):
    customer = _customer_last_seen(messenger_page, 30)
    skipped = _enqueue(customer, messenger_page, "Still there?")
    update = _enqueue(customer, messenger_page, "Shipped", kind=Kind.UPDATE)

    assert outbox_deliver_customer(customer_id=customer.pk) == 1

    skipped.refresh_from_db()
    update.refresh_from_db()
    assert (skipped.status, skipped.error_code) == (Status.SKIPPED, "outside_window")
    assert update.status == Status.SENT
    assert _texts(graph_stub) == ["Shipped"]


def test_human_agent_reply_outside_the_window_carries_the_human_agent_tag(
    graph_stub, messenger_page, published
):
    customer = _customer_last_seen(messenger_page, 72)
    _enqueue(customer, messenger_page, "Hi, this is Sara from the shop", kind=Kind.HUMAN_AGENT)

    outbox_deliver_customer(customer_id=customer.pk)

    (body,) = graph_stub.sent_messages()
    assert (body["messaging_type"], body["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")


def test_inside_the_window_an_update_goes_out_as_response(
    graph_stub, messenger_page, messenger_customer, published
):
    _enqueue(messenger_customer, messenger_page, "Paid!", kind=Kind.UPDATE)

    outbox_deliver_customer(customer_id=messenger_customer.pk)

    (body,) = graph_stub.sent_messages()
    assert body["messaging_type"] == "RESPONSE"
    assert "tag" not in body


# --------------------------------------------------------------------------------------------
# Delivery and read receipts
# --------------------------------------------------------------------------------------------


def _sent(customer, page, text: str, *, mid: str, sent_at, status=Status.SENT):
    row = _enqueue(customer, page, text)
    OutboundMessage.objects.filter(pk=row.pk).update(
        status=status, graph_message_id=mid, sent_at=sent_at
    )
    return row


def _ms(moment) -> int:
    return int(moment.timestamp() * 1000)


def test_delivery_marks_rows_by_mid_and_by_watermark(messenger_page, messenger_customer, published):
    now = NOW()
    by_mid = _sent(messenger_customer, messenger_page, "a", mid="m_a", sent_at=now)
    by_watermark = _sent(
        messenger_customer, messenger_page, "b", mid="m_b", sent_at=now - timedelta(minutes=5)
    )
    later = _sent(
        messenger_customer, messenger_page, "c", mid="m_c", sent_at=now + timedelta(minutes=5)
    )
    already_read = _sent(
        messenger_customer,
        messenger_page,
        "d",
        mid="m_d",
        sent_at=now - timedelta(minutes=9),
        status=Status.READ,
    )
    pending = _enqueue(messenger_customer, messenger_page, "e")
    other = customer_create(merchant=messenger_page.merchant, last_interaction_at=now)
    others = _sent(other, messenger_page, "f", mid="m_f", sent_at=now - timedelta(minutes=5))

    changed = outbox_mark_delivered(
        page_id=messenger_page.page_id,
        psid=messenger_customer.psid,
        mids=["m_a"],
        watermark=_ms(now - timedelta(minutes=1)),
    )

    assert changed == 2
    statuses = {
        row.pk: OutboundMessage.objects.get(pk=row.pk).status
        for row in [by_mid, by_watermark, later, already_read, pending, others]
    }
    assert statuses == {
        by_mid.pk: Status.DELIVERED,
        by_watermark.pk: Status.DELIVERED,
        later.pk: Status.SENT,
        already_read.pk: Status.READ,  # never backwards
        pending.pk: Status.PENDING,
        others.pk: Status.SENT,
    }
    assert OutboundMessage.objects.get(pk=by_mid.pk).delivered_at is not None


def test_read_marks_rows_sent_before_the_watermark(messenger_page, messenger_customer, published):
    now = NOW()
    delivered = _sent(
        messenger_customer,
        messenger_page,
        "a",
        mid="m_a",
        sent_at=now - timedelta(minutes=3),
        status=Status.DELIVERED,
    )
    sent = _sent(
        messenger_customer, messenger_page, "b", mid="m_b", sent_at=now - timedelta(minutes=2)
    )
    after = _sent(messenger_customer, messenger_page, "c", mid="m_c", sent_at=now)
    failed = _enqueue(messenger_customer, messenger_page, "d")
    OutboundMessage.objects.filter(pk=failed.pk).update(status=Status.FAILED)

    changed = outbox_mark_read(
        page_id=messenger_page.page_id,
        psid=messenger_customer.psid,
        watermark=_ms(now - timedelta(minutes=1)),
    )

    assert changed == 2
    for row in (delivered, sent):
        row.refresh_from_db()
        assert row.status == Status.READ
        assert row.read_at is not None and row.delivered_at is not None
    after.refresh_from_db()
    failed.refresh_from_db()
    assert (after.status, failed.status) == (Status.SENT, Status.FAILED)


# --------------------------------------------------------------------------------------------
# Tasks and the sweep
# --------------------------------------------------------------------------------------------


def test_deliver_task_sends_the_customers_messages(
    graph_stub, messenger_page, messenger_customer, published
):
    _enqueue(messenger_customer, messenger_page, "hi")

    assert outbox_deliver(messenger_customer.pk) == 1
    assert _texts(graph_stub) == ["hi"]


def test_sweep_publishes_customers_whose_oldest_pending_row_is_overdue(
    messenger_page, messenger_customer, published
):
    old = NOW() - timedelta(minutes=2)
    lost = _enqueue(messenger_customer, messenger_page, "lost")
    OutboundMessage.objects.filter(pk=lost.pk).update(created_at=old)

    waiting = customer_create(merchant=messenger_page.merchant, last_interaction_at=NOW())
    deferred = _enqueue(waiting, messenger_page, "deferred")
    behind = _enqueue(waiting, messenger_page, "behind")
    OutboundMessage.objects.filter(pk__in=[deferred.pk, behind.pk]).update(created_at=old)
    OutboundMessage.objects.filter(pk=deferred.pk).update(
        next_attempt_at=NOW() + timedelta(minutes=5)
    )

    fresh = customer_create(merchant=messenger_page.merchant, last_interaction_at=NOW())
    _enqueue(fresh, messenger_page, "just written")
    published.clear()

    assert outbox_due_customer_ids() == [messenger_customer.pk]
    assert outbox_sweep() == 1
    assert published == [(messenger_customer.pk, None)]


# --------------------------------------------------------------------------------------------
# One sender per customer
# --------------------------------------------------------------------------------------------


def _in_thread(target):
    """Run ``target`` in a thread with its own database connection; return its result."""
    result = {}

    def run():
        try:
            result["value"] = target()
        except BaseException as exc:  # pragma: no cover - surfaced below
            result["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    if "error" in result:
        raise result["error"]
    return result.get("value")


def test_a_second_sender_for_the_same_customer_backs_off(messenger_customer):
    """On the test run's own database; the SQLite lock files of ``make run`` are exercised by
    real processes in ``tests/core/test_locks_sqlite.py``."""
    customer_id = messenger_customer.pk

    def try_lock():
        with outbox_module._customer_send_lock(customer_id) as held:
            return held

    with outbox_module._customer_send_lock(customer_id) as held:
        assert held
        assert _in_thread(try_lock) is False
        # Another customer is not affected.
        with outbox_module._customer_send_lock(customer_id + 1) as other:
            assert other
    assert _in_thread(try_lock) is True


def test_a_row_written_while_the_lock_is_held_is_sent_by_the_holder(
    graph_stub, messenger_page, messenger_customer, published, monkeypatch
):
    """The late row's own delivery finds the lock taken and leaves; the holder looks again
    after letting go, so the row does not wait for the sweep."""
    _enqueue(messenger_customer, messenger_page, "first")
    real_drain = outbox_module._drain
    late_attempts: list[int] = []

    def drain_then_a_row_arrives(customer_id, *, deadline):
        end = real_drain(customer_id, deadline=deadline)
        if not late_attempts:
            _enqueue(messenger_customer, messenger_page, "late")
            late_attempts.append(
                _in_thread(lambda: outbox_deliver_customer(customer_id=customer_id))
            )
        return end

    monkeypatch.setattr(outbox_module, "_drain", drain_then_a_row_arrives)

    assert outbox_deliver_customer(customer_id=messenger_customer.pk) == 2
    assert late_attempts == [0]
    assert _texts(graph_stub) == ["first", "late"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_send_each_message_once_and_in_order(
    graph_stub, messenger_page, messenger_customer, published
):
    texts = [f"message {n}" for n in range(8)]
    for text in texts:
        _enqueue(messenger_customer, messenger_page, text)
    graph_stub.delay(0.05)  # keep both workers busy at the same time
    barrier = threading.Barrier(3)
    results: list[int] = []
    errors: list[BaseException] = []

    def worker():
        try:
            barrier.wait(timeout=10)
            results.append(outbox_deliver_customer(customer_id=messenger_customer.pk))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(results) == len(texts)
    assert _texts(graph_stub) == texts
    assert set(OutboundMessage.objects.values_list("status", flat=True)) == {Status.SENT}
    assert len(set(OutboundMessage.objects.values_list("graph_message_id", flat=True))) == 8
