"""Shared set-up for the legacy v1.2 buy-button tests: a shop whose Messenger page is in
``buy_button`` mode, the legacy fixtures adapted to it, and charges on the Stripe stub.

The items start from ``tests/messenger/fixtures/legacy_*.json`` (Meta's documented examples)
with our signed payload, our amounts and the addresses a test needs.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from commerce.models import Customer, Merchant, ShippingMethod, Variant
from messenger.events import event_parse
from messenger.models import MessengerPage
from payments.services.buy_button import buy_button_payload_build
from tests.factories import (
    customer_create,
    merchant_create,
    product_create,
    shipping_method_create,
    variant_create,
)

FIXTURES = Path(__file__).resolve().parent.parent / "messenger" / "fixtures"
PAGE_ID = "104412345678901"
PSID = "2401234567890123"

KW_ADDRESS = {
    "street_1": "Block 3, Street 12, House 7",
    "street_2": "",
    "city": "Salmiya",
    "state": "Hawalli",
    "country": "KW",
    "postal_code": "22003",
}


@dataclass
class Shop:
    merchant: Merchant
    page: MessengerPage
    customer: Customer
    variant: Variant
    kuwait: ShippingMethod  # delivers to KW only
    international: ShippingMethod  # delivers to US and GB

    def payload(self, variant: Variant | None = None, customer: Customer | None = None) -> str:
        return buy_button_payload_build(
            variant_id=(variant or self.variant).pk, customer_id=(customer or self.customer).pk
        )


def shop_create(
    *,
    mode: str = MessengerPage.Mode.BUY_BUTTON,
    test_mode: bool = False,
    stock: int = 3,
    price_minor: int = 2500,
    tax_rate_bp: int = 0,
    locale: str = "en_US",
    psid: str = PSID,
) -> Shop:
    merchant = merchant_create(name="Souq Layla", tax_rate_bp=tax_rate_bp)
    page = MessengerPage.objects.create(
        merchant=merchant,
        page_id=PAGE_ID,
        name="Souq Layla",
        access_token="EAAG-test-page-token",
        mode=mode,
        is_test_mode=test_mode,
    )
    customer = customer_create(
        merchant=merchant, page_id=PAGE_ID, psid=psid, locale=locale, last_interaction_at=None
    )
    product = product_create(merchant=merchant, title="Linen shirt", title_ar="قميص كتان")
    variant = variant_create(product=product, price_minor=price_minor, stock=stock, name="M")
    kuwait = shipping_method_create(
        merchant=merchant,
        price_minor=500,
        name="Kuwait courier",
        name_ar="مندوب الكويت",
        countries=["KW"],
        position=1,
    )
    international = shipping_method_create(
        merchant=merchant,
        price_minor=1500,
        name="International",
        name_ar="شحن دولي",
        countries=["US", "GB"],
        delivery_estimate="5-7 days",
        position=2,
    )
    return Shop(merchant, page, customer, variant, kuwait, international)


def legacy_item(name: str, *, psid: str = PSID, **changes: Any) -> dict[str, Any]:
    """The one messaging item of ``legacy_<name>.json`` with ``changes`` applied to its
    ``pre_checkout`` / ``checkout_update`` / ``payment`` object (None removes a key)."""
    body = json.loads((FIXTURES / f"legacy_{name}.json").read_text())
    item = copy.deepcopy(body["entry"][0]["messaging"][0])
    item["sender"]["id"] = psid
    inner = item[name]
    for key, value in changes.items():
        if value is None:
            inner.pop(key, None)
        else:
            inner[key] = value
    return item


def legacy_body(item: dict[str, Any], *, page_id: str = PAGE_ID) -> bytes:
    """A webhook body carrying ``item`` alone, as Meta sends it."""
    entry = {"id": page_id, "time": 1764067200000, "messaging": [item]}
    return json.dumps({"object": "page", "entry": [entry]}).encode()


def payment_item(
    shop: Shop,
    *,
    charge_id: str = "ch_3BuyButton0001",
    amount: str = "25.00",
    currency: str = "USD",
    address: dict[str, Any] | None = None,
    option_id: str | None = None,
    payload: str | None = None,
    psid: str = PSID,
    fb_payment_id: str = "123456789",
) -> dict[str, Any]:
    """The fixture's ``payment`` item paying for ``shop.variant`` (fixed amount, US address
    unless ``address``; ``option_id`` as picked in the dialog)."""
    item = legacy_item(
        "payment",
        psid=psid,
        payload=payload if payload is not None else shop.payload(),
        amount={"currency": currency, "amount": amount},
        payment_credential={
            "provider_type": "stripe",
            "charge_id": charge_id,
            "fb_payment_id": fb_payment_id,
        },
        shipping_option_id=option_id,
    )
    if address is not None:
        item["payment"]["requested_user_info"]["shipping_address"] = address
    return item


def event_of(item: dict[str, Any]):
    return event_parse(item, page_id=PAGE_ID)


def stripe_charge(
    stub,
    *,
    charge_id: str = "ch_3BuyButton0001",
    amount: int = 2500,
    currency: str = "usd",
    paid: bool = True,
    refunded: bool = False,
    brand: str = "visa",
    last4: str = "4242",
) -> dict[str, Any]:
    """A charge on the Stripe stub, as Messenger's checkout would have created it."""
    charge = {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if paid else 0,
        "amount_refunded": amount if refunded else 0,
        "currency": currency,
        "paid": paid,
        "captured": paid,
        "refunded": refunded,
        "status": "succeeded" if paid else "failed",
        "payment_intent": None,
        "payment_method_details": {
            "type": "card",
            "card": {"brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2030},
        },
        "metadata": {},
        "livemode": False,
        "created": int(time.time()),
    }
    with stub.lock:
        stub.charges[charge_id] = charge
    return charge
