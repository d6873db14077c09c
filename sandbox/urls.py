"""``/sandbox/``: the chat page (``sandbox.meta``), the Graph API stand-in at ``graph/`` and the
Stripe stand-in at ``stripe/``."""

from django.urls import include, path

app_name = "sandbox"

urlpatterns = [
    path("graph/", include("sandbox.meta.graph_urls")),
    path("stripe/", include("sandbox.stripe.urls")),
    path("", include("sandbox.meta.urls")),
]
