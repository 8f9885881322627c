"""The stage types a pipeline may use, each with the fields it declares: what the editor builds its forms from."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, viewsets
from rest_framework.response import Response

from apps.pipelines.stages.base import FIELD_KINDS, SCALAR_ITEM_KINDS, offered_stage_types


class StageItemFieldSerializer(serializers.Serializer):
    """A field of each item of a list field (a judgment input's ``value``)."""

    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=FIELD_KINDS)
    label = serializers.CharField()
    help = serializers.CharField(allow_blank=True)
    required = serializers.BooleanField()
    default = serializers.JSONField(allow_null=True, help_text="The value the stage type uses when the key is absent.")
    choices = serializers.ListField(child=serializers.CharField(), help_text="The allowed values of a choice.")


class StageFieldSerializer(StageItemFieldSerializer):
    """One field of a stage definition: its key, kind of value, label, help, whether required, default, choices."""

    items = StageItemFieldSerializer(many=True, required=False,
                                     help_text="A list of objects: the fields of each item.")
    itemKind = serializers.ChoiceField(choices=SCALAR_ITEM_KINDS, required=False,  # noqa: N815
                                       help_text="A list of plain values: the kind of each.")


class StageTypeSerializer(serializers.Serializer):
    """A stage type: its Spinnaker ``type`` name, label, what it does and the fields of its definition."""

    type = serializers.CharField()
    label = serializers.CharField()
    description = serializers.CharField(allow_blank=True)
    skippable = serializers.BooleanField(help_text="Whether a person may skip it while it runs.")
    fields = StageFieldSerializer(many=True)


def stage_type_catalog() -> list[dict]:
    """Every stage type a person may write in a pipeline, described; the same list the editor reads."""
    return [stage_type.describe() for stage_type in offered_stage_types()]


class StageTypeViewSet(viewsets.ViewSet):
    """The registered stage types (for any signed-in user): nothing in them depends on who asks."""

    lookup_field = "type"
    lookup_value_regex = "[A-Za-z0-9_.-]{1,100}"

    @extend_schema(responses=StageTypeSerializer(many=True), description="Every stage type, by label.")
    def list(self, request):
        return Response(stage_type_catalog())

    @extend_schema(responses=StageTypeSerializer, parameters=[
        OpenApiParameter("type", OpenApiTypes.STR, OpenApiParameter.PATH, description="The stage's type name.")])
    def retrieve(self, request, type: str):  # noqa: A002 (the route's name for it)
        for described in stage_type_catalog():
            if described["type"] == type:
                return Response(described)
        raise exceptions.NotFound(f"No stage type {type!r}.")
