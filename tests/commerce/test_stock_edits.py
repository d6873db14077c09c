"""Staff edits of a variant never overwrite what the stock services counted meanwhile (ADR 0004).

Every way staff change a variant (API PATCH and PUT, the variant's admin page, the product page's
variant inline, the variant list's editable columns, the CSV import) is raced against a shopper:
a reservation (a new order holds 3 units) or a sale (an earlier order holding 2 units is paid) is
committed on another connection between the edit's read and its write (``tests.interleave``).

What must hold afterwards is what merchants and shoppers see: the reservation is still counted
(``stock_available`` is not overstated, so nobody can buy units another order holds), the sale
stays sold, no counter goes negative, and every order can still be paid. A stock count typed
over a number a sale has since changed is refused with the current stock, nothing saved.

The shop in every test: variant TEE-M, 10 on hand; order A holds 2 (placed before the edit);
cart B (3 units) is ready to be placed as the competing reservation.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from commerce.exceptions import CatalogImportError
from commerce.models import Cart, CartLine, Merchant, Order, Product, Variant
from commerce.notifications import order_subscribers_clear, order_subscribers_restore
from commerce.services.catalog_csv import catalog_csv_export, catalog_csv_import
from commerce.services.orders import order_create_from_cart, order_mark_paid
from tests.factories import (
    customer_create,
    merchant_create,
    product_create,
    staff_create,
    variant_create,
)
from tests.html_forms import form_values
from tests.interleave import committed_before_first_write

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

VARIANTS = "commerce_variant"


@pytest.fixture(autouse=True)
def _no_order_notices():
    """Only commerce runs here (as in the order tests): other apps' notice handlers are off."""
    saved = order_subscribers_clear()
    yield
    order_subscribers_clear()
    order_subscribers_restore(saved)


@dataclass
class Shop:
    merchant: Merchant
    product: Product
    variant: Variant
    staff: object
    order_a: Order
    cart_b: Cart

    def reserve_b(self):
        """The competing reservation: another shopper places an order for 3 units."""
        return lambda: order_create_from_cart(cart=self.cart_b)

    def sell_a(self):
        """The competing sale: order A (2 units) is paid."""
        return lambda: order_mark_paid(order=self.order_a)


def _cart(merchant: Merchant, variant: Variant, quantity: int) -> Cart:
    cart = Cart.objects.create(merchant=merchant, customer=customer_create(merchant=merchant))
    CartLine.objects.create(cart=cart, variant=variant, quantity=quantity)
    return cart


@pytest.fixture
def shop() -> Shop:
    merchant = merchant_create(name="Souq")
    product = product_create(merchant=merchant, title="Linen tee")
    variant = variant_create(product=product, sku="TEE-M", name="M", price_minor=1000, stock=10)
    order_a = order_create_from_cart(cart=_cart(merchant, variant, 2))
    return Shop(
        merchant=merchant,
        product=product,
        variant=variant,
        staff=staff_create(merchant=merchant),
        order_a=order_a,
        cart_b=_cart(merchant, variant, 3),
    )


def stock(variant: Variant) -> tuple[int, int, int]:
    """(on hand, reserved, available) as shoppers and the merchant see them now."""
    fresh = Variant.objects.get(pk=variant.pk)
    return fresh.stock_on_hand, fresh.stock_reserved, fresh.stock_available


def assert_every_order_can_be_paid(shop: Shop, *, on_hand_after: int) -> None:
    """Pay whatever is still pending: each payment sells its units, nothing goes negative."""
    pending = Order.objects.filter(merchant=shop.merchant, status=Order.Status.PENDING_PAYMENT)
    for order in pending:
        order_mark_paid(order=order)
    assert set(Order.objects.values_list("status", flat=True)) == {Order.Status.PAID}
    assert stock(shop.variant) == (on_hand_after, 0, on_hand_after)


# -- API ----------------------------------------------------------------------------------------


def _api(shop: Shop) -> APIClient:
    client = APIClient()
    client.force_authenticate(user=shop.staff)
    return client


def _url(shop: Shop) -> str:
    return f"/api/variants/{shop.variant.pk}/"


def test_api_patch_keeps_a_reservation_made_while_it_was_saving(shop):
    with committed_before_first_write(VARIANTS, shop.reserve_b()):
        response = _api(shop).patch(_url(shop), {"price_minor": 1250}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["price_minor"], body["stock_reserved"], body["stock_available"]) == (1250, 5, 5)
    assert stock(shop.variant) == (10, 5, 5)
    assert_every_order_can_be_paid(shop, on_hand_after=5)


def test_api_patch_of_the_stock_is_refused_when_a_sale_lands_while_it_was_saving(shop):
    body = {"stock_on_hand": 20, "stock_on_hand_seen": 10, "price_minor": 1250}
    with committed_before_first_write(VARIANTS, shop.sell_a()):
        response = _api(shop).patch(_url(shop), body, format="json")

    assert response.status_code == 409, response.content
    error = response.json()
    assert error["code"] == "stock_changed"
    assert "it is now 8, not 10" in error["message"]
    assert error["extra"]["variants"] == [
        {"variant_id": shop.variant.pk, "sku": "TEE-M", "seen": 10, "current": 8, "value": 20}
    ]
    assert stock(shop.variant) == (8, 0, 8)  # the sale stands; nothing of the edit was saved
    assert Variant.objects.get(pk=shop.variant.pk).price_minor == 1000

    # Counted again over what the stock is now, the edit applies.
    again = {"stock_on_hand": 18, "stock_on_hand_seen": 8, "price_minor": 1250}
    response = _api(shop).patch(_url(shop), again, format="json")
    assert response.status_code == 200, response.content
    assert stock(shop.variant) == (18, 0, 18)


def test_api_patch_of_the_stock_without_seen_counts_from_when_the_request_read_it(shop):
    with committed_before_first_write(VARIANTS, shop.sell_a()):
        response = _api(shop).patch(_url(shop), {"stock_on_hand": 20}, format="json")

    assert response.status_code == 409, response.content
    assert stock(shop.variant) == (8, 0, 8)


def test_api_put_keeps_a_reservation_made_while_it_was_saving(shop):
    client = _api(shop)
    representation = client.get(_url(shop)).json()
    assert representation["stock_on_hand_seen"] == representation["stock_on_hand"] == 10

    representation["price_minor"] = 1250
    with committed_before_first_write(VARIANTS, shop.reserve_b()):
        response = client.put(_url(shop), representation, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["stock_reserved"], response.json()["stock_available"]) == (5, 5)
    assert stock(shop.variant) == (10, 5, 5)
    assert_every_order_can_be_paid(shop, on_hand_after=5)


def test_api_put_of_a_representation_read_before_a_sale_keeps_the_sale(shop):
    client = _api(shop)
    representation = client.get(_url(shop)).json()
    order_mark_paid(order=shop.order_a)  # between the client's read and its write

    representation["price_minor"] = 1250  # stock_on_hand (10) sent back as it was read
    response = client.put(_url(shop), representation, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["stock_on_hand"] == 8
    assert stock(shop.variant) == (8, 0, 8)

    # A new count over that stale representation is refused, not applied over the sale.
    representation["stock_on_hand"] = 20
    response = client.put(_url(shop), representation, format="json")
    assert response.status_code == 409
    assert stock(shop.variant) == (8, 0, 8)


def test_api_put_of_the_stock_is_refused_when_a_sale_lands_while_it_was_saving(shop):
    client = _api(shop)
    representation = client.get(_url(shop)).json()
    representation.update(stock_on_hand=20, price_minor=1250)

    with committed_before_first_write(VARIANTS, shop.sell_a()):
        response = client.put(_url(shop), representation, format="json")

    assert response.status_code == 409, response.content
    assert stock(shop.variant) == (8, 0, 8)
    assert Variant.objects.get(pk=shop.variant.pk).price_minor == 1000


# -- admin: the variant's page --------------------------------------------------------------------


def _admin(client, shop: Shop):
    client.force_login(shop.staff)
    return client


def _variant_page(shop: Shop) -> str:
    return f"/admin/commerce/variant/{shop.variant.pk}/change/"


def test_admin_variant_page_keeps_a_reservation_made_while_it_was_saving(client, shop):
    client = _admin(client, shop)
    values = form_values(client.get(_variant_page(shop)).content, "variant_form")
    values["price"] = "12.50"

    with committed_before_first_write(VARIANTS, shop.reserve_b()):
        response = client.post(_variant_page(shop), {**values, "_continue": "1"})

    assert response.status_code == 302
    assert Variant.objects.get(pk=shop.variant.pk).price_minor == 1250
    assert stock(shop.variant) == (10, 5, 5)
    assert_every_order_can_be_paid(shop, on_hand_after=5)


def test_admin_variant_page_count_is_refused_when_a_sale_lands_while_it_was_saving(client, shop):
    client = _admin(client, shop)
    values = form_values(client.get(_variant_page(shop)).content, "variant_form")
    values.update(stock_on_hand="20", price="12.50")

    with committed_before_first_write(VARIANTS, shop.sell_a()):
        response = client.post(_variant_page(shop), {**values, "_continue": "1"}, follow=True)

    assert response.redirect_chain == [(_variant_page(shop), 302)]
    assert "The stock of TEE-M changed while you were editing it: it is now 8, not 10" in (
        response.content.decode()
    )
    assert stock(shop.variant) == (8, 0, 8)
    assert Variant.objects.get(pk=shop.variant.pk).price_minor == 1000  # nothing was saved
    # The page shown again carries the stock as it is now.
    shown = form_values(response.content, "variant_form")
    assert (shown["stock_on_hand"], shown["initial-stock_on_hand"]) == ("8", "8")


def test_admin_variant_page_opened_before_a_sale_shows_the_new_stock_then_saves(client, shop):
    client = _admin(client, shop)
    values = form_values(client.get(_variant_page(shop)).content, "variant_form")
    assert values["initial-stock_on_hand"] == "10"  # the page says what it showed
    order_mark_paid(order=shop.order_a)  # while the merchant types

    values["stock_on_hand"] = "20"
    response = client.post(_variant_page(shop), {**values, "_continue": "1"})

    assert response.status_code == 200
    assert "The stock changed while you were editing: it is now 8, not 10" in (
        response.content.decode()
    )
    assert stock(shop.variant) == (8, 0, 8)
    # Saving the page again (the merchant confirms 20 over the 8 now shown) applies it.
    values = form_values(response.content, "variant_form")
    assert (values["stock_on_hand"], values["initial-stock_on_hand"]) == ("20", "8")
    response = client.post(_variant_page(shop), {**values, "_continue": "1"})
    assert response.status_code == 302
    assert stock(shop.variant) == (20, 0, 20)


def test_admin_variant_page_sent_twice_sets_the_count_once(client, shop):
    client = _admin(client, shop)
    values = form_values(client.get(_variant_page(shop)).content, "variant_form")
    values["stock_on_hand"] = "15"

    first = client.post(_variant_page(shop), {**values, "_continue": "1"})
    second = client.post(_variant_page(shop), {**values, "_continue": "1"})  # a double click

    assert (first.status_code, second.status_code) == (302, 302)
    assert stock(shop.variant) == (15, 2, 13)


# -- admin: the product page's variant inline -----------------------------------------------------


def _product_page(shop: Shop) -> str:
    return f"/admin/commerce/product/{shop.product.pk}/change/"


def test_product_page_inline_keeps_a_reservation_made_while_it_was_saving(client, shop):
    client = _admin(client, shop)
    values = form_values(client.get(_product_page(shop)).content, "product_form")
    assert values["variants-0-sku"] == "TEE-M"
    values["variants-0-price"] = "12.50"

    with committed_before_first_write(VARIANTS, shop.reserve_b()):
        response = client.post(_product_page(shop), {**values, "_continue": "1"})

    assert response.status_code == 302
    assert Variant.objects.get(pk=shop.variant.pk).price_minor == 1250
    assert stock(shop.variant) == (10, 5, 5)
    assert_every_order_can_be_paid(shop, on_hand_after=5)


def test_product_page_inline_count_is_refused_when_a_sale_lands_while_it_was_saving(client, shop):
    client = _admin(client, shop)
    values = form_values(client.get(_product_page(shop)).content, "product_form")
    values.update({"variants-0-stock_on_hand": "20", "title": "Linen tee, washed"})

    with committed_before_first_write(VARIANTS, shop.sell_a()):
        response = client.post(_product_page(shop), {**values, "_continue": "1"}, follow=True)

    assert response.redirect_chain == [(_product_page(shop), 302)]
    assert "it is now 8, not 10" in response.content.decode()
    assert stock(shop.variant) == (8, 0, 8)
    assert Product.objects.get(pk=shop.product.pk).title == "Linen tee"  # nothing was saved


# -- admin: the variant list's editable columns ---------------------------------------------------

CHANGELIST = "/admin/commerce/variant/"


def test_variant_list_editing_keeps_a_reservation_made_while_it_was_saving(client, shop):
    client = _admin(client, shop)
    values = form_values(client.get(CHANGELIST).content, "changelist-form")
    assert values["form-0-id"] == str(shop.variant.pk)
    del values["form-0-is_active"]  # untick "active"

    with committed_before_first_write(VARIANTS, shop.reserve_b()):
        response = client.post(CHANGELIST, {**values, "_save": "Save"})

    assert response.status_code == 302
    assert Variant.objects.get(pk=shop.variant.pk).is_active is False
    assert stock(shop.variant) == (10, 5, 5)
    assert_every_order_can_be_paid(shop, on_hand_after=5)


def test_variant_list_count_is_refused_when_a_sale_lands_while_it_was_saving(client, shop):
    client = _admin(client, shop)
    values = form_values(client.get(CHANGELIST).content, "changelist-form")
    assert values["initial-form-0-stock_on_hand"] == "10"
    values["form-0-stock_on_hand"] = "20"

    with committed_before_first_write(VARIANTS, shop.sell_a()):
        response = client.post(CHANGELIST, {**values, "_save": "Save"}, follow=True)

    assert response.redirect_chain == [(CHANGELIST, 302)]
    assert "it is now 8, not 10" in response.content.decode()
    assert stock(shop.variant) == (8, 0, 8)


def test_variant_list_opened_before_a_sale_refuses_the_count_with_the_new_stock(client, shop):
    client = _admin(client, shop)
    values = form_values(client.get(CHANGELIST).content, "changelist-form")
    order_mark_paid(order=shop.order_a)

    values["form-0-stock_on_hand"] = "20"
    response = client.post(CHANGELIST, {**values, "_save": "Save"})

    assert response.status_code == 200
    assert "it is now 8, not 10" in response.content.decode()
    assert stock(shop.variant) == (8, 0, 8)


# -- CSV import -----------------------------------------------------------------------------------


def _export(shop: Shop) -> list[list[str]]:
    products = Product.objects.filter(pk=shop.product.pk)
    text = "".join(catalog_csv_export(queryset_of_products=products))
    return list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def _set(rows: list[list[str]], column: str, value: str) -> None:
    rows[1][rows[0].index(column)] = value


def test_csv_import_of_an_export_taken_before_a_sale_keeps_the_sale(shop):
    rows = _export(shop)  # the read
    order_mark_paid(order=shop.order_a)  # a sale before the file comes back
    _set(rows, "price", "12.50")

    result = catalog_csv_import(merchant=shop.merchant, file=_csv(rows))

    assert result.variants_updated == 1
    assert Variant.objects.get(pk=shop.variant.pk).price_minor == 1250
    assert stock(shop.variant) == (8, 0, 8)


def test_csv_import_keeps_a_sale_landing_while_it_writes(shop):
    rows = _export(shop)
    _set(rows, "price", "12.50")

    with committed_before_first_write(VARIANTS, shop.sell_a()):
        catalog_csv_import(merchant=shop.merchant, file=_csv(rows))

    assert Variant.objects.get(pk=shop.variant.pk).price_minor == 1250
    assert stock(shop.variant) == (8, 0, 8)


def test_csv_stock_count_over_an_export_taken_before_a_sale_is_refused(shop):
    rows = _export(shop)
    order_mark_paid(order=shop.order_a)
    _set(rows, "stock", "20")
    _set(rows, "price", "12.50")

    with pytest.raises(CatalogImportError) as refused:
        catalog_csv_import(merchant=shop.merchant, file=_csv(rows))

    assert refused.value.code == "catalog_stock_changed"
    [row] = refused.value.extra["rows"]
    assert row["line"] == 2
    assert "TEE-M is now 8, not 10 as in stock_at_export" in row["errors"][0]
    assert stock(shop.variant) == (8, 0, 8)
    assert Variant.objects.get(pk=shop.variant.pk).price_minor == 1000  # nothing imported

    # The merchant checks the count and says what they saw: the import goes through.
    _set(rows, "stock_at_export", "8")
    catalog_csv_import(merchant=shop.merchant, file=_csv(rows))
    assert stock(shop.variant) == (20, 0, 20)


def test_csv_stock_count_is_refused_when_a_sale_lands_while_it_writes(shop):
    rows = _export(shop)
    _set(rows, "stock", "20")

    with (
        pytest.raises(CatalogImportError),
        committed_before_first_write(VARIANTS, shop.sell_a()),
    ):
        catalog_csv_import(merchant=shop.merchant, file=_csv(rows))

    assert stock(shop.variant) == (8, 0, 8)


def test_csv_file_imported_twice_sets_the_count_once(shop):
    rows = _export(shop)
    _set(rows, "stock", "15")

    catalog_csv_import(merchant=shop.merchant, file=_csv(rows))
    again = catalog_csv_import(merchant=shop.merchant, file=_csv(rows))

    assert again.variants_unchanged == 1
    assert stock(shop.variant) == (15, 2, 13)


def test_csv_bad_stock_at_export_cell_is_refused_with_its_column(shop):
    rows = _export(shop)
    _set(rows, "stock", "20")
    _set(rows, "stock_at_export", "-1")

    with pytest.raises(CatalogImportError) as refused:
        catalog_csv_import(merchant=shop.merchant, file=_csv(rows))

    assert refused.value.extra["rows"] == [
        {"line": 2, "errors": ["stock_at_export: cannot be negative."]}
    ]
    assert stock(shop.variant) == (10, 2, 8)
