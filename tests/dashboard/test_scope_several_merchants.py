"""Staff of two merchants (A and B) against a third merchant's rows (C), on every dashboard page
and action, with no merchant picked and with each of theirs picked.

Staff of one merchant get that merchant picked automatically, so they never show what the pages
do when nothing is picked: then the dashboard must still narrow every read to the merchants the
user belongs to. C's rows are never listed, counted, exported or summed, its order and
conversation pages are 404, and every action on them is 404 and changes nothing. The positive
controls (the same requests on A's and B's rows work) show the refusals are not an accident of
the requests.

Every row is made through the services the shop uses (carts placed, orders paid, conversations
paused); C's rows carry the marker ``Qzc`` (names, messages, errors) and C's own currency (BHD),
so "never shown" is a substring search of each answer.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from commerce.models import (
    Address,
    Cart,
    CartLine,
    Customer,
    Merchant,
    MerchantMembership,
    Order,
    OrderEvent,
    Shipment,
)
from commerce.services.orders import order_create_from_cart, order_flag_for_review, order_mark_paid
from commerce.services.sales_figures import day_of
from dashboard.services.funnel import funnel_recompute
from messenger.models import InboundEvent, MessengerPage, OutboundMessage
from payments.models import Refund
from tests.dashboard.conftest import login
from tests.factories import (
    customer_create,
    merchant_create,
    shipping_method_create,
    staff_create,
    variant_create,
)

pytestmark = pytest.mark.django_db

MARK = "Qzc"  # on every row of merchant C
PICKS = [None, "a", "b"]


@dataclass
class Shop:
    key: str
    merchant: Merchant
    page: MessengerPage
    paid: Order  # paid, not shipped
    pending: Order  # pending payment
    waiting: Customer  # bot paused: waits for a person
    talking: Customer  # bot answering
    carts: int  # carts created today
    numbers: list[str] = field(default_factory=list)

    def orders(self) -> list[Order]:
        return [self.paid, self.pending]


def _place(merchant, customer, *, price: int, referral=("", "")) -> Order:
    cart = Cart.objects.create(merchant=merchant, customer=customer)
    variant = variant_create(merchant=merchant, price_minor=price, stock=50)
    CartLine.objects.create(cart=cart, variant=variant, quantity=1)
    address = Address.objects.create(
        customer=customer, name="Layla Haddad", line1="Block 3", city="Salmiya", country="KW"
    )
    order = order_create_from_cart(
        cart=cart, shipping_method=shipping_method_create(merchant=merchant), address=address
    )
    if referral[0]:
        Order.objects.filter(pk=order.pk).update(
            referral_source=referral[0], referral_ad_id=referral[1]
        )
        order.refresh_from_db()
    return order


def _shop(key: str, *, name: str, currency: str, page_id: str, prefix: str, extra_carts=0) -> Shop:
    marker = MARK if key == "c" else ""
    merchant = merchant_create(name=name, currency=currency, order_number_prefix=prefix)
    page = MessengerPage.objects.create(
        merchant=merchant, page_id=page_id, name=f"{name} page", access_token=f"EAA-{key}"
    )
    now = timezone.now()

    def customer(first: str, **fields) -> Customer:
        return customer_create(
            merchant=merchant,
            page_id=page_id,
            first_name=f"{marker}{first}",
            last_name=f"{marker}Haddad{key}",
            email=f"{marker.lower()}{first.lower()}{key}@example.com",
            last_interaction_at=now - timedelta(minutes=5),
            **fields,
        )

    buyer = customer("Buyer")
    price = 7_777_777 if key == "c" else 2500
    referral = ("ADS", "120299999999999") if key == "c" else ("ADS", f"12020000000000{key}")
    paid = order_mark_paid(order=_place(merchant, buyer, price=price, referral=referral))
    pending = _place(merchant, customer("Pending"), price=price)
    for _ in range(extra_carts):
        Cart.objects.create(merchant=merchant, customer=customer("Browser"))
    waiting = customer("Waiting", bot_paused_at=now - timedelta(minutes=30))
    talking = customer("Talking")
    InboundEvent.objects.create(
        page_id=page_id,
        sender_psid=waiting.psid,
        dedupe_key=f"message:m_waiting_{key}",
        kind="message",
        timestamp_ms=int((now - timedelta(minutes=6)).timestamp() * 1000),
        payload={"sender": {"id": waiting.psid}, "message": {"mid": "m", "text": f"{marker}hi"}},
        status=InboundEvent.Status.PROCESSED,
    )
    carts = Cart.objects.filter(merchant=merchant).count()
    return Shop(key, merchant, page, paid, pending, waiting, talking, carts)


def _troubles(shop: Shop) -> None:
    """Every kind of problem "Needs attention" lists, for ``shop`` (merchant C)."""
    now = timezone.now()
    MessengerPage.objects.filter(pk=shop.page.pk).update(token_invalid_at=now - timedelta(hours=1))
    order_flag_for_review(
        order=shop.paid, reason=f"{MARK} paid 9.00, expected 10.00", actor=OrderEvent.Actor.SYSTEM
    )
    # Paid an hour ago without a delivered receipt; unpaid past its reservation.
    Order.objects.filter(pk=shop.paid.pk).update(paid_at=now - timedelta(hours=1))
    Order.objects.filter(pk=shop.pending.pk).update(reserved_until=now - timedelta(minutes=9))
    OutboundMessage.objects.create(
        page=shop.page,
        customer=shop.talking,
        message={"text": "hi"},
        status=OutboundMessage.Status.FAILED,
        error_code="551",
        error_message=f"{MARK} This person is not available right now",
    )
    InboundEvent.objects.create(
        page_id=shop.page.page_id,
        sender_psid=shop.talking.psid,
        dedupe_key=f"stuck-{shop.key}",
        kind="message",
        payload={},
        status=InboundEvent.Status.FAILED,
        error=f"{MARK} boom",
    )


@pytest.fixture
def world(db):
    a = _shop("a", name="Souq A", currency="USD", page_id="1001001", prefix="SA")
    b = _shop("b", name="Souq B", currency="KWD", page_id="2002002", prefix="SB")
    c = _shop("c", name="Souq Qzc", currency="BHD", page_id="3003003", prefix="SC", extra_carts=4)
    _troubles(c)
    funnel_recompute(days=[day_of(timezone.now())])
    for shop in (a, b, c):
        shop.paid.refresh_from_db()
        shop.pending.refresh_from_db()
        shop.numbers = [o.number for o in shop.orders()]
    return {"a": a, "b": b, "c": c}


@pytest.fixture
def staff_ab(world):
    """Owner of merchants A and B (cancel and refund included), nothing of C."""
    user = staff_create(
        merchant=world["a"].merchant, role=MerchantMembership.Role.OWNER, username="two-shops"
    )
    MerchantMembership.objects.create(
        user=user, merchant=world["b"].merchant, role=MerchantMembership.Role.OWNER
    )
    return user


@pytest.fixture(params=PICKS, ids=["no-pick", "a-picked", "b-picked"])
def picked(request, world, staff_ab):
    """``(client, visible shops)``: staff of A and B, with no merchant picked or one picked."""
    client = login(Client(), staff_ab)
    pick = request.param
    if pick is not None:
        response = client.get(reverse("dashboard:orders"), {"merchant": world[pick].merchant.slug})
        assert response.status_code == 200
    visible = [world["a"], world["b"]] if pick is None else [world[pick]]
    return client, visible


def _text(response) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


_RANDOM_TOKENS = re.compile(r'<input[^>]*type="hidden"[^>]*>')


def _assert_nothing_of_c(text: str, world) -> None:
    c = world["c"]
    # Hidden inputs carry random tokens (CSRF, submission keys): one may hold "BHD" or "Qzc".
    text = _RANDOM_TOKENS.sub("", text)
    assert MARK not in text
    assert c.merchant.name not in text
    assert "BHD" not in text
    for number in c.numbers:
        assert number not in text, number


def _snapshot_c(world) -> dict:
    """Everything of C an action could change."""
    c = world["c"]
    return {
        "orders": sorted(
            Order.objects.filter(merchant=c.merchant).values_list(
                "pk", "status", "refunded_minor", "needs_review", "updated_at"
            )
        ),
        "events": OrderEvent.objects.filter(order__merchant=c.merchant).count(),
        "shipments": Shipment.objects.filter(order__merchant=c.merchant).count(),
        "refunds": Refund.objects.filter(order__merchant=c.merchant).count(),
        "customers": sorted(
            Customer.objects.filter(merchant=c.merchant).values_list(
                "pk", "bot_paused_at", "conversation_state", "updated_at"
            )
        ),
        "outbox": OutboundMessage.objects.filter(page=c.page).count(),
    }


# -- the orders list, live updates and the export ----------------------------------------------


def test_the_orders_list_shows_the_picked_merchants_orders_and_never_the_thirds(picked, world):
    client, visible = picked

    html = _text(client.get(reverse("dashboard:orders")))

    for shop in (world["a"], world["b"]):
        for number in shop.numbers:
            assert (number in html) == (shop in visible), (number, shop.key)
    _assert_nothing_of_c(html, world)


@pytest.mark.parametrize("query", ["SC-", "Qzc", "QzcHaddadc", "qzcbuyerc@example.com", "SC"])
def test_searching_never_finds_the_third_merchants_orders(picked, world, query):
    client, _visible = picked

    response = client.get(reverse("dashboard:orders"), {"q": query})

    assert response.status_code == 200
    # The search box and the links echo the query itself; nothing else may name C.
    _assert_nothing_of_c(_text(response).replace(query, ""), world)


@pytest.mark.parametrize("status", ["", "paid", "pending_payment"])
def test_live_updates_never_carry_the_third_merchants_orders(picked, world, status):
    client, visible = picked
    # Every order changes now: C's too.
    Order.objects.update(updated_at=timezone.now())

    response = client.get(reverse("dashboard:orders_live"), {"since": "0", "status": status})

    assert response.status_code == 200
    answer = response.json()
    ids = {row["id"] for row in answer["rows"]} | set(answer["gone"])
    c_ids = {o.pk for o in world["c"].orders()}
    assert not ids & c_ids
    wanted = {o.pk for shop in visible for o in shop.orders() if status in ("", o.status)}
    assert {row["id"] for row in answer["rows"]} == wanted
    _assert_nothing_of_c(json.dumps(answer), world)


def test_the_csv_export_never_holds_the_third_merchants_orders(picked, world):
    client, visible = picked

    response = client.get(reverse("dashboard:orders_export"))

    assert response.status_code == 200
    text = _text(response)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["number"] for r in rows} == {n for shop in visible for n in shop.numbers}
    _assert_nothing_of_c(text, world)


# -- the order page and its actions ------------------------------------------------------------


def _order_actions(order: Order) -> list[tuple[str, dict]]:
    return [
        (reverse("dashboard:order_fulfil", args=[order.pk]), {"carrier": "Aramex"}),
        (reverse("dashboard:order_deliver", args=[order.pk]), {}),
        (reverse("dashboard:order_cancel", args=[order.pk]), {"reason": "asked"}),
        (reverse("dashboard:order_refund", args=[order.pk]), {"amount": "1.000"}),
        (reverse("dashboard:order_note", args=[order.pk]), {"message": "Called"}),
    ]


def test_the_third_merchants_order_pages_are_404(picked, world):
    client, _visible = picked

    for order in world["c"].orders():
        response = client.get(reverse("dashboard:order_detail", args=[order.pk]))
        assert response.status_code == 404, order.number
        _assert_nothing_of_c(_text(response), world)


def test_every_action_on_the_third_merchants_orders_is_404_and_changes_nothing(picked, world):
    client, _visible = picked
    before = _snapshot_c(world)

    for order in world["c"].orders():
        for url, data in _order_actions(order):
            assert client.post(url, data).status_code == 404, url

    assert _snapshot_c(world) == before


def test_the_staffs_own_order_pages_and_actions_work_whatever_is_picked(picked, world):
    """The control: the same requests on A's and B's orders go through (a link to an order of
    theirs opens whichever merchant is picked)."""
    client, _visible = picked
    a, b = world["a"], world["b"]

    for order in a.orders() + b.orders():
        assert client.get(reverse("dashboard:order_detail", args=[order.pk])).status_code == 200

    note = client.post(reverse("dashboard:order_note", args=[a.paid.pk]), {"message": "Called"})
    ship = client.post(reverse("dashboard:order_fulfil", args=[b.paid.pk]), {"carrier": "DHL"})
    cancel = client.post(reverse("dashboard:order_cancel", args=[a.pending.pk]), {"reason": "x"})

    assert (note.status_code, ship.status_code, cancel.status_code) == (302, 302, 302)
    assert a.paid.events.filter(kind=OrderEvent.Kind.NOTE).exists()
    assert b.paid.shipments.get().carrier == "DHL"
    a.pending.refresh_from_db()
    assert a.pending.status == Order.Status.CANCELLED


# -- conversations -------------------------------------------------------------------------------


def test_the_waiting_list_and_its_badge_never_count_the_third_merchants_customers(picked, world):
    client, visible = picked

    page = _text(client.get(reverse("dashboard:conversations")))
    rows = _text(client.get(reverse("dashboard:conversations"), {"fragment": "rows"}))

    for shop in (world["a"], world["b"], world["c"]):
        shown = f"{reverse('dashboard:conversation', args=[shop.waiting.pk])}" in page
        assert shown == (shop in visible), shop.key
    badge = re.search(r"<span[^>]*data-waiting>(\d+)</span>", page)
    assert badge is not None and int(badge.group(1)) == len(visible)
    _assert_nothing_of_c(page, world)
    _assert_nothing_of_c(rows, world)


def test_the_third_merchants_threads_and_their_actions_are_404_and_change_nothing(picked, world):
    client, _visible = picked
    c = world["c"]
    before = _snapshot_c(world)

    for customer in (c.waiting, c.talking):
        for fragment in ({}, {"fragment": "thread"}):
            url = reverse("dashboard:conversation", args=[customer.pk])
            assert client.get(url, fragment).status_code == 404
        for name, data in (
            ("dashboard:conversation_reply", {"text": "Hello from another shop"}),
            ("dashboard:conversation_take_over", {}),
            ("dashboard:conversation_resume", {}),
        ):
            assert client.post(reverse(name, args=[customer.pk]), data).status_code == 404

    assert _snapshot_c(world) == before


def test_the_staffs_own_conversations_open_and_answer_whatever_is_picked(picked, world):
    client, _visible = picked
    a, b = world["a"], world["b"]

    thread = client.get(reverse("dashboard:conversation", args=[b.waiting.pk]))
    reply = client.post(
        reverse("dashboard:conversation_reply", args=[a.waiting.pk]), {"text": "On it"}
    )
    take = client.post(reverse("dashboard:conversation_take_over", args=[b.talking.pk]))
    resume = client.post(reverse("dashboard:conversation_resume", args=[a.waiting.pk]))

    assert (thread.status_code, reply.status_code) == (200, 302)
    assert (take.status_code, resume.status_code) == (302, 302)
    assert OutboundMessage.objects.filter(customer=a.waiting, kind="human_agent").count() == 1
    b.talking.refresh_from_db()
    a.waiting.refresh_from_db()
    assert b.talking.bot_paused_at is not None
    assert a.waiting.bot_paused_at is None


# -- metrics and needs attention ---------------------------------------------------------------


def _today_row(html: str, currency: str) -> dict[str, int]:
    table = re.search(
        rf'<table class="list metrics-summary" data-currency="{currency}">.*?</table>', html, re.S
    )
    assert table is not None, currency
    row = re.search(r'<tr data-period="1">.*?</tr>', table.group(0), re.S).group(0)
    return {k: int(v) for k, v in re.findall(r'data-(paid|gross)="(-?\d+)"', row)}


def test_metrics_add_up_only_the_picked_merchants(picked, world):
    client, visible = picked

    html = _text(client.get(reverse("dashboard:metrics")))

    currencies = set(re.findall(r'class="list metrics-summary" data-currency="(\w+)"', html))
    assert currencies == {shop.merchant.default_currency for shop in visible}
    for shop in visible:
        assert _today_row(html, shop.merchant.default_currency) == {
            "paid": 1,
            "gross": shop.paid.total_minor,
        }
    carts_today = re.search(r'data-step="carts">(\d+)', html)
    assert carts_today is not None and int(carts_today.group(1)) == sum(s.carts for s in visible)
    charts = json.loads(
        re.search(
            r'<script id="chart-data" type="application/json">(.*?)</script>', html, re.S
        ).group(1)
    )
    assert {series["currency"] for series in charts["revenue"]} == currencies
    assert sum(hour["placed"] for hour in charts["hours"]) == 2 * len(visible)
    assert world["c"].paid.referral_ad_id not in html
    _assert_nothing_of_c(html, world)


def test_needs_attention_lists_only_the_picked_merchants_problems(picked, world):
    client, _visible = picked
    c = world["c"]

    html = _text(client.get(reverse("dashboard:attention")))

    assert 'data-kind="review"' in html and 'data-kind="waiting"' in html
    assert c.page.page_id not in html
    assert f'data-customer="{c.waiting.pk}"' not in html
    _assert_nothing_of_c(html, world)


def test_the_third_merchant_cannot_be_picked(picked, world):
    client, _visible = picked

    response = client.get(reverse("dashboard:orders"), {"merchant": world["c"].merchant.slug})

    assert response.status_code == 404
    _assert_nothing_of_c(_text(response), world)
