"""Read-only admin pages of the Stripe stand-in: what it stored and what it delivered."""

from __future__ import annotations

from django.contrib import admin

from sandbox.stripe.models import Event, EventDelivery, StripeObject


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(StripeObject)
class StripeObjectAdmin(_ReadOnly):
    list_display = ["id", "object", "created_at"]
    list_filter = ["object"]
    search_fields = ["id"]


class EventDeliveryInline(admin.TabularInline):
    model = EventDelivery
    extra = 0
    can_delete = False
    fields = ["copy", "state", "attempts", "last_status", "last_error", "delivered_at"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Event)
class EventAdmin(_ReadOnly):
    list_display = ["id", "type", "created_at"]
    list_filter = ["type"]
    search_fields = ["id"]
    inlines = [EventDeliveryInline]
