"""The order admin: merchant staff see and act only on their own orders, customers, carts,
shipping methods and vouchers; the fulfil / mark delivered / cancel actions go through the
order services, and what a service refuses is shown to the user with nothing changed.
"""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from commerce.exceptions import InvalidTransition
from commerce.models import (
    Cart,
    CartLine,
    MerchantMembership,
    Order,
    OrderEvent,
    OrderLine,
    OrderStatus,
    Shipment,
    ShippingMethod,
    Voucher,
)
from commerce.services.orders import order_fulfil
from core.money import Money
from tests.factories import (
    customer_create,
    merchant_create,
    operator_create,
    shipping_method_create,
    staff_create,
    variant_create,
)

pytestmark = pytest.mark.django_db

Role = MerchantMembership.Role
ORDERS = "/admin/commerce/order/"


def _order(shop: dict, number: str, status: str = OrderStatus.PAID, **fields) -> Order:
    """An order of two units of the shop's variant, written straight to the database."""
    merchant, variant = shop["merchant"], shop["variant"]
    if status != OrderStatus.PENDING_PAYMENT:
        fields.setdefault("paid_at", timezone.now())
    order = Order.objects.create(
        merchant=merchant,
        customer=shop["customer"],
        number=number,
        status=status,
        currency=merchant.default_currency,
        subtotal_minor=2 * variant.price_minor,
        total_minor=2 * variant.price_minor,
        contact_email=shop["customer"].email,
        contact_phone=shop["customer"].phone,
        **fields,
    )
    OrderLine.objects.create(
        order=order,
        variant=variant,
        product_title=variant.product.title,
        variant_name=variant.name,
        sku=variant.sku,
        unit_price_minor=variant.price_minor,
        quantity=2,
        total_minor=2 * variant.price_minor,
    )
    return order


def _shop(slug: str, currency: str, first_name: str, prefix: str) -> dict:
    merchant = merchant_create(name=slug.title(), currency=currency)
    customer = customer_create(
        merchant=merchant,
        first_name=first_name,
        last_name=f"{slug}son",
        email=f"{first_name.lower()}@{slug}.example",
        phone="+96550012345" if slug == "beta" else "+15550100",
    )
    variant = variant_create(merchant=merchant, price_minor=1500, sku=f"{prefix}-TEE-M")
    cart = Cart.objects.create(merchant=merchant, customer=customer)
    CartLine.objects.create(cart=cart, variant=variant, quantity=2)
    shop = {
        "merchant": merchant,
        "customer": customer,
        "variant": variant,
        "cart": cart,
        "shippingmethod": shipping_method_create(merchant=merchant, name=f"{slug} courier"),
        "voucher": Voucher.objects.create(
            merchant=merchant, code=f"{prefix}SAVE10", kind=Voucher.Kind.PERCENTAGE, percent_bp=1000
        ),
    }
    shop["order"] = _order(shop, f"{prefix}-1001", referral_ad_id=f"ad-{slug}")
    shop["pending"] = _order(shop, f"{prefix}-1002", status=OrderStatus.PENDING_PAYMENT)
    return shop


@pytest.fixture
def shops():
    return {
        "a": _shop("alpha", "USD", "Alice", "ALP"),
        "b": _shop("beta", "KWD", "Bushra", "BET"),
    }


@pytest.fixture
def manager(shops):
    return staff_create(merchant=shops["a"]["merchant"], role=Role.MANAGER)


@pytest.fixture
def staff_client(client, manager):
    client.force_login(manager)
    return client


def _messages(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def _errors(response) -> list[str]:
    return [text for level, text in _messages(response) if level == "error"]


def _snapshot(order: Order) -> tuple:
    order.refresh_from_db()
    return (order.status, order.shipments.count(), order.events.count(), order.closed_at)


# --- tenancy: five ways a row can leak ---------------------------------------------------------

MODELS = [
    # (model, key in the shop, a search term that only matches shop B's row)
    ("order", "order", "BET-1001"),
    ("order", "order", "Bushra"),
    ("order", "order", "ad-beta"),
    ("order", "order", "+96550012345"),
    ("customer", "customer", "Bushra"),
    ("customer", "customer", "bushra@beta.example"),
    ("cart", "cart", "Bushra"),
    ("shippingmethod", "shippingmethod", "beta courier"),
    ("voucher", "voucher", "BETSAVE10"),
]


@pytest.mark.parametrize(("model", "key"), sorted({(model, key) for model, key, _term in MODELS}))
def test_change_list_shows_only_own_rows(staff_client, shops, model, key):
    response = staff_client.get(f"/admin/commerce/{model}/")
    assert response.status_code == 200
    ids = {obj.pk for obj in response.context["cl"].result_list}
    expected = {shops["a"][key].pk}
    if model == "order":
        expected.add(shops["a"]["pending"].pk)
    assert ids == expected


@pytest.mark.parametrize(("model", "key"), sorted({(model, key) for model, key, _term in MODELS}))
def test_change_view_of_another_merchants_row_does_not_exist(staff_client, shops, model, key):
    other = shops["b"][key]
    response = staff_client.get(f"/admin/commerce/{model}/{other.pk}/change/", follow=True)
    content = response.content.decode()
    assert "doesn’t exist" in content
    assert "Bushra" not in content
    own = staff_client.get(f"/admin/commerce/{model}/{shops['a'][key].pk}/change/")
    assert own.status_code == 200


@pytest.mark.parametrize(("model", "key", "term"), MODELS)
def test_search_does_not_find_another_merchants_rows(staff_client, shops, model, key, term):
    response = staff_client.get(f"/admin/commerce/{model}/", {"q": term})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    # The same search by an operator does find the row: the term is right, the scope hides it.
    staff_client.force_login(operator_create())
    response = staff_client.get(f"/admin/commerce/{model}/", {"q": term})
    assert shops["b"][key].pk in {obj.pk for obj in response.context["cl"].result_list}


def test_search_finds_own_orders_by_customer_name_and_number(staff_client, shops):
    response = staff_client.get(ORDERS, {"q": "Alice"})
    assert {o.pk for o in response.context["cl"].result_list} == {
        shops["a"]["order"].pk,
        shops["a"]["pending"].pk,
    }
    response = staff_client.get(ORDERS, {"q": "ALP-1001"})
    assert [o.pk for o in response.context["cl"].result_list] == [shops["a"]["order"].pk]


def test_merchant_filter_lists_only_visible_merchants(client, shops):
    user = staff_create(merchant=shops["a"]["merchant"])
    third = merchant_create(name="Gamma")
    MerchantMembership.objects.create(user=user, merchant=third, role=Role.MANAGER)
    client.force_login(user)
    response = client.get(ORDERS)
    content = response.content.decode()
    assert "Alpha" in content
    assert "Beta" not in content


@pytest.mark.parametrize(
    ("action", "key", "extra"),
    [
        ("mark_delivered", "order", {"post": "yes"}),
        ("cancel", "pending", {"post": "yes", "reason": "sneaky"}),
        ("fulfil", "order", {}),
    ],
)
def test_actions_on_another_merchants_orders_change_nothing(
    staff_client, shops, action, key, extra
):
    other = shops["b"][key]
    if action == "mark_delivered":
        order_fulfil(order=other, carrier="DHL")
    before = _snapshot(other)
    response = staff_client.post(
        ORDERS, {"action": action, "_selected_action": [other.pk], **extra}, follow=True
    )
    assert response.status_code == 200
    assert _snapshot(other) == before


@pytest.mark.parametrize("view", ["fulfil", "deliver", "cancel"])
def test_order_buttons_on_another_merchants_order_say_it_does_not_exist(staff_client, shops, view):
    other = shops["b"]["order"]
    before = _snapshot(other)
    data = {"carrier": "DHL", "reason": "sneaky"}
    response = staff_client.post(f"{ORDERS}{other.pk}/{view}/", data, follow=True)
    assert "doesn’t exist" in response.content.decode()
    assert _snapshot(other) == before


def test_orders_cannot_be_added_edited_or_deleted(staff_client, shops):
    order = shops["a"]["order"]
    assert staff_client.get(f"{ORDERS}add/").status_code == 403
    response = staff_client.post(f"{ORDERS}{order.pk}/change/", {"contact_email": "x@y.example"})
    assert response.status_code == 403
    staff_client.post(f"{ORDERS}{order.pk}/delete/", {"post": "yes"})
    assert Order.objects.filter(pk=order.pk).exists()
    order.refresh_from_db()
    assert order.contact_email == "alice@alpha.example"


def test_operator_sees_every_merchants_orders(client, shops):
    client.force_login(operator_create())
    response = client.get(ORDERS)
    ids = {o.pk for o in response.context["cl"].result_list}
    assert ids == {shops[s][k].pk for s in "ab" for k in ("order", "pending")}
    assert "merchant" in response.context["cl"].list_display


# --- the order page ----------------------------------------------------------------------------


def test_order_page_shows_amounts_lines_and_timeline(staff_client, shops):
    order = shops["a"]["order"]
    OrderEvent.objects.create(order=order, kind=OrderEvent.Kind.CREATED, message="from the chat")
    response = staff_client.get(f"{ORDERS}{order.pk}/change/")
    content = response.content.decode()
    assert response.status_code == 200
    assert "$30.00" in content  # total, formatted in minor units of USD
    assert "$15.00" in content  # the line's unit price
    assert "ALP-TEE-M" in content
    assert "from the chat" in content
    assert 'name="_save"' not in content  # read-only


def test_order_page_offers_the_buttons_its_status_allows(staff_client, shops):
    paid, pending = shops["a"]["order"], shops["a"]["pending"]
    content = staff_client.get(f"{ORDERS}{paid.pk}/change/").content.decode()
    assert f"{ORDERS}{paid.pk}/fulfil/" in content
    assert f"{ORDERS}{paid.pk}/cancel/" not in content  # paid: refund, not cancel
    assert f"{ORDERS}{paid.pk}/deliver/" not in content  # not shipped yet
    content = staff_client.get(f"{ORDERS}{pending.pk}/change/").content.decode()
    assert f"{ORDERS}{pending.pk}/cancel/" in content
    assert f"{ORDERS}{pending.pk}/fulfil/" not in content
    order_fulfil(order=paid, carrier="DHL")
    content = staff_client.get(f"{ORDERS}{paid.pk}/change/").content.decode()
    assert f"{ORDERS}{paid.pk}/deliver/" in content
    assert f"{ORDERS}{paid.pk}/fulfil/" in content  # a further parcel


def test_order_list_formats_totals_in_the_orders_currency(client, shops):
    client.force_login(operator_create())
    content = client.get(ORDERS).content.decode()
    assert "$30.00" in content
    assert Money(3000, "KWD").format("en") in content  # three decimals for KWD


# --- fulfil ------------------------------------------------------------------------------------


def test_fulfil_through_the_intermediate_page_ships_the_order(staff_client, shops, manager):
    order = shops["a"]["order"]
    page = staff_client.get(f"{ORDERS}{order.pk}/fulfil/")
    assert page.status_code == 200
    assert set(page.context["form"].fields) == {
        "carrier",
        "tracking_number",
        "tracking_url",
        "submission_key",  # hidden: the form's one-time token
    }

    response = staff_client.post(
        f"{ORDERS}{order.pk}/fulfil/",
        {
            "carrier": "Aramex",
            "tracking_number": "AX123",
            "tracking_url": "https://track.example/AX123",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == f"{ORDERS}{order.pk}/change/"
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED
    shipment = order.shipments.get()
    assert (shipment.carrier, shipment.tracking_number) == ("Aramex", "AX123")
    assert shipment.tracking_url == "https://track.example/AX123"
    assert shipment.created_by == manager
    event = order.events.get(kind=OrderEvent.Kind.FULFILLED)
    assert event.actor == OrderEvent.Actor.STAFF
    assert event.actor_user == manager
    assert _errors(response) == []


def test_fulfil_changelist_action_leads_to_the_intermediate_page(staff_client, shops):
    order = shops["a"]["order"]
    response = staff_client.post(ORDERS, {"action": "fulfil", "_selected_action": [order.pk]})
    assert response.status_code == 302
    assert response["Location"] == f"{ORDERS}{order.pk}/fulfil/"


def test_fulfil_action_needs_exactly_one_order(staff_client, shops):
    selected = [shops["a"]["order"].pk, shops["a"]["pending"].pk]
    response = staff_client.post(ORDERS, {"action": "fulfil", "_selected_action": selected})
    assert response.status_code == 302
    assert response["Location"] == ORDERS
    assert _errors(response) == ["Select exactly one order to fulfil."]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"carrier": ""}, "carrier"),
        ({"carrier": "DHL", "tracking_url": "not a url"}, "tracking_url"),
        ({"carrier": "DHL", "tracking_url": "ftp://track.example/1"}, "tracking_url"),
    ],
)
def test_fulfil_form_refuses_bad_input(staff_client, shops, data, field):
    order = shops["a"]["order"]
    response = staff_client.post(f"{ORDERS}{order.pk}/fulfil/", data)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not order.shipments.exists()


def test_fulfil_of_an_unpaid_order_shows_why_and_changes_nothing(staff_client, shops):
    order = shops["a"]["pending"]
    before = _snapshot(order)
    response = staff_client.post(f"{ORDERS}{order.pk}/fulfil/", {"carrier": "DHL"})
    assert response.status_code == 302
    assert _snapshot(order) == before
    assert not Shipment.objects.filter(order=order).exists()
    with pytest.raises(InvalidTransition) as refused:
        order_fulfil(order=order, carrier="DHL")
    assert _errors(response) == [refused.value.message]


# --- mark delivered ----------------------------------------------------------------------------


def test_mark_delivered_asks_for_confirmation_then_delivers(staff_client, shops, manager):
    order = shops["a"]["order"]
    order_fulfil(order=order, carrier="DHL", user=manager)
    response = staff_client.post(
        ORDERS, {"action": "mark_delivered", "_selected_action": [order.pk], "index": 0}
    )
    assert response.status_code == 200
    assert "ALP-1001" in response.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.FULFILLED  # not yet: only asked

    response = staff_client.post(
        ORDERS, {"action": "mark_delivered", "_selected_action": [order.pk], "post": "yes"}
    )
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED
    assert order.shipments.get().delivered_at is not None
    event = order.events.get(kind=OrderEvent.Kind.DELIVERED)
    assert event.actor_user == manager
    assert _messages(response) == [("success", "Marked 1 order delivered: ALP-1001.")]


def test_mark_delivered_reports_each_refusal_and_delivers_the_rest(staff_client, shops):
    shipped, pending = shops["a"]["order"], shops["a"]["pending"]
    order_fulfil(order=shipped, carrier="DHL")
    before = _snapshot(pending)
    response = staff_client.post(
        ORDERS,
        {"action": "mark_delivered", "_selected_action": [shipped.pk, pending.pk], "post": "yes"},
    )
    shipped.refresh_from_db()
    assert shipped.status == OrderStatus.DELIVERED
    assert _snapshot(pending) == before
    errors = _errors(response)
    assert len(errors) == 1 and "ALP-1002" in errors[0]


def test_mark_delivered_button_on_the_order_page(staff_client, shops):
    order = shops["a"]["order"]
    order_fulfil(order=order, carrier="DHL")
    assert staff_client.get(f"{ORDERS}{order.pk}/deliver/").status_code == 200
    response = staff_client.post(f"{ORDERS}{order.pk}/deliver/")
    assert response["Location"] == f"{ORDERS}{order.pk}/change/"
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED


# --- cancel ------------------------------------------------------------------------------------


def test_cancel_asks_for_a_reason_and_records_it(staff_client, shops, manager):
    order = shops["a"]["pending"]
    response = staff_client.post(
        ORDERS, {"action": "cancel", "_selected_action": [order.pk], "index": 0}
    )
    assert response.status_code == 200
    assert "reason" in response.context["form"].fields

    response = staff_client.post(
        ORDERS, {"action": "cancel", "_selected_action": [order.pk], "post": "yes", "reason": ""}
    )
    assert response.status_code == 200
    assert "reason" in response.context["form"].errors
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT

    response = staff_client.post(
        ORDERS,
        {
            "action": "cancel",
            "_selected_action": [order.pk],
            "post": "yes",
            "reason": "Customer asked on the phone",
        },
    )
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    event = order.events.get(kind=OrderEvent.Kind.CANCELLED)
    assert (event.message, event.actor_user) == ("Customer asked on the phone", manager)


def test_cancel_button_on_the_order_page(staff_client, shops):
    order = shops["a"]["pending"]
    assert staff_client.get(f"{ORDERS}{order.pk}/cancel/").status_code == 200
    response = staff_client.post(f"{ORDERS}{order.pk}/cancel/", {"reason": "Duplicate order"})
    assert response["Location"] == f"{ORDERS}{order.pk}/change/"
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED


def test_cancel_of_a_paid_order_is_refused_with_the_services_message(staff_client, shops):
    order = shops["a"]["order"]
    before = _snapshot(order)
    response = staff_client.post(f"{ORDERS}{order.pk}/cancel/", {"reason": "Changed mind"})
    assert _snapshot(order) == before
    errors = _errors(response)
    assert len(errors) == 1 and "ALP-1001" in errors[0]


# --- roles -------------------------------------------------------------------------------------


@pytest.fixture
def support_client(client, shops):
    client.force_login(staff_create(merchant=shops["a"]["merchant"], role=Role.SUPPORT))
    return client


def test_support_role_can_fulfil_and_deliver(support_client, shops):
    order = shops["a"]["order"]
    page = support_client.get(f"{ORDERS}{order.pk}/change/").content.decode()
    assert f"{ORDERS}{order.pk}/fulfil/" in page
    support_client.post(f"{ORDERS}{order.pk}/fulfil/", {"carrier": "DHL"})
    support_client.post(
        ORDERS, {"action": "mark_delivered", "_selected_action": [order.pk], "post": "yes"}
    )
    order.refresh_from_db()
    assert order.status == OrderStatus.DELIVERED


def test_support_role_cannot_cancel(support_client, shops):
    order = shops["a"]["pending"]
    before = _snapshot(order)
    page = support_client.get(f"{ORDERS}{order.pk}/change/").content.decode()
    assert f"{ORDERS}{order.pk}/cancel/" not in page
    assert support_client.get(f"{ORDERS}{order.pk}/cancel/").status_code == 403
    assert support_client.post(f"{ORDERS}{order.pk}/cancel/", {"reason": "x"}).status_code == 403
    actions = support_client.get(ORDERS).context["action_form"].fields["action"].choices
    assert "cancel" not in {name for name, _label in actions}
    support_client.post(
        ORDERS, {"action": "cancel", "_selected_action": [order.pk], "post": "yes", "reason": "x"}
    )
    assert _snapshot(order) == before


def test_support_role_reads_shipping_and_vouchers_but_does_not_change_them(support_client):
    vouchers, methods = Voucher.objects.count(), ShippingMethod.objects.count()
    assert support_client.get("/admin/commerce/voucher/").status_code == 200
    assert support_client.get("/admin/commerce/voucher/add/").status_code == 403
    assert support_client.get("/admin/commerce/shippingmethod/add/").status_code == 403
    voucher = {"code": "SNEAKY", "kind": "percent", "percent_bp": 10000}
    assert support_client.post("/admin/commerce/voucher/add/", voucher).status_code == 403
    method = {"name": "Sneaky", "price": "0.00", "currency": "USD"}
    assert support_client.post("/admin/commerce/shippingmethod/add/", method).status_code == 403
    assert (Voucher.objects.count(), ShippingMethod.objects.count()) == (vouchers, methods)


def test_staff_of_several_merchants_cancel_only_where_they_may(client, shops):
    user = staff_create(merchant=shops["a"]["merchant"], role=Role.SUPPORT)
    MerchantMembership.objects.create(user=user, merchant=shops["b"]["merchant"], role=Role.OWNER)
    client.force_login(user)
    own_a, own_b = shops["a"]["pending"], shops["b"]["pending"]
    before_a = _snapshot(own_a)
    response = client.post(
        ORDERS,
        {
            "action": "cancel",
            "_selected_action": [own_a.pk, own_b.pk],
            "post": "yes",
            "reason": "x",
        },
    )
    assert _snapshot(own_a) == before_a
    own_b.refresh_from_db()
    assert own_b.status == OrderStatus.CANCELLED
    assert _errors(response) == ["ALP-1002: you may not do this."]


@pytest.mark.parametrize(
    "url",
    [ORDERS, f"{ORDERS}1/change/", f"{ORDERS}1/fulfil/", "/admin/commerce/voucher/"],
)
def test_anonymous_users_are_sent_to_the_login_page(client, shops, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_anonymous_post_to_fulfil_changes_nothing(client, shops):
    order = shops["a"]["order"]
    response = client.post(f"{ORDERS}{order.pk}/fulfil/", {"carrier": "DHL"})
    assert response["Location"].startswith("/admin/login/")
    assert not order.shipments.exists()


def test_owner_edits_the_merchants_tax_settings(client, shops):
    merchant = shops["a"]["merchant"]
    client.force_login(staff_create(merchant=merchant, role=Role.OWNER))
    url = f"/admin/commerce/merchant/{merchant.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {name: form.initial.get(name, "") for name in form.fields}
    data.update(tax_rate_bp=500, prices_include_tax="on", tax_label="VAT", order_number_prefix="AL")
    data = {key: value for key, value in data.items() if value is not None and value is not False}
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    merchant.refresh_from_db()
    assert (merchant.tax_rate_bp, merchant.prices_include_tax, merchant.tax_label) == (
        500,
        True,
        "VAT",
    )


# --- shipping methods and vouchers: amounts typed in major units ------------------------------

AMOUNTS = [("USD", "12.50", 1250), ("KWD", "1.250", 1250), ("JPY", "500", 500)]


def _shipping_form(**values) -> dict:
    data = {
        "name": "Express",
        "name_ar": "",
        "price": "5",
        "currency": "",
        "free_over": "",
        "countries": "",
        "delivery_estimate": "",
        "delivery_estimate_ar": "",
        "is_active": "on",
        "position": 0,
    }
    data.update(values)
    return data


def _voucher_form(**values) -> dict:
    data = {
        "code": "welcome",
        "kind": Voucher.Kind.FIXED,
        "percent": "",
        "amount": "1",
        "currency": "",
        "min_spend": "",
        "valid_from_0": "",
        "valid_from_1": "",
        "valid_until_0": "",
        "valid_until_1": "",
        "usage_limit": "",
        "is_active": "on",
    }
    data.update(values)
    return data


def _staff_of(client, currency: str):
    merchant = merchant_create(currency=currency)
    client.force_login(staff_create(merchant=merchant))
    return merchant


@pytest.mark.parametrize(("currency", "typed", "minor"), AMOUNTS)
def test_shipping_prices_are_converted_exactly(client, currency, typed, minor):
    merchant = _staff_of(client, currency)
    response = client.post(
        "/admin/commerce/shippingmethod/add/",
        _shipping_form(price=typed, free_over=typed, countries="kw, ae"),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    method = ShippingMethod.objects.get(merchant=merchant)
    assert (method.price_minor, method.free_over_minor, method.currency) == (minor, minor, currency)
    assert method.countries == ["KW", "AE"]


@pytest.mark.parametrize(("currency", "typed", "minor"), AMOUNTS)
def test_voucher_amounts_are_converted_exactly(client, currency, typed, minor):
    merchant = _staff_of(client, currency)
    response = client.post(
        "/admin/commerce/voucher/add/", _voucher_form(amount=typed, min_spend=typed)
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    voucher = Voucher.objects.get(merchant=merchant)
    assert (voucher.code, voucher.amount_minor, voucher.min_spend_minor) == (
        "WELCOME",
        minor,
        minor,
    )
    assert (voucher.currency, voucher.percent_bp) == (currency, None)


def test_staff_put_vouchers_only_where_they_edit_not_where_they_support(client, shops):
    user = staff_create(merchant=shops["a"]["merchant"], role=Role.MANAGER)
    MerchantMembership.objects.create(user=user, merchant=shops["b"]["merchant"], role=Role.SUPPORT)
    client.force_login(user)
    form = client.get("/admin/commerce/voucher/add/").context["adminform"].form
    assert list(form.fields["merchant"].queryset) == [shops["a"]["merchant"]]
    response = client.post(
        "/admin/commerce/voucher/add/", _voucher_form(merchant=shops["b"]["merchant"].pk)
    )
    assert response.status_code == 200
    assert "merchant" in response.context["adminform"].form.errors
    assert not Voucher.objects.filter(code="WELCOME").exists()


def test_voucher_percentage_is_typed_as_a_percentage(client):
    merchant = _staff_of(client, "USD")
    response = client.post(
        "/admin/commerce/voucher/add/",
        _voucher_form(kind=Voucher.Kind.PERCENTAGE, percent="12.5", amount=""),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    voucher = Voucher.objects.get(merchant=merchant)
    assert (voucher.percent_bp, voucher.amount_minor) == (1250, None)
    page = client.get(f"/admin/commerce/voucher/{voucher.pk}/change/")
    assert page.context["adminform"].form.initial["percent"] == "12.5"


def test_editing_a_shipping_method_shows_major_units(client):
    merchant = _staff_of(client, "KWD")
    method = shipping_method_create(merchant=merchant, price_minor=1250, countries=["KW"])
    form = client.get(f"/admin/commerce/shippingmethod/{method.pk}/change/").context["adminform"]
    assert form.form.initial["price"] == "1.250"
    assert form.form.initial["countries"] == "KW"


@pytest.mark.parametrize(
    ("currency", "data", "field", "message"),
    [
        ("USD", {"price": "-1.00"}, "price", "cannot be negative"),
        ("USD", {"price": "1.005"}, "price", "more decimal places than USD allows (2)"),
        ("JPY", {"price": "500.5"}, "price", "more decimal places than JPY allows (0)"),
        ("KWD", {"free_over": "1.0005"}, "free_over", "more decimal places than KWD allows (3)"),
        ("USD", {"price": "abc"}, "price", "Enter a number"),
        ("USD", {"countries": "KW, XX"}, "countries", "Unknown country codes: XX"),
    ],
)
def test_bad_shipping_input_is_refused_with_a_message(client, currency, data, field, message):
    _staff_of(client, currency)
    response = client.post("/admin/commerce/shippingmethod/add/", _shipping_form(**data))
    assert response.status_code == 200
    assert message in " ".join(response.context["adminform"].form.errors[field])
    assert not ShippingMethod.objects.exists()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"amount": "-5"}, "amount", "cannot be negative"),
        ({"amount": "0.001"}, "amount", "more decimal places than USD allows (2)"),
        ({"amount": "0"}, "amount", "more than zero"),
        ({"amount": ""}, "amount", "Enter the amount off"),
        ({"min_spend": "-1"}, "min_spend", "cannot be negative"),
        ({"kind": "percentage", "percent": "12.345"}, "percent", "two decimal places"),
        ({"kind": "percentage", "percent": "120"}, "percent", "between 0.01 and 100"),
        ({"kind": "percentage", "percent": ""}, "percent", "Enter the percentage off"),
        ({"code": "alpsave10"}, "code", "already uses this code"),
    ],
)
def test_bad_voucher_input_is_refused_with_a_message(client, shops, data, field, message):
    client.force_login(staff_create(merchant=shops["a"]["merchant"]))
    before = Voucher.objects.count()
    response = client.post("/admin/commerce/voucher/add/", _voucher_form(**data))
    assert response.status_code == 200
    assert message in " ".join(response.context["adminform"].form.errors[field])
    assert Voucher.objects.count() == before
