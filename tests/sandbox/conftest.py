"""Fixtures for the Messenger stand-in's tests: a registered page, shoppers, and a helper that
calls the Graph stand-in with the page's token and a correct ``appsecret_proof``."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

PAGE_ID = "104412345678901"
TOKEN = "sandbox-page-token-104412345678901"
VERSION = "v25.0"


def proof_for(token: str, secret: str) -> str:
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


@pytest.fixture(autouse=True)
def _graph_connection_closed():
    """The service's Graph client keeps its connection to ``live_server`` alive; close it after
    each test so the server's thread stops cleanly."""
    yield
    from messenger import client

    session = getattr(client._local, "session", None)
    if session is not None:
        session.close()


@pytest.fixture
def sandbox_page(db):
    from sandbox.meta.models import SandboxPage

    return SandboxPage.objects.create(page_id=PAGE_ID, name="Souq Demo", access_token=TOKEN)


@pytest.fixture
def make_shopper(sandbox_page):
    """A shopper of the page who wrote a minute ago (inside the 24-hour window)."""
    from sandbox.meta.services.shoppers import shopper_create

    def make(**overrides: Any):
        values = {"first_name": "Emma", "last_name": "Walker", "locale": "en_US"}
        values |= {
            k: overrides.pop(k)
            for k in list(overrides)
            if k in values or k in ("email", "phone", "psid")
        }
        shopper = shopper_create(page=sandbox_page, **values)
        shopper.last_message_at = overrides.pop(
            "last_message_at", timezone.now() - timedelta(minutes=1)
        )
        for name, value in overrides.items():
            setattr(shopper, name, value)
        shopper.save()
        return shopper

    return make


@pytest.fixture
def shopper(make_shopper):
    return make_shopper(email="emma@example.com", phone="+14155550123")


class GraphCaller:
    """Calls ``/sandbox/graph/<version>/...`` through the Django test client, authenticated
    as the page unless told otherwise."""

    def __init__(self, client, settings):
        self.client, self.settings = client, settings

    def params(self, token: str | None = TOKEN, proof: str | None = "auto") -> str:
        query = []
        if token is not None:
            query.append(f"access_token={token}")
        if proof == "auto" and token is not None:
            proof = proof_for(token, self.settings.MESSENGER_APP_SECRET)
        if proof not in (None, "auto"):
            query.append(f"appsecret_proof={proof}")
        return "&".join(query)

    def url(self, endpoint: str, extra: str = "", **auth) -> str:
        query = "&".join(part for part in (extra, self.params(**auth)) if part)
        return f"/sandbox/graph/{VERSION}/{endpoint}?{query}"

    def post(self, endpoint: str, body: Any, **auth):
        return self.client.post(
            self.url(endpoint, **auth), json.dumps(body), content_type="application/json"
        )

    def get(self, endpoint: str, extra: str = "", **auth):
        return self.client.get(self.url(endpoint, extra, **auth))

    def delete(self, endpoint: str, body: Any, **auth):
        return self.client.delete(
            self.url(endpoint, **auth), json.dumps(body), content_type="application/json"
        )

    def send(self, shopper, message: dict | None = None, **fields):
        body = {
            "recipient": {"id": shopper.psid},
            "messaging_type": "RESPONSE",
            "message": message if message is not None else {"text": "Hello"},
        }
        body.update(fields)
        return self.post("me/messages", body)


@pytest.fixture
def graph(client, settings, sandbox_page):
    return GraphCaller(client, settings)


def error_of(response) -> tuple[int, int | None, str]:
    error = response.json()["error"]
    assert set(error) <= {"message", "type", "code", "error_subcode", "fbtrace_id"}
    assert error["fbtrace_id"]
    return error["code"], error.get("error_subcode"), error["message"]
