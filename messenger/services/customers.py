"""Customers as Messenger knows them: one per (page, PSID), named by the User Profile API.

A plugin user known only by a ``user_ref`` (``messenger.identity``) is a customer too, keyed
``ref:<user_ref>``; the User Profile API cannot name them (it takes a PSID).

The profile (name, locale, timezone) is read with :func:`customer_profile_get` for every event,
outside any transaction, from the Django cache (the cached answer says when it was fetched) or,
for a new customer and once a day, from the Graph API; :func:`customer_upsert` then writes it in
the inbox row's short transaction. A failed fetch (a Graph error, the network) is logged without
the token and never stops the conversation: the customer keeps the names it has (empty for a
new one) and the fetch is tried again after a short pause.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from commerce.models import Customer
from messenger.client import GraphClient
from messenger.exceptions import GraphError
from messenger.identity import is_user_ref_key
from messenger.models import MessengerPage

logger = logging.getLogger(__name__)

PROFILE_MAX_AGE = timedelta(days=1)
PROFILE_RETRY_AFTER = timedelta(minutes=10)


def customer_profile_get(*, page: MessengerPage, psid: str, now: datetime) -> dict | None:
    """The User Profile of ``psid`` on ``page``: the cached answer while it is younger than a
    day, else a fresh one from the Graph API (cached in turn). None when there is none: the call
    failed (logged, not raised, and tried again after a short pause), the page has no token, or
    ``psid`` is a plugin user's ``ref:`` key.

    Call it outside any transaction: it may wait for the Graph API.
    """
    if not psid or is_user_ref_key(psid):
        return None
    return _profile_get(page=page, psid=psid, now=now)


def customer_upsert(*, page: MessengerPage, psid: str, profile: dict | None = None) -> Customer:
    """The customer of ``page.merchant`` behind ``psid`` (a PSID or a ``ref:`` key) on
    ``page``, created if new, with the name, locale and timezone of ``profile`` (what
    :func:`customer_profile_get` answered). Profile values overwrite stored ones only when the
    API returned them (a field withheld for lack of permission keeps what is stored).

    Database only: safe in a short transaction.
    """
    customer, _ = Customer.objects.get_or_create(
        page_id=page.page_id, psid=psid, defaults={"merchant": page.merchant}
    )
    if profile:
        changed = _profile_apply(customer, profile)
        if changed:
            customer.save(update_fields=[*changed, "updated_at"])
    return customer


def customer_touch(*, customer: Customer, at: datetime) -> None:
    """Record that the customer wrote at ``at``: the start of the 24-hour messaging window.

    Never moves ``last_interaction_at`` backwards (an old event processed late) nor into the
    future (clocks differ). One conditional UPDATE; safe against concurrent touches.
    """
    at = min(at, timezone.now())
    updated = (
        Customer.objects.filter(pk=customer.pk)
        .filter(Q(last_interaction_at__isnull=True) | Q(last_interaction_at__lt=at))
        .update(last_interaction_at=at)
    )
    if updated:
        customer.last_interaction_at = at


def customer_record_referral(*, customer: Customer, referral: Any) -> None:
    """Keep the referral that brought the customer (an m.me ``ref``, a click-to-Messenger ad).

    The latest referral carrying a ``ref`` or an ad id wins (last-touch attribution; orders copy
    it when they are placed). A referral with neither says nothing about where they came from
    and changes nothing.
    """
    ref = (getattr(referral, "ref", None) or "")[:250]
    ad_id = str(getattr(referral, "ad_id", None) or "")[:64]
    if not ref and not ad_id:
        return
    source = (getattr(referral, "source", None) or "")[:40]
    values = {"referral_ref": ref, "referral_source": source, "referral_ad_id": ad_id}
    if all(getattr(customer, name) == value for name, value in values.items()):
        return
    for name, value in values.items():
        setattr(customer, name, value)
    customer.save(update_fields=[*values, "updated_at"])


# --------------------------------------------------------------------------------------------


def _profile_cache_key(page: MessengerPage, psid: str) -> str:
    return f"messenger:profile:{page.page_id}:{psid}"


def _profile_get(*, page: MessengerPage, psid: str, now: datetime) -> dict[str, Any] | None:
    """The cached profile while younger than a day, else a fresh one (None when unavailable)."""
    key = _profile_cache_key(page, psid)
    try:
        cached = cache.get(key)
    except Exception:  # the cache (Redis) is down: fetch, without remembering
        logger.warning("customers: profile cache unavailable")
        cached = None
    if isinstance(cached, dict):
        fetched_at = datetime.fromisoformat(cached["fetched_at"])
        max_age = PROFILE_MAX_AGE if cached.get("profile") is not None else PROFILE_RETRY_AFTER
        if now - fetched_at < max_age:
            return cached.get("profile")
    profile = _profile_fetch(page=page, psid=psid)
    ttl = PROFILE_MAX_AGE if profile is not None else PROFILE_RETRY_AFTER
    try:
        cache.set(
            key,
            {"fetched_at": now.isoformat(), "profile": profile},
            timeout=int(ttl.total_seconds()),
        )
    except Exception:
        logger.warning("customers: profile cache unavailable")
    return profile


def _profile_fetch(*, page: MessengerPage, psid: str) -> dict[str, Any] | None:
    if not page.access_token:
        return None  # nothing to ask with; the admin shows the page needs a token
    try:
        return GraphClient(page).user_profile(psid)
    except GraphError as error:
        # The client words its errors without the request URL (which holds the token).
        logger.warning(
            "customers: user profile of PSID %s on page %s unavailable: %s",
            psid,
            page.page_id,
            error,
        )
    return None


def _profile_apply(customer: Customer, profile: dict[str, Any]) -> list[str]:
    """Copy the profile's fields onto ``customer``; return the names of the changed fields."""
    values: dict[str, Any] = {}
    for field, limit in (("first_name", 80), ("last_name", 80), ("locale", 16)):
        value = profile.get(field)
        if isinstance(value, str) and value.strip():
            values[field] = value.strip()[:limit]
    offset = profile.get("timezone")
    if isinstance(offset, int | float) and not isinstance(offset, bool) and -24 <= offset <= 24:
        # Graph gives hours from UTC, sometimes fractional (India: 5.5); the field holds hours.
        values["timezone_offset"] = round(offset)
    changed = [name for name, value in values.items() if getattr(customer, name) != value]
    for name in changed:
        setattr(customer, name, values[name])
    return changed
