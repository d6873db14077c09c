"""Cart services and selectors: validation against the catalog, lines, vouchers and prices."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import QuerySet
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from commerce.exceptions import CartError, OutOfStockError, ShippingError, VoucherError
from commerce.models import Cart, CartLine, Product, Variant, Voucher
from commerce.selectors.carts import (
    cart_lines_for_pricing,
    cart_price,
    shipping_methods_for,
)
from commerce.services.carts import (
    cart_add,
    cart_apply_voucher,
    cart_clear,
    cart_get_open,
    cart_remove,
    cart_remove_voucher,
    cart_set_quantity,
)
from core.money import Money
from tests.factories import (
    customer_create,
    merchant_create,
    product_create,
    shipping_method_create,
    variant_create,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def variant(merchant) -> Variant:
    return variant_create(merchant=merchant, price_minor=1250, stock=5)


def voucher_create(*, merchant, code="SAVE10", **fields) -> Voucher:
    fields.setdefault("kind", Voucher.Kind.PERCENTAGE)
    fields.setdefault("percent_bp", 1000)
    return Voucher.objects.create(merchant=merchant, code=code, **fields)


def lines_of(cart) -> list[tuple[int, int]]:
    return list(
        CartLine.objects.filter(cart=cart).order_by("id").values_list("variant_id", "quantity")
    )


# -- one open cart ---------------------------------------------------------------------------


def test_cart_get_open_returns_the_same_cart_when_called_twice(customer):
    first = cart_get_open(customer=customer)
    second = cart_get_open(customer=customer)
    assert first.pk == second.pk
    assert first.merchant_id == customer.merchant_id
    assert first.status == Cart.Status.OPEN
    assert Cart.objects.filter(customer=customer).count() == 1


def test_cart_get_open_starts_a_new_cart_once_the_old_one_is_ordered(customer):
    old = cart_get_open(customer=customer)
    Cart.objects.filter(pk=old.pk).update(status=Cart.Status.ORDERED)
    new = cart_get_open(customer=customer)
    assert new.pk != old.pk
    assert Cart.objects.filter(customer=customer, status=Cart.Status.OPEN).get() == new


def test_cart_get_open_returns_the_winners_cart_when_it_loses_the_race(customer, monkeypatch):
    """A competing request creates the cart between our lookup and our insert: our insert hits
    the partial unique constraint, and we return the competitor's cart."""
    real_first = QuerySet.first
    competitor = {}

    def lookup_then_competitor_inserts(queryset):
        found = real_first(queryset)
        if queryset.model is Cart and found is None and not competitor:
            competitor["cart"] = Cart.objects.create(customer=customer, merchant=customer.merchant)
        return found

    monkeypatch.setattr(QuerySet, "first", lookup_then_competitor_inserts)
    cart = cart_get_open(customer=customer)
    assert cart.pk == competitor["cart"].pk
    assert Cart.objects.filter(customer=customer, status=Cart.Status.OPEN).count() == 1
    # The failed insert did not break the surrounding transaction.
    assert cart_get_open(customer=customer).pk == cart.pk


def test_each_customer_has_their_own_cart(merchant):
    one = cart_get_open(customer=customer_create(merchant=merchant))
    two = cart_get_open(customer=customer_create(merchant=merchant))
    assert one.pk != two.pk


# -- cart_add ---------------------------------------------------------------------------------


def test_cart_add_creates_a_line(cart, variant):
    line = cart_add(cart=cart, variant_id=variant.pk, quantity=2)
    assert (line.variant_id, line.quantity) == (variant.pk, 2)
    assert lines_of(cart) == [(variant.pk, 2)]


def test_cart_add_merges_with_the_existing_line(cart, variant):
    cart_add(cart=cart, variant_id=variant.pk)
    line = cart_add(cart=cart, variant_id=variant.pk, quantity=2)
    assert line.quantity == 3
    assert lines_of(cart) == [(variant.pk, 3)]


@pytest.mark.parametrize("quantity", [0, -1, 1.0, 2.5, "2", None, True])
def test_cart_add_refuses_a_quantity_that_is_not_a_positive_int(cart, variant, quantity):
    with pytest.raises(CartError) as error:
        cart_add(cart=cart, variant_id=variant.pk, quantity=quantity)
    assert error.value.code == "quantity_invalid"
    assert lines_of(cart) == []


def test_cart_add_allows_up_to_the_merchant_limit(cart, merchant):
    merchant.max_line_quantity = 3
    merchant.save()
    variant = variant_create(merchant=merchant, stock=100)
    assert cart_add(cart=cart, variant_id=variant.pk, quantity=3).quantity == 3


@pytest.mark.parametrize("quantity", [4, 10**12])
def test_cart_add_refuses_more_than_the_merchant_limit(cart, merchant, quantity):
    merchant.max_line_quantity = 3
    merchant.save()
    variant = variant_create(merchant=merchant, stock=100)
    with pytest.raises(CartError) as error:
        cart_add(cart=cart, variant_id=variant.pk, quantity=quantity)
    assert error.value.code == "quantity_limit"
    assert error.value.extra == {"variant_id": variant.pk, "max_quantity": 3}
    assert lines_of(cart) == []


def test_cart_add_counts_the_line_already_in_the_cart_against_the_limit(cart, merchant):
    merchant.max_line_quantity = 3
    merchant.save()
    variant = variant_create(merchant=merchant, stock=100)
    cart_add(cart=cart, variant_id=variant.pk, quantity=2)
    with pytest.raises(CartError) as error:
        cart_add(cart=cart, variant_id=variant.pk, quantity=2)
    assert error.value.code == "quantity_limit"
    assert lines_of(cart) == [(variant.pk, 2)]


def test_cart_add_refuses_more_than_the_stock(cart, merchant):
    variant = variant_create(merchant=merchant, stock=3)
    with pytest.raises(OutOfStockError) as error:
        cart_add(cart=cart, variant_id=variant.pk, quantity=4)
    assert error.value.code == "out_of_stock"
    assert error.value.extra == {"variant_id": variant.pk, "available": 3}
    assert "3" in error.value.message
    assert cart_add(cart=cart, variant_id=variant.pk, quantity=3).quantity == 3


def test_cart_add_counts_reserved_units_as_unavailable(cart, merchant):
    variant = variant_create(merchant=merchant, stock=5)
    Variant.objects.filter(pk=variant.pk).update(stock_reserved=4)
    cart_add(cart=cart, variant_id=variant.pk)
    with pytest.raises(OutOfStockError) as error:
        cart_add(cart=cart, variant_id=variant.pk)
    assert error.value.extra == {"variant_id": variant.pk, "available": 1}
    assert lines_of(cart) == [(variant.pk, 1)]


def test_cart_add_refuses_a_sold_out_variant(cart, merchant):
    variant = variant_create(merchant=merchant, stock=0)
    with pytest.raises(OutOfStockError) as error:
        cart_add(cart=cart, variant_id=variant.pk)
    assert error.value.extra == {"variant_id": variant.pk, "available": 0}


def _unavailable_variant_id(kind: str, merchant) -> object:
    if kind == "unknown":
        return (Variant.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) + 1000
    if kind == "not an int":
        return "12"
    if kind == "inactive variant":
        return variant_create(merchant=merchant, is_active=False).pk
    if kind == "inactive product":
        product = product_create(merchant=merchant, is_active=False)
        return variant_create(product=product).pk
    assert kind == "other merchant"
    return variant_create(merchant=merchant_create(), stock=100).pk


UNAVAILABLE = ["unknown", "not an int", "inactive variant", "inactive product", "other merchant"]


@pytest.mark.parametrize("kind", UNAVAILABLE)
def test_cart_add_refuses_unavailable_variants_with_one_and_the_same_error(cart, merchant, kind):
    """A forged id of another shop's variant reads exactly like an unknown id."""
    with pytest.raises(CartError) as unknown:
        cart_add(cart=cart, variant_id=_unavailable_variant_id("unknown", merchant))
    with pytest.raises(CartError) as error:
        cart_add(cart=cart, variant_id=_unavailable_variant_id(kind, merchant))
    assert error.value.code == "variant_unavailable"
    assert error.value.as_dict() == unknown.value.as_dict()
    assert lines_of(cart) == []


def test_cart_add_refuses_changes_to_a_closed_cart(cart, variant):
    Cart.objects.filter(pk=cart.pk).update(status=Cart.Status.ORDERED)
    with pytest.raises(CartError) as error:
        cart_add(cart=cart, variant_id=variant.pk)
    assert error.value.code == "cart_closed"
    assert lines_of(cart) == []


def test_cart_add_marks_the_cart_as_changed(cart, variant):
    before = Cart.objects.get(pk=cart.pk).updated_at
    cart_add(cart=cart, variant_id=variant.pk)
    assert Cart.objects.get(pk=cart.pk).updated_at > before


def _fill(cart, merchant, size: int) -> Variant:
    """Put ``size`` lines in the cart; return one more variant, not yet in it."""
    product = product_create(merchant=merchant)
    for _ in range(size):
        cart_add(cart=cart, variant_id=variant_create(product=product).pk)
    return variant_create(product=product)


def _queries(function) -> int:
    with CaptureQueriesContext(connection) as context:
        function()
    return len(context.captured_queries)


def test_cart_add_runs_the_same_queries_whatever_the_cart_size(
    merchant, django_assert_max_num_queries
):
    counts = []
    for size in (1, 30):
        cart = cart_get_open(customer=customer_create(merchant=merchant))
        new = _fill(cart, merchant, size)
        present = CartLine.objects.filter(cart=cart).first().variant_id
        # Adding a new line, then merging into an existing one.
        with django_assert_max_num_queries(7):
            counts.append(_queries(lambda: cart_add(cart=cart, variant_id=new.pk)))  # noqa: B023
        with django_assert_max_num_queries(7):
            counts.append(_queries(lambda: cart_add(cart=cart, variant_id=present)))  # noqa: B023
    assert counts[:2] == counts[2:]


# -- cart_set_quantity, cart_remove, cart_clear -----------------------------------------------


def test_cart_set_quantity_by_line_id(cart, variant):
    line = cart_add(cart=cart, variant_id=variant.pk)
    updated = cart_set_quantity(cart=cart, line_id=line.pk, quantity=4)
    assert (updated.pk, updated.quantity) == (line.pk, 4)
    assert lines_of(cart) == [(variant.pk, 4)]


def test_cart_set_quantity_by_variant_id(cart, variant):
    cart_add(cart=cart, variant_id=variant.pk, quantity=3)
    assert cart_set_quantity(cart=cart, variant_id=variant.pk, quantity=1).quantity == 1
    assert lines_of(cart) == [(variant.pk, 1)]


def test_cart_set_quantity_zero_removes_the_line(cart, variant):
    line = cart_add(cart=cart, variant_id=variant.pk, quantity=2)
    assert cart_set_quantity(cart=cart, line_id=line.pk, quantity=0) is None
    assert lines_of(cart) == []
    # Replayed: still nothing, no error.
    assert cart_set_quantity(cart=cart, line_id=line.pk, quantity=0) is None


@pytest.mark.parametrize("quantity", [-1, 1.5, "3", None])
def test_cart_set_quantity_refuses_invalid_quantities(cart, variant, quantity):
    cart_add(cart=cart, variant_id=variant.pk, quantity=2)
    with pytest.raises(CartError) as error:
        cart_set_quantity(cart=cart, variant_id=variant.pk, quantity=quantity)
    assert error.value.code == "quantity_invalid"
    assert lines_of(cart) == [(variant.pk, 2)]


def test_cart_set_quantity_checks_the_limit_and_the_stock(cart, merchant):
    variant = variant_create(merchant=merchant, stock=4)
    cart_add(cart=cart, variant_id=variant.pk)
    with pytest.raises(CartError) as limit:
        cart_set_quantity(cart=cart, variant_id=variant.pk, quantity=11)
    assert limit.value.code == "quantity_limit"
    with pytest.raises(OutOfStockError) as stock:
        cart_set_quantity(cart=cart, variant_id=variant.pk, quantity=5)
    assert stock.value.extra == {"variant_id": variant.pk, "available": 4}
    assert lines_of(cart) == [(variant.pk, 1)]


def test_cart_set_quantity_refuses_a_line_of_another_cart(cart, merchant, variant):
    other_cart = cart_get_open(customer=customer_create(merchant=merchant))
    other_line = cart_add(cart=other_cart, variant_id=variant.pk)
    with pytest.raises(CartError) as error:
        cart_set_quantity(cart=cart, line_id=other_line.pk, quantity=2)
    assert error.value.code == "line_unknown"
    assert cart_set_quantity(cart=cart, line_id=other_line.pk, quantity=0) is None
    assert lines_of(other_cart) == [(variant.pk, 1)]


def test_cart_set_quantity_refuses_a_variant_not_in_the_cart(cart, variant):
    with pytest.raises(CartError) as error:
        cart_set_quantity(cart=cart, variant_id=variant.pk, quantity=1)
    assert error.value.code == "line_unknown"


def test_cart_set_quantity_refuses_a_variant_deactivated_since_it_was_added(cart, variant):
    cart_add(cart=cart, variant_id=variant.pk)
    Variant.objects.filter(pk=variant.pk).update(is_active=False)
    with pytest.raises(CartError) as error:
        cart_set_quantity(cart=cart, variant_id=variant.pk, quantity=2)
    assert error.value.code == "variant_unavailable"
    # It can still be taken out.
    assert cart_set_quantity(cart=cart, variant_id=variant.pk, quantity=0) is None


def test_cart_set_quantity_takes_exactly_one_of_line_id_and_variant_id(cart, variant):
    line = cart_add(cart=cart, variant_id=variant.pk)
    with pytest.raises(TypeError):
        cart_set_quantity(cart=cart, quantity=1)
    with pytest.raises(TypeError):
        cart_set_quantity(cart=cart, line_id=line.pk, variant_id=variant.pk, quantity=1)


def test_cart_remove(cart, variant, merchant):
    other = variant_create(merchant=merchant)
    cart_add(cart=cart, variant_id=variant.pk)
    cart_add(cart=cart, variant_id=other.pk)
    assert cart_remove(cart=cart, variant_id=variant.pk) is True
    assert lines_of(cart) == [(other.pk, 1)]
    assert cart_remove(cart=cart, variant_id=variant.pk) is False


def test_cart_clear_removes_every_line(cart, merchant):
    for _ in range(3):
        cart_add(cart=cart, variant_id=variant_create(merchant=merchant).pk)
    assert cart_clear(cart=cart) == 3
    assert lines_of(cart) == []
    assert cart_clear(cart=cart) == 0


def test_changes_to_a_closed_cart_are_refused(cart, variant):
    line = cart_add(cart=cart, variant_id=variant.pk)
    Cart.objects.filter(pk=cart.pk).update(status=Cart.Status.ORDERED)
    for change in (
        lambda: cart_set_quantity(cart=cart, line_id=line.pk, quantity=2),
        lambda: cart_remove(cart=cart, variant_id=variant.pk),
        lambda: cart_clear(cart=cart),
        lambda: cart_apply_voucher(cart=cart, code="X"),
        lambda: cart_remove_voucher(cart=cart),
    ):
        with pytest.raises(CartError) as error:
            change()
        assert error.value.code == "cart_closed"
    assert lines_of(cart) == [(variant.pk, 1)]


# -- vouchers ---------------------------------------------------------------------------------


def test_cart_apply_voucher_is_case_insensitive_and_stores_the_code(cart, merchant, variant):
    voucher_create(merchant=merchant, code="save10")  # stored in capitals
    cart_add(cart=cart, variant_id=variant.pk)
    voucher = cart_apply_voucher(cart=cart, code="  Save10 ")
    assert voucher.code == "SAVE10"
    assert cart.voucher_code == "SAVE10"
    assert Cart.objects.get(pk=cart.pk).voucher_code == "SAVE10"
    b = cart_price(cart=cart)
    assert b.voucher == voucher
    assert (b.subtotal, b.discount, b.total) == (
        Money(1250, "USD"),
        Money(125, "USD"),
        Money(1125, "USD"),
    )


@pytest.mark.parametrize("code", ["NOPE", "", "   ", "X" * 100, None])
def test_cart_apply_voucher_refuses_an_unknown_code(cart, variant, code):
    cart_add(cart=cart, variant_id=variant.pk)
    with pytest.raises(VoucherError) as error:
        cart_apply_voucher(cart=cart, code=code)
    assert error.value.code == "voucher_unknown"
    assert Cart.objects.get(pk=cart.pk).voucher_code == ""


def test_another_merchants_voucher_is_unknown(cart, variant):
    voucher_create(merchant=merchant_create(), code="THEIRS")
    cart_add(cart=cart, variant_id=variant.pk)
    with pytest.raises(VoucherError) as error:
        cart_apply_voucher(cart=cart, code="THEIRS")
    assert error.value.code == "voucher_unknown"


def test_cart_apply_voucher_refuses_an_expired_code(cart, merchant, variant):
    voucher_create(merchant=merchant, valid_until=timezone.now() - timedelta(minutes=1))
    cart_add(cart=cart, variant_id=variant.pk)
    with pytest.raises(VoucherError) as error:
        cart_apply_voucher(cart=cart, code="SAVE10")
    assert error.value.code == "voucher_expired"
    assert Cart.objects.get(pk=cart.pk).voucher_code == ""


def test_cart_apply_voucher_checks_the_minimum_spend_against_the_cart(cart, merchant, variant):
    voucher_create(merchant=merchant, min_spend_minor=2500)
    cart_add(cart=cart, variant_id=variant.pk)  # 12.50
    with pytest.raises(VoucherError) as error:
        cart_apply_voucher(cart=cart, code="SAVE10")
    assert error.value.code == "voucher_min_spend"
    cart_add(cart=cart, variant_id=variant.pk)  # 25.00
    assert cart_apply_voucher(cart=cart, code="SAVE10").code == "SAVE10"


def test_cart_remove_voucher(cart, merchant, variant):
    voucher_create(merchant=merchant)
    cart_add(cart=cart, variant_id=variant.pk)
    cart_apply_voucher(cart=cart, code="SAVE10")
    cart_remove_voucher(cart=cart)
    assert cart.voucher_code == ""
    assert Cart.objects.get(pk=cart.pk).voucher_code == ""
    assert cart_price(cart=cart).discount == Money(0, "USD")


def test_cart_price_drops_a_voucher_that_no_longer_applies(cart, merchant, variant):
    voucher = voucher_create(merchant=merchant, min_spend_minor=2000)
    cart_add(cart=cart, variant_id=variant.pk, quantity=2)
    cart_apply_voucher(cart=cart, code="SAVE10")
    assert cart_price(cart=cart).discount == Money(250, "USD")
    # Below the minimum spend now.
    cart_set_quantity(cart=cart, variant_id=variant.pk, quantity=1)
    b = cart_price(cart=cart)
    assert (b.voucher, b.discount, b.total) == (None, Money(0, "USD"), Money(1250, "USD"))
    # Back over it, then expired.
    cart_set_quantity(cart=cart, variant_id=variant.pk, quantity=2)
    assert cart_price(cart=cart).voucher == voucher
    later = timezone.now() + timedelta(days=1)
    Voucher.objects.filter(pk=voucher.pk).update(valid_until=later)
    assert cart_price(cart=cart, now=later).voucher is None


# -- prices -----------------------------------------------------------------------------------


def test_cart_price_follows_the_catalog_price(cart, variant):
    cart_add(cart=cart, variant_id=variant.pk, quantity=2)
    assert cart_price(cart=cart).total == Money(2500, "USD")
    Variant.objects.filter(pk=variant.pk).update(price_minor=1399)
    b = cart_price(cart=cart)
    assert b.lines[0].unit_price == Money(1399, "USD")
    assert b.total == Money(2798, "USD")


def test_cart_price_with_shipping_and_tax(customer, merchant, variant):
    merchant.tax_rate_bp = 500
    merchant.save()
    cart = cart_get_open(customer=customer)
    standard = shipping_method_create(merchant=merchant, price_minor=500, countries=["KW"])
    cart_add(cart=cart, variant_id=variant.pk)
    b = cart_price(cart=cart, shipping_method=standard, country="kw")
    # 1250 + 500 = 1750; 5% = 87.5 -> 88.
    assert (b.shipping, b.tax, b.total) == (
        Money(500, "USD"),
        Money(88, "USD"),
        Money(1838, "USD"),
    )
    with pytest.raises(ShippingError) as error:
        cart_price(cart=cart, shipping_method=standard, country="US")
    assert error.value.code == "shipping_country"


def test_cart_price_refuses_another_merchants_shipping_method(cart, variant):
    theirs = shipping_method_create(merchant=merchant_create())
    cart_add(cart=cart, variant_id=variant.pk)
    with pytest.raises(ShippingError) as error:
        cart_price(cart=cart, shipping_method=theirs)
    assert error.value.code == "shipping_inactive"


def test_cart_price_leaves_out_lines_that_can_no_longer_be_bought(cart, merchant, variant):
    gone = variant_create(merchant=merchant, price_minor=700)
    cart_add(cart=cart, variant_id=variant.pk)
    cart_add(cart=cart, variant_id=gone.pk)
    Product.objects.filter(pk=gone.product_id).update(is_active=False)
    assert [v.pk for v, _quantity in cart_lines_for_pricing(cart=cart)] == [variant.pk]
    assert cart_price(cart=cart).total == Money(1250, "USD")


def test_cart_price_of_an_empty_cart_is_refused(cart):
    with pytest.raises(CartError) as error:
        cart_price(cart=cart)
    assert error.value.code == "cart_empty"


def test_cart_price_runs_the_same_queries_whatever_the_cart_size(
    merchant, django_assert_max_num_queries
):
    voucher_create(merchant=merchant)
    counts = []
    for size in (1, 30):
        customer = customer_create(merchant=merchant)
        cart = cart_get_open(customer=customer)
        _fill(cart, merchant, size)
        cart_apply_voucher(cart=cart, code="SAVE10")
        cart = Cart.objects.get(pk=cart.pk)  # merchant not loaded: the worst case
        with django_assert_max_num_queries(3):
            counts.append(_queries(lambda: cart_price(cart=cart)))  # noqa: B023
        assert len(cart_price(cart=cart).lines) == size
    assert counts[0] == counts[1]


def test_cart_lines_for_pricing_is_one_query(cart, merchant, django_assert_num_queries):
    _fill(cart, merchant, 5)
    with django_assert_num_queries(1):
        lines = cart_lines_for_pricing(cart=cart)
        # Products came with the variants.
        assert all(variant.product.title for variant, _quantity in lines)


# -- shipping methods -------------------------------------------------------------------------


def test_shipping_methods_for_lists_active_methods_to_the_country_in_order(merchant):
    express = shipping_method_create(merchant=merchant, name="Express", price_minor=900)
    standard = shipping_method_create(merchant=merchant, name="Standard", price_minor=300)
    gulf = shipping_method_create(merchant=merchant, name="Gulf", countries=["KW", "AE"])
    first = shipping_method_create(merchant=merchant, name="Pick-up", price_minor=0, position=0)
    for method in (express, standard, gulf):
        method.position = 1
        method.save()
    shipping_method_create(merchant=merchant, name="Old", is_active=False)
    shipping_method_create(merchant=merchant, name="US only", countries=["US"])
    shipping_method_create(merchant=merchant_create(), name="Theirs")
    names = [m.name for m in shipping_methods_for(merchant=merchant, country="kw")]
    assert names == ["Pick-up", "Standard", "Gulf", "Express"]
    assert first.name == "Pick-up"
