"""A shopper tapping through the sandbox's Messenger emulator over HTTP, as its chat page does.

No browser: the chat page's own endpoints (``/sandbox/shoppers/`` to create a shopper,
``chat/<page>/<psid>/act`` for a tap or a typed message, ``feed.json`` for what the page sent)
and, to pay, our checkout page's form and the Stripe stand-in's hosted page, with the CSRF
cookie and header a browser would send.

Every reply is timed by the service's own clocks as the emulator records them: a tap's
``ShopperEvent`` is stamped before its webhook is posted, a message the service sends is stamped
when the Graph stand-in accepts it. :attr:`Shopper.waits` keeps, per step, how long the shopper
waited for the answer it needed (milliseconds).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

DEMO_PAGE_ID = "104412345678901"  # seed_demo's and sandbox_seed's default page
CARD_OK = "4242 4242 4242 4242"
# Generous: a reply slower than this is a failure of its own, reported by the caller's bound.
WAIT_SECONDS = 120.0
POLL_SECONDS = 0.05


class EmulatorError(AssertionError):
    """The emulator or the service did not do what the shopper needed."""


@dataclass
class Wait:
    step: str
    ms: int


@dataclass
class Shopper:
    """One Messenger user of the demo page, driven over HTTP."""

    base: str
    psid: str
    email: str
    phone: str
    page_id: str = DEMO_PAGE_ID
    session: requests.Session = field(default_factory=requests.Session)
    page_after: int = 0
    shopper_after: int = 0
    seen: list[dict] = field(default_factory=list)  # every item of the feed, in order
    waits: list[Wait] = field(default_factory=list)

    # -- set-up -------------------------------------------------------------------------------

    @classmethod
    def create(
        cls, base: str, *, first: str, last: str, locale: str, email: str, phone: str
    ) -> Shopper:
        """A new shopper from the emulator's setup form (``/sandbox/``)."""
        session = requests.Session()
        _ok(session.get(f"{base}/sandbox/", timeout=30))
        response = session.post(
            f"{base}/sandbox/shoppers/",
            data={
                "page_id": DEMO_PAGE_ID,
                "first_name": first,
                "last_name": last,
                "locale": locale,
                "email": email,
                "phone": phone,
            },
            headers=_csrf(session),
            allow_redirects=False,
            timeout=30,
        )
        if response.status_code != 302:
            raise EmulatorError(
                f"shopper not created: {response.status_code} {response.text[:300]}"
            )
        match = re.search(r"/chat/(\d+)/(\d+)/", response.headers["Location"])
        if match is None:
            raise EmulatorError(f"unexpected redirect {response.headers['Location']}")
        shopper = cls(base=base, psid=match[2], email=email, phone=phone, session=session)
        _ok(session.get(f"{base}{response.headers['Location']}", timeout=30))  # the chat page
        return shopper

    @property
    def chat(self) -> str:
        return f"{self.base}/sandbox/chat/{self.page_id}/{self.psid}"

    # -- the feed -----------------------------------------------------------------------------

    def _poll(self) -> list[dict]:
        response = self.session.get(
            f"{self.chat}/feed.json",
            params={"page_after": self.page_after, "shopper_after": self.shopper_after},
            timeout=30,
        )
        _ok(response)
        data = response.json()
        self.page_after = data["cursor"]["page_after"]
        self.shopper_after = data["cursor"]["shopper_after"]
        self.seen += data["items"]
        return data["items"]

    def messages_after(self, at_ms: int) -> list[dict]:
        """The Send API ``message`` objects the page sent at or after ``at_ms``."""
        return [
            item["message"]
            for item in self.seen
            if item["from"] == "page" and item["at"] >= at_ms and item.get("message")
        ]

    def wait_for(
        self, step: str, since_ms: int, found: Callable[[list[dict]], Any], *, timeout=WAIT_SECONDS
    ) -> Any:
        """Poll the feed until ``found(messages since since_ms)`` is truthy; record how long
        after ``since_ms`` the message that made it so was accepted by the Graph stand-in."""
        deadline = time.monotonic() + timeout
        while True:
            self._poll()
            page_items = [
                item
                for item in self.seen
                if item["from"] == "page" and item["at"] >= since_ms and item.get("message")
            ]
            for end in range(1, len(page_items) + 1):
                value = found([item["message"] for item in page_items[:end]])
                if value:
                    self.waits.append(Wait(step, page_items[end - 1]["at"] - since_ms))
                    return value
            if time.monotonic() > deadline:
                raise EmulatorError(
                    f"{step}: no answer after {timeout:.0f} s; the page sent "
                    f"{[item['message'] for item in page_items]}"
                )
            time.sleep(POLL_SECONDS)

    # -- taps ---------------------------------------------------------------------------------

    def act(self, **tap: str) -> int:
        """Post one tap; return the emulator's time of it (ms) once the service took it."""
        response = self.session.post(
            f"{self.chat}/act", json=tap, headers=_csrf(self.session), timeout=60
        )
        _ok(response)
        data = response.json()
        if not data["ok"]:
            raise EmulatorError(f"the service refused the tap {tap}: {data}")
        return data["item"]["at"]

    def get_started(self) -> int:
        return self.act(action="get_started")

    def postback(self, payload: str, title: str = "tap") -> int:
        return self.act(action="postback", title=title, payload=payload)

    def quick_reply(self, payload: str, title: str = "") -> int:
        return self.act(action="quick_reply", title=title or payload, payload=payload)

    def say(self, text: str) -> int:
        return self.act(action="text", text=text)

    # -- paying -------------------------------------------------------------------------------

    def pay(self, checkout_url: str, *, name: str, card: str = CARD_OK) -> int:
        """Our checkout page's Pay, then the card on the Stripe stand-in's hosted page; returns
        the time (ms, this machine's clock) the hosted page answered."""
        checkout = self.session.get(checkout_url, timeout=60)
        _ok(checkout)
        started = self.session.post(
            checkout_url,
            data={},
            headers={**_csrf(self.session), "Referer": checkout_url},
            allow_redirects=False,
            timeout=60,
        )
        if started.status_code != 303:
            raise EmulatorError(f"checkout page: {started.status_code} {started.text[:500]}")
        hosted = started.headers["Location"]
        if hosted.startswith("/"):
            hosted = self.base + hosted
        _ok(self.session.get(hosted, timeout=60))
        paid = self.session.post(
            hosted,
            data={
                "email": self.email,
                "name": name,
                "card_number": card,
                "card_expiry": "12 / 34",
                "card_cvc": "123",
            },
            headers={**_csrf(self.session), "Referer": hosted},
            allow_redirects=False,
            timeout=60,
        )
        if paid.status_code not in (200, 303):
            raise EmulatorError(f"hosted page: {paid.status_code} {paid.text[:500]}")
        return int(time.time() * 1000)


# -- reading what the page sent ---------------------------------------------------------------


def payloads(messages: list[dict]) -> list[str]:
    """Every quick reply and postback button payload in ``messages``, in order."""
    found = []
    for message in messages:
        found += [reply.get("payload", "") for reply in message.get("quick_replies", [])]
        payload = message.get("attachment", {}).get("payload", {})
        for element in payload.get("elements", []):
            found += [button.get("payload", "") for button in element.get("buttons", [])]
        found += [button.get("payload", "") for button in payload.get("buttons", [])]
    return [payload for payload in found if payload]


def quick_reply_types(messages: list[dict]) -> set[str]:
    return {reply.get("content_type", "") for m in messages for reply in m.get("quick_replies", [])}


def pay_url(messages: list[dict]) -> str | None:
    for message in messages:
        payload = message.get("attachment", {}).get("payload", {})
        for button in payload.get("buttons", []):
            if button.get("type") == "web_url" and "/checkout/" in button.get("url", ""):
                return button["url"]
    return None


def receipt(messages: list[dict]) -> dict | None:
    for message in messages:
        payload = message.get("attachment", {}).get("payload", {})
        if payload.get("template_type") == "receipt":
            return payload
    return None


def _csrf(session: requests.Session) -> dict[str, str]:
    return {"X-CSRFToken": session.cookies.get("csrftoken", "")}


def _ok(response: requests.Response) -> None:
    if response.status_code >= 400:
        raise EmulatorError(f"{response.request.method} {response.url}: {response.status_code}")


# -- one purchase, tap by tap -----------------------------------------------------------------


def _buy_now(messages: list[dict]) -> str | None:
    """The featured products' first *Buy now* (straight to checkout, or to its sizes)."""
    return next((p for p in payloads(messages) if p.startswith("BUY") or "buy=1" in p), None)


def _checkout_or_size(messages: list[dict]) -> bool:
    wanted = {"user_email"} & quick_reply_types(messages)
    return bool(wanted or pay_url(messages) or any(p.startswith("BUY") for p in payloads(messages)))


def purchase(shopper: Shopper, *, name: str, address: str) -> dict:
    """Get Started, Buy now on the first featured product (its first size), the contact quick
    replies and the address when asked, Pay on our checkout page and the test card on the
    hosted page; returns the receipt template that ends it."""
    tapped = shopper.get_started()
    buy = shopper.wait_for("get started", tapped, _buy_now)
    tapped = shopper.postback(buy, "Buy now")
    shopper.wait_for("buy now", tapped, _checkout_or_size)
    messages = shopper.messages_after(tapped)
    if buy.startswith("VARIANTS") and pay_url(messages) is None:
        size = next(p for p in payloads(messages) if p.startswith("BUY"))
        tapped = shopper.quick_reply(size, "size")
        shopper.wait_for(
            "size", tapped, lambda m: pay_url(m) or {"user_email"} & quick_reply_types(m)
        )
        messages = shopper.messages_after(tapped)
    url = pay_url(messages)
    if url is None:  # a new shopper: contact details and address
        tapped = shopper.quick_reply(shopper.email)
        shopper.wait_for("email", tapped, lambda m: {"user_phone_number"} & quick_reply_types(m))
        tapped = shopper.quick_reply(shopper.phone)
        shopper.wait_for("phone", tapped, bool)
        tapped = shopper.say(address)
        url = shopper.wait_for("address", tapped, pay_url)
    paid = shopper.pay(url, name=name)
    return shopper.wait_for("receipt", paid, receipt)
