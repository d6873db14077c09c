"""Who may see which merchant's rows. Every query of merchant-owned data goes through here.

Operators (superusers, or members of the ``operators`` group) see every merchant. Merchant staff
see only the merchants they hold a membership in, with the role of that membership.
"""

from __future__ import annotations

from django.db.models import QuerySet

from commerce.models import Merchant, MerchantMembership

OPERATORS_GROUP = "operators"
CATALOG_EDITOR_ROLES = frozenset({MerchantMembership.Role.OWNER, MerchantMembership.Role.MANAGER})
ORDER_HANDLER_ROLES = CATALOG_EDITOR_ROLES | {MerchantMembership.Role.SUPPORT}


def user_is_operator(user) -> bool:
    """True for active superusers and members of the operators group (cached on the user)."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    cached = getattr(user, "_cc_is_operator", None)
    if cached is None:
        cached = user.is_superuser or user.groups.filter(name=OPERATORS_GROUP).exists()
        user._cc_is_operator = cached
    return cached


def user_roles(user) -> dict[int, str]:
    """``{merchant_id: role}`` of the user's memberships in active merchants (cached)."""
    if not (user and user.is_authenticated and user.is_active):
        return {}
    cached = getattr(user, "_cc_roles", None)
    if cached is None:
        cached = dict(
            MerchantMembership.objects.filter(user=user, merchant__is_active=True).values_list(
                "merchant_id", "role"
            )
        )
        user._cc_roles = cached
    return cached


def merchant_ids_for_user(user) -> list[int]:
    return sorted(user_roles(user))


def merchants_for_user(user) -> QuerySet[Merchant]:
    """The merchants whose rows the user may see."""
    if user_is_operator(user):
        return Merchant.objects.all()
    return Merchant.objects.filter(pk__in=merchant_ids_for_user(user))


def scope_queryset(queryset: QuerySet, *, user, merchant_path: str = "merchant") -> QuerySet:
    """Limit a queryset of merchant-owned rows to what ``user`` may see.

    ``merchant_path`` is the lookup from the model to its merchant (``"product__merchant"`` for
    images). Operators get the queryset unchanged; users without memberships get nothing.
    """
    if user_is_operator(user):
        return queryset
    return queryset.filter(**{f"{merchant_path}__in": merchant_ids_for_user(user)})


def user_can_view_merchant(user, merchant_id: int | None) -> bool:
    return user_is_operator(user) or merchant_id in user_roles(user)


def user_has_role(user, merchant_id: int | None, allowed: frozenset[str]) -> bool:
    """Operators always; staff when their role in ``merchant_id`` is one of ``allowed``.

    Without ``merchant_id``: does the user hold such a role in at least one merchant?
    """
    if user_is_operator(user):
        return True
    roles = user_roles(user)
    if merchant_id is None:
        return any(role in allowed for role in roles.values())
    return roles.get(merchant_id) in allowed


def user_can_edit_catalog(user, merchant_id: int | None = None) -> bool:
    """Owners and managers edit the catalog; support staff only read it."""
    return user_has_role(user, merchant_id, CATALOG_EDITOR_ROLES)


def user_can_handle_orders(user, merchant_id: int | None = None) -> bool:
    """Owners, managers and support staff ship orders, mark them delivered and add notes."""
    return user_has_role(user, merchant_id, ORDER_HANDLER_ROLES)


def user_can_cancel_orders(user, merchant_id: int | None = None) -> bool:
    """Only owners and managers (and operators) cancel orders."""
    return user_has_role(user, merchant_id, CATALOG_EDITOR_ROLES)


def user_is_owner(user, merchant_id: int) -> bool:
    return (
        user_is_operator(user) or user_roles(user).get(merchant_id) == MerchantMembership.Role.OWNER
    )
