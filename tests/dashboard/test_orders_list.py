"""The orders list: filters, search, sort, keyset pages, CSV export and live updates.

Expected rows are computed in Python from the attributes each order was made with, never with
the same queryset the page uses, so a wrong filter cannot agree with itself.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from commerce.models import Order
from dashboard.selectors.orders import COUNT_CAP

pytestmark = pytest.mark.django_db

ROW_ID = re.compile(r'<tr data-id="(\d+)"')
STATUSES = ["paid", "pending_payment", "fulfilled", "delivered", "refunded", "cancelled"]
SOURCES = ["ADS", "SHORTLINK", ""]


def _ids(response) -> list[int]:
    assert response.status_code == 200, response.content[:500]
    return [int(pk) for pk in ROW_ID.findall(response.content.decode())]


def _csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(body)))


@pytest.fixture
def dataset(merchant_a, merchant_b, make_order):
    """24 orders over two merchants, six statuses, three sources, two ads and ten days."""
    now = timezone.now()
    rows = []
    for i in range(24):
        merchant = merchant_a if i % 3 else merchant_b
        order = make_order(
            merchant=merchant,
            status=STATUSES[i % len(STATUSES)],
            total_minor=1000 + 137 * i,
            created_at=now - timedelta(days=i % 10, hours=i),
            referral_source=SOURCES[i % 3],
            referral_ad_id="ad-42" if i % 4 == 0 else ("ad-7" if i % 4 == 1 else ""),
            needs_review=i == 5,
            contact_email=f"shopper{i}@example.com",
            contact_phone=f"+9655001{i:04d}",
            first_name=["Layla", "Omar", "Sara"][i % 3],
            last_name=["Haddad", "Khalil"][i % 2],
        )
        rows.append(order)
    return rows


def _newest_first(orders):
    return [o.pk for o in sorted(orders, key=lambda o: (o.created_at, o.pk), reverse=True)]


# -- filters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({}, lambda o: True),
        ({"status": "paid"}, lambda o: o.status == "paid"),
        ({"status": "cancelled"}, lambda o: o.status == "cancelled"),
        ({"payment": "unpaid"}, lambda o: o.status == "pending_payment"),
        ({"payment": "paid"}, lambda o: o.status in ("paid", "fulfilled", "delivered")),
        ({"payment": "refunded"}, lambda o: o.status in ("refunded", "partially_refunded")),
        ({"payment": "closed"}, lambda o: o.status in ("cancelled", "expired")),
        ({"payment": "review"}, lambda o: o.needs_review),
        ({"source": "ADS"}, lambda o: o.referral_source == "ADS"),
        ({"ad": "ad-42"}, lambda o: o.referral_ad_id == "ad-42"),
        (
            {"status": "paid", "source": "SHORTLINK"},
            lambda o: (o.status, o.referral_source) == ("paid", "SHORTLINK"),
        ),
    ],
)
def test_each_filter_lists_exactly_the_matching_orders(operator_client, dataset, params, keep):
    response = operator_client.get(reverse("dashboard:orders"), params)

    assert _ids(response) == _newest_first([o for o in dataset if keep(o)])


def test_date_range_includes_both_days(operator_client, dataset):
    today = timezone.localdate()
    start, end = today - timedelta(days=5), today - timedelta(days=2)

    response = operator_client.get(
        reverse("dashboard:orders"), {"date_from": start.isoformat(), "date_to": end.isoformat()}
    )

    expected = [o for o in dataset if start <= timezone.localdate(o.created_at) <= end]
    assert expected and _ids(response) == _newest_first(expected)


def test_merchant_pick_narrows_the_list(operator_client, dataset, merchant_b):
    response = operator_client.get(reverse("dashboard:orders"), {"merchant": merchant_b.slug})

    assert _ids(response) == _newest_first([o for o in dataset if o.merchant_id == merchant_b.pk])


def test_bad_filters_are_a_400_with_the_reason(operator_client, dataset):
    reversed_dates = operator_client.get(
        reverse("dashboard:orders"), {"date_from": "2026-05-02", "date_to": "2026-05-01"}
    )
    unknown_status = operator_client.get(reverse("dashboard:orders"), {"status": "lost"})
    bad_cursor = operator_client.get(reverse("dashboard:orders"), {"after": "nonsense"})

    assert reversed_dates.status_code == 400
    assert "The start date is after the end date." in reversed_dates.content.decode()
    assert unknown_status.status_code == 400
    assert "Select a valid choice" in unknown_status.content.decode()
    assert bad_cursor.status_code == 400
    assert "not valid any more" in bad_cursor.content.decode()


# -- search -----------------------------------------------------------------------------------


def test_search_by_full_order_number_and_by_its_prefix(operator_client, dataset):
    order = dataset[7]
    exact = operator_client.get(reverse("dashboard:orders"), {"q": order.number})
    lower = operator_client.get(reverse("dashboard:orders"), {"q": order.number.lower()})
    prefix = order.number.split("-")[0] + "-"
    by_prefix = operator_client.get(reverse("dashboard:orders"), {"q": prefix})

    assert _ids(exact) == [order.pk]
    assert _ids(lower) == [order.pk]
    assert _ids(by_prefix) == _newest_first([o for o in dataset if o.number.startswith(prefix)])


def test_search_by_the_sequence_number_alone(operator_client, dataset):
    order = dataset[3]
    sequence = order.number.split("-")[1]

    response = operator_client.get(reverse("dashboard:orders"), {"q": sequence})

    assert _ids(response) == [order.pk]


def test_search_by_email_in_any_case(operator_client, dataset):
    response = operator_client.get(reverse("dashboard:orders"), {"q": "Shopper11@Example.com"})
    exact = operator_client.get(reverse("dashboard:orders"), {"q": "shopper11@example.com"})

    assert _ids(response) == [dataset[11].pk] == _ids(exact)


def test_search_by_phone_as_typed_with_spaces(operator_client, dataset):
    response = operator_client.get(reverse("dashboard:orders"), {"q": "+965 5001 0009"})

    assert _ids(response) == [dataset[9].pk]


@pytest.mark.parametrize(
    ("q", "keep"),
    [
        ("omar", lambda o: o.customer.first_name == "Omar"),
        ("Khal", lambda o: o.customer.last_name == "Khalil"),
        (
            "sara haddad",
            lambda o: (o.customer.first_name, o.customer.last_name) == ("Sara", "Haddad"),
        ),
    ],
)
def test_search_by_customer_name(operator_client, dataset, q, keep):
    response = operator_client.get(reverse("dashboard:orders"), {"q": q})

    expected = [o for o in dataset if keep(o)]
    assert expected and _ids(response) == _newest_first(expected)


def test_search_never_reaches_another_merchants_orders(staff_a_client, dataset, merchant_b):
    order_b = next(o for o in dataset if o.merchant_id == merchant_b.pk)

    by_number = staff_a_client.get(reverse("dashboard:orders"), {"q": order_b.number})
    by_email = staff_a_client.get(reverse("dashboard:orders"), {"q": order_b.contact_email})

    assert _ids(by_number) == [] and _ids(by_email) == []


# -- sort and pages ---------------------------------------------------------------------------


def test_sort_by_total_both_ways(operator_client, dataset):
    high = operator_client.get(reverse("dashboard:orders"), {"sort": "total_desc"})
    low = operator_client.get(reverse("dashboard:orders"), {"sort": "total_asc"})

    by_total = sorted(dataset, key=lambda o: (o.total_minor, o.pk))
    assert _ids(low) == [o.pk for o in by_total]
    assert _ids(high) == [o.pk for o in reversed(by_total)]


def _walk(client, params, link_rel: str, start_url: str | None = None) -> list[list[int]]:
    pages = []
    url = start_url or reverse("dashboard:orders") + "?" + "&".join(
        f"{k}={v}" for k, v in params.items()
    )
    while url:
        response = client.get(url)
        pages.append(_ids(response))
        match = re.search(rf'<a rel="{link_rel}" href="([^"]+)"', response.content.decode())
        url = (
            (reverse("dashboard:orders") + match.group(1).replace("&amp;", "&")) if match else None
        )
    return pages


def test_keyset_pages_cover_every_order_once_in_order_forwards_and_back(
    operator_client, merchant_a, make_order
):
    now = timezone.now()
    same_moment = now - timedelta(hours=5)
    made = [
        # Ties on created_at across a page boundary: the id settles them.
        make_order(
            merchant=merchant_a,
            created_at=same_moment if i % 10 == 0 else now - timedelta(minutes=i),
        )
        for i in range(120)
    ]
    expected = _newest_first(made)

    pages = _walk(operator_client, {}, "next")

    assert [len(p) for p in pages] == [50, 50, 20]
    assert [pk for page in pages for pk in page] == expected
    # Back from the last page with "Previous page".
    last = operator_client.get(
        reverse("dashboard:orders"), {"after": _cursor_before(expected, made, 100)}
    )
    assert _ids(last) == expected[100:]
    back = re.search(r'<a rel="prev" href="([^"]+)"', last.content.decode()).group(1)
    previous = operator_client.get(reverse("dashboard:orders") + back.replace("&amp;", "&"))
    assert _ids(previous) == expected[50:100]


def _cursor_before(expected_ids, made, index):
    from dashboard.selectors.orders import cursor_for

    by_id = {o.pk: o for o in made}
    return cursor_for(by_id[expected_ids[index - 1]], "newest")


def test_count_is_capped_instead_of_counting_everything(
    operator_client, merchant_a, make_order, monkeypatch
):
    monkeypatch.setattr("dashboard.selectors.orders.COUNT_CAP", 3)
    for _ in range(5):
        make_order(merchant=merchant_a)

    html = operator_client.get(reverse("dashboard:orders")).content.decode()

    assert "3+ orders" in html


def test_count_below_the_cap_is_exact(operator_client, orders):
    assert COUNT_CAP > 5
    html = operator_client.get(reverse("dashboard:orders")).content.decode()
    assert "5 orders" in html


# -- CSV export -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "keep"),
    [
        ({}, lambda o: True),
        ({"status": "paid"}, lambda o: o.status == "paid"),
        (
            {"source": "ADS", "payment": "paid"},
            lambda o: o.referral_source == "ADS" and o.status in ("paid", "fulfilled", "delivered"),
        ),
        ({"q": "omar"}, lambda o: o.customer.first_name == "Omar"),
    ],
)
def test_csv_export_has_exactly_the_filtered_rows(operator_client, dataset, params, keep):
    response = operator_client.get(reverse("dashboard:orders_export"), params)

    rows = _csv(response)
    expected = sorted(
        (o for o in dataset if keep(o)), key=lambda o: (o.created_at, o.pk), reverse=True
    )
    assert [r["number"] for r in rows] == [o.number for o in expected]
    assert response["Content-Disposition"].startswith('attachment; filename="orders-')


def test_csv_export_goes_past_one_page(operator_client, merchant_a, make_order):
    made = [make_order(merchant=merchant_a) for _ in range(60)]

    rows = _csv(operator_client.get(reverse("dashboard:orders_export")))

    assert sorted(r["number"] for r in rows) == sorted(o.number for o in made)


def test_csv_amounts_are_major_units_of_the_currency_and_formulas_are_defused(
    operator_client, merchant_b, make_order
):
    make_order(merchant=merchant_b, total_minor=12345, first_name="=HYPERLINK(1)", last_name="")

    (row,) = _csv(operator_client.get(reverse("dashboard:orders_export")))

    assert row["currency"] == "KWD" and row["total"] == "12.345"
    assert row["customer"] == "'=HYPERLINK(1)"


def test_csv_export_of_staff_holds_only_their_merchants_rows(staff_b_client, dataset, merchant_b):
    rows = _csv(staff_b_client.get(reverse("dashboard:orders_export")))

    assert sorted(r["number"] for r in rows) == sorted(
        o.number for o in dataset if o.merchant_id == merchant_b.pk
    )


def test_csv_export_with_bad_filters_is_a_400(operator_client, dataset):
    response = operator_client.get(reverse("dashboard:orders_export"), {"status": "lost"})

    assert response.status_code == 400
    assert "valid choice" in response.content.decode()


# -- live updates -----------------------------------------------------------------------------


def _live_cursor(response) -> str:
    return re.search(r'data-live-cursor="(\d+)"', response.content.decode()).group(1)


def test_live_endpoint_returns_new_and_changed_orders_only(
    staff_a_client, merchant_a, merchant_b, make_order
):
    long_ago = timezone.now() - timedelta(hours=1)
    untouched = make_order(merchant=merchant_a, created_at=long_ago)
    to_change = make_order(merchant=merchant_a, status="paid", created_at=long_ago)
    page = staff_a_client.get(reverse("dashboard:orders"))
    since = _live_cursor(page)

    new = make_order(merchant=merchant_a)
    Order.objects.filter(pk=to_change.pk).update(status="fulfilled", updated_at=timezone.now())
    make_order(merchant=merchant_b)  # another merchant's: never shown to staff of A

    data = staff_a_client.get(reverse("dashboard:orders_live"), {"since": since}).json()

    assert {row["id"] for row in data["rows"]} == {new.pk, to_change.pk}
    assert untouched.pk not in {row["id"] for row in data["rows"]}
    assert data["gone"] == []
    changed = next(row for row in data["rows"] if row["id"] == to_change.pk)
    assert 'class="badge fulfilled"' in changed["html"]
    assert f'data-id="{new.pk}"' in next(r["html"] for r in data["rows"] if r["id"] == new.pk)
    # The count above the list follows: staff of A now have three orders (B's is not counted).
    assert data["count_html"] == "3 orders"


def test_live_endpoint_does_not_recount_when_nothing_changed(
    operator_client, merchant_a, make_order
):
    make_order(merchant=merchant_a, created_at=timezone.now() - timedelta(hours=1))
    since = _live_cursor(operator_client.get(reverse("dashboard:orders")))

    data = operator_client.get(reverse("dashboard:orders_live"), {"since": since}).json()

    assert data["rows"] == [] and data["gone"] == []
    assert "count_html" not in data


def test_live_endpoint_applies_the_filters_and_reports_rows_that_left_them(
    operator_client, merchant_a, make_order
):
    long_ago = timezone.now() - timedelta(hours=1)
    leaving = make_order(merchant=merchant_a, status="paid", created_at=long_ago)
    since = _live_cursor(operator_client.get(reverse("dashboard:orders"), {"status": "paid"}))

    Order.objects.filter(pk=leaving.pk).update(status="fulfilled", updated_at=timezone.now())
    joining = make_order(merchant=merchant_a, status="paid")
    make_order(merchant=merchant_a, status="pending_payment")  # does not match the filter

    data = operator_client.get(
        reverse("dashboard:orders_live"), {"since": since, "status": "paid"}
    ).json()

    assert [row["id"] for row in data["rows"]] == [joining.pk]
    assert data["gone"] == [leaving.pk] or set(data["gone"]) >= {leaving.pk}
    assert leaving.pk in data["gone"]


def test_live_rows_repeat_with_the_same_version_until_they_change_again(
    operator_client, merchant_a, make_order
):
    since = _live_cursor(operator_client.get(reverse("dashboard:orders")))
    new = make_order(merchant=merchant_a)

    first = operator_client.get(reverse("dashboard:orders_live"), {"since": since}).json()
    second = operator_client.get(
        reverse("dashboard:orders_live"), {"since": first["cursor"]}
    ).json()

    # The overlap window may send a row again; its version is unchanged, so the page ignores it.
    versions = {r["id"]: r["version"] for r in first["rows"]}
    assert versions.keys() == {new.pk}
    assert all(versions[r["id"]] == r["version"] for r in second["rows"])


def test_live_endpoint_refuses_a_missing_or_bad_cursor(operator_client):
    missing = operator_client.get(reverse("dashboard:orders_live"))
    bad = operator_client.get(reverse("dashboard:orders_live"), {"since": "yesterday"})

    assert missing.status_code == 400 and "since" in missing.json()["message"]
    assert bad.status_code == 400


# -- query counts -----------------------------------------------------------------------------


def _queries(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params or {})
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize(
    "url_name", ["dashboard:orders", "dashboard:orders_live", "dashboard:orders_export"]
)
def test_query_count_does_not_grow_with_the_number_of_orders(
    operator_client, merchant_a, merchant_b, make_order, django_assert_max_num_queries, url_name
):
    params = {"since": "0"} if url_name == "dashboard:orders_live" else {}
    for i in range(5):
        make_order(merchant=merchant_a if i % 2 else merchant_b)
    few = _queries(operator_client, reverse(url_name), params)

    for i in range(45):
        make_order(merchant=merchant_a if i % 2 else merchant_b)
    with django_assert_max_num_queries(few):
        response = operator_client.get(reverse(url_name), params)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
