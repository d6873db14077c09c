"""``/dashboard/``: orders, order detail and conversations (``urls_pages``); metrics and needs
attention (``urls_insights``)."""

from django.urls import include, path

app_name = "dashboard"

urlpatterns = [
    path("", include("dashboard.urls_pages")),
    path("", include("dashboard.urls_insights")),
]
