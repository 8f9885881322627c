"""Executions as Spinnaker-shaped JSON documents, so scripts written for Spinnaker can read them."""

from apps.pipelines.engine.composite import order_key
from apps.pipelines.models import Execution, StageExecution, epoch_millis
from apps.pipelines.stages import get_stage_type


def stage_document(stage: StageExecution) -> dict:
    """One stage in Spinnaker's execution format."""
    return {
        "id": str(stage.id),
        "refId": stage.ref_id,
        "type": stage.type,
        "name": stage.name,
        "status": stage.status,
        "startTime": epoch_millis(stage.start_time),
        "endTime": epoch_millis(stage.end_time),
        "requisiteStageRefIds": stage.requisite_ref_ids,
        "context": stage.context,
        "outputs": stage.outputs,
        "syntheticStageOwner": stage.synthetic_owner or None,
        "parentStageId": str(stage.parent_id) if stage.parent_id else None,
        "tasks": stage_tasks(stage),
    }


def stage_tasks(stage: StageExecution) -> list[dict]:
    """The stage's tasks as Orca shows them; a stage whose type's run() is its one task runs it as the stage runs."""
    if stage.tasks:
        return stage.tasks
    stage_type = get_stage_type(stage.type)
    implementing = f"{type(stage_type).__module__}.{type(stage_type).__qualname__}" if stage_type else None
    return [{"id": "1", "name": stage.type, "implementingClass": implementing, "status": stage.status,
             "startTime": epoch_millis(stage.start_time), "endTime": epoch_millis(stage.end_time)}]


def pipeline_config_id(definition, pipeline_id) -> str | None:
    """Spinnaker's ``pipelineConfigId``: the id of the pipeline document the execution ran (an export's opaque
    id, such as ``pipeline1``, kept as it was), else the pipeline's UUID; None for an ad-hoc execution."""
    document_id = definition.get("id") if isinstance(definition, dict) else None
    if isinstance(document_id, str) and document_id:
        return document_id
    return str(pipeline_id) if pipeline_id else None


def execution_document(execution: Execution, stages: list[StageExecution] | None = None) -> dict:
    """The execution in Spinnaker's format (times in epoch milliseconds).

    Pass ``stages`` when they are already loaded (or prefetched) to avoid a query.
    """
    if stages is None:
        stages = list(execution.stages.all())
    return {
        "id": str(execution.id),
        "type": "PIPELINE",
        "application": execution.application.name,
        "name": execution.name,
        "pipelineConfigId": pipeline_config_id(execution.definition, execution.pipeline_id),
        "status": execution.status,
        "buildTime": epoch_millis(execution.created_at),
        "startTime": epoch_millis(execution.start_time),
        "endTime": epoch_millis(execution.end_time),
        "canceled": execution.status == "CANCELED",
        "canceledBy": execution.canceled_by or None,
        "cancellationReason": execution.cancel_reason or None,
        # Set only when the engine crashed advancing the execution (stage errors are on their stages).
        "exception": execution.exception,
        "limitConcurrent": execution.definition.get("limitConcurrent", False),
        "keepWaitingPipelines": execution.definition.get("keepWaitingPipelines", False),
        # ``user`` started it (Spinnaker's field); ``runAs`` is whom it acts as now: whoever last
        # started, restarted or resumed it, the identity its child pipelines are checked against.
        "authentication": {"user": execution.started_by or None, "runAs": execution.run_as_name or None},
        "paused": _paused_document(execution),
        "parentExecution": _parent_document(execution),
        "trigger": execution.trigger,
        "parameters": execution.parameters,
        # Each top-level stage followed by its synthetic stages (before, then after), nested likewise.
        "stages": [stage_document(stage) for stage in sorted(stages, key=order_key)],
    }


def _paused_document(execution: Execution) -> dict | None:
    """Spinnaker's ``paused`` details: the latest pause and the total paused time."""
    if not execution.pauses:
        return None
    paused_at, resumed_at = execution.pauses[-1]
    total = sum((end or 0) - start for start, end in execution.pauses if end is not None)
    return {"pauseTime": paused_at, "resumeTime": resumed_at, "pausedMs": total, "isPaused": resumed_at is None}


def _parent_document(execution: Execution) -> dict | None:
    """The execution whose ``pipeline`` stage started this one (also in ``trigger.parentExecution``)."""
    parent = execution.trigger.get("parentExecution") if execution.parent_stage_id else None
    return {**parent, "stageId": str(execution.parent_stage_id)} if parent else None
