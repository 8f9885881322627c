"""Admin pages for operators: find executions by id, filter by application, status and time."""

import json

from django.contrib import admin
from django.utils.html import format_html
from guardian.admin import GuardedModelAdmin

from apps.pipelines.models import Application, Execution, Pipeline, PipelineRevision, StageExecution


def _pretty_json(value) -> str:
    return format_html("<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(value, indent=2))


@admin.register(Application)
class ApplicationAdmin(GuardedModelAdmin):
    """Object permissions per application are managed here (django-guardian's object permission pages)."""

    list_display = ("name", "owner", "created_at")
    search_fields = ("name", "owner", "description")


class PipelineRevisionInline(admin.TabularInline):
    model = PipelineRevision
    fields = ("number", "created_at", "created_by")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    list_display = ("name", "application", "updated_at", "updated_by")
    list_filter = ("application",)
    list_select_related = ("application",)
    search_fields = ("=id", "name", "application__name")
    readonly_fields = ("id", "created_at", "updated_at")
    inlines = [PipelineRevisionInline]


@admin.register(PipelineRevision)
class PipelineRevisionAdmin(admin.ModelAdmin):
    list_display = ("pipeline", "number", "created_at", "created_by")
    list_select_related = ("pipeline__application",)
    search_fields = ("=pipeline__id", "pipeline__name")
    readonly_fields = ("pipeline", "number", "created_at", "created_by", "definition_json")
    exclude = ("definition",)

    @admin.display(description="definition")
    def definition_json(self, revision):
        return _pretty_json(revision.definition)


class StageExecutionInline(admin.TabularInline):
    model = StageExecution
    fields = ("ref_id", "name", "type", "status", "start_time", "end_time")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Execution)
class ExecutionAdmin(admin.ModelAdmin):
    list_display = ("id", "application", "name", "status", "created_at", "start_time", "end_time", "started_by")
    list_filter = ("status", "application", "created_at", "start_time")
    list_select_related = ("application",)
    search_fields = ("=id", "name", "application__name")
    date_hierarchy = "created_at"
    readonly_fields = (
        "id", "application", "pipeline", "name", "status", "created_at", "start_time", "end_time",
        "started_by", "canceled_by", "cancel_reason", "trigger_json", "parameters_json",
    )
    exclude = ("definition", "trigger", "parameters")
    inlines = [StageExecutionInline]

    @admin.display(description="trigger")
    def trigger_json(self, execution):
        return _pretty_json(execution.trigger)

    @admin.display(description="parameters")
    def parameters_json(self, execution):
        return _pretty_json(execution.parameters)


@admin.register(StageExecution)
class StageExecutionAdmin(admin.ModelAdmin):
    list_display = ("name", "type", "status", "execution", "start_time", "end_time")
    list_filter = ("status", "type", "execution__application", "start_time")
    list_select_related = ("execution__application",)
    search_fields = ("=id", "=execution__id", "name")
    readonly_fields = (
        "id", "execution", "ref_id", "type", "name", "status", "start_time", "end_time",
        "next_run_at", "context_json", "outputs_json",
    )
    exclude = ("definition", "context", "outputs", "requisite_ref_ids", "run_token", "position")

    @admin.display(description="context")
    def context_json(self, stage):
        return _pretty_json(stage.context)

    @admin.display(description="outputs")
    def outputs_json(self, stage):
        return _pretty_json(stage.outputs)
