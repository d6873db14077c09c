"""A signed webhook conversation goes from Get Started to a Pay button, in English and Arabic.

Everything is real but Meta: signed POSTs to the webhook, the inbox drain, the conversation,
the order and its stock reservation, the outbox, and the Graph API stub receiving the bodies.
"""

from __future__ import annotations

import itertools
import time
import uuid

import pytest

from commerce.models import Customer, Order, ShippingMethod, StockReservation
from commerce.services.demo import demo_catalog_seed
from messenger.models import InboundEvent, MessengerPage
from messenger.services.inbox import inbound_events_drain
from messenger.services.outbox import outbox_deliver_customer
from payments.services.checkout_links import checkout_token_read
from tests.messenger.webhook.helpers import PAGE_ID, body_of, signed_headers

pytestmark = pytest.mark.django_db

_mids = itertools.count(1)
_clock = itertools.count(int(time.time() * 1000), 1000)  # now: inside the 24-hour window


@pytest.fixture
def shop(media_root):
    catalog = demo_catalog_seed(products=6)
    merchant = catalog.merchant
    ShippingMethod.objects.create(
        merchant=merchant, name="Courier", name_ar="مندوب", price_minor=500, currency="USD"
    )
    return MessengerPage.objects.create(
        merchant=merchant, page_id=PAGE_ID, name="Souq Demo", access_token="EAAtoken"
    )


class Shopper:
    """A Messenger user tapping and typing: each action is one signed webhook POST."""

    def __init__(self, post, graph_stub, psid: str):
        self.post, self.stub, self.psid = post, graph_stub, psid
        self.seen = 0
        self.answers: list[list[dict]] = []

    def _send(self, content: dict) -> list[dict]:
        item = {
            "sender": {"id": self.psid},
            "recipient": {"id": PAGE_ID},
            "timestamp": next(_clock),
            **content,
        }
        body = body_of(item)
        response = self.post(body, **signed_headers(body))
        assert response.status_code == 200
        assert response.content == b"EVENT_RECEIVED"
        inbound_events_drain()
        assert not InboundEvent.objects.filter(sender_psid=self.psid, status="pending").exists()
        outbox_deliver_customer(customer_id=Customer.objects.get(psid=self.psid).pk)
        sent = [b["message"] for b in self.stub.sent_messages(psid=self.psid)]
        new, self.seen = sent[self.seen :], len(sent)
        assert new, "every action gets an answer"
        self.answers.append(new)
        return new

    def tap(self, payload: str, title: str = "") -> list[dict]:
        return self._send(
            {"postback": {"mid": f"m_pb_{next(_mids)}", "title": title, "payload": payload}}
        )

    def quick_reply(self, payload: str, text: str = "") -> list[dict]:
        return self._send(
            {
                "message": {
                    "mid": f"m_qr_{next(_mids)}",
                    "text": text or payload,
                    "quick_reply": {"payload": payload},
                }
            }
        )

    def type(self, text: str) -> list[dict]:
        return self._send({"message": {"mid": f"m_tx_{next(_mids)}", "text": text}})


def _payloads(messages: list[dict]) -> list[str]:
    payloads = []
    for message in messages:
        payloads += [q.get("payload", "") for q in message.get("quick_replies", [])]
        payload = message.get("attachment", {}).get("payload", {})
        for element in payload.get("elements", []):
            payloads += [b.get("payload", "") for b in element.get("buttons", [])]
        payloads += [b.get("payload", "") for b in payload.get("buttons", [])]
    return payloads


def _first(payloads: list[str], prefix: str) -> str:
    return next(p for p in payloads if p.startswith(prefix))


def _pay_button(messages: list[dict]) -> dict:
    for message in messages:
        payload = message.get("attachment", {}).get("payload", {})
        for button in payload.get("buttons", []):
            if button.get("type") == "web_url" and "/checkout/" in button.get("url", ""):
                return button
    raise AssertionError(f"no Pay button in {messages}")


@pytest.mark.parametrize(
    ("locale", "greeting", "address"),
    [
        ("en_US", "Hi Layla", "Layla Haddad, 12 Gulf Road, Kuwait City, Kuwait"),
        ("ar_AR", "مرحبًا", "ليلى حداد، 12 شارع الخليج، مدينة الكويت، الكويت"),
    ],
)
def test_get_started_to_pay_button(shop, post, graph_stub, locale, greeting, address):
    # A PSID of this test's own: the User Profile cache outlives the test, and a counter would
    # give the other xdist worker's test the same PSID (and its cached profile, in the other
    # language).
    psid = f"24{uuid.uuid4().int % 10**14:014d}"
    graph_stub.set_profile(psid, first_name="Layla", last_name="Haddad", locale=locale)
    shopper = Shopper(post, graph_stub, psid)

    welcome = shopper.tap("GET_STARTED", "Get Started")
    assert greeting in welcome[0]["text"]
    # The featured products come with the greeting: Buy now is the first tap.
    buy = next(p for p in _payloads(welcome[1:]) if p.startswith("BUY") or "buy=1" in p)
    after_buy = shopper.tap(buy)
    if buy.startswith("VARIANTS"):  # a product with sizes: pick the first size offered
        after_buy = shopper.quick_reply(_first(_payloads(after_buy), "BUY"))
    assert "SHOP" in _payloads(welcome[-1:])  # the categories stay one quick reply away
    assert any(
        q.get("content_type") == "user_email" for m in after_buy for q in m.get("quick_replies", [])
    ), after_buy
    after_email = shopper.quick_reply("layla@example.com", "layla@example.com")
    after_phone = shopper.quick_reply("+96550012345", "+96550012345")
    assert after_email and after_phone
    summary = shopper.type(address)

    pay = _pay_button(summary)
    assert pay["webview_height_ratio"] == "tall"
    assert pay["messenger_extensions"] is True
    token = pay["url"].rstrip("/").rsplit("/", 1)[-1]
    order = Order.objects.get(pk=checkout_token_read(token=token))
    assert order.status == Order.Status.PENDING_PAYMENT
    assert order.shipping_country == "KW"
    assert StockReservation.objects.filter(order=order, status="active").exists()
    if locale.startswith("ar"):
        assert any("\u0600" <= ch <= "\u06ff" for ch in pay["title"])
    # Every answer ended with a way forward (quick replies or buttons).
    for answer in shopper.answers:
        assert answer[-1].get("quick_replies") or answer[-1].get("attachment"), answer
