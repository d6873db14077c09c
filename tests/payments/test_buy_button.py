"""Legacy v1.2 buy button, the payments side: the signed payload, the button's summary, and a
``payment`` confirmed like a completed Checkout Session (charge retrieved from the Stripe stub,
amount and currency checked, a charge id used once), or refused and flagged.

The payment events are the shared fixture (``legacy_payment.json``) adapted to the shop;
Stripe is the local stub; the receipt is read from the outbox the order notices write to.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core import mail, signing
from django.test import TestCase

from commerce.models import Cart, CartLine, Order, OrderEvent
from commerce.tasks import order_paid_alert_staff
from messenger.models import MessengerPage, OutboundMessage
from messenger.tasks.outbox import outbox_deliver
from payments.gateways import GatewayError
from payments.models import Payment
from payments.services.buy_button import (
    ButtonPayload,
    BuyButtonRefused,
    buy_button_payload_build,
    buy_button_payload_parse,
    buy_button_payment_confirm,
    buy_button_payment_summary,
    legacy_payment_process,
)
from tests.factories import customer_create
from tests.payments.buy_button_support import (
    KW_ADDRESS,
    event_of,
    legacy_item,
    payment_item,
    shop_create,
    stripe_charge,
)

pytestmark = pytest.mark.django_db

CHARGE = "ch_3BuyButton0001"


@pytest.fixture(autouse=True)
def _isolated(settings, monkeypatch):
    """Operators to alert; outbox deliveries recorded at the broker boundary, not published."""
    settings.ADMINS = [("Operators", "ops@example.com")]
    monkeypatch.setattr(outbox_deliver, "apply_async", lambda *args, **kwargs: None)
    monkeypatch.setattr(order_paid_alert_staff, "delay", lambda *args, **kwargs: None)


def _subjects() -> list[str]:
    return [message.subject.removeprefix(settings.EMAIL_SUBJECT_PREFIX) for message in mail.outbox]


def _process(shop, item) -> tuple[str, str]:
    """What the inbox worker does with a stored ``payment`` row; after-commit work runs."""
    with TestCase.captureOnCommitCallbacks(execute=True):
        return legacy_payment_process(page=shop.page, event=event_of(item))


def _receipts(order: Order) -> list[dict]:
    rows = OutboundMessage.objects.filter(order=order, kind=OutboundMessage.Kind.UPDATE)
    return [
        row.message["attachment"]["payload"]
        for row in rows
        if row.message.get("attachment", {}).get("payload", {}).get("template_type") == "receipt"
    ]


# -- the payload --------------------------------------------------------------------------------


def test_payload_round_trips_and_is_signed():
    payload = buy_button_payload_build(variant_id=87, customer_id=12)

    assert payload.startswith("BUYBTN:variant=87,customer=12:")
    assert buy_button_payload_parse(payload=payload) == ButtonPayload(87, 12)
    assert buy_button_payload_parse(payload=buy_button_payload_build(variant_id=5)) == (
        ButtonPayload(5, None)
    )


@pytest.mark.parametrize(
    "forge",
    [
        lambda p: p.replace("variant=87", "variant=88"),  # another variant, same signature
        lambda p: p.replace("customer=12", "customer=13"),
        lambda p: p[:-3] + "abc",  # damaged signature
        lambda p: "BUYBTN:variant=87,customer=12",  # no signature at all
        lambda p: "ORDER:1042",  # the fixture's example payload
        lambda p: "BUYBTN:" + signing.Signer(salt="payments.checkout").sign("variant=87"),
        lambda p: "BUYBTN:" + signing.Signer(salt="payments.buy_button").sign("variant=x"),
        lambda p: "BUYBTN:" + signing.Signer(salt="payments.buy_button").sign("customer=1"),
    ],
)
def test_forged_or_damaged_payloads_are_refused(forge):
    payload = buy_button_payload_build(variant_id=87, customer_id=12)

    with pytest.raises(BuyButtonRefused) as refused:
        buy_button_payload_parse(payload=forge(payload))
    assert refused.value.code == "payload_invalid"


# -- the button's summary -------------------------------------------------------------------------


def test_payment_summary_has_the_price_and_exclusive_tax_as_exact_strings():
    shop = shop_create(tax_rate_bp=500, price_minor=1999)

    summary = buy_button_payment_summary(page=shop.page, variant=shop.variant, label="Linen shirt")

    assert summary == {
        "currency": "USD",
        "payment_type": "FIXED_AMOUNT",
        "is_test_payment": False,
        "merchant_name": "Souq Layla",
        "requested_user_info": [
            "shipping_address",
            "contact_name",
            "contact_phone",
            "contact_email",
        ],
        "price_list": [
            {"label": "Linen shirt", "amount": "19.99"},
            {"label": "Tax", "amount": "1.00"},
        ],
    }


def test_payment_summary_in_test_mode_is_a_test_payment():
    shop = shop_create(test_mode=True)

    summary = buy_button_payment_summary(page=shop.page, variant=shop.variant, label="Shirt")

    assert summary["is_test_payment"] is True
    assert summary["price_list"] == [{"label": "Shirt", "amount": "25.00"}]


# -- payment: confirmed --------------------------------------------------------------------------


def test_payment_is_confirmed_from_the_charge_and_the_order_paid(stripe_stub):
    shop = shop_create(stock=3)
    # What the shopper is still browsing stays in their cart, untouched.
    browsing = Cart.objects.create(merchant=shop.merchant, customer=shop.customer)
    other = shop.variant.product.variants.create(
        name="L", sku="LINEN-L", price_minor=2500, currency="USD", stock_on_hand=5
    )
    CartLine.objects.create(cart=browsing, variant=other, quantity=2)
    stripe_charge(stripe_stub, charge_id=CHARGE, amount=2500, brand="visa", last4="4242")

    status, note = _process(shop, payment_item(shop, charge_id=CHARGE, amount="25.00"))

    order = Order.objects.get()
    assert status == "processed"
    assert note == f"order {order.number} paid"
    assert order.status == Order.Status.PAID
    assert order.customer == shop.customer
    assert (order.total_minor, order.currency, order.shipping_minor) == (2500, "USD", 0)
    assert [(line.variant_id, line.quantity) for line in order.lines.all()] == [
        (shop.variant.pk, 1)
    ]
    # Address and contact from the dialog.
    assert (order.shipping_name, order.shipping_line1, order.shipping_city) == (
        "Peter Chang",
        "1 Hacker Way",
        "MENLO PARK",
    )
    assert (order.shipping_region, order.shipping_country) == ("CA", "US")
    assert (order.contact_email, order.contact_phone) == ("peter@example.com", "+15105551234")
    # The reservation became a sale.
    shop.variant.refresh_from_db()
    assert (shop.variant.stock_on_hand, shop.variant.stock_reserved) == (2, 0)
    # The payment, as Stripe reported the charge.
    payment = Payment.objects.get()
    assert payment.gateway == Payment.Gateway.STRIPE_BUY_BUTTON
    assert payment.status == Payment.Status.SUCCEEDED
    assert (payment.charge_id, payment.amount_minor, payment.currency) == (CHARGE, 2500, "USD")
    assert (payment.card_brand, payment.card_last4) == ("visa", "4242")
    assert payment.succeeded_at is not None
    assert [r.path for r in stripe_stub.requests] == [f"/v1/charges/{CHARGE}"]
    # The receipt waits in the outbox, written by the PAID notice.
    [receipt] = _receipts(order)
    assert receipt["order_number"] == order.number
    assert receipt["payment_method"] == "Visa 4242"
    assert receipt["summary"]["total_cost"] == 25
    assert receipt["recipient_name"] == "Peter Chang"
    # The browsing cart is still open with its lines.
    browsing.refresh_from_db()
    assert browsing.status == Cart.Status.OPEN
    assert list(browsing.lines.values_list("variant_id", "quantity")) == [(other.pk, 2)]


def test_payment_with_the_shipping_option_picked_in_the_dialog(stripe_stub):
    shop = shop_create()
    stripe_charge(stripe_stub, charge_id=CHARGE, amount=3000)

    _process(
        shop,
        payment_item(
            shop,
            charge_id=CHARGE,
            amount="30.00",
            address=KW_ADDRESS,
            option_id=str(shop.kuwait.pk),
        ),
    )

    order = Order.objects.get()
    assert order.status == Order.Status.PAID
    assert (order.shipping_method, order.shipping_minor, order.total_minor) == (
        shop.kuwait,
        500,
        3000,
    )
    assert (order.shipping_city, order.shipping_country) == ("Salmiya", "KW")


def test_the_payment_settles_like_a_checkout_session(stripe_stub):
    """The shared settlement decides, as for a completed Checkout Session: the order is marked
    paid by the payment provider, with the payment and the charge named on its timeline."""
    shop = shop_create()
    stripe_charge(stripe_stub, charge_id=CHARGE, amount=2500)

    _process(shop, payment_item(shop, charge_id=CHARGE, fb_payment_id="987654321"))

    order = Order.objects.get()
    payment = Payment.objects.get()
    [paid] = order.events.filter(kind=OrderEvent.Kind.PAID)
    assert paid.actor == OrderEvent.Actor.PROVIDER
    assert paid.data == {
        "from": "pending_payment",
        "to": "paid",
        "payment_id": payment.pk,
        "charge_id": CHARGE,
        "fb_payment_id": "987654321",
        "gateway": Payment.Gateway.STRIPE_BUY_BUTTON,
        "page_id": shop.page.page_id,
    }
    assert (payment.status, payment.amount_minor, payment.failure_reason) == (
        Payment.Status.SUCCEEDED,
        2500,
        "",
    )


# -- payment: refused or flagged ----------------------------------------------------------------


def test_a_reused_charge_id_is_refused_and_makes_no_second_order(stripe_stub):
    shop = shop_create(stock=5)
    stripe_charge(stripe_stub, charge_id=CHARGE, amount=2500)
    _process(shop, payment_item(shop, charge_id=CHARGE))
    first = Order.objects.get()
    mail.outbox.clear()
    # Another shopper's payment event naming the same charge.
    stranger = customer_create(merchant=shop.merchant, page_id=shop.page.page_id, psid="2409999")
    item = payment_item(
        shop, charge_id=CHARGE, psid="2409999", payload=shop.payload(customer=stranger)
    )

    status, note = _process(shop, item)

    assert status == "processed"
    assert note.startswith("refused (charge_reused)")
    assert Order.objects.count() == 1
    assert Payment.objects.count() == 1
    first.refresh_from_db()
    assert first.status == Order.Status.PAID
    assert first.needs_review
    assert CHARGE in first.review_reason
    assert _subjects() == [f"Charge reused on order {first.number}"]
    shop.variant.refresh_from_db()
    assert shop.variant.stock_on_hand == 4  # one sale only


def test_the_same_payment_delivered_again_is_noted_not_flagged(stripe_stub):
    shop = shop_create()
    stripe_charge(stripe_stub, charge_id=CHARGE, amount=2500)
    _process(shop, payment_item(shop, charge_id=CHARGE))
    mail.outbox.clear()

    _status, note = _process(shop, payment_item(shop, charge_id=CHARGE, fb_payment_id="987"))

    assert note.startswith("refused (charge_reused)")
    assert "redelivery" in note
    assert Order.objects.count() == 1
    assert not Order.objects.get().needs_review
    assert mail.outbox == []


def test_a_test_charge_is_refused_when_the_page_is_not_in_test_mode(stripe_stub):
    shop = shop_create(test_mode=False)

    _status, note = _process(shop, payment_item(shop, charge_id="test_charge_id_12345"))

    assert note.startswith("refused (test_payment_refused)")
    assert not Order.objects.exists()
    assert not Payment.objects.exists()
    assert stripe_stub.requests == []
    shop.variant.refresh_from_db()
    assert shop.variant.stock_reserved == 0


def test_test_charges_are_accepted_in_test_mode_without_asking_stripe(stripe_stub):
    shop = shop_create(test_mode=True, stock=5)

    _process(shop, payment_item(shop, charge_id="test_charge_id_12345"))
    # Messenger gives every test payment the same id: a second one is accepted too.
    _process(shop, payment_item(shop, charge_id="test_charge_id_12345", fb_payment_id="2"))

    assert list(Order.objects.values_list("status", flat=True)) == [Order.Status.PAID] * 2
    payments = list(Payment.objects.order_by("pk"))
    assert [p.is_test for p in payments] == [True, True]
    assert [p.charge_id for p in payments] == [None, None]
    assert all("test_charge_id_12345" in p.idempotency_key for p in payments)
    assert stripe_stub.requests == []


def test_an_amount_mismatch_is_flagged_and_never_paid(stripe_stub):
    shop = shop_create()
    # The charge took 20.00 while the order totals 25.00.
    stripe_charge(stripe_stub, charge_id=CHARGE, amount=2000)

    _status, note = _process(shop, payment_item(shop, charge_id=CHARGE, amount="20.00"))

    order = Order.objects.get()
    assert note == f"order {order.number} pending_payment (flagged for review)"
    assert order.status == Order.Status.PENDING_PAYMENT
    assert order.needs_review
    assert "Payment mismatch" in order.review_reason
    payment = Payment.objects.get()
    assert payment.status == Payment.Status.MISMATCH
    assert payment.charge_id == CHARGE  # recorded: the charge can never pay again
    assert _subjects() == [f"Payment mismatch on order {order.number}"]
    assert _receipts(order) == []


def test_an_event_amount_differing_from_the_charge_is_flagged(stripe_stub):
    shop = shop_create()
    stripe_charge(stripe_stub, charge_id=CHARGE, amount=2500)

    _process(shop, payment_item(shop, charge_id=CHARGE, amount="24.00"))

    order = Order.objects.get()
    assert order.status == Order.Status.PENDING_PAYMENT
    assert order.needs_review
    assert "24.00" in Payment.objects.get().failure_reason


def test_a_currency_mismatch_is_flagged(stripe_stub):
    shop = shop_create()
    stripe_charge(stripe_stub, charge_id=CHARGE, amount=2500, currency="eur")

    _process(shop, payment_item(shop, charge_id=CHARGE, amount="25.00", currency="EUR"))

    order = Order.objects.get()
    assert (order.status, order.needs_review) == (Order.Status.PENDING_PAYMENT, True)
    assert Payment.objects.get().status == Payment.Status.MISMATCH


def test_out_of_stock_at_payment_makes_no_order_and_alerts_the_operators(stripe_stub):
    shop = shop_create(stock=0)
    stripe_charge(stripe_stub, charge_id=CHARGE, amount=2500)

    _status, note = _process(shop, payment_item(shop, charge_id=CHARGE))

    assert note.startswith("refused (out_of_stock)")
    assert "refund it" in note
    assert not Order.objects.exists()
    assert not Cart.objects.filter(status=Cart.Status.ORDERED).exists()
    [alert] = mail.outbox
    assert CHARGE in alert.body and "refund" in alert.body
    assert alert.to == ["ops@example.com"]


def test_an_unknown_charge_is_refused_with_an_alert(stripe_stub):
    shop = shop_create()

    _status, note = _process(shop, payment_item(shop, charge_id="ch_never_made"))

    assert note.startswith("refused (charge_unknown)")
    assert not Order.objects.exists()
    assert len(mail.outbox) == 1


def test_an_unpaid_charge_is_refused(stripe_stub):
    shop = shop_create()
    stripe_charge(stripe_stub, charge_id=CHARGE, amount=2500, paid=False)

    _status, note = _process(shop, payment_item(shop, charge_id=CHARGE))

    assert note.startswith("refused (charge_not_paid)")
    assert not Order.objects.exists()


def test_stripe_not_answering_raises_so_the_inbox_retries(stripe_stub):
    shop = shop_create()
    stripe_charge(stripe_stub, charge_id=CHARGE, amount=2500)
    stripe_stub.fail_next(status=503, type="api_error", path="/v1/charges")

    with pytest.raises(GatewayError) as error:
        buy_button_payment_confirm(page=shop.page, event=event_of(payment_item(shop)))

    assert error.value.transient
    assert not Order.objects.exists()
    # The retry goes through.
    order = buy_button_payment_confirm(page=shop.page, event=event_of(payment_item(shop)))
    assert order.status == Order.Status.PAID


def test_a_forged_payload_makes_no_order_and_alerts(stripe_stub):
    shop = shop_create()
    stripe_charge(stripe_stub, charge_id=CHARGE, amount=2500)
    forged = shop.payload().replace(f"variant={shop.variant.pk}", "variant=999999")

    _status, note = _process(shop, payment_item(shop, charge_id=CHARGE, payload=forged))

    assert note.startswith("refused (payload_invalid)")
    assert not Order.objects.exists()
    assert len(mail.outbox) == 1


def test_a_paypal_credential_is_not_trusted(stripe_stub):
    shop = shop_create()
    item = payment_item(shop)
    item["payment"]["payment_credential"] = {"provider_type": "paypal", "charge_id": "PAY-1"}

    _status, note = _process(shop, item)

    assert note.startswith("refused (credential_unsupported)")
    assert not Order.objects.exists()
    assert stripe_stub.requests == []


def test_a_page_not_in_buy_button_mode_ignores_legacy_payments(stripe_stub):
    shop = shop_create(mode=MessengerPage.Mode.CHECKOUT_PAGE)

    assert _process(shop, payment_item(shop)) == (
        "ignored",
        "the page is not in buy-button mode",
    )
    assert not Order.objects.exists()


@pytest.mark.parametrize("name", ["pre_checkout", "checkout_update"])
def test_answered_callbacks_are_kept_for_the_record(name):
    shop = shop_create()

    assert _process(shop, legacy_item(name, payload=shop.payload())) == (
        "processed",
        "answered by the webhook",
    )
