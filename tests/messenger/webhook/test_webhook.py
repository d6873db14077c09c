"""The Messenger webhook: verification, signatures on raw bytes, limits, and what gets stored.

Every POST is signed like Meta signs it: HMAC of the app secret over the exact bytes sent.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from messenger.models import InboundEvent
from messenger.services import inbox, inbox_insert
from messenger.services.inbox_rows import rows_from_body
from tests.conftest import free_port
from tests.messenger.webhook.helpers import (
    PAGE_ID,
    PSID,
    URL,
    body_of,
    fixture_bytes,
    fixture_json,
    message_item,
    signed_headers,
)

pytestmark = pytest.mark.django_db

Status = InboundEvent.Status


# --------------------------------------------------------------------------------------------
# GET: subscription verification
# --------------------------------------------------------------------------------------------


def _verify(client, **params):
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", **params}
    return client.get(URL, query)


def test_verification_answers_the_challenge_as_plain_text(client, settings):
    settings.MESSENGER_VERIFY_TOKEN = "verify-me"
    response = _verify(client, **{"hub.verify_token": "verify-me"})
    assert response.status_code == 200
    assert response.content == b"1158201444"
    assert response["Content-Type"].startswith("text/plain")


def test_verification_with_a_wrong_token_is_refused(client, settings):
    settings.MESSENGER_VERIFY_TOKEN = "verify-me"
    response = _verify(client, **{"hub.verify_token": "guess"})
    assert response.status_code == 403
    assert b"1158201444" not in response.content


def test_verification_with_a_wrong_mode_is_refused(client, settings):
    settings.MESSENGER_VERIFY_TOKEN = "verify-me"
    response = _verify(client, **{"hub.verify_token": "verify-me", "hub.mode": "unsubscribe"})
    assert response.status_code == 403


def test_verification_without_a_configured_token_is_refused(client, settings):
    settings.MESSENGER_VERIFY_TOKEN = ""
    assert _verify(client, **{"hub.verify_token": ""}).status_code == 403


def test_other_methods_are_not_allowed(client):
    assert client.put(URL, data=b"{}").status_code == 405


# --------------------------------------------------------------------------------------------
# POST: signatures over the raw body
# --------------------------------------------------------------------------------------------


def test_valid_sha256_signature_stores_the_event(page, post):
    body = fixture_bytes("text_message")

    response = post(body, **signed_headers(body))

    assert response.status_code == 200
    assert response.content == b"EVENT_RECEIVED"
    row = InboundEvent.objects.get()
    assert (row.page_id, row.sender_psid, row.dedupe_key) == (PAGE_ID, PSID, "message:m_txt_0001")
    assert row.status == Status.PENDING
    assert row.timestamp_ms == 1764067200000
    assert row.payload == fixture_json("text_message")["entry"][0]["messaging"][0]
    assert not row.is_standby


def test_legacy_sha1_signature_alone_is_accepted(page, post):
    body = fixture_bytes("postback")

    response = post(body, **signed_headers(body, algorithm="sha1"))

    assert response.status_code == 200
    assert InboundEvent.objects.get().dedupe_key == "postback:m_pb_0001"


def test_a_valid_sha1_does_not_rescue_a_wrong_sha256(page, post):
    body = fixture_bytes("postback")
    headers = {**signed_headers(body, algorithm="sha1"), **signed_headers(body, secret="nope")}

    assert post(body, **headers).status_code == 403
    assert InboundEvent.objects.count() == 0


def test_tampered_body_is_refused_and_nothing_stored(page, post):
    body = fixture_bytes("postback")
    tampered = body.replace(b"ADD:variant=1", b"ADD:variant=9")

    response = post(tampered, **signed_headers(body))

    assert response.status_code == 403
    assert InboundEvent.objects.count() == 0


def test_missing_signature_is_refused(page, post):
    assert post(fixture_bytes("text_message")).status_code == 403
    assert InboundEvent.objects.count() == 0


def test_signature_of_another_secret_is_refused(page, post):
    body = fixture_bytes("text_message")
    assert post(body, **signed_headers(body, secret="other-app-secret")).status_code == 403
    assert InboundEvent.objects.count() == 0


def test_malformed_signature_header_is_refused(page, post):
    body = fixture_bytes("text_message")
    for value in ("sha256=", "md5=abc", "sha256=zz", "sha256=" + "é" * 64, ""):
        assert post(body, HTTP_X_HUB_SIGNATURE_256=value).status_code == 403
    assert InboundEvent.objects.count() == 0


def test_no_configured_app_secret_refuses_everything(page, post, settings):
    body = fixture_bytes("text_message")
    headers = signed_headers(body, secret="")
    settings.MESSENGER_APP_SECRET = ""
    assert post(body, **headers).status_code == 403
    assert InboundEvent.objects.count() == 0


def test_non_ascii_body_is_verified_on_its_raw_bytes(page, post):
    """The Arabic fixture sent as UTF-8 (not \\u escapes): the signature covers those bytes,
    and a signature computed over any other encoding of the same JSON is refused."""
    payload = fixture_json("text_message_arabic")
    raw = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    escaped = json.dumps(payload).encode("ascii")
    assert raw != escaped

    assert post(raw, **signed_headers(escaped)).status_code == 403
    response = post(raw, **signed_headers(raw))

    assert response.status_code == 200
    row = InboundEvent.objects.get()
    assert row.payload["message"]["text"] == "سلة التسوق"


def test_escaped_arabic_fixture_as_meta_sends_it(page, post):
    body = fixture_bytes("text_message_arabic")
    assert post(body, **signed_headers(body)).status_code == 200
    assert InboundEvent.objects.get().payload["message"]["text"] == "سلة التسوق"


# --------------------------------------------------------------------------------------------
# POST: bad input changes nothing
# --------------------------------------------------------------------------------------------


def test_body_over_the_limit_is_refused_with_413(page, post, settings):
    settings.MESSENGER_WEBHOOK_MAX_BYTES = 1024
    body = body_of(message_item(mid="m_big", text="x" * 2000))

    response = post(body, **signed_headers(body))

    assert response.status_code == 413
    assert InboundEvent.objects.count() == 0


def test_body_at_the_limit_is_accepted(page, post, settings):
    body = body_of(message_item(mid="m_fits", text="y" * 900))
    settings.MESSENGER_WEBHOOK_MAX_BYTES = len(body)
    assert post(body, **signed_headers(body)).status_code == 200
    assert list(InboundEvent.objects.values_list("dedupe_key", flat=True)) == ["message:m_fits"]


def test_oversized_body_is_refused_before_the_signature_is_checked(page, post, settings):
    settings.MESSENGER_WEBHOOK_MAX_BYTES = 1024
    assert post(b"x" * 5000).status_code == 413  # unsigned: size comes first
    assert not InboundEvent.objects.exists()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"object": "page", "entry": [', "not valid JSON"),
        (b"\xff\xfe not utf-8", "not valid JSON"),
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
        (b'{"object": "page", "entry": [], "n": 1e999}', "not valid JSON"),
        (b'{"object": "user", "entry": []}', "not 'user'"),
        (b'["page"]', "not 'list'"),
        (b'{"object": "page"}', "'entry' must be a list"),
    ],
)
def test_a_signed_body_that_cannot_be_used_is_answered_200_and_stored_with_its_reason(
    page, post, body, reason
):
    """Meta redelivers any body not answered 200 and ends up disabling the subscription: a
    correctly signed body is always taken; what cannot be used is kept with the reason."""
    response = post(body, **signed_headers(body))

    assert response.status_code == 200
    row = InboundEvent.objects.get()
    assert (row.status, row.kind, row.page_id, row.sender_psid) == (
        Status.FAILED,
        "unusable",
        "",
        "",
    )
    assert reason in row.error
    assert row.payload == {"body": body.decode("utf-8", "replace")}
    # Meta's redelivery of the same body is stored once.
    assert post(body, **signed_headers(body)).status_code == 200
    assert InboundEvent.objects.count() == 1


def test_unusable_entries_are_stored_with_their_reason_beside_the_usable_one(page, post):
    entries = [
        {"id": PAGE_ID, "time": 1764067200000, "messaging": [message_item(mid="m_ok")]},
        {"messaging": [message_item(mid="m_no_page")]},
        {"id": "12ab", "messaging": []},
        {"id": PAGE_ID, "messaging": {"not": "a list"}},
        7,
    ]
    body = json.dumps({"object": "page", "entry": entries}).encode()

    assert post(body, **signed_headers(body)).status_code == 200

    assert InboundEvent.objects.get(status=Status.PENDING).dedupe_key == "message:m_ok"
    failed = sorted(
        InboundEvent.objects.filter(status=Status.FAILED).values_list("error", flat=True)
    )
    assert failed == [
        "An entry must be an object.",
        "The entry has no valid page id.",
        "The entry has no valid page id.",
        "The entry's 'messaging' must be a list.",
    ]


def test_one_unusable_item_never_fails_the_batch(page, post):
    """The items of one body are stored one by one: the usable ones go to the worker, each of
    the others is kept failed with its reason (before, one of them made the whole POST a 400)."""
    items = [
        message_item(mid="m_first"),
        {"sender": {"id": "not-a-psid"}, "recipient": {"id": PAGE_ID}, "message": {"mid": "m_x"}},
        {"sender": {"id": "9" * 70}, "recipient": {"id": PAGE_ID}, "message": {"mid": "m_long"}},
        {"sender": {}, "recipient": {"id": PAGE_ID}, "message": {"mid": "m_nobody"}},
        {"sender": ["a", "list"], "message": {"mid": "m_list"}},
        "an item that is a string",
        None,
        message_item(mid="m_last"),
    ]
    body = body_of(*items)

    response = post(body, **signed_headers(body))

    assert response.status_code == 200
    assert response.content == b"EVENT_RECEIVED"
    pending = InboundEvent.objects.filter(status=Status.PENDING).order_by("timestamp_ms", "id")
    assert [row.dedupe_key for row in pending] == ["message:m_first", "message:m_last"]
    failed = InboundEvent.objects.filter(status=Status.FAILED)
    assert sorted(failed.values_list("error", flat=True)) == [
        "A messaging item must be an object.",
        "A messaging item must be an object.",
        "The item's sender has neither an id nor a user_ref.",
        "The item's sender id is not a page-scoped id.",
        "The item's sender id is not a page-scoped id.",
        "The item's sender must be an object.",
    ]
    assert {row.kind for row in failed} == {"unusable"}
    assert {"value": "an item that is a string"} in [row.payload for row in failed]


def test_chat_plugin_and_checkbox_users_are_stored_under_their_user_ref(page, post):
    """The Chat Plugin names its user by ``sender.user_ref``; the Checkbox Plugin's opt-in has
    no sender, only ``optin.user_ref``. Both are customers the worker can answer."""
    chat = {
        "sender": {"user_ref": "chat-plugin-7f3a"},
        "recipient": {"id": PAGE_ID},
        "timestamp": 1764067200000,
        "message": {"mid": "m_plugin", "text": "hello"},
    }
    checkbox = {
        "recipient": {"id": PAGE_ID},
        "timestamp": 1764067200001,
        "optin": {"ref": "cart-42", "user_ref": "checkbox-91c2"},
    }
    body = body_of(chat, checkbox)

    assert post(body, **signed_headers(body)).status_code == 200

    rows = InboundEvent.objects.order_by("timestamp_ms").values_list(
        "kind", "sender_psid", "status"
    )
    assert list(rows) == [
        ("message", "ref:chat-plugin-7f3a", Status.PENDING),
        ("optin", "ref:checkbox-91c2", Status.PENDING),
    ]


def test_an_item_without_a_usable_timestamp_is_ordered_by_the_entrys_time(page, post):
    items = [
        {**message_item(mid="m_no_ts"), "timestamp": None},
        {**message_item(mid="m_text_ts"), "timestamp": "1764067100000"},
    ]
    del items[0]["timestamp"]
    body = body_of(*items)  # the entry's time is 1764067200000

    assert post(body, **signed_headers(body)).status_code == 200

    stored = dict(InboundEvent.objects.values_list("dedupe_key", "timestamp_ms"))
    assert stored == {"message:m_no_ts": 1764067200000, "message:m_text_ts": 1764067100000}
    assert InboundEvent.objects.get(dedupe_key="message:m_no_ts").payload == items[0]


# --------------------------------------------------------------------------------------------
# POST: what is stored
# --------------------------------------------------------------------------------------------


def test_batched_entries_store_one_row_per_messaging_item(page, post):
    body = fixture_bytes("batched_two_entries")

    assert post(body, **signed_headers(body)).status_code == 200

    rows = list(
        InboundEvent.objects.order_by("timestamp_ms").values_list(
            "dedupe_key", "sender_psid", "timestamp_ms", "status"
        )
    )
    assert rows == [
        ("message:m_b_0001", PSID, 1764067203000, Status.PENDING),
        ("postback:m_b_0002", PSID, 1764067203100, Status.PENDING),
        ("message:m_b_0003", "2409999999999999", 1764067203200, Status.PENDING),
    ]


def test_the_same_payload_three_times_stores_each_item_once(page, post):
    body = fixture_bytes("batched_two_entries")
    for _ in range(3):
        assert post(body, **signed_headers(body)).status_code == 200
    assert InboundEvent.objects.count() == 3


def test_items_without_mid_are_deduplicated_by_a_stable_hash(page, post):
    body = fixture_bytes("delivery_and_read")
    for _ in range(2):
        assert post(body, **signed_headers(body)).status_code == 200
    keys = list(InboundEvent.objects.values_list("dedupe_key", flat=True))
    assert len(keys) == 2
    assert len(set(keys)) == 2


def test_a_body_of_many_items_is_stored_whole(page, post):
    """More items than one INSERT statement takes: several statements, one transaction."""
    items = [{"read": {"watermark": n}, "sender": {"id": PSID}} for n in range(2500)]
    body = body_of(*items)
    assert len(body) < 256 * 1024
    assert post(body, **signed_headers(body)).status_code == 200
    assert InboundEvent.objects.count() == 2500


def test_a_mid_repeated_in_one_body_is_stored_once(page, post):
    body = body_of(message_item(mid="m_twice"), message_item(mid="m_twice"))
    assert post(body, **signed_headers(body)).status_code == 200
    assert InboundEvent.objects.count() == 1


def test_unknown_page_is_stored_as_ignored_and_answered_200(db, post):
    body = fixture_bytes("text_message")

    response = post(body, **signed_headers(body))

    assert response.status_code == 200
    row = InboundEvent.objects.get()
    assert row.status == Status.IGNORED
    assert row.page_id == PAGE_ID


def test_inactive_page_is_treated_as_unknown(page, post):
    page.is_active = False
    page.save()
    body = fixture_bytes("text_message")
    assert post(body, **signed_headers(body)).status_code == 200
    assert InboundEvent.objects.get().status == Status.IGNORED


def test_standby_items_are_stored(page, post):
    standby = message_item(mid="m_standby_1", text="to the person")
    body = body_of(standby=(standby,))

    assert post(body, **signed_headers(body)).status_code == 200

    row = InboundEvent.objects.get()
    assert row.is_standby
    assert (row.dedupe_key, row.sender_psid) == ("message:m_standby_1", PSID)


def test_an_echo_is_filed_under_the_customer_it_was_sent_to(page, post):
    body = fixture_bytes("echo")
    assert post(body, **signed_headers(body)).status_code == 200
    assert InboundEvent.objects.get().sender_psid == PSID


def test_entries_without_messaging_store_nothing(page, post):
    body = json.dumps({"object": "page", "entry": [{"id": PAGE_ID, "changes": []}]}).encode()
    assert post(body, **signed_headers(body)).status_code == 200
    assert InboundEvent.objects.count() == 0


def test_the_request_does_only_the_insert(page, post, django_assert_max_num_queries):
    """Verify, one INSERT (the page is remembered from the first request), answer."""
    first = body_of(message_item(mid="m_q1"))
    post(first, **signed_headers(first))
    body = body_of(message_item(mid="m_q2"), message_item(mid="m_q3"))
    with django_assert_max_num_queries(1):
        assert post(body, **signed_headers(body)).status_code == 200
    assert InboundEvent.objects.count() == 3


# --------------------------------------------------------------------------------------------
# After commit: the debounced nudge
# --------------------------------------------------------------------------------------------


@pytest.fixture
def published(monkeypatch) -> list[dict]:
    """Calls to publish ``inbox_drain`` (the broker boundary), recorded instead of sent."""
    from messenger.tasks.inbox import inbox_drain

    calls: list[dict] = []
    monkeypatch.setattr(inbox_drain, "apply_async", lambda *a, **kw: calls.append(kw))
    return calls


def test_redis_down_during_post_still_answers_200_and_keeps_the_row(
    page, post, settings, published, django_capture_on_commit_callbacks
):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    body = fixture_bytes("text_message")

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post(body, **signed_headers(body))

    assert response.status_code == 200
    assert len(callbacks) == 1
    assert InboundEvent.objects.get().status == Status.PENDING
    assert published == []  # nothing published; the sweep will find the row


def test_a_quiet_inbox_gets_its_drain_at_once(
    page, post, settings, published, redis_server, django_capture_on_commit_callbacks
):
    settings.REDIS_URL = redis_server.url
    body = body_of(message_item(mid="m_nudge_quiet"))
    with django_capture_on_commit_callbacks(execute=True):
        assert post(body, **signed_headers(body)).status_code == 200

    assert len(published) == 1
    assert "countdown" not in published[0]  # the shopper's tap is not kept waiting


def test_a_burst_publishes_one_drain_at_once_and_one_when_the_interval_ends(
    page, post, settings, published, redis_server, django_capture_on_commit_callbacks
):
    settings.REDIS_URL = redis_server.url
    for n in range(5):
        body = body_of(message_item(mid=f"m_nudge_{n}"))
        with django_capture_on_commit_callbacks(execute=True):
            assert post(body, **signed_headers(body)).status_code == 200

    assert InboundEvent.objects.count() == 5
    assert len(published) == 2
    assert "countdown" not in published[0]
    # The trailing drain runs when the interval ends, after every row committed during it.
    assert 0 < published[1]["countdown"] <= inbox.NUDGE_INTERVAL_MS / 1000


def test_other_processes_see_the_key_and_publish_only_the_trailing_drain(
    page, settings, published, redis_server, monkeypatch
):
    settings.REDIS_URL = redis_server.url
    assert inbox.inbox_nudge() is True  # at once
    # Other web processes: no local memory of the nudge, but the key is in Redis.
    monkeypatch.setattr(inbox, "_nudge_state", {"covered_until": 0.0, "redis_down_until": 0.0})
    assert inbox.inbox_nudge() is True  # the trailing drain
    state = {"covered_until": 0.0, "redis_down_until": 0.0}
    monkeypatch.setattr(inbox, "_nudge_state", state)
    before = time.monotonic()
    assert inbox.inbox_nudge() is False
    after = time.monotonic()
    assert len(published) == 2
    # It now knows until when the key lives, and leaves Redis alone until then.
    assert before < state["covered_until"] <= after + inbox.NUDGE_INTERVAL_MS / 1000


def test_after_the_interval_the_next_commit_publishes_at_once_again(
    page, settings, published, redis_server
):
    settings.REDIS_URL = redis_server.url
    assert inbox.inbox_nudge() is True
    assert inbox.inbox_nudge() is True
    assert inbox.inbox_nudge() is False
    time.sleep(inbox.NUDGE_INTERVAL_MS / 1000 + 0.05)
    assert inbox.inbox_nudge() is True
    assert len(published) == 3
    assert "countdown" not in published[2]


def test_ignored_items_do_not_nudge(db, post, published, django_capture_on_commit_callbacks):
    body = fixture_bytes("text_message")  # no page connected
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert post(body, **signed_headers(body)).status_code == 200
    assert callbacks == []


# --------------------------------------------------------------------------------------------
# Storing outside a transaction: concurrent requests share one INSERT (group commit)
# --------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_rows_are_committed_before_store_returns(page):
    result = inbox.inbound_events_store(raw_body=fixture_bytes("batched_two_entries"))
    assert (result.pending, result.ignored) == (3, 0)
    assert InboundEvent.objects.count() == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_stores_are_all_committed_each_once(page):
    """Sixteen threads store at once (some bodies twice): every item is stored exactly once
    and every call returns only after its rows are committed."""
    from django.db import connection

    bodies = [body_of(message_item(mid=f"m_conc_{n}", timestamp=n)) for n in range(12)]
    bodies += bodies[:4]  # replays racing their originals
    barrier = threading.Barrier(len(bodies))
    seen_after_return: list[bool] = []
    errors: list[BaseException] = []

    def store(body: bytes) -> None:
        try:
            barrier.wait(timeout=30)
            inbox.inbound_events_store(raw_body=body)
            mid = json.loads(body)["entry"][0]["messaging"][0]["message"]["mid"]
            seen_after_return.append(
                InboundEvent.objects.filter(dedupe_key=f"message:{mid}").exists()
            )
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=store, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert seen_after_return == [True] * len(bodies)
    assert InboundEvent.objects.count() == 12


@pytest.mark.django_db(transaction=True)
def test_a_body_that_fails_to_store_fails_alone(page, monkeypatch):
    """When one body of a shared INSERT cannot be written, the others still are."""
    real = inbox_insert.rows_insert

    def insert(rows):
        if any(row.dedupe_key == "message:m_poison" for row in rows):
            raise RuntimeError("cannot store this one")
        real(rows)

    monkeypatch.setattr(inbox_insert, "rows_insert", insert)
    good, poison = inbox_insert._Waiter(rows=[]), inbox_insert._Waiter(rows=[])
    good.rows = rows_from_body(body_of(message_item(mid="m_good")))
    poison.rows = rows_from_body(body_of(message_item(mid="m_poison")))

    inbox_insert._group_write([good, poison])

    assert good.done.is_set() and poison.done.is_set()
    assert good.error is None
    assert isinstance(poison.error, RuntimeError)
    assert list(InboundEvent.objects.values_list("dedupe_key", flat=True)) == ["message:m_good"]


def test_nul_characters_and_lone_surrogates_are_stored_replaced(page, post):
    """PostgreSQL's jsonb refuses them; a body that could never be stored would be refused,
    and redelivered by Meta, forever."""
    body = (
        b'{"object":"page","entry":[{"id":"' + PAGE_ID.encode() + b'","messaging":[{'
        b'"sender":{"id":"' + PSID.encode() + b'"},"timestamp":1,'
        b'"message":{"mid":"m_nul","text":"a\\u0000b \\ud800 \\ud83d\\ude00"}}]}]}'
    )
    assert post(body, **signed_headers(body)).status_code == 200
    row = InboundEvent.objects.get()
    assert row.dedupe_key == "message:m_nul"
    assert row.payload["message"]["text"] == "a\ufffdb ? \U0001f600"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_dropped_by_the_server_is_replaced_and_the_rows_stored(page):
    from django.db import connection, connections

    # The page is known to this process (the hot path: no query before the insert), and the
    # connection it was looked up on is then killed by the server.
    assert inbox._active_page_ids({PAGE_ID}) == {PAGE_ID}
    victim = connection.connection.info.backend_pid
    with connections.create_connection("default").cursor() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [victim])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with connections.create_connection("default").cursor() as other:
            other.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [victim])
            if other.fetchone()[0] == 0:
                break
        time.sleep(0.05)

    inbox.inbound_events_store(raw_body=fixture_bytes("text_message"))

    assert InboundEvent.objects.get().dedupe_key == "message:m_txt_0001"


@pytest.mark.django_db(transaction=True)
def test_bodies_nested_to_the_edge_of_what_python_reads_are_all_answered_200(page, post):
    """Near Python's recursion limit a body can be read (``json.loads``) and yet not be
    written back (``json.dumps`` runs a few frames deeper): that raised RecursionError, a 500,
    and Meta would have redelivered the body for hours. Every depth around the edge is now
    answered 200: stored as its item, or kept as text with the reason."""
    import sys

    outcomes: dict[str, int] = {}
    for depth in range(sys.getrecursionlimit() - 350, sys.getrecursionlimit() + 1):
        item = {"sender": {"id": PSID}, "timestamp": 1, "message": {"mid": f"m_deep_{depth}"}}
        text = json.dumps({"object": "page", "entry": [{"id": PAGE_ID, "messaging": [item]}]})
        nest = "[" * depth + "]" * depth
        body = text.replace('"}}]}]}', f'", "nest": {nest}}}}}]}}]}}').encode()
        response = post(body, **signed_headers(body))
        assert response.status_code == 200, depth
    for row in InboundEvent.objects.all():
        outcome = row.status if row.status == Status.PENDING else row.error
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert InboundEvent.objects.count() == 351
    # All three cases were met: read and stored, read but not writable, not readable.
    assert outcomes[Status.PENDING] > 0
    assert outcomes["The body is not valid JSON."] > 0
    assert any(key.startswith("The body could not be stored") for key in outcomes), outcomes
