"""Public URLs of the payments app (included at the site root by ``config/urls.py``)."""

from django.urls import path

from payments import api, views, webhooks

app_name = "payments"

urlpatterns = [
    # The checkout page opened from the Pay button in the Messenger webview, and the pages
    # Stripe Checkout sends the shopper back to.
    path("checkout/<str:token>/", views.checkout_page, name="checkout"),
    path("checkout/<str:token>/done/", views.checkout_done, name="checkout_done"),
    path("checkout/<str:token>/cancel/", views.checkout_cancel, name="checkout_cancel"),
    # The Stripe webhook: verify, store, enqueue, 200 (payments.webhooks).
    path("payments/stripe/webhook/", webhooks.stripe_webhook, name="stripe_webhook"),
    # REST API: an order's refunds (here, not in commerce/api: commerce never imports payments).
    # Any id segment reaches the view, so a malformed one is the API's JSON 404 too.
    path("api/orders/<str:pk>/refunds/", api.OrderRefundsView.as_view(), name="order_refunds"),
]
