"""The dashboard's sign-in form, under the login lockout shared with the admin and the API
(``core.login_lockout``, enforced by ``core.auth_backends``): a locked username+address pair
gets the "too many attempts" message even with the right password, until its window ends."""

from __future__ import annotations

from django.contrib.auth.forms import AuthenticationForm

from core.auth_forms import LockoutMessageMixin


class DashboardLoginForm(LockoutMessageMixin, AuthenticationForm):
    pass
