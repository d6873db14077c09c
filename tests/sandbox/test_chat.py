"""The chat page: starting a shopper, the conversation's rendering data, and taps becoming signed
webhooks the real service accepts, followed by delivery and read; referral entry points."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from messenger.models import InboundEvent, MessengerPage, OutboundMessage
from messenger.services.inbox import inbound_events_drain
from messenger.services.outbox import outbox_deliver_customer, outbox_enqueue
from sandbox.meta.models import GraphMessage, SandboxPage, SandboxShopper, ShopperEvent
from sandbox.meta.services.webhooks import message_receipts_post
from tests.factories import customer_create, merchant_create
from tests.sandbox.conftest import PAGE_ID, TOKEN

FIXTURES = Path(__file__).resolve().parents[1] / "messenger" / "fixtures"  # the shared fixtures
CLOSED_PORT_URL = "http://127.0.0.1:9"  # nothing listens: webhook POSTs fail fast


def _fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def _normalized(body: dict) -> dict:
    """``body`` with the values that differ between any two real bodies replaced (ids of the
    shopper and page, message ids, times)."""
    body = copy.deepcopy(body)
    for entry in body["entry"]:
        entry["id"], entry["time"] = "PAGE", 0
        for item in entry.get("messaging", []):
            item["sender"]["id"], item["recipient"]["id"], item["timestamp"] = "PSID", "PAGE", 0
            for key in ("message", "postback"):
                if key in item:
                    item[key]["mid"] = "MID"
    return body


def _chat(client, shopper, suffix: str = ""):
    return client.get(f"/sandbox/chat/{shopper.page.page_id}/{shopper.psid}/{suffix}")


def _act(client, shopper, **body):
    return client.post(
        f"/sandbox/chat/{shopper.page.page_id}/{shopper.psid}/act",
        json.dumps(body),
        content_type="application/json",
    )


# -- without the service (Django client only) -------------------------------------------------


@pytest.fixture
def offline(settings):
    settings.PUBLIC_BASE_URL = CLOSED_PORT_URL


@pytest.mark.django_db
def test_setup_page_lists_pages_and_returning_shoppers(client, shopper):
    html = client.get("/sandbox/").content.decode()
    assert 'data-testid="page-select"' in html and f'value="{PAGE_ID}"' in html
    for name in ("first-name", "last-name", "locale", "email", "phone"):
        assert f'data-testid="shopper-{name}"' in html
    assert 'data-testid="start-chat"' in html
    assert f'data-testid="shopper-link" data-psid="{shopper.psid}"' in html


@pytest.mark.django_db
def test_starting_a_new_shopper_opens_their_chat(client, sandbox_page):
    response = client.post(
        "/sandbox/shoppers/",
        {
            "page_id": PAGE_ID,
            "first_name": "Layla",
            "last_name": "Haddad",
            "locale": "ar_AR",
            "email": "layla@example.com",
            "phone": "+971501234567",
        },
    )
    shopper = SandboxShopper.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/sandbox/chat/{PAGE_ID}/{shopper.psid}/"
    assert re.fullmatch(r"2[0-9]{15}", shopper.psid)
    assert (shopper.locale, shopper.email, shopper.timezone) == ("ar_AR", "layla@example.com", 3)
    assert shopper.last_message_at is None  # the window opens with the first message


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"first_name": " "}, "first name"),
        ({"locale": "fr_FR"}, "Locale"),
        ({"page_id": "9"}, "page"),
    ],
)
def test_a_bad_new_shopper_is_refused_with_a_message(client, sandbox_page, fields, message):
    form = {"page_id": PAGE_ID, "first_name": "Layla", "locale": "en_US", **fields}
    response = client.post("/sandbox/shoppers/", form)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not SandboxShopper.objects.exists()


@pytest.mark.django_db
def test_arabic_conversation_is_right_to_left_with_the_arabic_greeting(
    client, make_shopper, sandbox_page
):
    sandbox_page.messenger_profile = {
        "get_started": {"payload": "GET_STARTED"},
        "greeting": [
            {"locale": "default", "text": "Hi {{user_first_name}}!"},
            {"locale": "ar_AR", "text": "أهلًا {{user_first_name}}!"},
        ],
    }
    sandbox_page.save()
    layla = make_shopper(first_name="ليلى", locale="ar_AR")
    emma = make_shopper(first_name="Emma", locale="en_US")

    arabic = _chat(client, layla).content.decode()
    english = _chat(client, emma).content.decode()

    assert re.search(r'data-testid="conversation" dir="rtl"', arabic)
    assert re.search(r'data-testid="conversation" dir="ltr"', english)
    assert "أهلًا ليلى!" in arabic and 'data-testid="greeting"' in arabic
    assert "Hi Emma!" in english
    assert 'data-testid="get-started"' in english


@pytest.mark.django_db
def test_unknown_chat_is_404(client, sandbox_page):
    assert client.get(f"/sandbox/chat/{PAGE_ID}/2000000000000000/").status_code == 404


@pytest.mark.django_db
def test_feed_returns_what_the_page_sent_in_order_after_the_cursor(client, graph, shopper):
    graph.send(shopper, {"text": "one"})
    graph.post("me/messages", {"recipient": {"id": shopper.psid}, "sender_action": "typing_on"})
    first = _chat(client, shopper, "feed.json").json()
    assert [item["message"] for item in first["items"]] == [{"text": "one"}]
    assert first["typing"] is True
    graph.send(shopper, {"text": "two"})

    cursor = first["cursor"]
    later = client.get(
        f"/sandbox/chat/{PAGE_ID}/{shopper.psid}/feed.json",
        {"page_after": cursor["page_after"], "shopper_after": cursor["shopper_after"]},
    ).json()
    assert [item["message"]["text"] for item in later["items"]] == ["two"]
    assert later["items"][0]["from"] == "page" and later["items"][0]["mid"].startswith("m_")
    assert later["typing"] is False


@pytest.mark.django_db
def test_a_tap_without_the_service_running_is_recorded_as_not_delivered(client, shopper, offline):
    response = _act(client, shopper, action="text", text="hello")
    answer = response.json()
    assert answer["ok"] is False
    assert "did not answer" in answer["error"]
    event = ShopperEvent.objects.get()
    assert event.status_code is None and event.text == "hello"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [
        {"action": "dance"},
        {"action": "text"},
        {"action": "text", "text": "x" * 2001},
        {"action": "postback", "title": "Shop"},
    ],
)
def test_bad_taps_are_refused_and_post_nothing(client, shopper, offline, body):
    response = _act(client, shopper, **body)
    assert response.status_code == 400
    assert response.json()["error"].startswith("Bad tap:")
    assert not ShopperEvent.objects.exists()


@pytest.mark.django_db
def test_sandbox_seed_is_idempotent_and_registers_the_demo_page(settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    call_command("sandbox_seed")
    call_command("sandbox_seed")
    page = SandboxPage.objects.get()
    assert (page.page_id, page.access_token, page.name) == (PAGE_ID, TOKEN, "Souq Demo")
    assert page.messenger_profile["whitelisted_domains"] == ["http://127.0.0.1:8000"]
    shoppers = {s.locale: s for s in page.shoppers.all()}
    assert set(shoppers) == {"en_US", "ar_AR"}
    assert all(s.email and s.phone for s in shoppers.values())

    call_command("sandbox_seed", "--page-id", "555", "--name", "Other shop")
    assert SandboxPage.objects.get(page_id="555").access_token == "sandbox-page-token-555"


@pytest.mark.django_db
def test_sandbox_seed_refuses_a_bad_page_id():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="digits"):
        call_command("sandbox_seed", "--page-id", "abc")
    assert not SandboxPage.objects.exists()


# -- against the real service (live_server) ----------------------------------------------------


@pytest.fixture
def service(live_server, settings, sandbox_page):
    """The service at ``live_server`` with the same page; the emulator posts to it and the
    service's Graph calls come back to the stand-in."""
    settings.PUBLIC_BASE_URL = live_server.url
    settings.GRAPH_API_BASE = f"{live_server.url}/sandbox/graph"
    return MessengerPage.objects.create(
        merchant=merchant_create(), page_id=PAGE_ID, name="Souq Demo", access_token=TOKEN
    )


def _stored(kind: str) -> list[InboundEvent]:
    return list(InboundEvent.objects.filter(kind=kind).order_by("id"))


@pytest.mark.django_db(transaction=True)
def test_get_started_posts_a_signed_webhook_the_service_stores(client, service, shopper, settings):
    answer = _act(client, shopper, action="get_started").json()

    assert answer["ok"] is True and answer["status"] == 200
    [row] = _stored("postback")
    assert row.sender_psid == shopper.psid and row.page_id == PAGE_ID
    assert row.payload["postback"]["payload"] == "GET_STARTED"
    assert row.payload["postback"]["title"] == "Get Started"
    assert row.payload["postback"]["mid"].startswith("m_")

    event = ShopperEvent.objects.get()
    raw = event.body.encode()
    secret = settings.MESSENGER_APP_SECRET.encode()
    assert json.loads(raw)["entry"][0]["messaging"][0] == row.payload
    assert _normalized(json.loads(raw)) == _normalized(_fixture("get_started.json"))
    # Both signatures a real webhook carries are over these exact bytes.
    from messenger.webhook.signature import signature_is_valid

    sha256 = "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
    sha1 = "sha1=" + hmac.new(secret, raw, hashlib.sha1).hexdigest()
    assert signature_is_valid(raw, {"X-Hub-Signature-256": sha256})
    assert signature_is_valid(raw, {"X-Hub-Signature": sha1})
    shopper.refresh_from_db()
    assert shopper.last_message_at is not None  # the 24-hour window is open


@pytest.mark.django_db(transaction=True)
def test_typed_text_and_quick_replies_arrive_as_messages(client, service, shopper):
    _act(client, shopper, action="text", text="قمصان حمراء")
    _act(
        client, shopper, action="quick_reply", title="emma@example.com", payload="emma@example.com"
    )

    text, reply = _stored("message")
    assert text.payload["message"]["text"] == "قمصان حمراء"
    assert "quick_reply" not in text.payload["message"]
    assert reply.payload["message"]["quick_reply"] == {"payload": "emma@example.com"}
    expected = _normalized(_fixture("quick_reply_email.json"))
    expected["entry"][0]["messaging"][0]["message"]["text"] = "emma@example.com"
    expected["entry"][0]["messaging"][0]["message"]["quick_reply"]["payload"] = "emma@example.com"
    assert _normalized(json.loads(ShopperEvent.objects.last().body)) == expected
    # Non-ASCII travels escaped, as Meta sends it.
    assert "\\u0642" in ShopperEvent.objects.first().body


@pytest.mark.django_db(transaction=True)
def test_delivery_and_read_follow_an_accepted_message(client, service, shopper):
    customer = customer_create(
        merchant=service.merchant,
        page_id=PAGE_ID,
        psid=shopper.psid,
        last_interaction_at=timezone.now() - timedelta(minutes=1),
    )
    row = outbox_enqueue(customer=customer, page=service, message={"text": "Your receipt"})
    outbox_deliver_customer(customer_id=customer.pk)
    message = GraphMessage.objects.get()

    event = message_receipts_post(message_pk=message.pk)  # what the worker's task runs

    assert event is not None and event.status_code == 200
    [delivery], [read] = _stored("delivery"), _stored("read")
    assert delivery.payload["delivery"]["mids"] == [message.message_id]
    assert read.payload["read"]["watermark"] >= int(message.received_at.timestamp() * 1000)
    assert _normalized(json.loads(event.body)).keys() == _fixture("delivery_and_read.json").keys()
    inbound_events_drain()
    row.refresh_from_db()
    assert row.status == OutboundMessage.Status.READ
    message.refresh_from_db()
    assert message.delivered_at is not None and message.read_at is not None
    assert message_receipts_post(message_pk=message.pk) is None  # already done: nothing posted


@pytest.mark.django_db(transaction=True)
def test_mme_link_on_a_new_thread_rides_on_get_started(client, service, make_shopper):
    newcomer = make_shopper(last_message_at=None)
    response = client.get(f"/sandbox/m/{PAGE_ID}/?ref=product-TSHIRT-WHITE&psid={newcomer.psid}")
    assert response.status_code == 302
    assert not ShopperEvent.objects.exists()  # the welcome screen first

    _act(client, newcomer, action="get_started")

    body = json.loads(ShopperEvent.objects.get().body)
    assert _normalized(body) == _normalized(_fixture("get_started_with_referral.json"))
    [row] = _stored("postback")
    assert row.payload["postback"]["referral"]["ref"] == "product-TSHIRT-WHITE"
    newcomer.refresh_from_db()
    assert newcomer.pending_referral is None


@pytest.mark.django_db(transaction=True)
def test_mme_link_on_an_existing_thread_sends_a_referral_event(client, service, shopper):
    _act(client, shopper, action="get_started")
    client.get(f"/sandbox/m/{PAGE_ID}/?ref=product-MUG-01&psid={shopper.psid}")

    [row] = _stored("referral")
    assert row.payload["referral"] == {
        "ref": "product-MUG-01",
        "source": "SHORTLINK",
        "type": "OPEN_THREAD",
    }


@pytest.mark.django_db(transaction=True)
def test_ad_click_on_an_existing_thread_matches_the_ad_fixture(client, service, shopper):
    _act(client, shopper, action="text", text="hi")
    client.get(
        f"/sandbox/ad/{PAGE_ID}/",
        {"ref": "product-TSHIRT-WHITE", "psid": shopper.psid, "post_id": "104412345678901_55"},
    )

    event = ShopperEvent.objects.filter(kind="referral").get()
    assert _normalized(json.loads(event.body)) == _normalized(_fixture("referral_from_ad.json"))
    assert _stored("referral")[0].payload["referral"]["ad_id"] == "6045246247433"


@pytest.mark.django_db
def test_entry_points_without_a_shopper_ask_who_opens_them(client, shopper):
    page = client.get(f"/sandbox/m/{PAGE_ID}/?ref=product-X").content.decode()
    assert f"psid={shopper.psid}" in page and "ref=product-X" in page
    assert 'name="entry" value="shortlink"' in page
    ad = client.get(f"/sandbox/ad/{PAGE_ID}/").content.decode()
    assert 'data-testid="ad"' in ad and "Summer tees" in ad


@pytest.mark.django_db(transaction=True)
def test_new_shopper_from_an_ad_keeps_the_referral_for_get_started(client, service):
    client.post(
        "/sandbox/shoppers/",
        {
            "page_id": PAGE_ID,
            "first_name": "Omar",
            "locale": "ar_AR",
            "entry": "ad",
            "ref": "product-CAP",
        },
    )
    omar = SandboxShopper.objects.get()
    assert omar.pending_referral["source"] == "ADS"
    _act(client, omar, action="get_started")
    [row] = _stored("postback")
    assert row.payload["postback"]["referral"]["ad_id"] == "6045246247433"


@pytest.mark.django_db(transaction=True)
def test_standby_while_another_app_owns_the_thread(client, service, shopper, graph):
    graph.post(
        "me/pass_thread_control",
        {"recipient": {"id": shopper.psid}, "target_app_id": 263902037430900},
    )
    _act(client, shopper, action="text", text="a person please")
    body = json.loads(ShopperEvent.objects.get().body)
    assert "standby" in body["entry"][0] and "messaging" not in body["entry"][0]
    assert InboundEvent.objects.get().is_standby is True


@pytest.mark.django_db
def test_emulator_controls_make_the_shopper_unreachable_and_close_the_window(
    client, graph, shopper
):
    url = f"/sandbox/chat/{PAGE_ID}/{shopper.psid}/settings"
    assert client.post(url, {"action": "toggle_available"}).status_code == 302
    assert graph.send(shopper).json()["error"]["code"] == 551
    client.post(url, {"action": "toggle_available"})
    assert graph.send(shopper).status_code == 200

    client.post(url, {"action": "close_window"})
    assert graph.send(shopper).json()["error"]["error_subcode"] == 2018278
    refused = client.post(url, {"action": "explode"})
    assert refused.status_code == 400 and b"toggle_available" in refused.content


@pytest.mark.django_db(transaction=True)
def test_ice_breakers_replace_get_started_and_carry_the_referral(client, service, sandbox_page):
    sandbox_page.messenger_profile = {
        "get_started": {"payload": "GET_STARTED"},
        "ice_breakers": [
            {
                "locale": "default",
                "call_to_actions": [{"question": "What's on sale?", "payload": "SHOP"}],
            }
        ],
    }
    sandbox_page.save()
    client.post(
        "/sandbox/shoppers/",
        {"page_id": PAGE_ID, "first_name": "Sam", "locale": "en_US", "ref": "product-CAP"},
    )
    sam = SandboxShopper.objects.get()
    html = _chat(client, sam).content.decode()
    assert 'data-testid="ice-breaker" data-payload="SHOP">What&#x27;s on sale?' in html
    assert re.search(r'id="get-started-bar" hidden', html)

    _act(client, sam, action="ice_breaker", title="What's on sale?", payload="SHOP")

    [row] = _stored("postback")
    assert row.payload["postback"]["payload"] == "SHOP"
    assert row.payload["postback"]["referral"] == {
        "ref": "product-CAP",
        "source": "SHORTLINK",
        "type": "OPEN_THREAD",
    }
