"""Metrics and "Needs attention" (``dashboard.views.insights``)."""

from django.urls import path

from dashboard.views import insights

urlpatterns = [
    path("metrics/", insights.metrics, name="metrics"),
    path("attention/", insights.attention, name="attention"),
]
