"""Who may open the dashboard, which merchants they see, and which actions they may take.

Every dashboard view is wrapped in :func:`dashboard_view`:

- anonymous visitors are sent to the dashboard's login page (``?next=`` keeps where they were);
- signed-in users who are neither operators nor staff of an active merchant get a 403 page;
- everyone else gets ``request.dashboard``, a :class:`DashboardScope`: the merchants they may
  see (all of them for operators, their memberships for staff) and the merchant picked in the
  switcher (``?merchant=<slug>``, remembered in the session; ``?merchant=`` shows all again).

Querysets are narrowed with ``request.dashboard.filter(queryset, merchant_path=...)``, which goes
through ``commerce.selectors.access.scope_queryset`` like the admin and the API. A row of another
merchant asked for by URL is a 404 (:func:`get_scoped_or_404`), never a 403: staff must not learn
which order numbers exist elsewhere. Actions check the role with :func:`require` and answer a 403
page that says what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from commerce.models import Merchant
from commerce.selectors.access import (
    merchants_for_user,
    scope_queryset,
    user_can_cancel_orders,
    user_can_handle_orders,
    user_can_view_merchant,
    user_is_operator,
    user_roles,
)

__all__ = [
    "MERCHANT_SESSION_KEY",
    "DashboardScope",
    "Forbidden",
    "can_cancel",
    "can_handle",
    "can_refund",
    "dashboard_view",
    "get_scoped_or_404",
    "require",
    "user_may_use_dashboard",
]

MERCHANT_SESSION_KEY = "dashboard_merchant"


def user_may_use_dashboard(user) -> bool:
    """Operators, and staff holding a role in at least one active merchant."""
    return user_is_operator(user) or bool(user_roles(user))


@dataclass(frozen=True)
class DashboardScope:
    """What the signed-in user sees on this request.

    ``merchants`` are every merchant the user may see (for the switcher); ``merchant`` is the
    one picked, or ``None`` for all of them.
    """

    user: object
    is_operator: bool
    merchants: list[Merchant] = field(default_factory=list)
    merchant: Merchant | None = None

    @property
    def merchant_ids(self) -> list[int]:
        """The merchant ids the pages show now: the picked one, or every visible one."""
        if self.merchant is not None:
            return [self.merchant.pk]
        return [m.pk for m in self.merchants]

    @property
    def shows_switcher(self) -> bool:
        return len(self.merchants) > 1

    def filter(self, queryset: QuerySet, *, merchant_path: str = "merchant") -> QuerySet:
        """``queryset`` limited to what the user may see and to the picked merchant.

        Operators without a pick get the queryset unchanged (no ``IN`` over every merchant).
        """
        queryset = scope_queryset(queryset, user=self.user, merchant_path=merchant_path)
        if self.merchant is not None:
            queryset = queryset.filter(**{merchant_path: self.merchant.pk})
        return queryset

    def may_view(self, merchant_id: int | None) -> bool:
        return user_can_view_merchant(self.user, merchant_id)


def _scope_for(request: HttpRequest) -> DashboardScope:
    """Build the scope, applying ``?merchant=<slug>`` (remembered in the session).

    :raises Http404: the slug names no merchant the user may see.
    """
    user = request.user
    merchants = list(merchants_for_user(user).order_by("name", "pk"))
    by_slug = {m.slug: m for m in merchants}
    if "merchant" in request.GET:
        slug = request.GET["merchant"].strip()
        if slug and slug not in by_slug:
            raise Http404(_("No such merchant."))
        if slug:
            request.session[MERCHANT_SESSION_KEY] = slug
        else:
            request.session.pop(MERCHANT_SESSION_KEY, None)
    slug = request.session.get(MERCHANT_SESSION_KEY, "")
    merchant = by_slug.get(slug)
    if merchant is None and len(merchants) == 1:
        merchant = merchants[0]
    return DashboardScope(
        user=user, is_operator=user_is_operator(user), merchants=merchants, merchant=merchant
    )


def _forbidden(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "dashboard/forbidden.html", {"message": message}, status=403)


def dashboard_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate a dashboard view: login required, dashboard access checked, scope attached.

    A :class:`Forbidden` raised by the view becomes a 403 page with its message.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("dashboard:login"))
        if not user_may_use_dashboard(request.user):
            return _forbidden(
                request,
                _(
                    "Your account has no access to the dashboard. Ask an operator to add you "
                    "to a merchant."
                ),
            )
        request.dashboard = _scope_for(request)
        try:
            return view(request, *args, **kwargs)
        except Forbidden as refusal:
            return _forbidden(request, refusal.message)

    return wrapped


class Forbidden(Exception):
    """The user may see the row but not do this to it; ``message`` says what they lack."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def get_scoped_or_404(request: HttpRequest, queryset: QuerySet, *, merchant_path="merchant", **kw):
    """The one row matching ``kw`` among those the user may see (ignoring the switcher's pick,
    so a link from elsewhere still opens), else 404."""
    scoped = scope_queryset(queryset, user=request.user, merchant_path=merchant_path)
    row: Model | None = scoped.filter(**kw).first()
    if row is None:
        raise Http404(_("Not found, or not one of your merchants'."))
    return row


# -- roles -----------------------------------------------------------------------------------

ROLE_NEEDED = {
    "handle": gettext_lazy("This needs the owner, manager or support role for this merchant."),
    "cancel": gettext_lazy("This needs the owner or manager role for this merchant."),
}


def can_handle(user, merchant_id: int) -> bool:
    """Ship, mark delivered, add notes, answer and hand back conversations."""
    return user_can_handle_orders(user, merchant_id)


def can_cancel(user, merchant_id: int) -> bool:
    """Cancel unpaid orders: owners, managers and operators."""
    return user_can_cancel_orders(user, merchant_id)


def can_refund(user, merchant_id: int) -> bool:
    """Refunds give money back: the same roles as cancelling (as in the admin and the API)."""
    return user_can_cancel_orders(user, merchant_id)


def require(allowed: bool, need: str = "handle") -> None:
    """Refuse with a 403 page naming the role needed (``need``: ``handle`` or ``cancel``).

    :raises Forbidden: ``allowed`` is false.
    """
    if not allowed:
        raise Forbidden(str(ROLE_NEEDED[need]))
