"""``/sandbox/``: the Messenger emulator (chat page) and its referral entry points."""

from django.urls import path

from sandbox.meta import views

urlpatterns = [
    path("", views.index, name="index"),
    path("shoppers/", views.shopper_new, name="shopper-new"),
    path("m/<str:page_id>/", views.mme_link, name="mme"),
    path("ad/<str:page_id>/", views.ad_click, name="ad"),
    path("chat/<str:page_id>/<str:psid>/", views.chat, name="chat"),
    path("chat/<str:page_id>/<str:psid>/feed.json", views.chat_feed, name="chat-feed"),
    path("chat/<str:page_id>/<str:psid>/act", views.chat_act, name="chat-act"),
    path("chat/<str:page_id>/<str:psid>/settings", views.shopper_settings, name="chat-settings"),
]
