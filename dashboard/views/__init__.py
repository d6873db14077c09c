"""Views of the dashboard's pages: thin, each parses input, calls one selector or service and
renders. Scope and roles come from ``dashboard.access``."""

from django.contrib import messages


def form_errors_flash(request, form) -> None:
    """Every error of an invalid action form as a message on the page the action returns to."""
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, error)
