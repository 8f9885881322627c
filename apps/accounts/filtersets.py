"""FilterSets of the accounts app, shared by the API and the web pages."""

import django_filters

from apps.accounts.models import AuditEvent, AuditSource


class AuditEventFilterSet(django_filters.FilterSet):
    """Audit events by application, action, actor, source and time."""

    application = django_filters.CharFilter(field_name="application_name", help_text="Application name.")
    action = django_filters.CharFilter(help_text="e.g. execution.started, permission.granted.")
    actor = django_filters.CharFilter(help_text="User name of who acted.")
    source = django_filters.ChoiceFilter(choices=AuditSource.choices)
    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", help_text="At or after this ISO 8601 time."
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", help_text="Before this ISO 8601 time."
    )

    class Meta:
        model = AuditEvent
        fields = ["application", "action", "actor", "source", "created_after", "created_before"]
