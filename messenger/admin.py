"""Admin for Messenger pages. Scoping by merchant comes from ``commerce.admin_tenancy``.

The page access token is write-only here: the form never renders it (a password input left empty
keeps the stored token) and lists show at most its last four characters.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from commerce.admin_tenancy import MerchantScopedAdmin
from messenger.models import MessengerPage
from messenger.services.pages import page_token_rejection_clear
from messenger.services.profile import (
    ProfileInvalid,
    ProfileRateLimited,
    ice_breakers_errors,
    messenger_profile_body,
    messenger_profile_sync_enqueue,
    persistent_menu_errors,
)

MASK = "••••"


def mask_token(token: str) -> str:
    """``"•••• abcd"``: the last four characters, and only of a token long enough to spare them."""
    if not token:
        return "–"
    if len(token) < 12:
        return MASK
    return f"{MASK} {token[-4:]}"


class MessengerPageForm(forms.ModelForm):
    access_token = forms.CharField(
        label=_("page access token"),
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Paste a new token to replace the stored one; leave empty to keep it."),
    )
    clear_access_token = forms.BooleanField(
        label=_("remove the stored token"),
        required=False,
    )

    class Meta:
        model = MessengerPage
        fields = [
            "merchant",
            "name",
            "page_id",
            "access_token",
            "clear_access_token",
            "mode",
            "is_test_mode",
            "greeting_en",
            "greeting_ar",
            "is_active",
            "get_started_payload",
            "persistent_menu",
            "ice_breakers",
        ]
        widgets = {
            "persistent_menu": forms.Textarea(attrs={"rows": 8, "cols": 80, "dir": "ltr"}),
            "ice_breakers": forms.Textarea(attrs={"rows": 8, "cols": 80, "dir": "ltr"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Never hand the plaintext to the page, and count an empty input as "unchanged".
        self.initial["access_token"] = ""
        self.token_replaced = False
        if "get_started_payload" in self.fields:  # empty: the default GET_STARTED
            self.fields["get_started_payload"].required = False

    def clean_get_started_payload(self):
        return self.cleaned_data.get("get_started_payload") or "GET_STARTED"

    # Empty JSON means "the default menu / questions"; anything else must be valid for Messenger.
    def clean_persistent_menu(self):
        value = self.cleaned_data.get("persistent_menu") or []
        if value and (errors := persistent_menu_errors(value)):
            raise forms.ValidationError(errors)
        return value

    def clean_ice_breakers(self):
        value = self.cleaned_data.get("ice_breakers") or []
        if value and (errors := ice_breakers_errors(value)):
            raise forms.ValidationError(errors)
        return value

    def clean(self):
        cleaned = super().clean()
        new_token = cleaned.get("access_token") or ""
        if cleaned.get("clear_access_token"):
            if new_token:
                self.add_error(
                    "clear_access_token",
                    _("Either paste a new token or remove the stored one, not both."),
                )
            cleaned["access_token"] = ""
        elif new_token:
            self.token_replaced = new_token != self.instance.access_token
        else:
            cleaned["access_token"] = self.instance.access_token or ""
        return cleaned


@admin.register(MessengerPage)
class MessengerPageAdmin(MerchantScopedAdmin):
    form = MessengerPageForm
    list_display = [
        "name",
        "page_id",
        "merchant",
        "mode",
        "is_test_mode",
        "is_active",
        "token_display",
        "token_accepted",
        "profile_status",
        "updated_at",
    ]
    list_filter = [
        "merchant",
        "mode",
        "is_active",
        "is_test_mode",
        ("token_invalid_at", admin.EmptyFieldListFilter),
    ]
    list_select_related = ["merchant"]
    search_fields = ["name", "page_id", "merchant__name"]
    autocomplete_fields = ["merchant"]
    readonly_fields = [
        "stored_token",
        "token_invalid_at",
        "created_at",
        "updated_at",
        "profile_synced_at",
        "profile_sync_error",
        "profile_preview",
    ]
    actions = ["push_messenger_profile"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and form.token_replaced:
            # A new token is a fix for a rejected one: let the outbox use the page again.
            page_token_rejection_clear(page=obj)

    def get_fields(self, request, obj=None):
        fields = [name for name in super().get_fields(request, obj) if name != "stored_token"]
        if obj is None:  # nothing stored yet: nothing to show or remove
            return [name for name in fields if name != "clear_access_token"]
        if "access_token" in fields:
            fields.insert(fields.index("access_token"), "stored_token")
        return fields

    @admin.display(description=_("token"))
    def token_display(self, obj):
        return mask_token(obj.access_token)

    @admin.display(description=_("stored token"))
    def stored_token(self, obj):
        return mask_token(obj.access_token) if obj else "–"

    @admin.display(description=_("token accepted"), boolean=True)
    def token_accepted(self, obj):
        """Unknown (no icon) without a token; no once the Graph API rejected it (error 190)."""
        if not obj.access_token:
            return None
        return obj.token_invalid_at is None

    @admin.display(description=_("Messenger Profile"))
    def profile_status(self, obj):
        if obj.profile_sync_error:
            return _("error: %(error)s") % {"error": obj.profile_sync_error}
        if obj.profile_synced_at:
            return _("pushed %(when)s") % {"when": obj.profile_synced_at.strftime("%Y-%m-%d %H:%M")}
        return _("never pushed")

    @admin.display(description=_("what will be pushed"))
    def profile_preview(self, obj):
        """The Messenger Profile body built from the saved settings, defaults included."""
        if obj is None or obj.pk is None:
            return "–"
        try:
            body = messenger_profile_body(page=obj)
        except ProfileInvalid as exc:
            return format_html(
                '<ul class="errorlist">{}</ul>',
                format_html_join("", "<li>{}</li>", ((e,) for e in exc.extra["errors"])),
            )
        return format_html(
            '<pre dir="ltr" style="white-space: pre-wrap">{}</pre>',
            json.dumps(body, ensure_ascii=False, indent=2),
        )

    @admin.action(description=_("Push Messenger Profile"), permissions=["change"])
    def push_messenger_profile(self, request, queryset):
        """Queue a push per page; broken settings and the rate limit are reported at once."""
        for page in self.editable_rows(request, queryset):
            try:
                messenger_profile_sync_enqueue(page=page)
            except ProfileRateLimited as exc:
                self.message_user(request, f"{page}: {exc.message}", messages.WARNING)
            except ProfileInvalid as exc:
                self.message_user(request, f"{page}: {exc.message}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    _("%(page)s: the Messenger Profile is being pushed; see its status.")
                    % {"page": page},
                    messages.SUCCESS,
                )
