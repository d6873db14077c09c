"""Public URLs of the messenger app: the webhook, and the product pages opened in the webview."""

from django.urls import path

from messenger import views
from messenger.webhook import views as webhook_views

app_name = "messenger"

urlpatterns = [
    path("messenger/webhook/", webhook_views.webhook, name="webhook"),
    # <str:handle>: product handles are Unicode slugs (Arabic handles are allowed).
    path("shop/<slug:merchant_slug>/<str:handle>/", views.product_page, name="product_page"),
]
