"""The service cannot tell the stand-in from Meta: the real ``messenger.client.GraphClient``, the
outbox and the Messenger Profile push talk HTTP to the stand-in served by ``live_server``.

(Tests may import service code; only ``sandbox/`` may not.)
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
from django.utils import timezone

from messenger.client import GraphClient
from messenger.exceptions import GraphError
from messenger.models import MessengerPage, OutboundMessage
from messenger.services.outbox import outbox_deliver_customer, outbox_enqueue
from messenger.services.profile import messenger_profile_sync
from sandbox.meta.models import GraphMessage
from tests.factories import customer_create, merchant_create
from tests.sandbox.conftest import PAGE_ID, TOKEN

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def graph_base(live_server, settings):
    settings.GRAPH_API_BASE = f"{live_server.url}/sandbox/graph"
    settings.PUBLIC_BASE_URL = live_server.url
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    return settings.GRAPH_API_BASE


@pytest.fixture
def service_page(sandbox_page):
    """The service's side of the same page, with the token the stand-in knows."""
    return MessengerPage.objects.create(
        merchant=merchant_create(), page_id=PAGE_ID, name="Souq Demo", access_token=TOKEN
    )


def _fault(live_server, **fault) -> None:
    response = requests.post(
        f"{live_server.url}/sandbox/graph/_control/faults", json=fault, timeout=5
    )
    assert response.status_code == 201


def test_client_send_gets_the_message_id_the_stand_in_stored(graph_base, service_page, shopper):
    mid = GraphClient(service_page).send(
        {"recipient": {"id": shopper.psid}, "messaging_type": "RESPONSE", "message": {"text": "Hi"}}
    )

    stored = GraphMessage.objects.get()
    assert mid == stored.message_id
    assert stored.body == {
        "recipient": {"id": shopper.psid},
        "messaging_type": "RESPONSE",
        "message": {"text": "Hi"},
    }


def test_client_sender_action_has_no_message_id(graph_base, service_page, shopper):
    body = {"recipient": {"id": shopper.psid}, "sender_action": "typing_on"}
    assert GraphClient(service_page).send(body) == ""


def test_client_reads_the_user_profile(graph_base, service_page, make_shopper):
    layla = make_shopper(first_name="ليلى", last_name="حداد", locale="ar_AR")
    profile = GraphClient(service_page).user_profile(layla.psid)
    assert profile["first_name"] == "ليلى"
    assert profile["locale"] == "ar_AR"
    assert profile["timezone"] == 3


@pytest.mark.parametrize(
    ("setup", "code", "subcode", "transient"),
    [
        ("unavailable", 551, 1545041, False),
        ("outside_window", 10, 2018278, False),
        ("unknown_user", 100, 2018001, False),
        ("server_error", 2, None, True),
        ("rate_limited", 613, None, True),
    ],
)
def test_client_classifies_the_stand_ins_errors_like_metas(
    graph_base, live_server, service_page, shopper, setup, code, subcode, transient
):
    psid = shopper.psid
    if setup == "unavailable":
        shopper.available = False
        shopper.save()
    elif setup == "outside_window":
        shopper.last_message_at = timezone.now() - timedelta(hours=30)
        shopper.save()
    elif setup == "unknown_user":
        psid = "2999999999999999"
    elif setup == "server_error":
        _fault(live_server, path="/me/messages", status=500, times=1)
    elif setup == "rate_limited":
        _fault(live_server, status=400, code=613, times=1)

    with pytest.raises(GraphError) as caught:
        GraphClient(service_page).send(
            {"recipient": {"id": psid}, "messaging_type": "RESPONSE", "message": {"text": "Hi"}}
        )
    assert (caught.value.code, caught.value.subcode) == (code, subcode)
    assert caught.value.transient is transient
    assert caught.value.fbtrace_id


def test_a_token_the_stand_in_does_not_know_is_code_190(graph_base, service_page, shopper):
    service_page.access_token = "EAAsomebodyelse"
    service_page.save()
    with pytest.raises(GraphError) as caught:
        GraphClient(service_page).send(
            {
                "recipient": {"id": shopper.psid},
                "messaging_type": "RESPONSE",
                "message": {"text": "x"},
            }
        )
    assert caught.value.code == 190 and not caught.value.transient


def test_a_proof_made_with_another_apps_secret_is_refused(
    graph_base, service_page, shopper, monkeypatch
):
    """The stand-in expects the proof of a different app secret than the service signs with."""
    import hashlib
    import hmac

    monkeypatch.setattr(
        "sandbox.meta.services.graph.appsecret_proof",
        lambda token: hmac.new(b"another-apps-secret", token.encode(), hashlib.sha256).hexdigest(),
    )
    with pytest.raises(GraphError) as caught:
        GraphClient(service_page).user_profile(shopper.psid)
    assert caught.value.code == 100
    assert "appsecret_proof" in caught.value.message


def test_outbox_delivers_through_the_stand_in(graph_base, service_page, shopper):
    customer = customer_create(
        merchant=service_page.merchant,
        page_id=PAGE_ID,
        psid=shopper.psid,
        last_interaction_at=timezone.now() - timedelta(minutes=1),
    )
    row = outbox_enqueue(customer=customer, page=service_page, message={"text": "Your cart"})

    assert outbox_deliver_customer(customer_id=customer.pk) == 1

    row.refresh_from_db()
    stored = GraphMessage.objects.get()
    assert row.status == OutboundMessage.Status.SENT
    assert row.graph_message_id == stored.message_id
    assert stored.messaging_type == "RESPONSE"
    assert stored.body["message"] == {"text": "Your cart"}


def test_outbox_records_a_permanent_refusal(graph_base, service_page, make_shopper):
    gone = make_shopper(available=False)
    customer = customer_create(
        merchant=service_page.merchant,
        page_id=PAGE_ID,
        psid=gone.psid,
        last_interaction_at=timezone.now() - timedelta(minutes=1),
    )
    row = outbox_enqueue(customer=customer, page=service_page, message={"text": "Hello?"})
    outbox_deliver_customer(customer_id=customer.pk)
    row.refresh_from_db()
    assert row.status == OutboundMessage.Status.FAILED
    assert "551" in row.error_code or "551" in row.error_message
    assert not GraphMessage.objects.exists()


def test_profile_push_lands_in_the_stand_in(graph_base, service_page, sandbox_page):
    service_page.greeting_en = "Hi {{user_first_name}}! Welcome to Souq Demo."
    service_page.greeting_ar = "أهلًا {{user_first_name}}! مرحبًا بك."
    service_page.save()

    result = messenger_profile_sync(page=service_page)

    assert result.ok, result.error
    sandbox_page.refresh_from_db()
    profile = sandbox_page.messenger_profile
    assert profile["get_started"] == {"payload": "GET_STARTED"}
    greetings = {entry["locale"]: entry["text"] for entry in profile["greeting"]}
    assert greetings["ar_AR"] == "أهلًا {{user_first_name}}! مرحبًا بك."
    assert json.dumps(profile["persistent_menu"])  # pushed with Get Started, so accepted
