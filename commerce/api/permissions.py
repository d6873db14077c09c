"""Who may call the REST API, by membership role.

- Not authenticated: 401 with ``WWW-Authenticate: Token`` (DRF's ``NotAuthenticated``).
- Authenticated but neither an operator nor a member of an active merchant: 403 on everything.
- Support staff read; owners and managers (and operators) also write. A write on a merchant's
  object needs an editing role in *that* merchant.

Objects of merchants the caller cannot see never reach these checks: the views' querysets are
scoped, so such ids answer 404 before any object permission is asked.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import SAFE_METHODS, BasePermission

from commerce.selectors.access import user_can_edit_catalog, user_is_operator, user_roles


def _write_check(view):
    """The role check for the view's current write action (catalog editing unless it says)."""
    return getattr(view, "action_permissions", {}).get(
        getattr(view, "action", None), user_can_edit_catalog
    )


def merchant_id_of(obj, merchant_path: str) -> int | None:
    """Follow ``merchant_path`` (``"merchant"``, ``"order__merchant"``) to the merchant's id."""
    *parents, last = merchant_path.split("__")
    target = obj
    for part in parents:
        target = getattr(target, part, None)
        if target is None:
            return None
    return getattr(target, f"{last}_id", None)


class MerchantRolePermission(BasePermission):
    """Operators and merchant staff; support staff only read the catalog.

    Views name the lookup from their model to its merchant in ``merchant_path``, and may map
    write actions to other role checks in ``action_permissions`` (support staff ship orders).
    """

    message = _("You do not have access to any shop.")

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False  # DRF turns this into a 401 NotAuthenticated
        if not (user_is_operator(user) or user_roles(user)):
            return False
        if request.method in SAFE_METHODS:
            return True
        if not _write_check(view)(user):
            self.message = _("Your role in this shop is read-only.")
            return False
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS:
            return True
        merchant_id = merchant_id_of(obj, getattr(view, "merchant_path", "merchant"))
        if not _write_check(view)(request.user, merchant_id):
            self.message = _("Your role in this shop is read-only.")
            return False
        return True
