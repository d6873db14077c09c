"""Pages of the dashboard built on orders and conversations (metrics: ``urls_insights``)."""

from django.urls import path

from dashboard.views import auth, conversations, order_detail, orders

urlpatterns = [
    path("", orders.orders_list, name="orders"),
    path("orders/", orders.orders_list, name="orders_list"),
    path("orders/live/", orders.orders_live, name="orders_live"),
    path("orders/export.csv", orders.orders_export, name="orders_export"),
    path("orders/<int:order_id>/", order_detail.order_detail, name="order_detail"),
    path("orders/<int:order_id>/fulfil/", order_detail.order_fulfil_view, name="order_fulfil"),
    path("orders/<int:order_id>/deliver/", order_detail.order_deliver_view, name="order_deliver"),
    path("orders/<int:order_id>/cancel/", order_detail.order_cancel_view, name="order_cancel"),
    path("orders/<int:order_id>/refund/", order_detail.order_refund_view, name="order_refund"),
    path("orders/<int:order_id>/note/", order_detail.order_note_view, name="order_note"),
    path("conversations/", conversations.conversations_list, name="conversations"),
    path("conversations/<int:customer_id>/", conversations.conversation, name="conversation"),
    path(
        "conversations/<int:customer_id>/reply/",
        conversations.conversation_reply_view,
        name="conversation_reply",
    ),
    path(
        "conversations/<int:customer_id>/resume/",
        conversations.conversation_resume_view,
        name="conversation_resume",
    ),
    path(
        "conversations/<int:customer_id>/take-over/",
        conversations.conversation_take_over_view,
        name="conversation_take_over",
    ),
    path("login/", auth.DashboardLoginView.as_view(), name="login"),
    path("logout/", auth.DashboardLogoutView.as_view(), name="logout"),
]
