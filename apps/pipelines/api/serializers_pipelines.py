"""Serializers of the applications and pipelines API.

A pipeline is written as its Spinnaker document (the request body itself, JSON
or YAML) and read back wrapped: ``{"id", "application", "name", "createdAt",
"updatedAt", "updatedBy", "definition"}``, where ``definition`` is the whole
stored document. Serializers never query: the views hand them what they need
(permission flags in the context, related rows selected with the list).
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.pipelines.governance import APPLICATION_ACTIONS
from apps.pipelines.models import Application, Pipeline, PipelineRevision

# The request body of a pipeline save or validation: a Spinnaker pipeline document, free-form beyond these keys.
PIPELINE_DOCUMENT_SCHEMA = {
    "type": "object",
    "description": (
        "A pipeline in Spinnaker's pipeline JSON format (JSON or YAML). Keys this platform does not know are kept."
    ),
    "required": ["application", "name"],
    "properties": {
        "application": {"type": "string", "description": "Name of an existing application."},
        "name": {"type": "string", "maxLength": 200},
        "stages": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
        "triggers": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
        "parameterConfig": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
        "notifications": {"type": "array", "items": {"type": "object", "additionalProperties": True}},
    },
    "additionalProperties": True,
}

PERMISSIONS_FIELD = serializers.ListField(
    child=serializers.ChoiceField(choices=APPLICATION_ACTIONS),
    help_text="What the requesting user may do in the application: read, write, execute, manage (grants).",
)


class ApplicationSerializer(serializers.ModelSerializer):
    """An application: its owner and description, and what the requesting user may do in it."""

    createdAt = serializers.DateTimeField(source="created_at", read_only=True)  # noqa: N815
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)  # noqa: N815
    permissions = serializers.SerializerMethodField()

    class Meta:
        model = Application
        fields = ["name", "owner", "description", "createdAt", "updatedAt", "permissions"]

    @extend_schema_field(PERMISSIONS_FIELD)
    def get_permissions(self, application: Application) -> list[str]:
        """The requesting user's actions on the application, computed in bulk by the view."""
        return self.context.get("permissions", {}).get(application.pk, [])


class ApplicationChangeSerializer(ApplicationSerializer):
    """An application being updated: its name, which identifies it, cannot change."""

    class Meta(ApplicationSerializer.Meta):
        read_only_fields = ["name"]

    def validate(self, attrs: dict) -> dict:
        """Refuse a body that names the application differently (a rename), instead of ignoring it."""
        name = self.initial_data.get("name") if isinstance(self.initial_data, dict) else None
        if name is not None and self.instance is not None and name != self.instance.name:
            raise serializers.ValidationError({"name": "cannot be changed: create a new application instead"})
        return attrs


class PipelineSerializer(serializers.ModelSerializer):
    """A saved pipeline: its identity, who changed it last, and the whole stored document."""

    application = serializers.CharField(source="application.name", read_only=True)
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)  # noqa: N815
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)  # noqa: N815
    updatedBy = serializers.CharField(source="updated_by", read_only=True)  # noqa: N815
    definition = serializers.SerializerMethodField()

    class Meta:
        model = Pipeline
        fields = ["id", "application", "name", "createdAt", "updatedAt", "updatedBy", "definition"]
        read_only_fields = fields

    @extend_schema_field({**PIPELINE_DOCUMENT_SCHEMA, "description": "The whole stored pipeline document."})
    def get_definition(self, pipeline: Pipeline) -> dict:
        """The stored document, as saved (its ``id`` is the pipeline's)."""
        return pipeline.definition


class RevisionSerializer(serializers.ModelSerializer):
    """One saved version of a pipeline, without its document (for lists)."""

    createdAt = serializers.DateTimeField(source="created_at", read_only=True)  # noqa: N815
    createdBy = serializers.CharField(source="created_by", read_only=True)  # noqa: N815

    class Meta:
        model = PipelineRevision
        fields = ["number", "createdAt", "createdBy"]
        read_only_fields = fields


class RevisionDetailSerializer(RevisionSerializer):
    """One saved version of a pipeline with the document as it was saved."""

    definition = serializers.SerializerMethodField()

    class Meta(RevisionSerializer.Meta):
        fields = [*RevisionSerializer.Meta.fields, "definition"]
        read_only_fields = fields

    @extend_schema_field({**PIPELINE_DOCUMENT_SCHEMA, "description": "The pipeline document of this revision."})
    def get_definition(self, revision: PipelineRevision) -> dict:
        """The document as it was saved in this revision."""
        return revision.definition


class RestoreSerializer(serializers.Serializer):
    """The body of a restore: which revision's document to save again."""

    revision = serializers.IntegerField(
        min_value=1, max_value=2_147_483_647, help_text="Number of the revision to restore."
    )


class ValidationProblemSerializer(serializers.Serializer):
    """One problem with a document: where (RFC 6901 JSON pointer) and what."""

    pointer = serializers.CharField()
    message = serializers.CharField()


class ValidationResultSerializer(serializers.Serializer):
    """The answer of the validate endpoint: whether the document is valid, and every problem if not."""

    valid = serializers.BooleanField()
    errors = ValidationProblemSerializer(many=True)


class DiffSerializer(serializers.Serializer):
    """A unified diff between two revisions' documents (pretty-printed JSON with sorted keys)."""

    diff = serializers.CharField(help_text="Unified diff text; empty when the revisions are the same.")

    def get_fields(self):
        # "from" is a Python keyword, so it cannot be declared as a class attribute.
        fields = super().get_fields()
        fields["from"] = serializers.IntegerField(help_text="The older revision's number.")
        fields["to"] = serializers.IntegerField(help_text="The newer revision's number.")
        return {name: fields[name] for name in ("from", "to", "diff")}
