"""The admin's view of inbound events (read-only): every one, those that matched no application's trigger too."""

from django.contrib import admin

from apps.triggers.models import InboundEvent, TriggerMatch


class TriggerMatchInline(admin.TabularInline):
    model = TriggerMatch
    fields = ["application", "pipeline_name", "trigger_position", "execution", "refusal"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(InboundEvent)
class InboundEventAdmin(admin.ModelAdmin):
    """Inbound events for superusers; what they record cannot be changed."""

    list_display = ["received_at", "source", "outcome", "status_code", "reason"]
    list_filter = ["outcome", "source"]
    readonly_fields = [field.name for field in InboundEvent._meta.fields]
    inlines = [TriggerMatchInline]

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
