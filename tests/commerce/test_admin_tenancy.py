"""Merchant staff see and change only their own merchant's catalog in the admin.

Each model is tried through the five ways a row can leak: the change list, the change view by id,
foreign-key choices (including autocomplete), search, and bulk actions.
"""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from commerce.models import Category, Merchant, MerchantMembership, Product, ProductImage, Variant

pytestmark = pytest.mark.django_db

User = get_user_model()


def _png_bytes(size=(8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _shop(slug: str, currency: str = "USD") -> dict:
    merchant = Merchant.objects.create(name=slug.title(), slug=slug, default_currency=currency)
    category = Category.objects.create(
        merchant=merchant, name=f"{slug} shirts", slug=f"{slug}-shirts"
    )
    product = Product.objects.create(
        merchant=merchant, category=category, handle=f"{slug}-tee", title=f"{slug} secret tee"
    )
    variant = Variant.objects.create(
        product=product,
        name="M",
        sku=f"{slug.upper()}-TEE-M",
        price_minor=1500,
        currency=currency,
        stock_on_hand=5,
    )
    image = ProductImage.objects.create(
        product=product,
        image=SimpleUploadedFile("a.png", _png_bytes(), "image/png"),
        alt_text=f"{slug} secret picture",
    )
    return {
        "merchant": merchant,
        "category": category,
        "product": product,
        "variant": variant,
        "image": image,
    }


def _staff(username: str, merchant: Merchant, role=MerchantMembership.Role.MANAGER):
    user = User.objects.create_user(username, password="pw-123456789", is_staff=True)
    MerchantMembership.objects.create(user=user, merchant=merchant, role=role)
    return user


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def shops():
    return {"a": _shop("alpha"), "b": _shop("beta", currency="KWD")}


@pytest.fixture
def staff_client(client, shops):
    client.force_login(_staff("alice", shops["a"]["merchant"]))
    return client


MODELS = [
    ("category", "category", "beta shirts"),
    ("product", "product", "beta secret tee"),
    ("variant", "variant", "BETA-TEE-M"),
    ("productimage", "image", "beta secret picture"),
]


@pytest.mark.parametrize(("model", "key", "term"), MODELS)
def test_change_list_shows_only_own_rows(staff_client, shops, model, key, term):
    response = staff_client.get(f"/admin/commerce/{model}/")
    assert response.status_code == 200
    ids = {obj.pk for obj in response.context["cl"].result_list}
    assert ids == {shops["a"][key].pk}


@pytest.mark.parametrize(("model", "key", "term"), MODELS)
def test_change_view_of_another_merchants_row_does_not_exist(staff_client, shops, model, key, term):
    other = shops["b"][key]
    response = staff_client.get(f"/admin/commerce/{model}/{other.pk}/change/", follow=True)
    assert term not in response.content.decode()
    assert "doesn’t exist" in response.content.decode()
    own = staff_client.get(f"/admin/commerce/{model}/{shops['a'][key].pk}/change/")
    assert own.status_code == 200


@pytest.mark.parametrize(("model", "key", "term"), MODELS)
def test_search_does_not_find_another_merchants_rows(staff_client, shops, model, key, term):
    response = staff_client.get(f"/admin/commerce/{model}/", {"q": term})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []


@pytest.mark.parametrize(("model", "key", "term"), MODELS)
def test_post_to_another_merchants_row_changes_nothing(staff_client, shops, model, key, term):
    other = shops["b"][key]
    fields = [f.attname for f in type(other)._meta.concrete_fields]
    before = type(other).objects.filter(pk=other.pk).values(*fields).get()
    staff_client.post(f"/admin/commerce/{model}/{other.pk}/delete/", {"post": "yes"})
    staff_client.post(
        f"/admin/commerce/{model}/{other.pk}/change/",
        {"name": "Hijacked", "title": "Hijacked", "alt_text": "Hijacked", "slug": "hijacked"},
    )
    assert type(other).objects.filter(pk=other.pk).values(*fields).get() == before


@pytest.mark.parametrize(
    ("model", "key", "field"),
    [
        ("category", "category", "is_active"),
        ("product", "product", "is_active"),
        ("variant", "variant", "is_active"),
    ],
)
def test_bulk_action_ignores_another_merchants_rows(staff_client, shops, model, key, field):
    own, other = shops["a"][key], shops["b"][key]
    response = staff_client.post(
        f"/admin/commerce/{model}/",
        {"action": "deactivate", "_selected_action": [own.pk, other.pk]},
    )
    assert response.status_code == 302
    own.refresh_from_db()
    other.refresh_from_db()
    assert getattr(own, field) is False
    assert getattr(other, field) is True


def test_bulk_delete_of_another_merchants_rows_deletes_nothing(staff_client, shops):
    other = shops["b"]["product"]
    staff_client.post(
        "/admin/commerce/product/",
        {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"},
    )
    assert Product.objects.filter(pk=other.pk).exists()


def test_foreign_key_choices_offer_only_own_rows(staff_client, shops):
    response = staff_client.get("/admin/commerce/variant/add/")
    choices = {c.pk for c in response.context["adminform"].form.fields["product"].queryset}
    assert choices == {shops["a"]["product"].pk}
    response = staff_client.get("/admin/commerce/product/add/")
    choices = {c.pk for c in response.context["adminform"].form.fields["category"].queryset}
    assert choices == {shops["a"]["category"].pk}
    assert "merchant" not in response.context["adminform"].form.fields


@pytest.mark.parametrize(
    ("model", "field", "term", "own_key"),
    [("variant", "product", "secret", "product"), ("product", "category", "shirts", "category")],
)
def test_autocomplete_offers_only_own_rows(staff_client, shops, model, field, term, own_key):
    response = staff_client.get(
        "/admin/autocomplete/",
        {"app_label": "commerce", "model_name": model, "field_name": field, "term": term},
    )
    assert response.status_code == 200
    ids = {int(item["id"]) for item in response.json()["results"]}
    assert ids == {shops["a"][own_key].pk}


def test_new_rows_belong_to_the_staff_users_merchant_whatever_the_form_says(staff_client, shops):
    response = staff_client.post(
        "/admin/commerce/category/add/",
        {
            "name": "Caps",
            "name_ar": "قبعات",
            "slug": "caps",
            "position": 0,
            "is_active": "on",
            "merchant": shops["b"]["merchant"].pk,
        },
    )
    assert response.status_code == 302, response.content
    category = Category.objects.get(slug="caps")
    assert category.merchant == shops["a"]["merchant"]


def test_posting_another_merchants_category_on_a_product_is_refused(staff_client, shops):
    response = staff_client.post(
        "/admin/commerce/product/add/",
        _product_form(shops, handle="sneaky", category=shops["b"]["category"].pk),
    )
    assert response.status_code == 200
    assert not Product.objects.filter(handle="sneaky").exists()
    assert "category" in response.context["adminform"].form.errors


def test_support_role_can_read_but_not_change_the_catalog(client, shops):
    client.force_login(_staff("sam", shops["a"]["merchant"], MerchantMembership.Role.SUPPORT))
    product = shops["a"]["product"]
    assert client.get("/admin/commerce/product/").status_code == 200
    assert client.get("/admin/commerce/product/add/").status_code == 403
    client.post(
        "/admin/commerce/product/",
        {"action": "deactivate", "_selected_action": [product.pk]},
    )
    product.refresh_from_db()
    assert product.is_active is True


def test_user_without_membership_sees_no_catalog(client, shops):
    user = User.objects.create_user("nobody", password="pw-123456789", is_staff=True)
    client.force_login(user)
    response = client.get("/admin/commerce/product/")
    assert response.status_code == 403
    assert "secret tee" not in response.content.decode()
    add = client.post("/admin/commerce/category/add/", {"name": "Mine", "slug": "mine"})
    assert add.status_code == 403
    assert not Category.objects.filter(slug="mine").exists()


def test_operator_sees_every_merchant_and_chooses_the_merchant(client, shops):
    operator = User.objects.create_user("olga", password="pw-123456789", is_staff=True)
    operator.groups.add(Group.objects.create(name="operators"))
    client.force_login(operator)
    response = client.get("/admin/commerce/product/")
    ids = {obj.pk for obj in response.context["cl"].result_list}
    assert ids == {shops["a"]["product"].pk, shops["b"]["product"].pk}
    form = client.get("/admin/commerce/product/add/").context["adminform"].form
    assert set(form.fields["merchant"].queryset) == {shops["a"]["merchant"], shops["b"]["merchant"]}


def test_staff_see_only_their_merchant_in_the_merchant_admin(staff_client, shops):
    response = staff_client.get("/admin/commerce/merchant/")
    assert {m.pk for m in response.context["cl"].result_list} == {shops["a"]["merchant"].pk}
    other = shops["b"]["merchant"]
    response = staff_client.get(f"/admin/commerce/merchant/{other.pk}/change/", follow=True)
    assert "doesn’t exist" in response.content.decode()
    assert staff_client.get("/admin/commerce/merchantmembership/").status_code == 403


# --- bad input: clear errors, nothing saved -------------------------------------------------


def _product_form(shops, handle="hoodie", category=None, variants=(), images=()):
    data = {
        "title": "Hoodie",
        "title_ar": "هودي",
        "handle": handle,
        "description": "",
        "description_ar": "",
        "is_active": "on",
        "position": 0,
        "category": category or shops["a"]["category"].pk,
        "variants-TOTAL_FORMS": len(variants),
        "variants-INITIAL_FORMS": 0,
        "variants-MIN_NUM_FORMS": 0,
        "variants-MAX_NUM_FORMS": 1000,
        "images-TOTAL_FORMS": len(images),
        "images-INITIAL_FORMS": 0,
        "images-MIN_NUM_FORMS": 0,
        "images-MAX_NUM_FORMS": 1000,
    }
    for i, variant in enumerate(variants):
        row = {
            "name": "M",
            "name_ar": "",
            "sku": f"HD-{i}",
            "price": "10.00",
            "currency": "",
            "stock_on_hand": 3,
            "is_active": "on",
            "position": i,
        }
        row.update(variant)
        data.update({f"variants-{i}-{key}": value for key, value in row.items()})
    for i, upload in enumerate(images):
        data.update(
            {f"images-{i}-image": upload, f"images-{i}-alt_text": "", f"images-{i}-position": i}
        )
    return data


def _post_product(client, data):
    response = client.post("/admin/commerce/product/add/", data)
    return response


def _inline_errors(response) -> str:
    formsets = response.context["inline_admin_formsets"]
    return " ".join(str(f.formset.errors) + str(f.formset.non_form_errors()) for f in formsets)


def test_product_with_variants_and_image_is_saved_with_exact_minor_units(staff_client, shops):
    response = _post_product(
        staff_client,
        _product_form(
            shops,
            variants=[{"price": "12.50"}, {"sku": "HD-L", "price": "0.99"}],
            images=[SimpleUploadedFile("p.png", _png_bytes(), "image/png")],
        ),
    )
    assert response.status_code == 302, _inline_errors(response)
    product = Product.objects.get(handle="hoodie")
    assert product.merchant == shops["a"]["merchant"]
    assert sorted(product.variants.values_list("price_minor", "currency")) == [
        (99, "USD"),
        (1250, "USD"),
    ]
    assert product.images.count() == 1


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ({"price": "-1.00"}, "cannot be negative"),
        ({"price": "1.005"}, "decimal"),
        ({"price": "abc"}, "Enter a number"),
        ({"stock_on_hand": -2}, "Stock cannot be negative"),
        ({"currency": "XYZ"}, "Select a valid choice"),
        ({"sku": "ALPHA-TEE-M"}, "already used"),
    ],
)
def test_bad_variant_input_is_refused_with_a_message(staff_client, shops, variant, message):
    before = Variant.objects.count()
    response = _post_product(staff_client, _product_form(shops, variants=[variant]))
    assert response.status_code == 200
    assert message in _inline_errors(response)
    assert Variant.objects.count() == before
    assert not Product.objects.filter(handle="hoodie").exists()


def test_the_same_sku_twice_in_one_product_is_refused(staff_client, shops):
    response = _post_product(
        staff_client, _product_form(shops, variants=[{"sku": "DUP"}, {"sku": "DUP"}])
    )
    assert response.status_code == 200
    assert "appears twice" in _inline_errors(response)
    assert not Variant.objects.filter(sku="DUP").exists()


def test_another_merchant_may_reuse_a_sku(staff_client, shops):
    response = _post_product(staff_client, _product_form(shops, variants=[{"sku": "BETA-TEE-M"}]))
    assert response.status_code == 302, _inline_errors(response)
    owners = dict(Variant.objects.filter(sku="BETA-TEE-M").values_list("merchant__slug", "pk"))
    assert set(owners) == {"alpha", "beta"}
    assert owners["beta"] == shops["b"]["variant"].pk  # beta's own row is untouched


def test_kwd_prices_keep_three_decimals(client, shops):
    client.force_login(_staff("bob", shops["b"]["merchant"]))
    data = _product_form(shops, category=shops["b"]["category"].pk, variants=[{"price": "1.250"}])
    response = client.post("/admin/commerce/product/add/", data)
    assert response.status_code == 302, _inline_errors(response)
    assert Variant.objects.get(sku="HD-0").price_minor == 1250


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (lambda: SimpleUploadedFile("x.png", b"not an image at all", "image/png"), "valid image"),
        (lambda: SimpleUploadedFile("big.png", _png_bytes((64, 64)), "image/png"), "the limit is"),
    ],
)
def test_bad_images_are_refused(staff_client, shops, settings, upload, message):
    settings.PRODUCT_IMAGE_MAX_BYTES = 100  # the 64x64 PNG is larger than this
    before = ProductImage.objects.count()
    response = _post_product(staff_client, _product_form(shops, images=[upload()]))
    assert response.status_code == 200
    assert message in _inline_errors(response)
    assert ProductImage.objects.count() == before


# --- staff with several memberships, support role, owners ----------------------------------


def test_support_staff_see_product_images_inline(client, shops):
    client.force_login(_staff("sue", shops["a"]["merchant"], MerchantMembership.Role.SUPPORT))
    response = client.get(f"/admin/commerce/product/{shops['a']['product'].pk}/change/")
    assert response.status_code == 200
    inline_models = {f.formset.model for f in response.context["inline_admin_formsets"]}
    assert ProductImage in inline_models


def test_merchant_filter_lists_only_the_users_merchants(client, shops):
    third = _shop("gamma")
    user = _staff("max", shops["a"]["merchant"])
    MerchantMembership.objects.create(user=user, merchant=third["merchant"])
    client.force_login(user)
    page = client.get("/admin/commerce/product/").content.decode()
    assert "Gamma" in page
    assert "Beta" not in page


def test_support_role_in_one_merchant_cannot_create_rows_there(client, shops):
    user = _staff("mia", shops["a"]["merchant"])  # manager of A
    MerchantMembership.objects.create(
        user=user, merchant=shops["b"]["merchant"], role=MerchantMembership.Role.SUPPORT
    )
    client.force_login(user)
    form = client.get("/admin/commerce/category/add/").context["adminform"].form
    assert set(form.fields["merchant"].queryset) == {shops["a"]["merchant"]}
    response = client.post(
        "/admin/commerce/category/add/",
        {"name": "Sneaky", "slug": "sneaky", "position": 0, "merchant": shops["b"]["merchant"].pk},
    )
    assert response.status_code == 200
    assert not Category.objects.filter(slug="sneaky").exists()
    form = client.get("/admin/commerce/variant/add/").context["adminform"].form
    assert set(form.fields["product"].queryset) == {shops["a"]["product"]}


def test_owner_cannot_switch_off_or_rename_their_merchant(client, shops):
    merchant = shops["a"]["merchant"]
    client.force_login(_staff("omar", merchant, MerchantMembership.Role.OWNER))
    response = client.post(
        f"/admin/commerce/merchant/{merchant.pk}/change/",
        {
            "name": "Alpha Renamed",
            "slug": "hijack",
            "default_currency": "USD",
            "default_locale": "ar",
            "max_line_quantity": 5,
            "tax_rate_bp": 500,
            "tax_label": "VAT",
            "order_number_prefix": "ALP",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    merchant.refresh_from_db()
    assert (merchant.name, merchant.slug, merchant.is_active) == ("Alpha Renamed", "alpha", True)
    assert merchant.tax_rate_bp == 500


def _manager_of_a_support_of_b(client, shops):
    user = _staff("nina", shops["a"]["merchant"])
    MerchantMembership.objects.create(
        user=user, merchant=shops["b"]["merchant"], role=MerchantMembership.Role.SUPPORT
    )
    client.force_login(user)


def test_bulk_actions_skip_rows_of_merchants_where_the_user_only_reads(client, shops):
    _manager_of_a_support_of_b(client, shops)
    own, other = shops["a"]["product"], shops["b"]["product"]
    client.post(
        "/admin/commerce/product/",
        {"action": "deactivate", "_selected_action": [own.pk, other.pk]},
    )
    own.refresh_from_db()
    other.refresh_from_db()
    assert (own.is_active, other.is_active) == (False, True)
    client.post(
        "/admin/commerce/product/",
        {"action": "delete_selected", "_selected_action": [other.pk], "post": "yes"},
    )
    assert Product.objects.filter(pk=other.pk).exists()


def test_list_editable_is_off_for_users_who_only_read_some_merchants(client, shops):
    _manager_of_a_support_of_b(client, shops)
    response = client.get("/admin/commerce/variant/")
    assert response.context["cl"].list_editable == ()


def test_variant_saved_without_currency_takes_the_merchants(shops):
    variant = Variant.objects.create(
        product=shops["b"]["product"], name="L", sku="NO-CUR", price_minor=1250
    )
    assert variant.currency == "KWD"


def test_arabic_fields_are_typed_right_to_left(staff_client, shops):
    page = staff_client.get(f"/admin/commerce/product/{shops['a']['product'].pk}/change/")
    form = page.context["adminform"].form
    assert form.fields["title_ar"].widget.attrs["dir"] == "rtl"
    assert "dir" not in form.fields["title"].widget.attrs
