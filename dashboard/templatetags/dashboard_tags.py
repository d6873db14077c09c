"""Template helpers of the dashboard: money in the page's language, status badges, query links."""

from __future__ import annotations

from django import template
from django.utils.translation import get_language

from core.money import Money

register = template.Library()


@register.filter
def money(amount_minor, currency) -> str:
    """``{{ order.total_minor|money:order.currency }}`` -> "$12.50" (or "US$ 12.50" in Arabic)."""
    if amount_minor is None or not currency:
        return "–"
    return Money(int(amount_minor), currency).format(get_language() or "en")


@register.simple_tag(takes_context=True)
def query(context, **changes) -> str:
    """The current query string with ``changes`` applied (``None`` or "" removes a key)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value in (None, ""):
            params.pop(key, None)
        else:
            params[key] = value
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else "?"


@register.simple_tag(takes_context=True)
def waiting_count(context) -> int:
    """How many customers of the visible merchants wait for a person (for the nav badge).

    One count over the partial index of paused conversations; 0 outside dashboard views.
    """
    scope = getattr(context["request"], "dashboard", None)
    if scope is None:
        return 0
    from commerce.models import Customer

    return scope.filter(Customer.objects.filter(bot_paused_at__isnull=False)).count()
