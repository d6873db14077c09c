"""Login forms of the dashboard and the admin, both throttled (``dashboard.throttle``).

The check runs before the password is looked at: a locked pair gets the "too many attempts"
message even with the right password, until its window ends.
"""

from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import ngettext

from dashboard.throttle import (
    client_address,
    login_failure_record,
    login_failures_clear,
    login_lockout,
)


class ThrottledLoginMixin:
    """Refuse locked username+address pairs; count failures; clear them on success."""

    def clean(self):
        username = self.data.get("username", "") or ""
        address = client_address(self.request)
        lockout = login_lockout(username=username, address=address)
        if lockout is not None:
            raise forms.ValidationError(
                ngettext(
                    "Too many failed attempts. Try again in %(minutes)d minute.",
                    "Too many failed attempts. Try again in %(minutes)d minutes.",
                    lockout.minutes,
                )
                % {"minutes": lockout.minutes},
                code="throttled",
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError as error:
            if any(e.code == "invalid_login" for e in error.error_list):
                login_failure_record(username=username, address=address)
            raise
        login_failures_clear(username=username, address=address)
        return cleaned


class DashboardLoginForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminLoginForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The admin's own form (staff only) with the same throttle; set in ``DashboardConfig``."""
