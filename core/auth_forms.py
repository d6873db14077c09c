"""Sign-in and password forms that show the shared login lockout (``core.login_lockout``).

The lockout itself is enforced and counted by the authentication backend
(``core.auth_backends``); these forms only ask first, so that a locked pair reads "Too many failed
attempts. Try again in N minutes." instead of "wrong password", even with the right password.

The admin's old-password check (``/admin/password_change/``) calls ``user.check_password``,
not ``authenticate``: ``LockedPasswordChangeForm`` puts it under the same lockout, keyed by the
signed-in user's username. ``admin_site_lock`` installs both forms on an admin site
(``CoreConfig.ready`` does it for ``admin.site``).
"""

from __future__ import annotations

from types import MethodType

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm, AdminPasswordChangeForm
from django.urls import reverse

from core.login_lockout import (
    client_address,
    login_failure_record,
    login_failures_clear,
    login_lockout,
)


class LockoutMessageMixin:
    """For ``AuthenticationForm``s: a locked username+address pair gets the wait, not a check."""

    def clean(self):
        username = self.data.get("username", "") or ""
        lockout = login_lockout(username=username, address=client_address(self.request))
        if lockout is not None:
            raise forms.ValidationError(lockout.message, code="throttled")
        return super().clean()


class LockedAdminLoginForm(LockoutMessageMixin, AdminAuthenticationForm):
    """The admin's own sign-in form (staff only) under the shared lockout."""


class LockedPasswordChangeForm(AdminPasswordChangeForm):
    """The admin's password change; its old-password check counts towards the lockout."""

    def __init__(self, user, *args, request=None, **kwargs):
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self):
        username, address = self.user.get_username(), client_address(self.request)
        lockout = login_lockout(username=username, address=address)
        if lockout is not None:
            raise forms.ValidationError(lockout.message, code="throttled")
        try:
            old_password = super().clean_old_password()
        except forms.ValidationError:
            login_failure_record(username=username, address=address)
            raise
        login_failures_clear(username=username, address=address)
        return old_password


def _password_change(site, request, extra_context=None):
    """``AdminSite.password_change`` with ``LockedPasswordChangeForm`` (same page and flow)."""
    from django.contrib.auth.views import PasswordChangeView

    class LockedPasswordChangeView(PasswordChangeView):
        def get_form_kwargs(self):
            return {**super().get_form_kwargs(), "request": self.request}

    defaults = {
        "form_class": LockedPasswordChangeForm,
        "success_url": reverse("admin:password_change_done", current_app=site.name),
        "extra_context": {**site.each_context(request), **(extra_context or {})},
    }
    if site.password_change_template is not None:
        defaults["template_name"] = site.password_change_template
    request.current_app = site.name
    return LockedPasswordChangeView.as_view(**defaults)(request)


def admin_site_lock(site) -> None:
    """Put ``site``'s sign-in and password change under the shared lockout (before its URLs
    are built: ``AppConfig.ready``)."""
    site.login_form = LockedAdminLoginForm
    site.password_change = MethodType(_password_change, site)
