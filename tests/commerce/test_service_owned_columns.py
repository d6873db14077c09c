"""Columns that services count are never written by a generic save (ADR 0004).

``Variant.stock_on_hand`` / ``stock_reserved``, ``Voucher.times_used``, ``Merchant.order_sequence``
(and ``MessengerPage``'s Graph flags, tested with the page admin) are changed by services with
single conditional ``UPDATE`` statements while staff may have the same row open in a form. A
stale instance saved afterwards keeps what the service counted; asking ``save()`` or
``bulk_update`` to write one of them is refused; and any new non-editable column on a model
staff can edit must be declared service-owned (or be derived from the row itself).
"""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import RequestFactory

from commerce.exceptions import VoucherError
from commerce.models import (
    Cart,
    CartLine,
    Merchant,
    MerchantMembership,
    Order,
    ProductImage,
    Variant,
    Voucher,
)
from commerce.notifications import order_subscribers_clear, order_subscribers_restore
from commerce.services.orders import order_create_from_cart, order_mark_paid
from core.models import ServiceOwnedFieldError
from tests.factories import customer_create, merchant_create, staff_create, variant_create
from tests.html_forms import form_values
from tests.interleave import committed_before_first_write, run_in_other_thread


@pytest.fixture(autouse=True)
def _no_order_notices():
    saved = order_subscribers_clear()
    yield
    order_subscribers_clear()
    order_subscribers_restore(saved)


def _cart(variant: Variant, quantity: int = 1, voucher_code: str = "") -> Cart:
    merchant = variant.merchant
    cart = Cart.objects.create(
        merchant=merchant, customer=customer_create(merchant=merchant), voucher_code=voucher_code
    )
    CartLine.objects.create(cart=cart, variant=variant, quantity=quantity)
    return cart


# -- the model ----------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_stale_variant_saved_after_a_concurrent_reservation_keeps_the_reservation():
    variant = variant_create(stock=10)
    stale = Variant.objects.get(pk=variant.pk)  # read: nothing reserved yet
    cart = _cart(variant, quantity=3)

    order = run_in_other_thread(lambda: order_create_from_cart(cart=cart))
    stale.name = "Medium"
    stale.stock_reserved = 0  # even assigned, a generic save does not write it
    stale.save()

    fresh = Variant.objects.get(pk=variant.pk)
    assert (fresh.name, fresh.stock_on_hand, fresh.stock_reserved) == ("Medium", 10, 3)
    assert (stale.stock_reserved, stale.stock_available) == (3, 7)  # read back after saving
    order_mark_paid(order=order)
    fresh.refresh_from_db()
    assert (fresh.stock_on_hand, fresh.stock_reserved) == (7, 0)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: variant_create(), "stock_reserved"),
        (lambda: variant_create(), "stock_on_hand"),
        (
            lambda: Voucher.objects.create(
                merchant=merchant_create(), code="TEN", kind="percentage", percent_bp=1000
            ),
            "times_used",
        ),
        (lambda: merchant_create(), "order_sequence"),
    ],
)
def test_naming_a_service_owned_column_in_a_generic_write_is_refused(make, field):
    row = make()
    before = getattr(row, field)
    setattr(row, field, before + 5)

    with pytest.raises(ServiceOwnedFieldError, match=field):
        row.save(update_fields=[field])
    with pytest.raises(ServiceOwnedFieldError, match=field):
        type(row).objects.bulk_update([row], [field])

    row.save()  # a generic save leaves it alone and shows what is stored
    assert getattr(row, field) == before
    assert getattr(type(row).objects.get(pk=row.pk), field) == before


@pytest.mark.django_db
def test_a_new_row_is_inserted_with_its_counters():
    variant = variant_create(stock=4, stock_reserved=1)

    assert (variant.stock_on_hand, variant.stock_reserved) == (4, 1)
    assert Variant.objects.filter(pk=variant.pk, stock_on_hand=4, stock_reserved=1).exists()


# Non-editable columns that are derived from the row itself, not counted by services.
DERIVED_COLUMNS = {
    (Variant, "merchant"),  # copied from the product on every save
    (ProductImage, "width"),  # read from the image file
    (ProductImage, "height"),
}


@pytest.mark.django_db
def test_every_counted_column_of_a_model_staff_can_edit_is_service_owned():
    """A model whose admin can change rows is saved whole by generic forms: each column they do
    not show is either derived from the row or declared in ``service_owned_fields``."""
    request = RequestFactory().get("/admin/")
    request.user = get_user_model().objects.create_superuser("root", password="pw-123456789")
    problems = []
    for model, model_admin in admin.site._registry.items():
        if not model_admin.has_change_permission(request):
            continue  # read-only in the admin: only services write these rows
        owned = set(getattr(model, "service_owned_fields", ()))
        for field in model._meta.concrete_fields:
            stamped = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
            if field.editable or field.primary_key or stamped:
                continue
            if (model, field.name) not in DERIVED_COLUMNS and field.name not in owned:
                problems.append(f"{model.__name__}.{field.name}")
    assert problems == []


# -- the admin pages of vouchers and merchants ------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_voucher_page_keeps_a_use_counted_while_it_was_saving(client):
    merchant = merchant_create()
    variant = variant_create(merchant=merchant, stock=10)
    voucher = Voucher.objects.create(
        merchant=merchant, code="ONCE", kind="percentage", percent_bp=1000, usage_limit=1
    )
    client.force_login(staff_create(merchant=merchant))
    page = f"/admin/commerce/voucher/{voucher.pk}/change/"
    values = form_values(client.get(page).content, "voucher_form")
    values["min_spend"] = "1.00"
    cart = _cart(variant, voucher_code="ONCE")

    with committed_before_first_write(
        "commerce_voucher", lambda: order_create_from_cart(cart=cart)
    ):
        response = client.post(page, {**values, "_continue": "1"})

    assert response.status_code == 302
    voucher.refresh_from_db()
    assert (voucher.min_spend_minor, voucher.times_used) == (100, 1)
    # The single-use code stays used up for the next shopper.
    with pytest.raises(VoucherError) as refused:
        order_create_from_cart(cart=_cart(variant, voucher_code="ONCE"))
    assert refused.value.code == "voucher_used_up"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_merchant_page_keeps_the_order_numbers_handed_out_while_it_was_saving(client):
    merchant = merchant_create()
    variant = variant_create(merchant=merchant, stock=10)
    first = order_create_from_cart(cart=_cart(variant))
    owner = staff_create(merchant=merchant, role=MerchantMembership.Role.OWNER)
    client.force_login(owner)
    page = f"/admin/commerce/merchant/{merchant.pk}/change/"
    values = form_values(client.get(page).content, "merchant_form")
    values["support_email"] = "help@example.com"
    cart = _cart(variant)

    with committed_before_first_write(
        "commerce_merchant", lambda: order_create_from_cart(cart=cart)
    ) as placed:
        response = client.post(page, {**values, "_continue": "1"})

    assert response.status_code == 302
    merchant.refresh_from_db()
    assert merchant.support_email == "help@example.com"
    assert merchant.order_sequence == 1002
    assert [first.number[-4:], placed[0].number[-4:]] == ["1001", "1002"]
    third = order_create_from_cart(cart=_cart(variant))
    assert third.number[-4:] == "1003"
    assert Merchant.objects.get(pk=merchant.pk).order_sequence == 1003
    assert Order.objects.filter(merchant=merchant).count() == 3
