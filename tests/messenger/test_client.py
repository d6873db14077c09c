"""The Graph API client against the local Graph stub: request shape, authentication, error
classification (DESIGN.md section 7), and no token in errors or logs."""

from __future__ import annotations

import hashlib
import hmac
import logging
import socket
import traceback
from decimal import Decimal

import pytest

from messenger.client import GraphClient, json_dumps_exact
from messenger.exceptions import GraphError, graph_error_is_transient
from messenger.models import MessengerPage

PSID = "2401234567800001"


@pytest.fixture
def client(messenger_page) -> GraphClient:
    return GraphClient(messenger_page)


def _body(text: str = "hi") -> dict:
    return {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": text}}


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------


def test_send_posts_json_with_token_and_appsecret_proof(graph_stub, client, settings):
    message_id = client.send(_body("Welcome"))

    assert message_id == "m_1"
    (request,) = graph_stub.requests
    assert (request.method, request.path) == ("POST", f"/{settings.GRAPH_API_VERSION}/me/messages")
    assert request.body == _body("Welcome")
    assert request.headers["content-type"] == "application/json"
    token = client.page.access_token
    expected_proof = hmac.new(
        settings.MESSENGER_APP_SECRET.encode(), token.encode(), hashlib.sha256
    ).hexdigest()
    assert request.query == {"access_token": token, "appsecret_proof": expected_proof}


def test_base_and_version_are_read_at_call_time(graph_stub, client, settings):
    settings.GRAPH_API_VERSION = "v99.0"
    settings.GRAPH_API_BASE = graph_stub.url + "/"

    client.send(_body())

    assert graph_stub.requests[0].path == "/v99.0/me/messages"


def test_without_app_secret_no_proof_is_sent(graph_stub, client, settings):
    settings.MESSENGER_APP_SECRET = ""

    client.send(_body())

    assert "appsecret_proof" not in graph_stub.requests[0].query


def test_sender_action_returns_no_message_id(graph_stub, client):
    assert client.send({"recipient": {"id": PSID}, "sender_action": "typing_on"}) == ""


def test_decimals_are_sent_with_their_exact_digits(graph_stub, client):
    body = _body()
    body["message"] = {"summary": {"total_cost": Decimal("1234.500"), "tax": Decimal("0.1")}}

    client.send(body)

    raw = graph_stub.requests[0].raw_body
    assert '"total_cost":1234.500' in raw
    assert '"tax":0.1' in raw


def test_json_dumps_exact_refuses_non_finite_decimals():
    assert json_dumps_exact({"a": [Decimal("-0.005"), "x"]}) == '{"a":[-0.005,"x"]}'
    with pytest.raises(ValueError):
        json_dumps_exact({"a": Decimal("NaN")})


def test_user_profile_asks_for_the_fields(graph_stub, client, settings):
    graph_stub.set_profile(PSID, first_name="Omar", locale="en_US", timezone=-5)

    profile = client.user_profile(PSID)

    assert profile["first_name"] == "Omar"
    assert (profile["locale"], profile["timezone"]) == ("en_US", -5)
    (request,) = graph_stub.requests
    assert request.path == f"/{settings.GRAPH_API_VERSION}/{PSID}"
    assert set(request.query["fields"].split(",")) == {
        "first_name",
        "last_name",
        "profile_pic",
        "locale",
        "timezone",
    }
    assert "appsecret_proof" in request.query


def test_user_profile_refuses_a_psid_that_is_not_a_number(graph_stub, client):
    with pytest.raises(ValueError):
        client.user_profile("me/messages")
    assert graph_stub.requests == []


def test_messenger_profile_set_and_delete(graph_stub, client):
    client.profile_set({"greeting": [{"locale": "default", "text": "Hello {{user_first_name}}"}]})
    client.profile_delete(["greeting"])

    post, delete = graph_stub.requests
    assert (post.method, post.endpoint) == ("POST", "/me/messenger_profile")
    assert post.body == {"greeting": [{"locale": "default", "text": "Hello {{user_first_name}}"}]}
    assert (delete.method, delete.body) == ("DELETE", {"fields": ["greeting"]})


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "subcode", "transient", "error_code"),
    [
        (500, None, None, True, "2"),
        (503, 1, None, True, "1"),
        (400, 1200, None, True, "1200"),
        (400, 4, None, True, "4"),
        (400, 613, None, True, "613"),
        (400, 551, 1545041, False, "551/1545041"),
        (400, 100, 2018001, False, "100/2018001"),
        (400, 10, 2018278, False, "10/2018278"),
        (400, 190, 460, False, "190/460"),
        (500, 190, None, False, "190"),  # a permanent code wins over the status
        (403, 200, None, False, "200"),
    ],
)
def test_graph_errors_are_classified(
    graph_stub, client, status, code, subcode, transient, error_code
):
    graph_stub.fail_next(status=status, code=code, subcode=subcode, message="(#n) stubbed")

    with pytest.raises(GraphError) as raised:
        client.send(_body())

    error = raised.value
    assert error.transient is transient
    assert error.error_code == error_code
    assert error.http_status == status
    assert error.message == "(#n) stubbed"
    assert error.fbtrace_id.startswith("AStub")
    assert error.token_invalid is (code == 190)


def test_timeout_is_a_transient_error(graph_stub, client, settings):
    settings.GRAPH_API_TIMEOUT = 0.2
    graph_stub.delay(1.0, times=1)

    with pytest.raises(GraphError) as raised:
        client.send(_body())

    assert raised.value.transient
    assert raised.value.error_code == "timeout"
    assert raised.value.http_status is None


def test_a_502_without_a_graph_body_is_transient(graph_stub, client):
    graph_stub.fail_next(status=502, raw="<html><body>502 Bad Gateway</body></html>")

    with pytest.raises(GraphError) as raised:
        client.send(_body())

    assert (raised.value.transient, raised.value.error_code) == (True, "http_502")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_is_transient_and_never_reveals_the_token(client, settings, caplog):
    settings.GRAPH_API_BASE = f"http://127.0.0.1:{_closed_port()}"
    caplog.set_level(logging.DEBUG)

    with pytest.raises(GraphError) as raised:
        client.send(_body())

    error = raised.value
    assert error.transient
    assert error.error_code == "network"
    token = client.page.access_token
    rendered = "".join(traceback.format_exception(error)) + caplog.text + repr(error)
    assert token not in rendered
    assert error.__cause__ is None and error.__context__ is None


def test_graph_errors_are_logged_without_token_or_proof(graph_stub, client, caplog):
    graph_stub.fail_next(status=400, code=190, subcode=460)
    caplog.set_level(logging.DEBUG)
    # Settings keep urllib3 at WARNING; open it up to prove the mask works even at DEBUG.
    caplog.set_level(logging.DEBUG, logger="urllib3")

    with pytest.raises(GraphError):
        client.send(_body())

    assert "190/460" in caplog.text
    assert "access_token=***" in caplog.text  # urllib3's debug line, masked
    assert client.page.access_token not in caplog.text
    assert graph_stub.requests[0].query["appsecret_proof"] not in caplog.text


def test_a_token_echoed_in_a_graph_message_is_masked(graph_stub, client):
    token = client.page.access_token
    graph_stub.fail_next(status=400, code=190, message=f"Invalid OAuth access token: {token}")

    with pytest.raises(GraphError) as raised:
        client.send(_body())

    assert token not in str(raised.value)
    assert "Invalid OAuth access token: ••••" in raised.value.message


def test_page_without_token_fails_before_any_request(graph_stub, messenger_page):
    MessengerPage.objects.filter(pk=messenger_page.pk).update(access_token="")
    messenger_page.refresh_from_db()

    with pytest.raises(GraphError) as raised:
        GraphClient(messenger_page).send(_body())

    assert raised.value.transient is False
    assert graph_stub.requests == []


def test_classification_without_an_answer_is_transient():
    assert graph_error_is_transient(code=None, subcode=None, http_status=None)
    assert graph_error_is_transient(code=None, subcode=None, http_status=429)
    assert not graph_error_is_transient(code=None, subcode=None, http_status=404)
