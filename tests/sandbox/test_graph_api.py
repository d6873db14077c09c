"""The Graph API stand-in answers like the platform: success bodies, each validation error with
its code, credentials, injected faults, Messenger Profile, User Profile and handover."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from sandbox.meta.models import GraphMessage, SandboxPage
from tests.sandbox.conftest import PAGE_ID, TOKEN, error_of

pytestmark = pytest.mark.django_db


def _generic(elements: int = 1, **element) -> dict:
    card = {"title": "Linen shirt", "subtitle": "$25.00", **element}
    return {
        "attachment": {
            "type": "template",
            "payload": {"template_type": "generic", "elements": [dict(card)] * elements},
        }
    }


def _buttons(*buttons, text: str = "Your order") -> dict:
    return {
        "attachment": {
            "type": "template",
            "payload": {"template_type": "button", "text": text, "buttons": list(buttons)},
        }
    }


def _postback(title: str = "Add to cart", payload: str = "ADD:variant=1") -> dict:
    return {"type": "postback", "title": title, "payload": payload}


def _qr(title: str = "Shop", payload: str = "SHOP") -> dict:
    return {"content_type": "text", "title": title, "payload": payload}


IMAGE = {"type": "image", "payload": {"url": "https://shop.example/a.jpg"}}
RECEIPT = {
    "attachment": {
        "type": "template",
        "payload": {
            "template_type": "receipt",
            "recipient_name": "Emma Walker",
            "order_number": "A1B2-1042",
            "currency": "USD",
            "payment_method": "Visa 4242",
            "summary": {"subtotal": 25.0, "total_cost": 30.5},
            "elements": [{"title": "Linen shirt", "price": 25.0, "quantity": 1}],
        },
    }
}


# -- success -----------------------------------------------------------------------------------


def test_send_answers_recipient_and_a_new_message_id_and_remembers_the_call(graph, shopper):
    response = graph.send(shopper, {"text": "Welcome, Emma!"})

    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"recipient_id", "message_id"}
    assert answer["recipient_id"] == shopper.psid
    assert answer["message_id"].startswith("m_") and len(answer["message_id"]) > 40
    stored = GraphMessage.objects.get()
    assert stored.message_id == answer["message_id"]
    assert stored.body["message"] == {"text": "Welcome, Emma!"}
    assert stored.shopper == shopper and stored.messaging_type == "RESPONSE"
    assert stored.received_at is not None and stored.delivered_at is None


def test_each_message_gets_its_own_id(graph, shopper):
    ids = {graph.send(shopper).json()["message_id"] for _ in range(3)}
    assert len(ids) == 3


def test_sender_action_answers_recipient_only(graph, shopper):
    response = graph.post(
        "me/messages", {"recipient": {"id": shopper.psid}, "sender_action": "typing_on"}
    )
    assert response.status_code == 200
    assert response.json() == {"recipient_id": shopper.psid}


def test_page_id_path_works_like_me(graph, shopper):
    response = graph.post(
        f"{PAGE_ID}/messages",
        {"recipient": {"id": shopper.psid}, "messaging_type": "RESPONSE", "message": {"text": "x"}},
    )
    assert response.status_code == 200


def test_another_pages_id_in_the_path_is_refused(graph, shopper):
    response = graph.post(
        "999999/messages",
        {"recipient": {"id": shopper.psid}, "messaging_type": "RESPONSE", "message": {"text": "x"}},
    )
    assert response.status_code == 400
    assert error_of(response)[:2] == (100, 33)


@pytest.mark.parametrize(
    "message",
    [
        _generic(10, image_url="https://shop.example/a.jpg", buttons=[_postback()] * 3),
        _buttons(_postback(), {"type": "web_url", "title": "Track", "url": "https://t.example/1"}),
        RECEIPT,
        {"attachment": {"type": "image", "payload": {"url": "https://shop.example/a.jpg"}}},
        {
            "text": "Your email?",
            "quick_replies": [
                {"content_type": "user_email"},
                {"content_type": "user_phone_number"},
            ],
        },
        {
            "attachment": {
                "type": "template",
                "payload": {
                    "template_type": "media",
                    "elements": [{"media_type": "image", "url": "https://www.facebook.com/p/1"}],
                },
            }
        },
    ],
    ids=["carousel", "button-template", "receipt", "image", "email-phone", "media"],
)
def test_valid_messages_are_accepted(graph, shopper, message):
    response = graph.send(shopper, message)
    assert response.status_code == 200, response.content


# -- validation errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "words"),
    [
        ({"text": "x" * 2001}, "message[text]"),
        ({"text": "x", "quick_replies": [_qr()] * 14}, "quick_replies"),
        ({"text": "x", "quick_replies": [_qr(title="a" * 21)]}, "title"),
        ({"text": "x", "quick_replies": [_qr(payload="P" * 1001)]}, "payload"),
        (_generic(11), "elements"),
        (_generic(title="t" * 81), "title"),
        (_generic(subtitle="s" * 81), "subtitle"),
        (_generic(buttons=[_postback()] * 4), "buttons"),
        (_buttons(_postback(title="t" * 21)), "title"),
        (_buttons(_postback(), text="t" * 641), "text"),
        (_buttons(), "buttons"),
        ({"text": "x", "attachment": IMAGE}, "either"),
        ({"attachment": {"type": "template", "payload": {"template_type": "list"}}}, "template"),
        ({"text": "x", "quickReplies": []}, 'Invalid keys "quickReplies"'),
        (
            {"attachment": {"type": "template", "payload": {
                key: value for key, value in RECEIPT["attachment"]["payload"].items()
                if key != "order_number"
            }}},
            "order_number",
        ),
    ],
    ids=[
        "text-2001", "14-quick-replies", "quick-reply-title-21", "payload-1001", "11-elements",
        "title-81", "subtitle-81", "4-buttons", "button-title-21", "button-text-641",
        "no-buttons", "text-and-attachment", "list-template", "unknown-key",
        "receipt-without-order-number",
    ],
)  # fmt: skip
def test_messages_breaking_a_platform_limit_get_code_100(graph, shopper, message, words):
    response = graph.send(shopper, message)

    assert response.status_code == 400
    code, _subcode, text = error_of(response)
    assert code == 100
    assert text.startswith("(#100)") and words in text
    assert not GraphMessage.objects.exists()


def test_recipient_is_required(graph, shopper):
    response = graph.post("me/messages", {"messaging_type": "RESPONSE", "message": {"text": "x"}})
    assert error_of(response)[0] == 100 and "recipient" in error_of(response)[2]


def test_unknown_recipient_gets_no_matching_user(graph, shopper):
    response = graph.post(
        "me/messages",
        {
            "recipient": {"id": "2999999999999999"},
            "messaging_type": "RESPONSE",
            "message": {"text": "x"},
        },
    )
    assert response.status_code == 400
    assert error_of(response) == (100, 2018001, "(#100) No matching user found")


@pytest.mark.parametrize("fields", [{"messaging_type": "SOON"}, {"messaging_type": None}])
def test_messaging_type_must_be_one_of_three(graph, shopper, fields):
    response = graph.send(shopper, **fields)
    assert error_of(response)[0] == 100 and "messaging_type" in error_of(response)[2]


@pytest.mark.parametrize("tag", [None, "SHIPPING_UPDATE", "PROMOTION"])
def test_message_tag_needs_a_valid_tag(graph, shopper, tag):
    response = graph.send(shopper, messaging_type="MESSAGE_TAG", tag=tag)
    assert error_of(response)[0] == 100 and "tag" in error_of(response)[2]


def test_response_outside_24_hours_gets_2018278(graph, make_shopper):
    late = make_shopper(last_message_at=timezone.now() - timedelta(hours=25))
    response = graph.send(late)
    assert response.status_code == 400
    assert error_of(response)[:2] == (10, 2018278)


def test_shopper_who_never_wrote_is_outside_the_window(graph, make_shopper):
    response = graph.send(make_shopper(last_message_at=None), messaging_type="UPDATE")
    assert error_of(response)[:2] == (10, 2018278)


def test_post_purchase_update_tag_goes_out_after_24_hours(graph, make_shopper):
    late = make_shopper(last_message_at=timezone.now() - timedelta(days=30))
    response = graph.send(late, messaging_type="MESSAGE_TAG", tag="POST_PURCHASE_UPDATE")
    assert response.status_code == 200
    assert GraphMessage.objects.get().tag == "POST_PURCHASE_UPDATE"


@pytest.mark.parametrize(("days", "status"), [(6, 200), (8, 400)])
def test_human_agent_tag_has_seven_days(graph, make_shopper, days, status):
    shopper = make_shopper(last_message_at=timezone.now() - timedelta(days=days))
    response = graph.send(shopper, messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
    assert response.status_code == status
    if status == 400:
        assert error_of(response)[:2] == (10, 2018278)


def test_unavailable_shopper_gets_551(graph, make_shopper):
    response = graph.send(make_shopper(available=False))
    assert response.status_code == 400
    assert error_of(response)[:2] == (551, 1545041)


def _pay_button(url: str) -> dict:
    return _buttons(
        {
            "type": "web_url",
            "title": "Pay $30.50",
            "url": url,
            "webview_height_ratio": "tall",
            "messenger_extensions": True,
            "fallback_url": url,
        }
    )


def test_messenger_extensions_need_a_whitelisted_domain(graph, shopper, sandbox_page):
    refused = graph.send(shopper, _pay_button("https://shop.example/checkout/t/"))
    assert refused.status_code == 400
    code, _subcode, text = error_of(refused)
    assert code == 100 and "whitelisted" in text

    sandbox_page.messenger_profile = {"whitelisted_domains": ["https://shop.example"]}
    sandbox_page.save()
    assert graph.send(shopper, _pay_button("https://shop.example/checkout/t/")).status_code == 200
    # Same host, other scheme: another origin.
    assert graph.send(shopper, _pay_button("http://shop.example/checkout/t/")).status_code == 400


def test_plain_web_url_buttons_need_no_whitelist(graph, shopper):
    button = {"type": "web_url", "title": "Track", "url": "https://track.example/1"}
    assert graph.send(shopper, _buttons(button)).status_code == 200


# -- credentials -------------------------------------------------------------------------------


def test_unknown_token_gets_190(graph, shopper):
    response = graph.post(
        "me/messages", {"recipient": {"id": shopper.psid}}, token="EAAforged", proof="auto"
    )
    assert response.status_code == 400
    code, _subcode, _text = error_of(response)
    assert code == 190
    assert response.json()["error"]["type"] == "OAuthException"


def test_missing_token_is_refused(graph, shopper):
    response = graph.post("me/messages", {"recipient": {"id": shopper.psid}}, token=None)
    assert response.status_code == 400
    assert error_of(response)[0] == 2500


def test_wrong_appsecret_proof_gets_100(graph, shopper):
    response = graph.post("me/messages", {"recipient": {"id": shopper.psid}}, proof="0" * 64)
    assert response.status_code == 400
    assert error_of(response)[0] == 100
    assert error_of(response)[2] == "Invalid appsecret_proof provided in the API argument"
    assert not GraphMessage.objects.exists()


def test_missing_appsecret_proof_is_refused_when_the_app_has_a_secret(graph, shopper):
    response = graph.post("me/messages", {"recipient": {"id": shopper.psid}}, proof=None)
    assert error_of(response)[0] == 100 and "appsecret_proof" in error_of(response)[2]


def test_token_in_a_form_body_and_bearer_header_work_too(client, settings, sandbox_page, shopper):
    from tests.sandbox.conftest import proof_for

    proof = proof_for(TOKEN, settings.MESSENGER_APP_SECRET)
    form = client.post(
        f"/sandbox/graph/v25.0/{shopper.psid}",
        {"access_token": TOKEN, "appsecret_proof": proof},
    )
    assert form.status_code == 400  # POST on a user node is not supported
    bearer = client.get(
        f"/sandbox/graph/v25.0/{shopper.psid}?fields=first_name&appsecret_proof={proof}",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert bearer.json() == {"first_name": "Emma", "id": shopper.psid}


# -- faults ------------------------------------------------------------------------------------


def test_injected_fault_fails_the_next_matching_calls_then_clears(client, graph, shopper):
    created = client.post(
        "/sandbox/graph/_control/faults",
        json.dumps({"path": "/me/messages", "status": 500, "times": 2}),
        content_type="application/json",
    )
    assert created.status_code == 201

    profile = graph.get(shopper.psid, "fields=first_name")
    assert profile.status_code == 200  # another path: untouched
    for _ in range(2):
        failed = graph.send(shopper)
        assert failed.status_code == 500
        assert error_of(failed)[0] == 2  # Graph's "unexpected error", retryable
    assert graph.send(shopper).status_code == 200
    assert GraphMessage.objects.count() == 1


def test_fault_with_code_and_subcode_until_cleared(client, graph, shopper):
    client.post(
        "/sandbox/graph/_control/faults",
        json.dumps(
            {"status": 400, "code": 613, "message": "(#613) Calls exceeded the rate limit."}
        ),
        content_type="application/json",
    )
    for _ in range(3):
        response = graph.send(shopper)
        assert error_of(response)[:2] == (613, None)
    assert client.delete("/sandbox/graph/_control/faults").json() == {"cleared": 1}
    assert graph.send(shopper).status_code == 200


def test_latency_fault_delays_without_failing(client, graph, shopper, monkeypatch):
    slept = []
    monkeypatch.setattr("sandbox.meta.services.graph.time.sleep", slept.append)
    client.post(
        "/sandbox/graph/_control/faults",
        json.dumps({"delay_ms": 2500, "times": 1}),
        content_type="application/json",
    )
    assert graph.send(shopper).status_code == 200
    assert graph.send(shopper).status_code == 200
    assert slept == [2.5]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": 200},
        {"status": "500"},
        {"delay_ms": 10, "times": 0},
        [],
        {"status": 500, "path": 3},
    ],
)
def test_bad_fault_requests_are_refused_clearly(client, body):
    response = client.post(
        "/sandbox/graph/_control/faults", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["message"].startswith("Bad fault:")
    assert client.get("/sandbox/graph/_control/faults").json() == {"faults": []}


# -- Messenger Profile API ---------------------------------------------------------------------

PROFILE = {
    "get_started": {"payload": "GET_STARTED"},
    "greeting": [
        {"locale": "default", "text": "Hi {{user_first_name}}!"},
        {"locale": "ar_AR", "text": "أهلًا {{user_first_name}}!"},
    ],
    "persistent_menu": [
        {
            "locale": "default",
            "composer_input_disabled": False,
            "call_to_actions": [{"type": "postback", "title": "Shop", "payload": "SHOP"}],
        }
    ],
}


def test_messenger_profile_round_trip(graph, sandbox_page):
    assert graph.post("me/messenger_profile", PROFILE).json() == {"result": "success"}
    got = graph.get("me/messenger_profile", "fields=greeting,get_started,persistent_menu")
    assert got.json() == {"data": [PROFILE]}

    deleted = graph.delete("me/messenger_profile", {"fields": ["persistent_menu"]})
    assert deleted.json() == {"result": "success"}
    got = graph.get("me/messenger_profile", "fields=persistent_menu,greeting")
    assert got.json() == {"data": [{"greeting": PROFILE["greeting"]}]}
    sandbox_page.refresh_from_db()
    assert "persistent_menu" not in sandbox_page.messenger_profile


def test_profile_update_keeps_the_other_fields(graph, sandbox_page):
    graph.post("me/messenger_profile", PROFILE)
    graph.post("me/messenger_profile", {"whitelisted_domains": ["https://shop.example"]})
    sandbox_page.refresh_from_db()
    assert sandbox_page.messenger_profile == {
        **PROFILE,
        "whitelisted_domains": ["https://shop.example"],
    }


@pytest.mark.parametrize(
    "body",
    [
        {"colour": "blue"},
        {"greeting": [{"locale": "default", "text": "x" * 161}]},
        {"greeting": [{"locale": "ar_AR", "text": "hi"}]},
        {"persistent_menu": PROFILE["persistent_menu"]},  # no Get Started button
        {"whitelisted_domains": ["not a url"]},
    ],
    ids=[
        "unknown-field",
        "greeting-161",
        "no-default-locale",
        "menu-without-get-started",
        "bad-domain",
    ],
)
def test_bad_profile_bodies_get_100_and_change_nothing(graph, sandbox_page, body):
    response = graph.post("me/messenger_profile", body)
    assert response.status_code == 400
    assert error_of(response)[0] == 100
    sandbox_page.refresh_from_db()
    assert sandbox_page.messenger_profile == {}


def test_profile_get_needs_fields(graph):
    assert error_of(graph.get("me/messenger_profile"))[0] == 100


def test_profile_delete_needs_known_fields(graph):
    assert error_of(graph.delete("me/messenger_profile", {}))[0] == 100
    assert error_of(graph.delete("me/messenger_profile", {"fields": ["colour"]}))[0] == 100


# -- User Profile API --------------------------------------------------------------------------


def test_user_profile_narrowed_to_the_fields_asked(graph, make_shopper):
    layla = make_shopper(first_name="ليلى", last_name="حداد", locale="ar_AR")
    response = graph.get(layla.psid, "fields=first_name,last_name,profile_pic,locale,timezone")
    assert response.status_code == 200
    profile = response.json()
    assert profile["first_name"] == "ليلى" and profile["last_name"] == "حداد"
    assert profile["locale"] == "ar_AR" and profile["timezone"] == 3
    assert profile["profile_pic"].startswith("https://")
    assert profile["id"] == layla.psid
    assert set(graph.get(layla.psid, "fields=locale").json()) == {"locale", "id"}


def test_user_profile_of_unknown_psid_or_field_is_refused(graph, shopper):
    assert error_of(graph.get("2999999999999999"))[:2] == (100, 33)
    assert error_of(graph.get(shopper.psid, "fields=birthday"))[0] == 100


def test_user_profile_of_another_pages_shopper_is_not_found(graph, shopper):
    other = SandboxPage.objects.create(page_id="55", name="Other", access_token="other-token")
    shopper.page = other
    shopper.save()
    assert error_of(graph.get(shopper.psid))[:2] == (100, 33)


# -- handover ----------------------------------------------------------------------------------


def test_pass_and_take_thread_control(graph, shopper):
    passed = graph.post(
        "me/pass_thread_control",
        {"recipient": {"id": shopper.psid}, "target_app_id": 263902037430900, "metadata": "help"},
    )
    assert passed.json() == {"success": True}
    owner = graph.get("me/thread_owner", f"recipient={shopper.psid}").json()
    assert owner == {"data": [{"thread_owner": {"app_id": "263902037430900"}}]}

    taken = graph.post("me/take_thread_control", {"recipient": {"id": shopper.psid}})
    assert taken.json() == {"success": True}
    shopper.refresh_from_db()
    assert shopper.thread_owner_app_id == ""


def test_handover_needs_a_known_recipient_and_a_target(graph, shopper):
    assert (
        error_of(graph.post("me/pass_thread_control", {"recipient": {"id": shopper.psid}}))[0]
        == 100
    )
    unknown = graph.post("me/take_thread_control", {"recipient": {"id": "2999999999999999"}})
    assert error_of(unknown)[:2] == (100, 2018001)
