"""A Messenger user driven through the real webhook: each action is one signed POST, then the
inbox drain and the outbox delivery run as the worker would, and the Graph stub shows what the
shopper got back. Only Meta is replaced (``tests/messenger/graph_stub.py``)."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from django.conf import settings
from django.test import Client

from commerce.models import Customer
from messenger.models import InboundEvent
from messenger.services.inbox import inbound_events_drain
from messenger.services.outbox import outbox_deliver_customer
from messenger.tasks.inbox import inbox_drain
from messenger.tasks.outbox import outbox_deliver
from messenger.webhook.signature import signature_header_value

WEBHOOK_URL = "/messenger/webhook/"
_mids = itertools.count(1)


class Shopper:
    def __init__(
        self,
        *,
        graph_stub,
        page_id: str,
        psid: str,
        client: Client | None = None,
        via_tasks: bool = False,
    ):
        """``via_tasks``: run the worker's part through the Celery tasks (``.apply()``, in this
        process) instead of the services, so Celery's own logging is part of the run."""
        self.stub, self.page_id, self.psid = graph_stub, page_id, psid
        self.client = client or Client()
        self.via_tasks = via_tasks
        self.seen = 0

    def post_item(self, item: dict[str, Any]):
        """POST one messaging item, signed, as Meta would; the webhook's response."""
        body = json.dumps(
            {"object": "page", "entry": [{"id": self.page_id, "time": 0, "messaging": [item]}]}
        ).encode()
        signature = signature_header_value(body, secret=settings.MESSENGER_APP_SECRET)
        return self.client.post(
            WEBHOOK_URL,
            data=body,
            content_type="application/json",
            HTTP_X_HUB_SIGNATURE_256=signature,
        )

    def send(self, content: dict[str, Any]) -> list[dict]:
        """Post one messaging item carrying ``content``; return the messages sent back."""
        item = {
            "sender": {"id": self.psid},
            "recipient": {"id": self.page_id},
            "timestamp": int(time.time() * 1000),
            **content,
        }
        response = self.post_item(item)
        assert response.status_code == 200, response.content
        if self.via_tasks:
            inbox_drain.apply()
        else:
            inbound_events_drain()
        pending = InboundEvent.objects.filter(sender_psid=self.psid, status="pending")
        assert not pending.exists(), list(pending.values_list("kind", "error"))
        customer = Customer.objects.get(psid=self.psid, page_id=self.page_id)
        if self.via_tasks:
            outbox_deliver.apply(args=[customer.pk])
        else:
            outbox_deliver_customer(customer_id=customer.pk)
        sent = [body["message"] for body in self.stub.sent_messages(psid=self.psid)]
        new, self.seen = sent[self.seen :], len(sent)
        return new

    def tap(self, payload: Any, title: str = "Button") -> list[dict]:
        mid = f"m_hostile_pb_{next(_mids)}"
        return self.send({"postback": {"mid": mid, "title": title, "payload": payload}})

    def quick_reply(self, payload: Any, text: str = "Option") -> list[dict]:
        mid = f"m_hostile_qr_{next(_mids)}"
        return self.send(
            {"message": {"mid": mid, "text": text, "quick_reply": {"payload": payload}}}
        )

    def type(self, text: Any) -> list[dict]:
        return self.send({"message": {"mid": f"m_hostile_tx_{next(_mids)}", "text": text}})


def texts(messages: list[dict]) -> str:
    """Every text the shopper can read in ``messages`` (texts, template texts and titles)."""
    parts = []
    for message in messages:
        parts.append(message.get("text", ""))
        payload = message.get("attachment", {}).get("payload", {})
        parts.append(payload.get("text", ""))
        parts += [element.get("title", "") for element in payload.get("elements", [])]
    return "\n".join(part for part in parts if part)
