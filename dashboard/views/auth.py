"""Signing in and out of the dashboard (throttled like the admin's login)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import reverse_lazy

from dashboard.forms_login import DashboardLoginForm


class DashboardLoginView(auth_views.LoginView):
    template_name = "dashboard/login.html"
    authentication_form = DashboardLoginForm
    redirect_authenticated_user = True
    next_page = reverse_lazy("dashboard:orders")


class DashboardLogoutView(auth_views.LogoutView):
    next_page = reverse_lazy("dashboard:login")
