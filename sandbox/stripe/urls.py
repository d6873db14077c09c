"""``/sandbox/stripe/``: the API (``v1/``), the hosted page (``pay/<id>/``) and the test controls
(``_control/``). Names live in the ``sandbox`` namespace with a ``stripe-`` prefix."""

from django.urls import path

from sandbox.stripe import api, control, views

urlpatterns = [
    path("v1/<path:path>", api.api, name="stripe-api"),
    path("pay/<str:session_id>/", views.pay_page, name="stripe-pay"),
    path("_control/", control.control, name="stripe-control"),
    path("_control/release/", control.release, name="stripe-control-release"),
    path("_control/reset/", control.reset, name="stripe-control-reset"),
    path("_control/deliver/", control.deliver, name="stripe-control-deliver"),
    path("_control/events/", control.events, name="stripe-control-events"),
    path(
        "_control/refunds/<str:refund_id>/",
        control.refund_settle_now,
        name="stripe-control-refund-settle",
    ),
    path(
        "_control/sessions/<str:session_id>/expire/",
        control.session_expire_now,
        name="stripe-control-session-expire",
    ),
]
