"""Admin for API tokens: see them, revoke them, issue one for yourself (shown once).

Nobody can read a token back, here or anywhere: a row shows the token's first characters, its
label, when it was issued and when it expires or was revoked. Everyone sees and revokes their own
tokens; owners also those of their merchants' staff; operators everybody's
(``commerce.selectors.api_tokens``). Revoking and issuing call the services.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from commerce.models import ApiToken
from commerce.selectors.api_tokens import api_tokens_visible_to
from commerce.services.api_tokens import api_token_issue, api_token_revoke


def _staff(request) -> bool:
    return bool(request.user.is_active and request.user.is_staff)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["prefix", "user", "label", "created_at", "expires_at", "state", "revoked_by"]
    list_select_related = ["user", "revoked_by"]
    search_fields = ["prefix", "label", "user__username"]
    actions = ["revoke"]
    readonly_fields = ["prefix", "user", "created_at", "expires_at", "revoked_at", "revoked_by"]

    def get_queryset(self, request):
        return api_tokens_visible_to(request.user)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["label"]  # the rest is decided when the token is issued
        return ["prefix", "user", "label", "created_at", "expires_at", "revoked_at", "revoked_by"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else [*self.readonly_fields, "label"]

    def has_module_permission(self, request) -> bool:
        return _staff(request)

    def has_view_permission(self, request, obj=None) -> bool:
        if obj is None:
            return _staff(request)
        return api_tokens_visible_to(request.user).filter(pk=obj.pk).exists()

    def has_add_permission(self, request) -> bool:
        return _staff(request)  # a token for yourself

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a token is revoked, never edited

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoked tokens stay listed until they expire

    @admin.display(description=_("state"))
    def state(self, token: ApiToken) -> str:
        if token.revoked_at is not None:
            return _("revoked")
        if token.expires_at <= timezone.now():
            return _("expired")
        return _("live")

    @admin.action(description=_("Revoke the selected tokens"))
    def revoke(self, request, queryset):
        revoked = sum(api_token_revoke(token=token, by=request.user) for token in queryset)
        self.message_user(
            request,
            ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", revoked)
            % {"count": revoked},
            messages.SUCCESS,
        )

    def save_model(self, request, obj, form, change):
        """Issue the token through the service; the clear token goes to this response only."""
        issued = api_token_issue(user=request.user, label=form.cleaned_data.get("label", ""))
        obj.pk = issued.token.pk  # the admin goes on with the row the service wrote
        obj._state.adding = False
        obj.refresh_from_db()
        request._issued_api_token_key = issued.key

    def response_add(self, request, obj, post_url_continue=None):
        response = TemplateResponse(
            request,
            "admin/commerce/apitoken/issued.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": _("Your new API token"),
                "token": obj,
                "key": request._issued_api_token_key,
            },
        )
        response["Cache-Control"] = "no-store"
        return response
