"""The authentication backend: Django's own, behind the shared login lockout.

Every password check that goes through ``django.contrib.auth.authenticate`` (the dashboard's and
the admin's sign-in, the API token endpoint, any later one) ends up here, so one lockout per
username and client address (``core.login_lockout``) covers them all, counted in one place. A
locked pair is refused before the password hash is computed: ``PermissionDenied`` makes
``authenticate`` stop and answer ``None`` (and send ``user_login_failed``), exactly as for a wrong
password, so a caller cannot tell a lockout from a bad guess unless it asks
``login_lockout`` itself to show the wait.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from core.login_lockout import (
    client_address,
    login_failure_record,
    login_failures_clear,
    login_lockout,
)


class LockoutModelBackend(ModelBackend):
    """``ModelBackend`` whose password checks count towards, and obey, the login lockout."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        address = client_address(request)
        if login_lockout(username=username, address=address) is not None:
            raise PermissionDenied("Too many failed attempts for this username and address.")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            login_failure_record(username=username, address=address)
        else:
            login_failures_clear(username=username, address=address)
        return user
