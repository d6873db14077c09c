"""Read-mostly admin views of the Messenger stand-in's records (what the service sent, what the
emulator posted), handy when a demo conversation goes wrong."""

from django.contrib import admin

from sandbox.meta.models import GraphFault, GraphMessage, SandboxPage, SandboxShopper, ShopperEvent


@admin.register(SandboxPage)
class SandboxPageAdmin(admin.ModelAdmin):
    list_display = ("page_id", "name", "created_at")
    search_fields = ("page_id", "name")


@admin.register(SandboxShopper)
class SandboxShopperAdmin(admin.ModelAdmin):
    list_display = (
        "psid",
        "first_name",
        "last_name",
        "locale",
        "page",
        "available",
        "last_message_at",
    )
    list_filter = ("locale", "available")
    search_fields = ("psid", "first_name", "last_name", "email")


@admin.register(GraphMessage)
class GraphMessageAdmin(admin.ModelAdmin):
    list_display = (
        "message_id",
        "recipient_psid",
        "messaging_type",
        "tag",
        "received_at",
        "read_at",
    )
    list_filter = ("messaging_type", "tag")
    search_fields = ("message_id", "recipient_psid")


@admin.register(ShopperEvent)
class ShopperEventAdmin(admin.ModelAdmin):
    list_display = ("kind", "mid", "shopper", "status_code", "created_at")
    list_filter = ("kind", "status_code")


@admin.register(GraphFault)
class GraphFaultAdmin(admin.ModelAdmin):
    list_display = ("path", "status", "code", "subcode", "remaining", "delay_ms")
