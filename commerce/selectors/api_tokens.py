"""Whose API tokens a user may see and revoke.

Everyone sees and revokes their own tokens; owners also those of the staff of the merchants they
own (not operators'); operators everybody's.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from commerce.models import ApiToken, MerchantMembership
from commerce.selectors.access import OPERATORS_GROUP, user_is_operator, user_roles


def _owned_merchant_ids(user) -> list[int]:
    return [
        merchant_id
        for merchant_id, role in user_roles(user).items()
        if role == MerchantMembership.Role.OWNER
    ]


def _staff_of(merchant_ids: list[int]) -> QuerySet:
    """Users holding a membership in one of ``merchant_ids``, operators left out."""
    return (
        MerchantMembership.objects.filter(merchant_id__in=merchant_ids)
        .exclude(user__is_superuser=True)
        .exclude(user__groups__name=OPERATORS_GROUP)
        .values("user_id")
    )


def api_tokens_visible_to(user) -> QuerySet[ApiToken]:
    """The tokens ``user`` may see (and revoke), newest first."""
    tokens = ApiToken.objects.select_related("user", "revoked_by")
    if user_is_operator(user):
        return tokens
    if not (user and user.is_authenticated and user.is_active):
        return tokens.none()
    owned = _owned_merchant_ids(user)
    if not owned:
        return tokens.filter(user=user)
    return tokens.filter(Q(user=user) | Q(user_id__in=_staff_of(owned)))


def user_can_revoke_api_token(user, token: ApiToken) -> bool:
    return api_tokens_visible_to(user).filter(pk=token.pk).exists()
