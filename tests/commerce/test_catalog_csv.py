"""Product CSV import/export: the service rules, then the admin views and their tenancy."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.urls import reverse

from commerce.exceptions import CatalogImportError
from commerce.models import Category, Product, Variant
from commerce.services.catalog_csv import (
    COLUMNS,
    catalog_csv_export,
    catalog_csv_import,
    catalog_csv_validate,
)

pytestmark = pytest.mark.django_db

IMPORT_URL = "admin:commerce_product_import"
EXPORT_URL = "admin:commerce_product_export"
CHANGELIST_URL = "admin:commerce_product_changelist"


def make_csv(rows: list[dict[str, str]], columns: tuple[str, ...] | None = None) -> bytes:
    """A CSV file (bytes) with ``columns`` (default: every column used by ``rows``)."""
    if columns is None:
        columns = tuple(c for c in COLUMNS if any(c in row for row in rows))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode("utf-8")


def row(**values: str) -> dict[str, str]:
    base = {"handle": "linen-shirt", "title": "Linen shirt", "sku": "LS-M", "price": "12.50"}
    return {**base, **values}


def upload(content: bytes, name: str = "products.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def export_text(queryset) -> str:
    return "".join(catalog_csv_export(queryset_of_products=queryset))


def snapshot(merchant) -> list[tuple]:
    """Everything the import may write for ``merchant``, timestamps included."""
    products = list(
        Product.objects.filter(merchant=merchant)
        .order_by("handle")
        .values_list(
            "handle",
            "title",
            "title_ar",
            "description",
            "description_ar",
            "category__slug",
            "is_active",
            "position",
            "updated_at",
        )
    )
    variants = list(
        Variant.objects.filter(merchant=merchant)
        .order_by("sku")
        .values_list(
            "sku",
            "product__handle",
            "name",
            "name_ar",
            "options",
            "price_minor",
            "currency",
            "stock_on_hand",
            "is_active",
            "position",
            "updated_at",
        )
    )
    categories = list(
        Category.objects.filter(merchant=merchant)
        .order_by("slug")
        .values_list("slug", "name", "name_ar", "updated_at")
    )
    return [*products, *variants, *categories]


# -- service: good files -------------------------------------------------------------------


def test_good_file_creates_products_variants_and_categories_with_exact_minor_units(merchant_a):
    content = make_csv(
        [
            row(
                handle="linen-shirt",
                title="Linen shirt",
                title_ar="قميص كتان",
                category="shirts",
                category_name="Shirts",
                category_name_ar="قمصان",
                sku="LS-M",
                variant_name="M",
                options="size=M;colour=Red",
                price="12.50",
                currency="USD",
                stock="7",
                variant_active="yes",
            ),
            row(
                handle="linen-shirt",
                title="Linen shirt",
                title_ar="قميص كتان",
                category="shirts",
                category_name="Shirts",
                category_name_ar="قمصان",
                sku="LS-L",
                variant_name="L",
                options="size=L;colour=Red",
                price="0.10",
                currency="",
                stock="",
                variant_active="0",
            ),
            row(
                handle="tea-set",
                title="Tea set",
                category="kitchen-ware",
                sku="TEA-1",
                price="1500",
                currency="jpy",
                stock="3",
            ),
            row(
                handle="dates-box",
                title="Dates box",
                category="",
                sku="DATES-1",
                price="1.250",
                currency="KWD",
                stock="0",
            ),
        ]
    )

    result = catalog_csv_import(merchant=merchant_a, file=upload(content))

    assert (result.products_created, result.variants_created, result.categories_created) == (
        3,
        4,
        2,
    )
    assert result.products_updated == result.variants_updated == 0
    prices = dict(Variant.objects.filter(merchant=merchant_a).values_list("sku", "price_minor"))
    assert prices == {"LS-M": 1250, "LS-L": 10, "TEA-1": 1500, "DATES-1": 1250}
    currencies = dict(Variant.objects.values_list("sku", "currency"))
    assert currencies == {"LS-M": "USD", "LS-L": "USD", "TEA-1": "JPY", "DATES-1": "KWD"}

    shirt = Product.objects.get(merchant=merchant_a, handle="linen-shirt")
    assert shirt.title_ar == "قميص كتان"
    assert (shirt.category.slug, shirt.category.name, shirt.category.name_ar) == (
        "shirts",
        "Shirts",
        "قمصان",
    )
    medium, large = shirt.variants.order_by("position")
    assert (medium.sku, medium.options, medium.stock_on_hand, medium.is_active) == (
        "LS-M",
        {"size": "M", "colour": "Red"},
        7,
        True,
    )
    assert (large.sku, large.stock_on_hand, large.is_active, large.position) == (
        "LS-L",
        0,
        False,
        1,
    )
    assert all(v.merchant_id == merchant_a.pk for v in Variant.objects.all())
    # A category named by slug only gets a readable name.
    assert Category.objects.get(slug="kitchen-ware").name == "Kitchen ware"
    assert Product.objects.get(handle="dates-box").category is None
    # The variant name falls back to the product title when there are no options.
    assert Variant.objects.get(sku="TEA-1").name == "Tea set"


def test_excel_file_with_bom_semicolons_and_crlf_is_read(merchant_a):
    content = "\ufeffhandle;title;sku;price\r\nmug;Mug;MUG-1;4.00\r\n".encode()

    result = catalog_csv_import(merchant=merchant_a, file=content)

    assert result.variants_created == 1
    assert Variant.objects.get(sku="MUG-1").price_minor == 400


def test_reimport_updates_products_and_variants_and_leaves_others_alone(merchant_a):
    catalog_csv_import(
        merchant=merchant_a,
        file=make_csv(
            [
                row(sku="LS-M", variant_name="M", stock="5"),
                row(sku="LS-L", variant_name="L", stock="5"),
                row(handle="mug", title="Mug", sku="MUG-1", price="4.00", stock="9"),
            ]
        ),
    )
    mug_before = snapshot(merchant_a)
    mug_before = [item for item in mug_before if "mug" in item or "MUG-1" in item]

    result = catalog_csv_import(
        merchant=merchant_a,
        file=make_csv(
            [
                row(title="Linen shirt, washed", sku="LS-M", variant_name="M", stock="2"),
                row(title="Linen shirt, washed", sku="LS-XL", variant_name="XL", stock="1"),
            ]
        ),
    )

    assert (result.products_created, result.products_updated, result.products_unchanged) == (
        0,
        1,
        0,
    )
    assert (result.variants_created, result.variants_updated, result.variants_unchanged) == (
        1,
        1,
        0,
    )
    shirt = Product.objects.get(handle="linen-shirt")
    assert shirt.title == "Linen shirt, washed"
    assert list(shirt.variants.order_by("position").values_list("sku", "stock_on_hand")) == [
        ("LS-M", 2),
        ("LS-L", 5),  # not in the file: untouched
        ("LS-XL", 1),  # new: after the existing ones
    ]
    assert [item for item in snapshot(merchant_a) if "mug" in item or "MUG-1" in item] == (
        mug_before
    )


def test_reimport_can_change_every_field(merchant_a):
    catalog_csv_import(
        merchant=merchant_a,
        file=make_csv(
            [
                row(
                    title_ar="قميص",
                    description="Soft.",
                    description_ar="ناعم",
                    category="shirts",
                    category_name="Shirts",
                    product_active="true",
                    variant_name="M",
                    variant_name_ar="وسط",
                    options="size=M",
                    price="12.50",
                    currency="USD",
                    stock="5",
                    variant_active="true",
                )
            ]
        ),
    )
    Variant.objects.update(stock_reserved=2)  # held by an unpaid order: the import keeps it
    before = Variant.objects.get()

    result = catalog_csv_import(
        merchant=merchant_a,
        file=make_csv(
            [
                row(
                    title="Linen shirt II",
                    title_ar="قميص ٢",
                    description="Softer.",
                    description_ar="أنعم",
                    category="",
                    product_active="false",
                    variant_name="Medium",
                    variant_name_ar="متوسط",
                    options="size=M;fit=slim",
                    price="1.250",
                    currency="KWD",
                    stock="9",
                    variant_active="false",
                ),
                row(
                    handle="other",
                    title="Other",
                    category="shirts",
                    category_name="Shirts and tops",
                    category_name_ar="قمصان",
                    sku="OTHER-1",
                    price="3",
                    currency="JPY",
                ),
            ]
        ),
    )

    assert (result.products_updated, result.variants_updated, result.categories_updated) == (
        1,
        1,
        1,
    )
    shirt = Product.objects.get(handle="linen-shirt")
    assert (shirt.title, shirt.title_ar, shirt.description, shirt.description_ar) == (
        "Linen shirt II",
        "قميص ٢",
        "Softer.",
        "أنعم",
    )
    assert (shirt.category, shirt.is_active) == (None, False)
    variant = Variant.objects.get(sku="LS-M")
    assert (variant.name, variant.name_ar, variant.options) == (
        "Medium",
        "متوسط",
        {"size": "M", "fit": "slim"},
    )
    assert (variant.price_minor, variant.currency, variant.stock_on_hand) == (1250, "KWD", 9)
    assert (variant.is_active, variant.stock_reserved) == (False, 2)
    assert variant.updated_at > before.updated_at
    assert Variant.objects.get(sku="OTHER-1").price_minor == 3
    category = Category.objects.get(slug="shirts")
    assert (category.name, category.name_ar) == ("Shirts and tops", "قمصان")
    assert Product.objects.get(handle="other").category == category


def test_columns_left_out_leave_fields_alone(merchant_a):
    catalog_csv_import(
        merchant=merchant_a,
        file=make_csv(
            [
                row(
                    title_ar="قميص",
                    description="Soft.",
                    category="shirts",
                    sku="LS-M",
                    variant_name="Medium",
                    price="10.00",
                    currency="EUR",
                    stock="4",
                )
            ]
        ),
    )

    catalog_csv_import(
        merchant=merchant_a, file=b"handle,title,sku,price\nlinen-shirt,Linen shirt,LS-M,11.00\n"
    )

    shirt = Product.objects.get(handle="linen-shirt")
    variant = shirt.variants.get()
    assert (shirt.title_ar, shirt.description, shirt.category.slug) == ("قميص", "Soft.", "shirts")
    # The price is read in the variant's own currency, not the merchant's default (USD).
    assert (variant.name, variant.price_minor, variant.currency, variant.stock_on_hand) == (
        "Medium",
        1100,
        "EUR",
        4,
    )


# -- service: bad files --------------------------------------------------------------------


def test_bad_rows_import_nothing_and_every_bad_line_is_reported(merchant_a):
    other = Product.objects.create(merchant=merchant_a, handle="other", title="Other")
    Variant.objects.create(product=other, sku="TAKEN", name="One", price_minor=1, currency="USD")
    before = snapshot(merchant_a)
    content = make_csv(
        [
            row(sku="OK-1", price="1.00", stock="1"),  # line 2: fine
            row(sku="NEG", price="-1.00", stock="1"),  # 3
            row(sku="CENTS", price="1.005", stock="1"),  # 4
            row(sku="CUR", price="1.00", currency="XYZ", stock="1"),  # 5
            row(sku="OK-1", price="1.00", stock="1"),  # 6: duplicate of line 2
            row(sku="TAKEN", price="1.00", stock="1"),  # 7: another product's SKU
            row(sku="STOCK", price="1.00", stock="2.5"),  # 8
            row(handle="untitled", title="", sku="NO-TITLE", price="1.00", stock="1"),  # 9
            row(handle="Bad Handle!", sku="HANDLE", price="1.00", stock="1"),  # 10
            row(sku="OPT", options="size", stock="1"),  # 11
            row(sku="BOOL", variant_active="maybe", stock="1"),  # 12
            row(title="Another title", sku="AGREE", stock="1"),  # 13: disagrees with line 2
            row(sku="NEG-STOCK", stock="-3"),  # 14
            row(sku="X" * 65, stock="1"),  # 15: too long
        ],
        columns=(
            "handle",
            "title",
            "sku",
            "price",
            "currency",
            "stock",
            "options",
            "variant_active",
        ),
    )

    with pytest.raises(CatalogImportError) as caught:
        catalog_csv_import(merchant=merchant_a, file=upload(content))

    errors = {item["line"]: item["errors"] for item in caught.value.extra["rows"]}
    assert sorted(errors) == list(range(3, 16))
    assert errors[3] == ["price: cannot be negative."]
    assert errors[4] == ["price: 1.005 has more decimal places than USD allows (2)."]
    assert errors[5] == ["currency: “XYZ” is not a known currency code."]
    assert errors[6] == ["sku: “OK-1” is already on line 2."]
    assert errors[7] == ["sku: “TAKEN” already belongs to the product “other”."]
    assert errors[8] == ["stock: “2.5” is not a whole number."]
    assert errors[9] == ["title: required."]
    assert errors[10][0].startswith("handle: “Bad Handle!” is not a valid handle")
    assert errors[11][0].startswith("options: “size” is not name=value")
    assert errors[12] == ["variant_active: “maybe” is not one of true, false, yes, no, 1, 0."]
    assert errors[13] == ["title: differs from line 2, another row of the product “linen-shirt”."]
    assert errors[14] == ["stock: cannot be negative."]
    assert errors[15] == ["sku: 65 characters; at most 64 allowed."]
    assert caught.value.message == "13 rows have errors."
    assert snapshot(merchant_a) == before


def test_a_bad_row_reports_all_its_problems_at_once(merchant_a):
    content = make_csv([row(title="", sku="", price="abc", stock="x")])

    report = catalog_csv_validate(merchant=merchant_a, file=content)

    assert report.error_rows() == [
        {
            "line": 2,
            "errors": [
                "title: required.",
                "sku: required.",
                "stock: “x” is not a whole number.",
                "price: “abc” is not an amount such as 12.50 (use a dot for decimals).",
            ],
        }
    ]


def test_line_numbers_count_multiline_cells_and_blank_lines(merchant_a):
    content = (
        b"handle,title,description,sku,price\n"
        b'a,A,"two\nlines",A-1,1.00\n'  # lines 2-3
        b"\n"  # line 4, blank: skipped
        b"b,B,,B-1,-1\n"  # line 5
    )

    report = catalog_csv_validate(merchant=merchant_a, file=content)

    assert report.row_count == 2
    assert report.error_rows() == [{"line": 5, "errors": ["price: cannot be negative."]}]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"handle,title,sku,price,colour\n", "Unknown columns: colour."),
        (b"handle,sku,price\nx,X,1\n", "Missing required columns: title."),
        (b"handle,title,sku,price\n", "The file has a header but no rows."),
        (b"", "The file is empty."),
    ],
)
def test_header_problems_are_refused_with_a_clear_message(merchant_a, content, message):
    with pytest.raises(CatalogImportError) as caught:
        catalog_csv_import(merchant=merchant_a, file=content)

    assert message in caught.value.message
    assert Product.objects.count() == 0


def test_non_utf8_file_is_refused(merchant_a):
    content = "handle,title,sku,price\ncafe,Café,C-1,1.00\n".encode("cp1252")

    with pytest.raises(CatalogImportError) as caught:
        catalog_csv_import(merchant=merchant_a, file=upload(content))

    assert "not UTF-8" in caught.value.message
    assert "line 2" in caught.value.message
    assert Product.objects.count() == 0


def test_oversized_file_is_refused(merchant_a, settings):
    settings.CATALOG_IMPORT_MAX_BYTES = 2048
    content = make_csv([row(sku=f"S-{i}", price="1.00") for i in range(100)])
    assert len(content) > 2048

    with pytest.raises(CatalogImportError) as caught:
        catalog_csv_import(merchant=merchant_a, file=upload(content))

    assert caught.value.message == (
        "The file is larger than 2.0\xa0KB, the most one import accepts."
    )
    assert Product.objects.count() == 0


def test_too_many_rows_are_refused(merchant_a, settings):
    settings.CATALOG_IMPORT_MAX_ROWS = 3
    content = make_csv([row(sku=f"S-{i}") for i in range(4)])

    with pytest.raises(CatalogImportError) as caught:
        catalog_csv_import(merchant=merchant_a, file=content)

    assert "more than 3 rows" in caught.value.message


def test_validation_reads_a_fixed_number_of_queries(merchant_a, django_assert_num_queries):
    catalog_csv_import(merchant=merchant_a, file=make_csv([row(sku=f"S-{i}") for i in range(50)]))
    content = make_csv([row(handle=f"p-{i}", sku=f"N-{i}") for i in range(500)])

    with django_assert_num_queries(2):  # existing handles, existing SKUs
        report = catalog_csv_validate(merchant=merchant_a, file=content)

    assert report.is_valid and report.row_count == 500


# -- export and round trip -----------------------------------------------------------------


def test_export_then_import_changes_nothing(merchant_a, merchant_b):
    shirts = Category.objects.create(
        merchant=merchant_a, slug="shirts", name="Shirts", name_ar="قمصان"
    )
    shirt = Product.objects.create(
        merchant=merchant_a,
        category=shirts,
        handle="linen-shirt",
        title="Linen shirt",
        title_ar="قميص كتان",
        description='Soft, "washed"\r\nlinen; 100% = good',
        is_active=False,
    )
    for position, (sku, options, price, currency) in enumerate(
        [
            ("LS-M", {"size": "M", "note": "a;b=c\\d"}, 1250, "USD"),
            ("LS-L", {"size": "L", "count": 2}, 0, "JPY"),
            ("LS-XL", {"engraving": ""}, 1234, "KWD"),
            ("LS-S", {}, 1, "USD"),
        ]
    ):
        Variant.objects.create(
            product=shirt,
            sku=sku,
            name=sku[-1],
            name_ar="مقاس",
            options=options,
            price_minor=price,
            currency=currency,
            stock_on_hand=position * 3,
            is_active=position != 1,
            position=position,
        )
    formula = Product.objects.create(merchant=merchant_a, handle="formula", title="=1+2")
    Variant.objects.create(product=formula, sku="-SKU", name="@x", price_minor=5, currency="USD")
    Product.objects.create(merchant=merchant_b, handle="elsewhere", title="Not exported")
    before = snapshot(merchant_a)

    exported = export_text(Product.objects.filter(merchant=merchant_a))
    result = catalog_csv_import(merchant=merchant_a, file=exported.encode())

    assert snapshot(merchant_a) == before
    assert (result.products_updated, result.variants_updated, result.categories_updated) == (
        0,
        0,
        0,
    )
    assert (result.products_unchanged, result.variants_unchanged) == (2, 5)
    lines = exported.splitlines()
    assert lines[0] == "\ufeff" + ",".join(COLUMNS)
    assert lines[1].startswith("formula,'=1+2,")  # spreadsheet formulas defused
    assert ",'-SKU,'@x," in lines[1]
    assert "LS-M" in exported and "12.50,USD" in exported
    assert "0,JPY" in exported and "1.234,KWD" in exported
    assert "elsewhere" not in exported


def test_export_orders_by_handle_then_variant_position(merchant_a):
    for handle in ("b", "a"):
        product = Product.objects.create(merchant=merchant_a, handle=handle, title=handle)
        for position, sku in ((1, f"{handle}-2"), (0, f"{handle}-1")):
            Variant.objects.create(
                product=product,
                sku=sku,
                name=sku,
                price_minor=1,
                currency="USD",
                position=position,
            )

    rows = list(csv.DictReader(io.StringIO(export_text(Product.objects.all()).lstrip("\ufeff"))))

    assert [r["sku"] for r in rows] == ["a-1", "a-2", "b-1", "b-2"]


def test_export_uses_few_queries(merchant_a, django_assert_max_num_queries):
    catalog_csv_import(
        merchant=merchant_a,
        file=make_csv([row(handle=f"p-{i // 3}", sku=f"S-{i}", category="c") for i in range(300)]),
    )

    with django_assert_max_num_queries(3):
        text = export_text(Product.objects.filter(merchant=merchant_a))

    assert len(text.splitlines()) == 301


# -- scale (the seconds it takes are measured by bench/catalog_csv) ----------------------


def test_ten_thousand_rows_import_in_one_go_with_bounded_queries(
    merchant_a, django_assert_max_num_queries
):
    rows = [
        row(
            handle=f"product-{i // 4}",
            title=f"Product {i // 4}",
            category=f"category-{i // 400}",
            sku=f"SKU-{i:05d}",
            variant_name=f"V{i % 4}",
            options=f"size={i % 4}",
            price=f"{i // 100}.{i % 100:02d}",
            stock=str(i % 50),
        )
        for i in range(10_000)
    ]
    content = make_csv(rows)
    # PostgreSQL inserts up to 1,000 rows per statement. Django 5.2 caps SQLite statements at
    # 999 parameters (~75 variants), so the same import takes ~170 statements there. Either
    # way the count depends on batches, never on rows.
    max_queries = 60 if connection.vendor == "postgresql" else 250

    with django_assert_max_num_queries(max_queries):
        result = catalog_csv_import(merchant=merchant_a, file=upload(content))

    assert (result.variants_created, result.products_created, result.categories_created) == (
        10_000,
        2_500,
        25,
    )
    assert Variant.objects.filter(merchant=merchant_a).count() == 10_000
    assert Variant.objects.get(sku="SKU-09999").price_minor == 9999

    # Changing every price and title of the 10,000 rows is as cheap.
    for item in rows:
        item["title"] += " (new)"
        item["price"] = "1" + item["price"]
    with django_assert_max_num_queries(max_queries):
        again = catalog_csv_import(merchant=merchant_a, file=upload(make_csv(rows)))

    assert (again.variants_updated, again.products_updated) == (10_000, 2_500)
    assert Variant.objects.get(sku="SKU-09999").price_minor == 19999
    assert Product.objects.get(merchant=merchant_a, handle="product-2499").title == (
        "Product 2499 (new)"
    )


# -- admin views ---------------------------------------------------------------------------


def test_staff_import_lands_in_their_merchant_whatever_merchant_they_post(
    client, staff_a, merchant_a, merchant_b
):
    client.force_login(staff_a)
    content = make_csv([row(sku="A-1")])

    response = client.post(
        reverse(IMPORT_URL), {"merchant": merchant_b.pk, "file": upload(content)}
    )

    assert response.status_code == 200
    assert response.context["result"].variants_created == 1
    assert "merchant" not in response.context["form"].fields
    assert Product.objects.get().merchant == merchant_a
    assert Variant.objects.get().merchant == merchant_a
    assert b"Nothing was imported" not in response.content


def test_staff_of_several_merchants_may_pick_only_their_own(
    client, make_staff, merchant_a, merchant_b
):
    user = make_staff(merchant_a, username="multi")
    make_staff(merchant_b, "support", username="multi")  # B: read-only, so not importable
    other = type(merchant_a).objects.create(name="Shop C", slug="shop-c")
    make_staff(other, "owner", username="multi")
    client.force_login(user)

    refused = client.post(
        reverse(IMPORT_URL), {"merchant": merchant_b.pk, "file": upload(make_csv([row()]))}
    )
    accepted = client.post(
        reverse(IMPORT_URL), {"merchant": other.pk, "file": upload(make_csv([row()]))}
    )

    assert "merchant" in refused.context["form"].errors
    assert set(refused.context["form"].fields["merchant"].queryset) == {merchant_a, other}
    assert accepted.context["result"].products_created == 1
    assert Product.objects.get().merchant == other


def test_operator_picks_the_merchant_to_import_into(client, operator_user, merchant_a, merchant_b):
    client.force_login(operator_user)

    page = client.get(reverse(IMPORT_URL))
    response = client.post(
        reverse(IMPORT_URL), {"merchant": merchant_b.pk, "file": upload(make_csv([row()]))}
    )
    missing_choice = client.post(reverse(IMPORT_URL), {"file": upload(make_csv([row()]))})

    assert b'name="merchant"' in page.content
    assert b"<progress" in page.content
    assert response.context["result"].products_created == 1
    assert Product.objects.get().merchant == merchant_b
    assert "merchant" in missing_choice.context["form"].errors


def test_bad_file_through_admin_shows_every_bad_row_and_imports_nothing(client, owner_a):
    client.force_login(owner_a)
    content = make_csv([row(sku="A"), row(sku="B", price="-1"), row(sku="A")])

    response = client.post(reverse(IMPORT_URL), {"file": upload(content)})

    assert response.status_code == 200
    body = response.content.decode()
    assert "Nothing was imported." in body
    assert "<td>3</td>" in body and "price: cannot be negative." in body
    assert "<td>4</td>" in body and "is already on line 2." in body
    assert Product.objects.count() == 0


@pytest.mark.parametrize("method", ["get", "post"])
def test_support_member_gets_403_on_the_import_view(client, support_a, method):
    client.force_login(support_a)

    response = getattr(client, method)(reverse(IMPORT_URL), {"file": upload(make_csv([row()]))})

    assert response.status_code == 403
    assert Product.objects.count() == 0


def test_import_view_enforces_csrf(owner_a):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner_a)

    response = client.post(reverse(IMPORT_URL), {"file": upload(make_csv([row()]))})

    assert response.status_code == 403
    assert Product.objects.count() == 0


def test_non_utf8_upload_through_admin_shows_a_clear_message(client, staff_a):
    client.force_login(staff_a)
    content = "handle,title,sku,price\ncafe,Café,C-1,1.00\n".encode("cp1252")

    response = client.post(reverse(IMPORT_URL), {"file": upload(content)})

    assert "is not UTF-8 text" in response.content.decode()
    assert Product.objects.count() == 0


def test_changelist_shows_import_and_export_buttons(client, staff_a, support_a):
    client.force_login(staff_a)
    editor_page = client.get(reverse(CHANGELIST_URL)).content.decode()
    client.force_login(support_a)
    reader_page = client.get(reverse(CHANGELIST_URL)).content.decode()

    assert reverse(IMPORT_URL) in editor_page and reverse(EXPORT_URL) in editor_page
    assert reverse(IMPORT_URL) not in reader_page and reverse(EXPORT_URL) in reader_page


def _catalog_for(merchant, handle):
    product = Product.objects.create(merchant=merchant, handle=handle, title=handle.title())
    Variant.objects.create(
        product=product, sku=f"{handle}-1", name="One", price_minor=100, currency="USD"
    )
    return product


def test_staff_of_b_cannot_export_products_of_a(client, staff_b, merchant_a, merchant_b):
    secret = _catalog_for(merchant_a, "secret-a")
    _catalog_for(merchant_b, "visible-b")
    client.force_login(staff_b)

    exported = b"".join(client.get(reverse(EXPORT_URL)).streaming_content).decode()
    by_action = client.post(
        reverse(CHANGELIST_URL),
        {"action": "export_selected_csv", "_selected_action": [secret.pk]},
    )

    assert "visible-b" in exported and "secret-a" not in exported
    # A's product id is not in B's change list, so the action exports an empty catalog.
    from_action = b"".join(by_action.streaming_content).decode()
    assert from_action.splitlines() == ["\ufeff" + ",".join(COLUMNS)]


def test_export_view_honours_the_changelist_filters(client, operator_user, merchant_a, merchant_b):
    _catalog_for(merchant_a, "shirt-a")
    _catalog_for(merchant_a, "mug-a")
    _catalog_for(merchant_b, "shirt-b")
    client.force_login(operator_user)

    response = client.get(reverse(EXPORT_URL), {"merchant__id__exact": merchant_a.pk, "q": "shirt"})
    exported = b"".join(response.streaming_content).decode()

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment;" in response["Content-Disposition"]
    assert "shirt-a" in exported
    assert "mug-a" not in exported and "shirt-b" not in exported


def test_export_selected_action_exports_only_the_selection(client, staff_a, merchant_a):
    chosen = _catalog_for(merchant_a, "chosen")
    _catalog_for(merchant_a, "not-chosen")
    client.force_login(staff_a)

    response = client.post(
        reverse(CHANGELIST_URL),
        {"action": "export_selected_csv", "_selected_action": [chosen.pk]},
    )
    exported = b"".join(response.streaming_content).decode()

    assert "chosen-1" in exported and "not-chosen" not in exported
