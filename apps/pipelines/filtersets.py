"""List filters, one FilterSet per model, shared by the API's lists and the web pages' lists."""

import django_filters

from apps.pipelines.choices import STATUS_GROUPS, Status
from apps.pipelines.models import Application, Execution, Pipeline


class ApplicationFilterSet(django_filters.FilterSet):
    """Applications by exact name, part of the name, or owner."""

    class Meta:
        model = Application
        fields = {"name": ["exact", "icontains"], "owner": ["exact"]}


class PipelineFilterSet(django_filters.FilterSet):
    """Pipelines by application name, exact name or part of the name."""

    application = django_filters.CharFilter(field_name="application__name", help_text="Application name.")

    class Meta:
        model = Pipeline
        fields = {"name": ["exact", "icontains"]}


class ExecutionFilterSet(django_filters.FilterSet):
    """Executions by application, pipeline, status (several allowed), trigger type and creation time."""

    application = django_filters.CharFilter(field_name="application__name", help_text="Application name.")
    pipeline = django_filters.UUIDFilter(field_name="pipeline_id", help_text="Pipeline id.")
    status = django_filters.MultipleChoiceFilter(
        choices=Status.choices, help_text="One or more statuses: `?status=RUNNING&status=PAUSED`."
    )
    status_group = django_filters.MultipleChoiceFilter(
        choices=[(name, name) for name in STATUS_GROUPS], method="filter_status_group",
        help_text="One or more groups of statuses: running, waiting (not started, buffered, paused, suspended), "
        "succeeded, failed (terminal, failed-continue, stopped), canceled (canceled, skipped).",
    )
    trigger_type = django_filters.CharFilter(
        field_name="trigger__type", help_text="The trigger's `type`: manual, webhook, cron, pipeline, ..."
    )
    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="Created at or after this ISO 8601 time."
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Created before this ISO 8601 time."
    )

    class Meta:
        model = Execution
        fields = ["application", "pipeline", "status", "status_group", "trigger_type", "created_after",
                  "created_before"]

    def filter_status_group(self, queryset, name, groups):
        """Executions whose status is in any of the chosen groups."""
        if not groups:
            return queryset
        return queryset.filter(status__in=[status for group in groups for status in STATUS_GROUPS[group]])
