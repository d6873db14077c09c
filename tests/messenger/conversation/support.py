"""Drive conversation turns like the webhook does, and read what reached the Graph API stub.

``Chat`` turns raw ``messaging[]`` items (the shapes of ``tests/messenger/fixtures``) into events
with ``messenger.events.event_parse``, runs ``conversation_handle``, then delivers the outbox with
``outbox_deliver_customer`` to the ``graph_stub`` server and returns the ``message`` objects that
were posted to ``/me/messages``. Only the network boundary is replaced.

    def test_x(chat):
        [welcome] = chat.postback("GET_STARTED")
        assert chat.quick_reply_payloads(welcome) == ["SHOP", "CART", "ORDERS", "HELP", "LANG:ar"]
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.utils import timezone

from commerce.models import Customer, Merchant
from messenger.conversation.engine import conversation_handle
from messenger.events import event_parse
from messenger.models import MessengerPage
from messenger.services.outbox import outbox_deliver_customer
from tests.factories import customer_create, merchant_create

PAGE_ID = "104412345678901"
_ids = itertools.count(1)


def page_create(*, merchant: Merchant, page_id: str | None = None) -> MessengerPage:
    return MessengerPage.objects.create(
        merchant=merchant,
        page_id=page_id or f"1044{next(_ids):011d}",
        name=f"{merchant.name} page",
        access_token="EAAG-test-page-token",
    )


@dataclass
class Chat:
    """One shopper talking to one page."""

    page: MessengerPage
    customer: Customer
    stub: Any  # tests.messenger.graph_stub.GraphStub
    seen: int = 0
    inbound_ids: list[int] = field(default_factory=list)

    # -- raw messaging items ------------------------------------------------------------------

    def _item(self, **content: Any) -> dict[str, Any]:
        return {
            "sender": {"id": self.customer.psid},
            "recipient": {"id": self.page.page_id},
            "timestamp": 1764067200000 + next(_ids),
            **content,
        }

    def postback_item(self, payload: str, *, title: str = "", referral: dict | None = None):
        postback: dict[str, Any] = {"mid": f"m_pb_{next(_ids)}", "title": title, "payload": payload}
        if referral is not None:
            postback["referral"] = referral
        return self._item(postback=postback)

    def quick_reply_item(self, payload: str, *, text: str = "") -> dict[str, Any]:
        message = {"mid": f"m_qr_{next(_ids)}", "text": text or payload}
        message["quick_reply"] = {"payload": payload}
        return self._item(message=message)

    def text_item(self, text: str) -> dict[str, Any]:
        return self._item(message={"mid": f"m_txt_{next(_ids)}", "text": text})

    def referral_item(self, ref: str, *, source: str = "SHORTLINK") -> dict[str, Any]:
        return self._item(referral={"ref": ref, "source": source, "type": "OPEN_THREAD"})

    def attachment_item(self, kind: str = "image") -> dict[str, Any]:
        attachment = {"type": kind, "payload": {"url": "https://scontent.example/img.jpg"}}
        if kind == "sticker":
            attachment = {"type": "image", "payload": {"url": "https://x.example/s.png"}}
            attachment["payload"]["sticker_id"] = 369239263222822
        return self._item(message={"mid": f"m_att_{next(_ids)}", "attachments": [attachment]})

    # -- turns ------------------------------------------------------------------------------------

    def handle(self, item: dict[str, Any], *, inbound_event_id: int | None = None):
        """Run one turn without delivering; returns the outbox rows written."""
        event = event_parse(item, page_id=self.page.page_id)
        if inbound_event_id is None:
            inbound_event_id = next(_ids)
        self.inbound_ids.append(inbound_event_id)
        rows = conversation_handle(
            customer=self.customer, page=self.page, event=event, inbound_event_id=inbound_event_id
        )
        self.customer.refresh_from_db()
        return rows

    def send(self, item: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
        """One turn, delivered: the ``message`` objects the stub received for it."""
        self.handle(item, **options)
        return self.deliver()

    def deliver(self) -> list[dict[str, Any]]:
        outbox_deliver_customer(customer_id=self.customer.pk)
        bodies = self.stub.sent_messages()
        new, self.seen = bodies[self.seen :], len(bodies)
        for body in new:
            assert body["recipient"] == {"id": self.customer.psid}
            assert body["messaging_type"] == "RESPONSE"
        return [body["message"] for body in new]

    def postback(self, payload: str, **options: Any) -> list[dict[str, Any]]:
        return self.send(self.postback_item(payload, **options))

    def tap(self, payload: str, *, text: str = "") -> list[dict[str, Any]]:
        """Tap a quick reply."""
        return self.send(self.quick_reply_item(payload, text=text))

    def say(self, text: str) -> list[dict[str, Any]]:
        return self.send(self.text_item(text))

    # -- reading messages -------------------------------------------------------------------------

    @staticmethod
    def text_of(message: dict[str, Any]) -> str:
        return message.get("text") or message["attachment"]["payload"].get("text", "")

    @staticmethod
    def quick_reply_payloads(message: dict[str, Any]) -> list[str]:
        return [reply["payload"] for reply in message.get("quick_replies", [])]

    @staticmethod
    def quick_reply_titles(message: dict[str, Any]) -> list[str]:
        return [reply["title"] for reply in message.get("quick_replies", [])]

    @staticmethod
    def elements(message: dict[str, Any]) -> list[dict[str, Any]]:
        payload = message["attachment"]["payload"]
        assert payload["template_type"] == "generic"
        return payload["elements"]


def chat_for(*, stub, merchant: Merchant | None = None, locale: str = "en_US", **fields) -> Chat:
    merchant = merchant or merchant_create(name="Souq Layla")
    page = page_create(merchant=merchant)
    fields.setdefault("last_interaction_at", timezone.now())
    customer = customer_create(merchant=merchant, locale=locale, page_id=page.page_id, **fields)
    return Chat(page=page, customer=customer, stub=stub)


@pytest.fixture
def merchant(db) -> Merchant:
    return merchant_create(name="Souq Layla")


@pytest.fixture
def chat(graph_stub, merchant) -> Chat:
    """An English-speaking shopper (Layla, en_US) of ``merchant``."""
    return chat_for(stub=graph_stub, merchant=merchant)


@pytest.fixture
def chat_ar(graph_stub, merchant) -> Chat:
    """An Arabic-speaking shopper (ليلى, ar_AR as Facebook sends it) of ``merchant``."""
    return chat_for(stub=graph_stub, merchant=merchant, locale="ar_AR", first_name="ليلى")
