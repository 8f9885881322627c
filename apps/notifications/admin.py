"""Admin pages for operators: every delivery with its attempts, the application subscriptions, Slack's links
and requests. Deliveries and requests are records: read-only. A staff member sees only what ``restrict()``
lets them read; subscriptions are added through the API (their address is encrypted, never shown)."""

from django.contrib import admin

from apps.accounts.admin import RestrictedAdminMixin
from apps.notifications.models import ChatRequest, Delivery, DeliveryAttempt, SlackLink, Subscription


class ReadOnlyMixin:
    """Rows written by the platform, kept as they happened."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class AttemptInline(ReadOnlyMixin, admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ["number", "started_at", "finished_at", "succeeded", "retryable", "error"]
    readonly_fields = fields


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyMixin, RestrictedAdminMixin, admin.ModelAdmin):
    list_display = ["id", "application", "moment", "target_type", "target_hint", "status", "attempts", "created_at",
                    "delivered_at"]
    list_filter = ["status", "target_type", "moment"]
    search_fields = ["execution_id", "target_hint", "application__name"]
    list_select_related = ["application"]
    readonly_fields = [field.name for field in Delivery._meta.fields]
    inlines = [AttemptInline]


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyMixin, RestrictedAdminMixin, admin.ModelAdmin):
    list_display = ["id", "application", "type", "address_hint", "when", "created_by", "created_at"]
    list_select_related = ["application"]
    exclude = ["address_ciphertext"]
    readonly_fields = ["application", "type", "address_hint", "when", "message", "created_by", "created_at"]


@admin.register(SlackLink)
class SlackLinkAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["slack_user_id", "user", "linked_by", "created_at"]
    search_fields = ["slack_user_id", "user__username"]
    list_select_related = ["user"]


@admin.register(ChatRequest)
class ChatRequestAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["created_at", "endpoint", "outcome", "slack_user_id", "command", "reason", "ip_address"]
    list_filter = ["endpoint", "outcome"]
    readonly_fields = [field.name for field in ChatRequest._meta.fields]
