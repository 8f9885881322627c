"""State changes of pipelines and executions, shared by the command line, the API, the web and triggers.

``do_*`` functions change state and schedule what follows; they validate
their input first and raise :class:`~apps.pipelines.problems.InvalidDocument`
or :class:`ActionRefused` before writing anything.
"""

from __future__ import annotations

import copy
import uuid

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from apps.accounts.audit import Actor, record
from apps.pipelines import engine, enqueue
from apps.pipelines.choices import ACTIVE, COMPLETE, Status
from apps.pipelines.definition import check_pipeline, resolve_parameters
from apps.pipelines.models import Application, Execution, Pipeline, PipelineRevision, StageExecution
from apps.pipelines.problems import ActionRefused
from apps.pipelines.stages import get_stage_type
from apps.pipelines.stages.manual_judgment import CONTINUE, STOP, judgment_options


def do_save_pipeline(document: dict, *, user: Actor | str = "") -> tuple[Pipeline, bool]:
    """Create or update the pipeline named by the document's ``application`` and ``name``.

    Creates the application if needed and keeps a revision of every save.
    Returns the pipeline and whether it was created.
    """
    actor = Actor.of(user)
    user = actor.username
    document = copy.deepcopy(check_pipeline(document))
    with transaction.atomic():
        application, _ = Application.objects.get_or_create(name=document["application"])
        pipeline = (
            Pipeline.objects.select_for_update().filter(application=application, name=document["name"]).first()
        )
        created = pipeline is None
        if created:
            pipeline = Pipeline(id=_reusable_id(document.get("id")), application=application, name=document["name"])
        document["id"] = str(pipeline.id)
        pipeline.definition = document
        pipeline.updated_by = user
        pipeline.save()
        last = pipeline.revisions.aggregate(last=Max("number"))["last"] or 0
        PipelineRevision.objects.create(pipeline=pipeline, number=last + 1, definition=document, created_by=user)
        record("pipeline.saved", actor, application=application, object_type="pipeline", object_id=pipeline.id,
               details={"name": pipeline.name, "revision": last + 1, "created": created})
    return pipeline, created


def do_delete_pipeline(pipeline: Pipeline, *, user: Actor | str) -> None:
    """Delete a pipeline and its revisions; its executions stay, unlinked, for the record."""
    with transaction.atomic():
        record("pipeline.deleted", user, application=pipeline.application, object_type="pipeline",
               object_id=pipeline.id, details={"name": pipeline.name})
        pipeline.delete()


def _reusable_id(candidate) -> uuid.UUID:
    """Keep the id a pipeline had elsewhere (a Spinnaker export) when it is a free UUID."""
    try:
        wanted = uuid.UUID(str(candidate))
    except (TypeError, ValueError):
        return uuid.uuid4()
    return uuid.uuid4() if Pipeline.objects.filter(id=wanted).exists() else wanted


def do_start_execution(
    pipeline: Pipeline,
    *,
    parameters: dict | None = None,
    trigger: dict | None = None,
    user: Actor | str = "",
    parent_stage: StageExecution | None = None,
) -> Execution:
    """Create an execution of the pipeline's current definition and queue its start.

    Parameters are checked against ``parameterConfig`` before anything is
    written; a refusal raises InvalidDocument naming each parameter.
    """
    actor = Actor.of(user)
    user = actor.username
    definition = copy.deepcopy(pipeline.definition)
    if definition.get("disabled") is True:
        raise ActionRefused(f"pipeline {pipeline} is disabled")
    resolved = resolve_parameters(definition, parameters or {})
    trigger = {"type": "manual", "user": user or "anonymous", **(trigger or {}), "parameters": resolved}
    stage_definitions = definition.get("stages") or []
    downstream: dict[str, list[str]] = {str(stage["refId"]): [] for stage in stage_definitions}
    for stage in stage_definitions:
        for requisite in stage.get("requisiteStageRefIds") or []:
            downstream[str(requisite)].append(str(stage["refId"]))
    with transaction.atomic():
        execution = Execution.objects.create(
            application=pipeline.application,
            pipeline=pipeline,
            name=pipeline.name,
            definition=definition,
            trigger=trigger,
            parameters=resolved,
            started_by=user,
            limit_concurrent=definition.get("limitConcurrent") is True,
            parent_stage=parent_stage,
        )
        StageExecution.objects.bulk_create(
            [
                StageExecution(
                    execution=execution,
                    ref_id=str(stage["refId"]),
                    position=position,
                    type=stage["type"],
                    name=stage.get("name") or stage["type"],
                    requisite_ref_ids=[str(ref) for ref in stage.get("requisiteStageRefIds") or []],
                    next_ref_ids=downstream[str(stage["refId"])],
                    definition=stage,
                )
                for position, stage in enumerate(stage_definitions)
            ]
        )
        record("execution.started", actor, application=pipeline.application, object_type="execution",
               object_id=execution.id, details={"pipeline": pipeline.name, "trigger": trigger.get("type")})
        transaction.on_commit(lambda: enqueue.enqueue_start_execution(execution.id))
    return execution


def _locked_stage(execution_id, ref_id: str) -> StageExecution:
    """The stage ``ref_id`` of the execution, locked for the caller's transaction."""
    stage = (
        StageExecution.objects.select_for_update()
        .select_related("execution")
        .filter(execution_id=execution_id, ref_id=ref_id)
        .first()
    )
    if stage is None:
        raise ActionRefused(f"execution {execution_id} has no stage with refId {ref_id!r}")
    return stage


def _require_running(stage: StageExecution) -> None:
    if stage.status != Status.RUNNING:
        raise ActionRefused(f"stage {stage.name!r} is {stage.status}, not RUNNING")


def _run_now(stage: StageExecution, fields: list[str]) -> None:
    """Save the locked stage and run its task at once, after commit."""
    dispatch = engine.Dispatch()
    engine.schedule_now(stage, dispatch, fields=tuple(fields))
    dispatch.send_on_commit()


def do_judge_stage(
    execution_id, ref_id: str, *, decision: str, user: Actor | str, judgment_input: str | None = None
) -> StageExecution:
    """Record a person's manual judgment (continue or stop) and let the stage finish."""
    actor = Actor.of(user)
    user = actor.username
    if decision not in (CONTINUE, STOP):
        raise ActionRefused(f"judgment must be {CONTINUE!r} or {STOP!r}, not {decision!r}")
    with transaction.atomic():
        stage = _locked_stage(execution_id, ref_id)
        if stage.type != "manualJudgment":
            raise ActionRefused(f"stage {stage.name!r} is a {stage.type} stage, not a manual judgment")
        _require_running(stage)
        if stage.context.get("judgmentStatus"):
            raise ActionRefused(f"stage {stage.name!r} was already judged")
        options = judgment_options(stage.context)
        if judgment_input not in (None, "") and options and judgment_input not in options:
            raise ActionRefused(f"input {judgment_input!r} is not one of: {', '.join(options)}")
        stage.context = {
            **stage.context,
            "judgmentStatus": decision,
            "judgmentInput": judgment_input or None,
            "lastModifiedBy": user,
            "lastModified": {"user": user, "time": int(timezone.now().timestamp() * 1000)},
        }
        _run_now(stage, ["context"])
        _record_stage_action("stage.judged", actor, stage, {"decision": decision, "input": judgment_input})
    return stage


def _record_stage_action(action: str, actor: Actor, stage: StageExecution, details: dict | None = None) -> None:
    execution = Execution.objects.select_related("application").get(id=stage.execution_id)
    record(action, actor, application=execution.application, object_type="execution", object_id=execution.id,
           details={"stage": stage.ref_id, "stageName": stage.name, **(details or {})})


def do_skip_wait(execution_id, ref_id: str, *, user: Actor | str) -> StageExecution:
    """End a running wait early, as a person may in Spinnaker ("skip remaining wait").

    A stage of any type that waits for its execution window is let through instead.
    """
    with transaction.atomic():
        stage = _locked_stage(execution_id, ref_id)
        if (stage.context.get("executionWindow") or {}).get("waiting"):
            return do_skip_execution_window(execution_id, ref_id, user=user)
        stage_type = get_stage_type(stage.type)
        if stage_type is None or not stage_type.skippable:
            raise ActionRefused(f"stage {stage.name!r} is a {stage.type} stage, which cannot be skipped")
        _require_running(stage)
        actor = Actor.of(user)
        stage.context = {**stage.context, "skipRemainingWait": True, "skippedBy": actor.username}
        _run_now(stage, ["context"])
        _record_stage_action("stage.wait_skipped", actor, stage)
    return stage


def _locked_execution(execution_id) -> Execution:
    execution = engine.lock_execution(execution_id)
    if execution is None:
        raise ActionRefused(f"no execution {execution_id}")
    return execution


def _act(execution_id, action, audit_action: str, user: Actor | str, details: dict | None = None) -> Execution:
    """Run ``action(execution, dispatch)`` on the locked execution in one transaction, audited; events follow."""
    with transaction.atomic():
        execution = _locked_execution(execution_id)
        dispatch = engine.Dispatch()
        action(execution, dispatch)
        record(audit_action, user, application=execution.application, object_type="execution",
               object_id=execution.id, details=details)
        dispatch.send_on_commit()
    return execution


def do_cancel_execution(execution_id, *, user: Actor | str, reason: str = "") -> Execution:
    """Cancel an execution that has not ended: running stages stop and their cancel logic runs."""

    def cancel(execution, dispatch):
        if execution.status in COMPLETE:
            raise ActionRefused(f"execution {execution.id} already ended {execution.status}")
        engine.cancel_execution(execution, dispatch, user=Actor.of(user).username, reason=reason)

    return _act(execution_id, cancel, "execution.canceled", user, {"reason": reason})


def do_pause_execution(execution_id, *, user: Actor | str) -> Execution:
    """Pause a running execution: nothing new starts until it is resumed."""

    def pause(execution, dispatch):
        if execution.status != Status.RUNNING:
            raise ActionRefused(f"execution {execution.id} is {execution.status}; only a RUNNING one can be paused")
        engine.pause_execution(execution, dispatch)

    return _act(execution_id, pause, "execution.paused", user)


def do_resume_execution(execution_id, *, user: Actor | str) -> Execution:
    """Resume a paused execution where it stopped."""

    def resume(execution, dispatch):
        if execution.status != Status.PAUSED:
            raise ActionRefused(f"execution {execution.id} is {execution.status}, not PAUSED")
        engine.resume_execution(execution, dispatch)

    return _act(execution_id, resume, "execution.resumed", user)


def do_restart_stage(execution_id, ref_id: str, *, user: Actor | str) -> Execution:
    """Run a finished stage and everything after it again, keeping what ran before it."""

    def restart(execution, dispatch):
        stages = {stage.ref_id: stage for stage in execution.stages.all()}
        stage = stages.get(ref_id)
        if stage is None:
            raise ActionRefused(f"execution {execution.id} has no stage with refId {ref_id!r}")
        if stage.status not in COMPLETE:
            raise ActionRefused(f"stage {stage.name!r} is {stage.status}; only a finished stage can be restarted")
        if execution.status not in COMPLETE:
            if execution.status != Status.RUNNING:
                raise ActionRefused(f"execution {execution.id} is {execution.status}")
            downstream = engine.downstream_closure([ref_id], list(stages.values()))
            if any(stages[ref].status in ACTIVE for ref in downstream):
                raise ActionRefused(f"stages after {stage.name!r} are still running")
        engine.restart_stage(execution, ref_id, dispatch, user=Actor.of(user).username)

    return _act(execution_id, restart, "stage.restarted", user, {"stage": ref_id})


def do_skip_execution_window(execution_id, ref_id: str, *, user: Actor | str) -> StageExecution:
    """Let a stage that waits for its execution window run now."""
    with transaction.atomic():
        stage = _locked_stage(execution_id, ref_id)
        window = stage.context.get("executionWindow") or {}
        if not window.get("waiting"):
            raise ActionRefused(f"stage {stage.name!r} is not waiting for an execution window")
        _require_running(stage)
        actor = Actor.of(user)
        stage.context = {**stage.context, "skipExecutionWindow": True, "skippedBy": actor.username}
        _run_now(stage, ["context"])
        _record_stage_action("stage.window_skipped", actor, stage)
    return stage
