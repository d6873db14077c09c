"""Staff actions that create rows are idempotent per submission (ADR 0007): the same submission
key records one shipment (or note) and announces it once; the key with other details is
refused; without a key, the same tracking number twice is refused as the same parcel."""

from __future__ import annotations

import pytest

from commerce.models import Order, OrderEvent, Shipment
from commerce.notifications import OrderNotice
from commerce.services.orders import (
    order_add_note,
    order_fulfil,
    order_mark_delivered,
    order_mark_paid,
)
from core.exceptions import ApplicationError
from tests.factories import staff_create

pytestmark = pytest.mark.django_db

Kind = OrderEvent.Kind


@pytest.fixture
def paid(place) -> Order:
    return order_mark_paid(order=place(qty=2))


def _fulfil(order: Order, **changes) -> Shipment:
    fields = {"carrier": "Aramex", "tracking_number": "AX1", "submission_key": "form-1"}
    return order_fulfil(order=Order.objects.get(pk=order.pk), **{**fields, **changes})


def test_the_same_submission_twice_records_one_shipment_and_one_notice(paid, notices):
    notices.clear()

    first = _fulfil(paid, tracking_url="https://track.example/AX1")
    second = _fulfil(paid, tracking_url="https://track.example/AX1")

    assert (first.replayed, second.replayed) == (False, True)
    assert second.pk == first.pk
    assert list(Shipment.objects.filter(order=paid)) == [first]
    assert first.submission_key == "form-1"
    assert paid.events.filter(kind=Kind.FULFILLED).count() == 1
    assert [n for n in notices if n[0] == OrderNotice.FULFILLED] == [
        (OrderNotice.FULFILLED, paid.pk, {"shipment": first})
    ]


def test_a_replayed_submission_after_delivery_returns_the_shipment_unchanged(paid):
    first = _fulfil(paid)
    order_mark_delivered(order=Order.objects.get(pk=paid.pk))

    again = _fulfil(paid)

    assert again.pk == first.pk and again.replayed
    assert Order.objects.get(pk=paid.pk).status == Order.Status.DELIVERED


def test_a_submission_key_sent_again_with_other_details_is_refused(paid, notices):
    first = _fulfil(paid)
    notices.clear()

    with pytest.raises(ApplicationError) as caught:
        _fulfil(paid, tracking_number="AX2")

    assert caught.value.code == "submission_reused" and caught.value.status_code == 422
    assert list(Shipment.objects.filter(order=paid)) == [first]
    assert notices == []


def test_keys_belong_to_their_order(place):
    one, two = order_mark_paid(order=place()), order_mark_paid(order=place())

    _fulfil(one)
    other = _fulfil(two)

    assert not other.replayed and other.order_id == two.pk


def test_new_submissions_record_further_parcels(paid):
    _fulfil(paid, submission_key="form-1", tracking_number="AX1")
    _fulfil(paid, submission_key="form-2", tracking_number="AX2")
    _fulfil(paid, submission_key="", carrier="Courier", tracking_number="")
    _fulfil(paid, submission_key="", carrier="Courier", tracking_number="")

    assert paid.shipments.count() == 4


def test_the_same_parcel_twice_without_a_key_is_refused(paid, notices):
    _fulfil(paid, submission_key="", tracking_number="AX-77")
    notices.clear()

    with pytest.raises(ApplicationError) as caught:
        _fulfil(paid, submission_key="", carrier="aramex", tracking_number="ax-77")

    assert caught.value.code == "shipment_duplicate"
    assert paid.shipments.count() == 1 and notices == []


@pytest.mark.parametrize("key", ["has space", "x" * 101, "émoji-✓"])
def test_a_malformed_submission_key_is_refused_and_changes_nothing(paid, key):
    with pytest.raises(ApplicationError) as caught:
        _fulfil(paid, submission_key=key)

    assert caught.value.code == "submission_key_invalid"
    assert not paid.shipments.exists()


def test_a_note_submitted_twice_is_added_once(paid):
    staff = staff_create(merchant=paid.merchant)

    first = order_add_note(order=paid, message="Gift wrap", user=staff, submission_key="n-1")
    second = order_add_note(order=paid, message="Gift wrap", user=staff, submission_key="n-1")

    assert (first.replayed, second.replayed, second.pk) == (False, True, first.pk)
    assert paid.events.filter(kind=Kind.NOTE).count() == 1
    with pytest.raises(ApplicationError) as caught:
        order_add_note(order=paid, message="No gift wrap", user=staff, submission_key="n-1")
    assert caught.value.code == "submission_reused"
    order_add_note(order=paid, message="Gift wrap", user=staff, submission_key="n-2")
    assert paid.events.filter(kind=Kind.NOTE).count() == 2
