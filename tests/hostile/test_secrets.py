"""Secrets stay secret: never in a log line, never in clear in the database, and production
settings pass ``check --deploy`` even when someone sets ``SANDBOX_ENABLED`` there.

The log and database checks run one full purchase with every logger at DEBUG (urllib3 and
requests, the Stripe library, Celery, Django): a shopper chats through signed webhooks (the
Graph stub answers), opens the checkout page and pays (the Stripe stub), Stripe's signed
``checkout.session.completed`` arrives, the receipt goes out; the worker's part runs through the
Celery tasks; a staff member signs in to the admin and the dashboard to look at the order. Then
no log record (message, arguments, exception text) holds a secret, and no column of any table
holds the page token in clear.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

import pytest
from django.apps import apps
from django.db import connection, models
from django.test import Client

from commerce.models import MerchantMembership, Order
from messenger.client import appsecret_proof
from messenger.models import MessengerPage
from payments.models import Payment, ProviderEvent
from payments.tasks import process_provider_event
from tests.core.test_settings import manage, production_env, run_python
from tests.factories import staff_create
from tests.hostile.conftest import PAGE_ID, Shop, shop_create
from tests.hostile.shopper import Shopper
from tests.payments.stripe_stub import stripe_event

pytestmark = [pytest.mark.hostile, pytest.mark.django_db]

PAGE_TOKEN = "EAAsecretpagetokenQ7w8e9r0t1y2u3i4o5p6"
APP_SECRET = "hostile-app-secret-3f9c1e7a5b"
STRIPE_KEY = "sk_test_hostileKEY9d8c7b6a5f4e3d2c1b0a"
WEBHOOK_SECRET = "whsec_hostileWEBHOOK0a1b2c3d4e5f"
FIELD_KEY = "hostile-field-encryption-key-5e6f7a8b9c"
PSID = "2407000000000001"
LOUD_LOGGERS = ("", "urllib3", "requests", "stripe", "celery", "kombu", "django", "messenger")
SANDBOX_APPS = {"sandbox_meta", "sandbox_stripe"}


class Capture(logging.Handler):
    """Every record, at every level; :meth:`texts` renders each as a log file would hold it,
    plus its raw arguments and attributes (a formatter or handler elsewhere may print them)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def texts(self) -> list[str]:
        return [f"{self.format(r)}\n{r.args!r}\n{vars(r)!r}" for r in self.records]


@pytest.fixture
def capture():
    handler = Capture()
    saved = {name: logging.getLogger(name).level for name in LOUD_LOGGERS}
    for name in LOUD_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture
def secret_shop(settings, db) -> Shop:
    settings.MESSENGER_APP_SECRET = APP_SECRET
    settings.STRIPE_SECRET_KEY = STRIPE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.FIELD_ENCRYPTION_KEY = FIELD_KEY
    return shop_create(page_id=PAGE_ID, token=PAGE_TOKEN, name="Souq Secret")


@dataclass
class Purchase:
    order: Order
    cookies: list[str]


@pytest.fixture
def purchase(secret_shop, graph_stub, stripe_stub, capture) -> Purchase:
    graph_stub.set_profile(PSID, first_name="Huda", locale="en_US")
    shopper = Shopper(graph_stub=graph_stub, page_id=PAGE_ID, psid=PSID, via_tasks=True)
    shopper.tap("GET_STARTED", "Get Started")
    shopper.tap(f"ADD:variant={secret_shop.variant.pk}")
    shopper.tap("CHECKOUT")
    shopper.quick_reply("huda@example.com", "huda@example.com")
    shopper.quick_reply("+96550012345", "+96550012345")
    summary = shopper.type("Huda Saleh, Block 3 Street 12, Salmiya, Kuwait")
    pay_url = _pay_button(summary)

    browser = Client()
    assert browser.get(pay_url).status_code == 200
    assert browser.post(pay_url, {"lang": "en"}).status_code == 303
    order = Order.objects.get(customer__psid=PSID)
    payment = Payment.objects.get(order=order)
    session = stripe_stub.session_complete(payment.checkout_session_id)
    body, signature = stripe_event("checkout.session.completed", session)
    answer = Client().post(
        "/payments/stripe/webhook/",
        data=body,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=signature,
    )
    assert answer.status_code == 200
    stored = ProviderEvent.objects.get(event_id=json.loads(body)["id"])
    process_provider_event.apply(args=[stored.pk])
    order.refresh_from_db()
    assert order.status == Order.Status.PAID
    receipt = shopper.send({"read": {"watermark": 1}})  # any event: the drain delivers
    assert receipt or graph_stub.sent_messages(psid=PSID)

    staff = staff_create(merchant=secret_shop.merchant, role=MerchantMembership.Role.OWNER)
    admin = Client()
    signed_in = admin.post(
        "/admin/login/?next=/admin/", {"username": staff.username, "password": "pw-123456789"}
    )
    assert signed_in.status_code == 302, "the staff member could not sign in"
    assert admin.get(f"/admin/commerce/order/{order.pk}/change/").status_code == 200
    admin.get(f"/dashboard/orders/{order.pk}/")
    cookies = [c.value for c in [*admin.cookies.values(), *browser.cookies.values()] if c.value]
    return Purchase(order, cookies)


def _pay_button(messages: list[dict]) -> str:
    for message in messages:
        for button in message.get("attachment", {}).get("payload", {}).get("buttons", []):
            if button.get("type") == "web_url" and "/checkout/" in button.get("url", ""):
                return "/checkout/" + button["url"].split("/checkout/", 1)[1]
    raise AssertionError(f"no Pay button in {messages}")


def test_no_secret_or_token_reaches_the_logs_of_a_whole_purchase(purchase, capture):
    secrets = {
        "page access token": PAGE_TOKEN,
        "appsecret_proof": appsecret_proof(PAGE_TOKEN, APP_SECRET),
        "MESSENGER_APP_SECRET": APP_SECRET,
        "STRIPE_SECRET_KEY": STRIPE_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "FIELD_ENCRYPTION_KEY": FIELD_KEY,
        **{f"cookie {n}": value for n, value in enumerate(purchase.cookies)},
    }
    texts = capture.texts()

    # The capture saw the loud parts, so a leak would have been caught.
    assert any("/me/messages" in text for text in texts), "no Graph request was logged"
    assert any("access_token=***" in text for text in texts), "urllib3 request lines missing"
    assert any(r.name.startswith("celery") for r in capture.records), "no Celery record"
    assert len(purchase.cookies) >= 2  # the admin session and the checkout page's CSRF cookie
    for text in texts:
        for name, secret in secrets.items():
            assert secret not in text, f"{name} logged:\n{text[:2000]}"


def test_page_tokens_are_nowhere_in_the_database_in_clear(purchase):
    """The raw column holds ciphertext (read with a cursor, past the field's decryption), and
    no text column of any table holds the token: not the outbox, not the inbox, not a log."""
    table = MessengerPage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT access_token FROM {table} WHERE page_id = %s", [PAGE_ID])  # noqa: S608
        [(raw,)] = cursor.fetchall()
    assert raw and PAGE_TOKEN not in raw and raw.startswith("gAAAA")  # a Fernet token
    assert MessengerPage.objects.get(page_id=PAGE_ID).access_token == PAGE_TOKEN

    searched = 0
    for model in apps.get_models():
        if model._meta.app_label in SANDBOX_APPS or model._meta.proxy:
            continue
        columns = [
            f.column
            for f in model._meta.concrete_fields
            if isinstance(f, models.CharField | models.TextField | models.JSONField)
        ]
        if not columns:
            continue
        quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
        table = connection.ops.quote_name(model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {quoted} FROM {table}")  # noqa: S608
            for row in cursor.fetchall():
                searched += 1
                assert PAGE_TOKEN not in repr(row), f"the page token in clear in {model.__name__}"
    assert searched > 20


def test_production_settings_pass_check_deploy_and_never_mount_the_sandbox():
    """An operator who sets ``SANDBOX_ENABLED=true`` in production (copied from a dev .env)
    must not expose the Meta and Stripe stand-ins, and ``check --deploy`` stays clean."""
    env = {**production_env(), "SANDBOX_ENABLED": "true"}
    checked = manage(["check", "--deploy", "--fail-level", "WARNING"], env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "no issues" in checked.stdout

    probe = run_python(
        "import config.env; config.env.read_dotenv = lambda path=None: None\n"
        "import django; django.setup()\n"
        "from django.conf import settings\n"
        "from django.urls import Resolver404, resolve\n"
        "try:\n    resolve('/sandbox/')\n    print('MOUNTED')\n"
        "except Resolver404:\n    print('NOT MOUNTED', settings.SANDBOX_ENABLED)",
        [],
        env,
    )
    assert probe.stdout.strip() == "NOT MOUNTED False", probe.stdout + probe.stderr
