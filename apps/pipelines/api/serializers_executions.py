"""Serializers of the executions API: list summaries, the Spinnaker-shaped document, and action bodies.

Times are epoch milliseconds, and keys are camelCase, as in Spinnaker's
execution JSON, so scripts written against Spinnaker's API can read them.
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.pipelines.choices import Status, SyntheticOwner
from apps.pipelines.documents import execution_document, pipeline_config_id
from apps.pipelines.models import epoch_millis
from apps.pipelines.stages.manual_judgment import CONTINUE, STOP


@extend_schema_field(OpenApiTypes.INT)
class EpochMillisField(serializers.ReadOnlyField):
    """A datetime as epoch milliseconds (null when not set)."""

    def to_representation(self, value):
        return epoch_millis(value)


def _millis(source: str) -> EpochMillisField:
    return EpochMillisField(source=source, allow_null=True)


# --- List summaries -----------------------------------------------------------------------------


class StageSummarySerializer(serializers.Serializer):
    """What a UI needs to draw one stage's bar: which stage, its state and its timings."""

    refId = serializers.CharField(source="ref_id", read_only=True)
    name = serializers.CharField(read_only=True)
    type = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(choices=Status.choices, read_only=True)
    startTime = _millis("start_time")
    endTime = _millis("end_time")


class TriggerSummarySerializer(serializers.Serializer):
    """The trigger's type and the user it ran as."""

    # Read from annotations, so a list never loads whole trigger documents.

    type = serializers.CharField(source="trigger_type", allow_null=True, read_only=True)
    user = serializers.CharField(source="trigger_user", allow_null=True, read_only=True)


class ExecutionSummarySerializer(serializers.Serializer):
    """One execution in a list: its state and timings, its trigger, and its stages' bars."""

    # Reads the queryset built by executions.summary_queryset: the application
    # joined, the trigger's type and user annotated, and the stages prefetched
    # with only the columns shown here, so a page costs the same whatever its size.

    id = serializers.UUIDField(read_only=True)
    application = serializers.CharField(source="application.name", read_only=True)
    pipelineConfigId = serializers.SerializerMethodField(
        help_text="The id of the pipeline document it ran (an imported pipeline keeps its exported id).")
    name = serializers.CharField(read_only=True)
    status = serializers.ChoiceField(choices=Status.choices, read_only=True)
    buildTime = EpochMillisField(source="created_at", help_text="When the execution was created.")
    startTime = _millis("start_time")
    endTime = _millis("end_time")
    trigger = TriggerSummarySerializer(source="*", read_only=True)
    stages = StageSummarySerializer(many=True, read_only=True)

    @extend_schema_field(OpenApiTypes.STR)
    def get_pipelineConfigId(self, execution) -> str | None:
        # summary_queryset annotates the document's id (the definition column itself is not loaded).
        return pipeline_config_id({"id": getattr(execution, "document_id", None)}, execution.pipeline_id)


# --- The full document --------------------------------------------------------------------------


class TaskSerializer(serializers.Serializer):
    """One task of a stage, as Orca shows it."""

    id = serializers.CharField()
    name = serializers.CharField()
    implementingClass = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=Status.choices)
    startTime = serializers.IntegerField(allow_null=True)
    endTime = serializers.IntegerField(allow_null=True)


class StageDocumentSerializer(serializers.Serializer):
    """One stage of an execution in Spinnaker's format."""

    id = serializers.UUIDField()
    refId = serializers.CharField()
    type = serializers.CharField()
    name = serializers.CharField()
    status = serializers.ChoiceField(choices=Status.choices)
    startTime = serializers.IntegerField(allow_null=True)
    endTime = serializers.IntegerField(allow_null=True)
    requisiteStageRefIds = serializers.ListField(child=serializers.CharField())
    context = serializers.DictField(help_text="The stage's inputs after expressions, plus task state.")
    outputs = serializers.DictField()
    syntheticStageOwner = serializers.ChoiceField(
        choices=SyntheticOwner.choices, allow_null=True,
        help_text="Set on a synthetic stage: whether it runs before or after its parent's tasks.",
    )
    parentStageId = serializers.UUIDField(allow_null=True, help_text="The composite stage it belongs to, if synthetic.")
    tasks = TaskSerializer(many=True)


class PausedSerializer(serializers.Serializer):
    """Spinnaker's ``paused`` details: the latest pause and the total time paused."""

    pauseTime = serializers.IntegerField()
    resumeTime = serializers.IntegerField(allow_null=True)
    pausedMs = serializers.IntegerField()
    isPaused = serializers.BooleanField()


class ExecutionDocumentSerializer(serializers.Serializer):
    """The whole execution in Spinnaker's format, times in epoch milliseconds."""

    # The document itself is built by execution_document (shared with the
    # command line and the live events); the fields declared here describe it
    # for the schema, and a test keeps the two in step.

    id = serializers.UUIDField()
    type = serializers.CharField(help_text="Always PIPELINE.")
    application = serializers.CharField()
    name = serializers.CharField()
    pipelineConfigId = serializers.CharField(
        allow_null=True, help_text="The id of the pipeline document it ran (an imported pipeline keeps its "
                                   "exported id).")
    status = serializers.ChoiceField(choices=Status.choices)
    buildTime = serializers.IntegerField()
    startTime = serializers.IntegerField(allow_null=True)
    endTime = serializers.IntegerField(allow_null=True)
    canceled = serializers.BooleanField()
    canceledBy = serializers.CharField(allow_null=True)
    cancellationReason = serializers.CharField(allow_null=True)
    exception = serializers.DictField(
        allow_null=True, help_text="Set when the engine crashed advancing the execution: the error and its phase."
    )
    limitConcurrent = serializers.BooleanField()
    keepWaitingPipelines = serializers.BooleanField()
    authentication = serializers.DictField(
        help_text='{"user": who started it, "runAs": whom it acts as now (who last started, restarted or resumed it)}'
    )
    paused = PausedSerializer(allow_null=True)
    parentExecution = serializers.DictField(allow_null=True, help_text="Set when a pipeline stage started it.")
    trigger = serializers.DictField()
    parameters = serializers.DictField(child=serializers.CharField())
    stages = StageDocumentSerializer(many=True)

    def to_representation(self, instance):
        # Uses the stages prefetched on the instance, when they are.
        return execution_document(instance)


# --- Request bodies -----------------------------------------------------------------------------


class StartExecutionSerializer(serializers.Serializer):
    """Start a pipeline by hand: ``{"application": ..., "pipeline": name or id, "parameters": {...}}``."""

    application = serializers.CharField(max_length=63)
    pipeline = serializers.CharField(max_length=200, help_text="The pipeline's name or id.")
    parameters = serializers.DictField(
        required=False, default=dict, help_text="Values for the pipeline's parameterConfig, by name."
    )


class CancelSerializer(serializers.Serializer):
    """Why the execution is canceled (optional)."""

    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)


class StageActionSerializer(serializers.Serializer):
    """An action on one stage of the execution, named by its refId."""

    stage = serializers.CharField(max_length=100, help_text="The stage's refId.")


class JudgeSerializer(StageActionSerializer):
    """A manual judgment: continue or stop, with the chosen input when the stage offers some."""

    decision = serializers.ChoiceField(choices=[CONTINUE, STOP])
    input = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=1000,
        help_text="One of the stage's judgmentInputs, when it offers some.",
    )
    comment = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=2000,
        help_text="Why: kept with the stage as judgmentComment, and in the audit log.",
    )


class EvaluateSerializer(serializers.Serializer):
    """An expression to evaluate against the execution, optionally as one of its stages would."""

    expression = serializers.CharField(
        trim_whitespace=False,
        help_text="Text with ${...} expressions, e.g. \"${trigger.user}\"; at most EXPRESSION_MAX_LENGTH characters.",
    )
    stageId = serializers.CharField(  # noqa: N815  (Spinnaker's name)
        required=False, allow_blank=True, max_length=100,
        help_text="Evaluate as this stage's expressions are: its context and its ancestors' outputs by bare name.",
    )

    def validate_expression(self, value: str) -> str:
        from django.conf import settings

        limit = settings.EXPRESSION_MAX_LENGTH
        if len(value) > limit:
            raise serializers.ValidationError(f"must be at most {limit:,} characters long (EXPRESSION_MAX_LENGTH)")
        return value


class EvaluationSerializer(serializers.Serializer):
    """What an expression gave: its value, and why any part of it was left as text."""

    value = serializers.JSONField(help_text="The value; a part that could not be resolved is left as written.")
    summary = serializers.DictField(
        required=False, help_text="Spinnaker's expressionEvaluationSummary: each expression left as text, and why."
    )
