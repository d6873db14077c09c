"""Placing an order from a cart: server-side totals, snapshots, numbers, attribution, stock."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from commerce.exceptions import (
    AddressError,
    CartError,
    OutOfStockError,
    ShippingError,
    VoucherError,
)
from commerce.models import (
    Address,
    Cart,
    Merchant,
    Order,
    OrderEvent,
    OrderLine,
    ProductImage,
    StockReservation,
    Variant,
    Voucher,
)
from commerce.services import pricing
from commerce.services.orders import (
    _generated_prefix,
    order_create_from_cart,
    order_number_prefix,
)
from tests.factories import (
    customer_create,
    merchant_create,
    product_create,
    shipping_method_create,
    variant_create,
)

pytestmark = pytest.mark.django_db


def _address(customer, **fields) -> Address:
    fields = {
        "name": "Layla Haddad",
        "line1": "Block 3, Street 12",
        "line2": "House 7",
        "city": "Salmiya",
        "region": "Hawalli",
        "postal_code": "22003",
        "country": "KW",
        "phone": "+96550099999",
        **fields,
    }
    return Address.objects.create(customer=customer, **fields)


def test_totals_are_computed_server_side_and_snapshotted(shop, customer, make_cart):
    """Subtotal, voucher discount, shipping and exclusive tax are stored, with the tax rate."""
    Merchant.objects.filter(pk=shop.pk).update(tax_rate_bp=500)
    shop.refresh_from_db()
    shirt = variant_create(merchant=shop, price_minor=1000)
    scarf = variant_create(merchant=shop, price_minor=2500)
    method = shipping_method_create(merchant=shop, price_minor=500, name="Express")
    Voucher.objects.create(merchant=shop, code="EID10", kind="percentage", percent_bp=1000)
    cart = make_cart(customer, [(shirt, 2), (scarf, 1)], voucher_code="eid10")

    order = order_create_from_cart(cart=cart, shipping_method=method, address=_address(customer))

    order.refresh_from_db()
    assert order.status == Order.Status.PENDING_PAYMENT
    assert order.currency == "USD"
    assert order.subtotal_minor == 4500
    assert order.discount_minor == 450
    assert order.shipping_minor == 500
    # 5% of (4500 - 450 + 500) = 227.5, rounded half up once per order.
    assert order.tax_minor == 228
    assert order.total_minor == 4500 - 450 + 500 + 228
    assert order.tax_rate_bp == 500
    assert order.prices_include_tax is False
    assert order.voucher.code == "EID10"
    assert order.voucher_code == "EID10"
    assert order.shipping_method == method
    assert order.shipping_method_name == "Express"


def test_totals_ignore_later_catalog_changes(place, variant):
    order = place(qty=3)
    Variant.objects.filter(pk=variant.pk).update(price_minor=9999)

    order.refresh_from_db()
    assert order.subtotal_minor == order.total_minor == 3000
    assert order.lines.get().unit_price_minor == 1000


def test_address_and_contact_are_snapshotted_and_default_to_the_customers(place, customer, shop):
    address = _address(customer)
    order = place(address=address)
    Address.objects.filter(pk=address.pk).update(city="Kuwait City")

    order.refresh_from_db()
    assert order.shipping_name == "Layla Haddad"
    assert order.shipping_line1 == "Block 3, Street 12"
    assert order.shipping_line2 == "House 7"
    assert order.shipping_city == "Salmiya"
    assert order.shipping_region == "Hawalli"
    assert order.shipping_postal_code == "22003"
    assert order.shipping_country == "KW"
    assert order.contact_email == "layla@example.com"
    assert order.contact_phone == "+96550012345"
    assert order.locale == "en_US"

    other = customer_create(merchant=shop, psid="9001")
    given = place(customer=other, contact_email="x@example.org", contact_phone="+96560000000")
    assert (given.contact_email, given.contact_phone) == ("x@example.org", "+96560000000")


def test_lines_snapshot_title_in_the_customers_language(shop, make_cart, settings):
    """An ar_AR customer gets the Arabic title and variant name; the image URL is absolute."""
    settings.PUBLIC_BASE_URL = "https://shop.example"
    product = product_create(merchant=shop, title="Linen shirt", title_ar="قميص كتان")
    variant = variant_create(
        product=product, name="Medium", name_ar="وسط", sku="LIN-M", price_minor=1250
    )
    ProductImage.objects.create(product=product, image="products/1/second.jpg", position=2,
                                width=10, height=10)  # fmt: skip
    ProductImage.objects.create(product=product, image="products/1/first.jpg", position=1,
                                width=10, height=10)  # fmt: skip
    plain = variant_create(merchant=shop, sku="PLAIN-1", price_minor=300)
    customer = customer_create(merchant=shop, locale="ar_AR")
    cart = make_cart(customer, [(variant, 2), (plain, 1)])

    order = order_create_from_cart(cart=cart)

    shirt, other = OrderLine.objects.filter(order=order).order_by("sku")
    assert shirt.product_title == "قميص كتان"
    assert shirt.variant_name == "وسط"
    assert shirt.sku == "LIN-M"
    assert shirt.image_url == "https://shop.example/media/products/1/first.jpg"
    assert (shirt.unit_price_minor, shirt.quantity, shirt.total_minor) == (1250, 2, 2500)
    assert shirt.variant == variant
    # No Arabic title: the default one. No image: empty.
    assert other.product_title == plain.product.title
    assert other.image_url == ""
    assert order.locale == "ar_AR"


def test_english_customer_gets_the_default_title(shop, make_cart, customer):
    product = product_create(merchant=shop, title="Linen shirt", title_ar="قميص كتان")
    variant = variant_create(product=product)
    order = order_create_from_cart(cart=make_cart(customer, [(variant, 1)]))
    assert order.lines.get().product_title == "Linen shirt"


def test_number_uses_a_generated_prefix_and_the_merchant_sequence(place, shop, customer):
    first = place()
    second = place()

    prefix = order_number_prefix(shop)
    assert re.fullmatch(r"[A-Z2-7]{4}", prefix)
    assert first.number == f"{prefix}-1001"
    assert second.number == f"{prefix}-1002"
    assert Order.objects.get(pk=first.pk).number == first.number
    shop.refresh_from_db()
    assert shop.order_sequence == 1002


def test_number_uses_the_merchants_own_prefix(make_cart):
    merchant = merchant_create(order_number_prefix="SOUQ")
    variant = variant_create(merchant=merchant)
    customer = customer_create(merchant=merchant)
    order = order_create_from_cart(cart=make_cart(customer, [(variant, 1)]))
    assert order.number == "SOUQ-1001"


def test_generated_prefixes_are_stable_and_never_shared():
    codes = [_generated_prefix(merchant_id) for merchant_id in range(1, 20_001)]
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"[A-Z2-7]{4}", code) for code in codes)
    assert _generated_prefix(42) == _generated_prefix(42)
    assert re.fullmatch(r"[A-Z2-7]{6}", _generated_prefix(2**20))


def test_number_clashing_with_another_merchants_is_skipped(make_cart):
    """A merchant choosing another merchant's generated prefix does not break placement."""
    first_shop = merchant_create()
    clashing = merchant_create(order_number_prefix=order_number_prefix(first_shop))
    numbers = []
    for merchant in (first_shop, clashing):
        variant = variant_create(merchant=merchant)
        customer = customer_create(merchant=merchant)
        numbers.append(order_create_from_cart(cart=make_cart(customer, [(variant, 1)])).number)

    prefix = order_number_prefix(first_shop)
    assert numbers == [f"{prefix}-1001", f"{prefix}-1002"]


def test_attribution_is_copied_from_the_customer(shop, place):
    customer = customer_create(
        merchant=shop,
        referral_ref="product-LIN-M",
        referral_source="ADS",
        referral_ad_id="6045246247433",
    )
    order = place(customer=customer)
    assert order.referral_ref == "product-LIN-M"
    assert order.referral_source == "ADS"
    assert order.referral_ad_id == "6045246247433"


def test_stock_is_reserved_until_now_plus_the_setting(place, variant, settings):
    settings.STOCK_RESERVATION_MINUTES = 45
    now = timezone.now()

    order = place(qty=3, now=now)

    assert order.reserved_until == now + timedelta(minutes=45)
    reservation = StockReservation.objects.get(order=order)
    assert reservation.variant == variant
    assert reservation.quantity == 3
    assert reservation.status == StockReservation.Status.ACTIVE
    assert reservation.expires_at == order.reserved_until
    variant.refresh_from_db()
    assert (variant.stock_on_hand, variant.stock_reserved) == (10, 3)
    kinds = list(order.events.values_list("kind", "actor"))
    assert kinds == [
        (OrderEvent.Kind.CREATED, OrderEvent.Actor.CUSTOMER),
        (OrderEvent.Kind.STOCK_RESERVED, OrderEvent.Actor.CUSTOMER),
    ]


def test_placement_announces_nothing(place, notices):
    place()
    assert notices == []


def test_cart_is_marked_ordered_and_cannot_be_placed_twice(make_cart, customer, variant):
    cart = make_cart(customer, [(variant, 1)])
    order_create_from_cart(cart=cart)

    assert cart.status == Cart.Status.ORDERED
    assert Cart.objects.get(pk=cart.pk).status == Cart.Status.ORDERED
    with pytest.raises(CartError) as caught:
        order_create_from_cart(cart=cart)
    assert caught.value.code == "cart_closed"
    assert Order.objects.count() == 1


def test_empty_cart_is_refused(make_cart, customer):
    cart = make_cart(customer, [])
    with pytest.raises(CartError) as caught:
        order_create_from_cart(cart=cart)
    assert caught.value.code == "cart_empty"
    assert not Order.objects.exists()
    assert Cart.objects.get(pk=cart.pk).status == Cart.Status.OPEN


def test_deactivated_lines_are_left_out_like_in_the_cart_price(make_cart, customer, shop):
    kept = variant_create(merchant=shop, price_minor=700)
    gone = variant_create(merchant=shop, is_active=False)
    order = order_create_from_cart(cart=make_cart(customer, [(kept, 1), (gone, 1)]))
    assert [line.sku for line in order.lines.all()] == [kept.sku]
    assert order.subtotal_minor == 700

    only_gone = make_cart(customer, [(gone, 1)])
    with pytest.raises(CartError):
        order_create_from_cart(cart=only_gone)


def test_out_of_stock_writes_nothing(shop, customer, make_cart):
    """One short line rolls back the whole placement: no order, no reservation, no number."""
    plenty = variant_create(merchant=shop, stock=50)
    scarce = variant_create(merchant=shop, stock=3, sku="SCARCE-1")
    Variant.objects.filter(pk=scarce.pk).update(stock_reserved=2)
    voucher = Voucher.objects.create(merchant=shop, code="TEN", kind="fixed", amount_minor=100,
                                     currency="USD")  # fmt: skip
    cart = make_cart(customer, [(plenty, 5), (scarce, 2)], voucher_code="TEN")

    with pytest.raises(OutOfStockError) as caught:
        order_create_from_cart(cart=cart)

    assert caught.value.code == "out_of_stock"
    assert caught.value.extra == {"variant_id": scarce.pk, "sku": "SCARCE-1", "available": 1}
    assert not Order.objects.exists()
    assert not OrderLine.objects.exists()
    assert not OrderEvent.objects.exists()
    assert not StockReservation.objects.exists()
    plenty.refresh_from_db()
    scarce.refresh_from_db()
    assert (plenty.stock_on_hand, plenty.stock_reserved) == (50, 0)
    assert (scarce.stock_on_hand, scarce.stock_reserved) == (3, 2)
    assert Cart.objects.get(pk=cart.pk).status == Cart.Status.OPEN
    voucher.refresh_from_db()
    assert voucher.times_used == 0
    shop.refresh_from_db()
    assert shop.order_sequence == 1000


def test_sold_out_variant(place, variant):
    Variant.objects.filter(pk=variant.pk).update(stock_on_hand=0)
    with pytest.raises(OutOfStockError) as caught:
        place()
    assert caught.value.extra["available"] == 0


def test_voucher_usage_limit_is_respected(shop, make_cart, variant):
    voucher = Voucher.objects.create(
        merchant=shop, code="ONCE", kind="percentage", percent_bp=500, usage_limit=1
    )
    first = customer_create(merchant=shop)
    second = customer_create(merchant=shop)

    order_create_from_cart(cart=make_cart(first, [(variant, 1)], voucher_code="ONCE"))
    voucher.refresh_from_db()
    assert voucher.times_used == 1

    cart = make_cart(second, [(variant, 1)], voucher_code="ONCE")
    with pytest.raises(VoucherError) as caught:
        order_create_from_cart(cart=cart)
    assert caught.value.code == "voucher_used_up"
    assert Order.objects.count() == 1
    voucher.refresh_from_db()
    assert voucher.times_used == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_voucher_limit_holds_when_another_order_takes_the_last_use_after_the_price_check(
    shop, make_cart, variant, customer, monkeypatch
):
    """One use left: this checkout's price check sees it free, then another shopper's order
    takes it and commits (a real second transaction, in its own thread). The conditional F()
    update refuses this use, so the limit holds whatever the read saw."""
    voucher = Voucher.objects.create(
        merchant=shop, code="ONCE", kind="fixed", amount_minor=100, currency="USD",
        usage_limit=1,
    )  # fmt: skip
    other_variant = variant_create(merchant=shop, price_minor=1000, stock=10)
    rival_cart = make_cart(
        customer_create(merchant=shop), [(other_variant, 1)], voucher_code="ONCE"
    )
    cart = make_cart(customer, [(variant, 1)], voucher_code="ONCE")
    real_check, rival = pricing.voucher_check, {}

    def check_then_a_rival_takes_the_last_use(**kwargs):
        real_check(**kwargs)  # passes: one use left, as read by this transaction
        if not rival:
            rival["started"] = True
            rival["order"] = _in_own_thread(lambda: order_create_from_cart(cart=rival_cart))

    monkeypatch.setattr(pricing, "voucher_check", check_then_a_rival_takes_the_last_use)

    with pytest.raises(VoucherError) as caught:
        order_create_from_cart(cart=cart)

    assert caught.value.code == "voucher_used_up"
    assert isinstance(rival["order"], Order)
    assert list(Order.objects.values_list("pk", flat=True)) == [rival["order"].pk]
    voucher.refresh_from_db()
    assert voucher.times_used == 1
    variant.refresh_from_db()
    assert variant.stock_reserved == 0


def _in_own_thread(job):
    """Run ``job`` in a thread with its own database connection (its own transaction)."""
    result = {}

    def run():
        try:
            result["value"] = job()
        except BaseException as error:  # surfaced below
            result["error"] = error
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "the rival order is stuck (waiting for this transaction?)"
    if "error" in result:
        raise result["error"]
    return result["value"]


def test_unknown_voucher_code_is_refused(make_cart, customer, variant):
    with pytest.raises(VoucherError):
        order_create_from_cart(cart=make_cart(customer, [(variant, 1)], voucher_code="NOPE"))
    assert not Order.objects.exists()


def test_other_merchants_shipping_method_and_other_customers_address_are_refused(
    make_cart, customer, variant, shop
):
    foreign_method = shipping_method_create(merchant=merchant_create())
    stranger = customer_create(merchant=shop)
    cart = make_cart(customer, [(variant, 1)])

    with pytest.raises(ShippingError):
        order_create_from_cart(cart=cart, shipping_method=foreign_method)
    with pytest.raises(AddressError):
        order_create_from_cart(cart=cart, address=_address(stranger))
    assert not Order.objects.exists()


def test_shipping_method_must_deliver_to_the_address(make_cart, customer, variant, shop):
    method = shipping_method_create(merchant=shop, countries=["AE"])
    with pytest.raises(ShippingError):
        order_create_from_cart(
            cart=make_cart(customer, [(variant, 1)]),
            shipping_method=method,
            address=_address(customer, country="KW"),
        )
