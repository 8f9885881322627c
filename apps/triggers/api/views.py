"""Inbound trigger events in the API: per application, what each event matched and what it started or why not.

``GET /api/trigger-events/?application=<name>`` lists the triggers that
inbound events matched, newest first, each with its event (source, delivery
id, the headers kept, the body's digest and size, outcome, reason); a user
sees those of the applications they may read. An event that matched no
trigger of any application (a malformed request, an unknown repository) is
kept too, for the admin.
"""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers

from apps.triggers.models import InboundEvent, TriggerMatch
from cdplatform.api.filters import FilterBackend
from cdplatform.api.pagination import NewestFirstPagination
from cdplatform.api.viewsets import RestrictedReadOnlyViewSet


class InboundEventSerializer(serializers.ModelSerializer):
    """An inbound event as it was recorded: never its body, never a signature or token."""

    class Meta:
        model = InboundEvent
        fields = ["id", "received_at", "source", "delivery_id", "client_ip", "headers", "body_sha256", "body_size",
                  "outcome", "status_code", "reason", "summary"]
        read_only_fields = fields


class TriggerMatchSerializer(serializers.ModelSerializer):
    """One trigger an inbound event matched: the execution it started, or why none started."""

    application = serializers.CharField(source="application.name", read_only=True)
    pipeline = serializers.UUIDField(source="pipeline_id", read_only=True, allow_null=True)
    execution = serializers.UUIDField(source="execution_id", read_only=True, allow_null=True)
    event = InboundEventSerializer(read_only=True)

    class Meta:
        model = TriggerMatch
        fields = ["id", "application", "pipeline", "pipeline_name", "trigger_position", "execution", "refusal",
                  "event"]
        read_only_fields = fields


class TriggerMatchFilter(django_filters.FilterSet):
    """Trigger events by application (name), pipeline and outcome."""

    application = django_filters.CharFilter(field_name="application__name", help_text="The application's name.")
    outcome = django_filters.ChoiceFilter(field_name="event__outcome", choices=InboundEvent._meta.get_field(
        "outcome").choices, help_text="started, ignored or refused.")

    class Meta:
        model = TriggerMatch
        fields = ["application", "pipeline", "outcome"]


class TriggerEventPagination(NewestFirstPagination):
    ordering = "-id"


@extend_schema_view(
    list=extend_schema(summary="Inbound trigger events: what each matched, started or why not"),
    retrieve=extend_schema(summary="One trigger event"),
)
class TriggerEventViewSet(RestrictedReadOnlyViewSet):
    """The triggers inbound events matched, in the applications the user may read."""

    queryset = TriggerMatch.objects.select_related("event", "application")
    serializer_class = TriggerMatchSerializer
    pagination_class = TriggerEventPagination
    filter_backends = [FilterBackend]
    filterset_class = TriggerMatchFilter
