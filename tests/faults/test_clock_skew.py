"""Clock skew and replays at the Stripe webhook (DESIGN.md 6.2 and 8: a signature is checked
with a 300 s tolerance on both sides of our clock; a refused body stores nothing).

``tests/payments/test_webhook.py`` covers single stale and future signatures; here the clocks
themselves are wrong: our server's clock drifts, a captured request is replayed later, the
``t=`` of a header is rewritten. Each refused delivery must answer 400 with a clear message and
leave no row; once the clocks agree again, Stripe's next retry goes through and is processed once.
"""

from __future__ import annotations

import time

import pytest

from payments.models import ProviderEvent
from tests.payments.stripe_stub import stripe_event, stripe_signature
from tests.payments.webhook_helpers import enqueue_recorder, fixture_object, post_event

pytestmark = [pytest.mark.faults, pytest.mark.django_db]

TOLERANCE = 300
_real_time = time.time


def _completed() -> dict:
    return fixture_object("checkout_session_completed")


def _our_clock_off_by(monkeypatch, seconds: float) -> None:
    """Our server's clock runs ``seconds`` ahead (negative: behind) of Stripe's."""
    monkeypatch.setattr(time, "time", lambda: _real_time() + seconds)


def _post(client, monkeypatch, body: bytes, signature: str):
    with enqueue_recorder(monkeypatch) as enqueued:
        response = post_event(client, body, signature)
    return response, enqueued


def _refused(response) -> bool:
    return response.status_code == 400 and response.json()["code"] == "webhook_signature_invalid"


@pytest.mark.parametrize("drift", [TOLERANCE + 30, -(TOLERANCE + 30)], ids=["ahead", "behind"])
def test_a_drifting_server_clock_refuses_then_takes_stripes_retry_once_it_is_right(
    client, monkeypatch, drift
):
    event_id = "evt_clock_skew_0001"
    body, signature = stripe_event(
        "checkout.session.completed", _completed(), event_id=event_id, timestamp=int(_real_time())
    )
    _our_clock_off_by(monkeypatch, drift)
    response, enqueued = _post(client, monkeypatch, body, signature)
    assert _refused(response), response.content
    assert response.json()["message"]
    assert not ProviderEvent.objects.exists() and enqueued == []

    # NTP fixes the clock; Stripe retries the same event, signed again at its own "now".
    monkeypatch.setattr(time, "time", _real_time)
    retry_signature = stripe_signature(body, secret=_secret(), timestamp=int(_real_time()))
    response, enqueued = _post(client, monkeypatch, body, retry_signature)
    assert response.status_code == 200
    assert list(ProviderEvent.objects.values_list("event_id", flat=True)) == [event_id]
    assert len(enqueued) == 1


def test_small_skew_either_way_is_tolerated(client, monkeypatch):
    for n, offset in enumerate((-(TOLERANCE - 20), TOLERANCE - 20)):
        body, signature = stripe_event(
            "checkout.session.completed",
            _completed(),
            event_id=f"evt_small_skew_{n}",
            timestamp=int(_real_time()) + offset,
        )
        response, _ = _post(client, monkeypatch, body, signature)
        assert response.status_code == 200, (offset, response.content)
    assert ProviderEvent.objects.count() == 2


def test_a_captured_delivery_replayed_later_is_refused_and_changes_nothing(client, monkeypatch):
    body, signature = stripe_event("checkout.session.completed", _completed())
    response, _ = _post(client, monkeypatch, body, signature)
    assert response.status_code == 200
    stored = ProviderEvent.objects.get()

    # Six minutes later someone sends the exact same bytes and header again.
    _our_clock_off_by(monkeypatch, TOLERANCE + 60)
    response, enqueued = _post(client, monkeypatch, body, signature)
    assert _refused(response)
    assert enqueued == []
    assert list(ProviderEvent.objects.all()) == [stored]


@pytest.mark.parametrize(
    "header",
    [
        # t= made fresh, v1 still the one computed for the old t.
        lambda body, old, now: f"t={now},v1={_v1(body, old)}",
        # A fresh t= put before the real (stale) header: the first t= counts and does not match.
        lambda body, old, now: f"t={now},{stripe_signature(body, secret=_secret(), timestamp=old)}",
        # Two t= values, the stale one first.
        lambda body, old, now: f"{stripe_signature(body, secret=_secret(), timestamp=old)},t={now}",
    ],
    ids=["rewritten_t", "fresh_t_prepended", "fresh_t_appended"],
)
def test_a_stale_signature_dressed_up_as_fresh_is_refused(client, monkeypatch, header):
    old = int(_real_time()) - TOLERANCE - 120
    body, _signature = stripe_event("checkout.session.completed", _completed(), timestamp=old)
    response, enqueued = _post(client, monkeypatch, body, header(body, old, int(_real_time())))
    assert _refused(response), response.content
    assert not ProviderEvent.objects.exists() and enqueued == []


def _secret() -> str:
    from django.conf import settings

    return settings.STRIPE_WEBHOOK_SECRET.split(",")[0].strip()


def _v1(body: bytes, timestamp: int) -> str:
    header = stripe_signature(body, secret=_secret(), timestamp=timestamp)
    return dict(part.split("=", 1) for part in header.split(","))["v1"]
