"""Advancing an execution: starting stages whose requisites are done, halting and completing.

Advancing (:func:`advance_execution`) is a reconciliation of the whole
execution from the database: it starts every stage whose requisites are all
done, halts the execution when a stage failed it, and completes the
execution when nothing is left to run. Because it derives everything from
the rows, it can run any number of times: a duplicate or late message finds
nothing to do.

Lock order: a Pipeline row (when its executions' concurrency is limited)
before an Execution row, an Execution row before any of its StageExecution
rows, never the other way round. Every decision about an execution as a
whole — a join, a failure, the end — is made here, under the execution's
lock, which serializes the decisions of one execution (a join can never be
missed or started twice). The functions that take a locked execution
(:func:`advance_locked`, :func:`complete_execution`,
:func:`cancel_running_stages`) leave the locking to their caller.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone

from apps.pipelines.choices import ACTIVE, CONTINUABLE, Status, SyntheticOwner
from apps.pipelines.engine import composite
from apps.pipelines.engine.dispatch import Dispatch
from apps.pipelines.engine.errors import crash_context, error_context
from apps.pipelines.expressions import ExpressionError, has_expressions, is_truthy
from apps.pipelines.jsonsafe import json_safe
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.scope import ExpressionScope
from apps.pipelines.stages import get_stage_type

logger = logging.getLogger(__name__)

# Keys of a stage definition that describe the graph, not the stage's inputs.
STRUCTURAL_KEYS = frozenset({"refId", "type", "name", "requisiteStageRefIds"})


# --- Stage options ------------------------------------------------------------------------------


def failure_status(context: dict) -> Status:
    """What a failed stage becomes, from its options, as Spinnaker decides it.

    ``continuePipeline`` lets the pipeline go on (FAILED_CONTINUE);
    ``completeOtherBranchesThenFail`` or ``failPipeline: false`` halt only this
    branch (STOPPED); otherwise the whole execution fails (TERMINAL).
    """
    if context.get("continuePipeline") is True:
        return Status.FAILED_CONTINUE
    if context.get("completeOtherBranchesThenFail") is True or context.get("failPipeline") is False:
        return Status.STOPPED
    return Status.TERMINAL


# --- Starting an execution -----------------------------------------------------------------------


def lock_execution(execution_id) -> Execution | None:
    """The execution, locked for the caller's transaction (lock order: pipeline, execution, stages)."""
    return (
        Execution.objects.select_for_update(of=("self",))
        .select_related("application")
        .filter(id=execution_id)
        .order_by()
        .first()
    )


# --- Advancing an execution ----------------------------------------------------------------------


def advance_execution(execution_id, keep_inline: bool = False) -> tuple[str, int] | None:
    """Start what can start, halt or complete the execution, all from the database's current state.

    With ``keep_inline``, returns one started stage for the caller to run next instead of queueing it.
    """
    dispatch = Dispatch(keep_one_inline=keep_inline)
    with transaction.atomic():
        execution = (
            Execution.objects.select_for_update()
            .select_related("application")
            .defer("definition")
            .filter(id=execution_id)
            .order_by()
            .first()
        )
        if execution is None or execution.status != Status.RUNNING:
            return None
        advance_locked(execution, dispatch)
        dispatch.send_on_commit()
    return dispatch.inline


def advance_locked(execution: Execution, dispatch: Dispatch, stages: list[StageExecution] | None = None) -> None:
    """The reconciliation step; the caller holds the execution's row lock (and may pass its stages, just read)."""
    if stages is None:
        stages = list(execution.stages.all())
    progressed = True
    while progressed:
        # Composite parents first: a synthetic stage's end may end its parent, whose end may halt the execution.
        progressed = _settle_composites(execution, stages, dispatch)
        by_ref = {stage.ref_id: stage for stage in stages}
        if any(stage.status in (Status.TERMINAL, Status.CANCELED) for stage in stages if stage.parent_id is None):
            _halt(execution, stages, dispatch)
            return
        by_id = {stage.id: stage for stage in stages} if any(stage.parent_id for stage in stages) else {}
        for stage in list(stages):  # starting a composite stage adds its synthetic stages to the list
            if stage.status == Status.NOT_STARTED and _requisites_done(stage, by_ref):
                if stage.parent_id is None or composite.startable(stage, by_id[stage.parent_id]):
                    start_stage(execution, stage, stages, dispatch)
                    progressed = True
    if not any(stage.status in ACTIVE for stage in stages):
        complete_execution(execution, _final_status(stages), dispatch)
    dispatch.changed(execution)


def _requisites_done(stage: StageExecution, by_ref: dict[str, StageExecution]) -> bool:
    return all(by_ref[ref].status in CONTINUABLE for ref in stage.requisite_ref_ids if ref in by_ref)


def _final_status(stages: list[StageExecution]) -> Status:
    """The status of an execution none of whose stages is running (Spinnaker's rules, on its top-level stages)."""
    stages = [stage for stage in stages if stage.parent_id is None]
    statuses = {stage.status for stage in stages}
    if Status.TERMINAL in statuses:
        return Status.TERMINAL
    if Status.CANCELED in statuses:
        return Status.CANCELED
    if any(s.status == Status.STOPPED and s.context.get("completeOtherBranchesThenFail") is True for s in stages):
        return Status.TERMINAL
    return Status.SUCCEEDED


def _halt(execution: Execution, stages: list[StageExecution], dispatch: Dispatch) -> None:
    """A stage failed the pipeline: cancel the stages still running and end the execution."""
    final_status = _final_status(stages)
    cancel_running_stages(execution, dispatch)
    complete_execution(execution, final_status, dispatch)


def cancel_running_stages(execution: Execution, dispatch: Dispatch, among: Q | None = None) -> set:
    """Cancel every active stage of a locked execution (``among`` those stages only); returns their ids."""
    canceled: set = set()
    while True:
        # Locking waits for any task step in progress; that step may start the
        # next stage of its chain as it commits, so look again until none is left.
        active = StageExecution.objects.select_for_update().filter(execution=execution, status__in=ACTIVE)
        running = list((active.filter(among) if among is not None else active).order_by())
        if not running:
            return canceled
        for stage in running:
            cancel_stage(stage, dispatch)
            dispatch.changed(execution, stage)
            canceled.add(stage.id)


def cancel_stage(stage: StageExecution, dispatch: Dispatch) -> None:
    """Mark a running stage CANCELED (the caller holds its lock); its cancel hook runs after commit."""
    stage.status = Status.CANCELED
    stage.end_time = timezone.now()
    stage.next_run_at = None
    stage.run_token += 1
    stage.save(update_fields=["status", "end_time", "next_run_at", "run_token"])
    dispatch.canceled.append(stage)


def complete_execution(execution: Execution, status: Status, dispatch: Dispatch) -> None:
    """End the execution; after commit, wake its parent's stage and let a waiting execution start."""
    execution.status = status
    execution.end_time = timezone.now()
    dispatch.save(execution, None, ["status", "end_time"])
    dispatch.changed(execution)
    if execution.parent_stage_id is not None:
        dispatch.wake.append(str(execution.parent_stage_id))
    if execution.limit_concurrent and execution.pipeline_id is not None:
        dispatch.waiting_pipelines.add(str(execution.pipeline_id))


def start_stage(
    execution: Execution, stage: StageExecution, stages: list[StageExecution] | None, dispatch: Dispatch
) -> bool:
    """Move a stage out of NOT_STARTED: SKIPPED, failed on a bad expression, or RUNNING with a job queued.

    A stage whose inputs hold expressions (:func:`evaluates_at_start`) is
    not evaluated here, under the caller's locks: it becomes RUNNING with
    ``awaiting_evaluation`` set and a fresh run token, and its next step
    evaluates it with no lock held, then finishes starting it
    (:mod:`.evaluation`) if that token still holds. Any other stage is
    evaluated (which costs nothing) and started at once.

    Returns False when a stage ended as it started (the execution must then
    be advanced).
    """
    if evaluates_at_start(stage):
        _await_evaluation(execution, stage, dispatch)
        return True
    stage.start_time = timezone.now()
    evaluated, failure = evaluate_start(execution, stage, stages)
    return finish_start(execution, stage, stages, dispatch, evaluated, failure)


def stage_inputs(stage: StageExecution) -> dict:
    """The stage's definition without the keys that describe the graph: its inputs, before expressions."""
    return {key: value for key, value in stage.definition.items() if key not in STRUCTURAL_KEYS}


def evaluates_at_start(stage: StageExecution) -> bool:
    """Whether starting the stage evaluates an expression: ``${`` in an input it does not evaluate itself
    (its type's ``lazy_fields``), or a ``stageEnabled`` expression."""
    inputs = stage_inputs(stage)
    enabled = inputs.get("stageEnabled")
    if isinstance(enabled, dict) and isinstance(enabled.get("expression"), str):
        return True
    stage_type = get_stage_type(stage.type)
    try:
        lazy = stage_type.lazy_fields if stage_type else ()
    except Exception:  # noqa: BLE001  (a type that crashes here crashes again in evaluate_start, failing its stage)
        return True
    return has_expressions([value for key, value in inputs.items() if key not in lazy])


def _await_evaluation(execution: Execution, stage: StageExecution, dispatch: Dispatch) -> None:
    """Start the stage with its context still to be evaluated: by its next step, the one queued here."""
    stage.status = Status.RUNNING
    stage.start_time = stage.next_run_at = timezone.now()
    stage.awaiting_evaluation = True
    stage.run_token += 1  # the claim: only the step holding this token may finish the start
    fields = ["status", "start_time", "next_run_at", "run_token", "awaiting_evaluation"]
    _save_started(execution, stage, fields, dispatch)
    dispatch.run_stage(stage)
    dispatch.changed(execution, stage)


def evaluate_start(
    execution: Execution, stage: StageExecution, stages: list[StageExecution] | None
) -> tuple[dict | None, dict | None]:
    """The stage's evaluated context and the error context of a failure: (None, None) when it is skipped.

    Anything that raises while the context is prepared (an expression, a
    value JSON cannot hold, a crash) fails this stage with the error and the
    phase ``start``; database errors (which abort the transaction) are left
    to the caller.
    """
    try:
        return _evaluate_context(execution, stage, stages, stage_inputs(stage)), None
    except ExpressionError as error:
        return None, error_context(str(error))
    except DatabaseError:
        raise
    except Exception as error:  # noqa: BLE001  (a crash at start fails this stage, never the whole step)
        logger.exception("stage %s (%s) crashed while starting", stage.id, stage.type)
        return None, crash_context("start", error)


def finish_start(
    execution: Execution, stage: StageExecution, stages: list[StageExecution] | None, dispatch: Dispatch,
    evaluated: dict | None, failure: dict | None,
) -> bool:
    """Start the locked stage from what :func:`evaluate_start` gave: SKIPPED, failed, or RUNNING with a job.

    A composite stage plans its synthetic stages here, from its evaluated
    context, and starts the first before stages; a plan that fails or
    crashes fails the stage. Returns False when the stage ended as it started.
    """
    now = timezone.now()
    if evaluated is None:
        raw = stage_inputs(stage)
        status = Status.SKIPPED if failure is None else failure_status(raw)
        _finish_without_running(execution, stage, status, raw if failure is None else {**raw, **failure}, now, dispatch)
        dispatch.changed(execution, stage)
        return False
    # A restarted stage keeps its restartDetails.
    stage.context = {**stage.context, **evaluated}
    stage.status = Status.RUNNING
    stage.run_token += 1
    synthetic, failure = _plan_synthetic(stage)
    if failure is not None:
        _finish_without_running(
            execution, stage, failure_status(stage.context), {**stage.context, **failure}, now, dispatch
        )
        dispatch.changed(execution, stage)
        return False
    if stage.tasks:
        return _start_composite(execution, stage, stages, synthetic, dispatch)
    stage.next_run_at = now
    _save_started(execution, stage, ["context", "status", "start_time", "run_token", "next_run_at"], dispatch)
    dispatch.run_stage(stage)
    dispatch.changed(execution, stage)
    return True


def _save_started(execution: Execution, stage: StageExecution, fields: list[str], dispatch: Dispatch) -> None:
    """Save a starting stage; a restarted one starts its count of lost steps again, an evaluated one waits no more."""
    if stage.step_failures:
        stage.step_failures = 0
        fields.append("step_failures")
    if stage.awaiting_evaluation and "awaiting_evaluation" not in fields:
        stage.awaiting_evaluation = False
        fields.append("awaiting_evaluation")
    dispatch.save(execution, stage, fields)


def _plan_synthetic(stage: StageExecution) -> tuple[list, dict | None]:
    """The synthetic stages a composite stage plans, or the error context when planning fails or crashes."""
    stage_type = get_stage_type(stage.type)
    try:
        return (composite.plan(stage, stage_type) if stage_type is not None else []), None
    except composite.PlanningError as error:
        return [], error_context(str(error))
    except DatabaseError:
        raise
    except Exception as error:  # noqa: BLE001  (a crashing plan fails this stage, never the whole step)
        logger.exception("stage %s (%s) crashed while planning its synthetic stages", stage.id, stage.type)
        return [], crash_context("start", error)


def _evaluate_context(
    execution: Execution, stage: StageExecution, stages: list[StageExecution] | None, raw: dict
) -> dict | None:
    """The stage's context with its expressions evaluated, JSON-safe; None when ``stageEnabled`` is false."""
    stage_type = get_stage_type(stage.type)
    scope = ExpressionScope(execution, stages, stage)
    lazy = stage_type.lazy_fields if stage_type else ()
    enabled = raw.get("stageEnabled")
    if isinstance(enabled, dict) and "expression" in enabled:
        expression = enabled["expression"]
        if isinstance(expression, str) and "${" not in expression:
            expression = "${" + expression + "}"
        if not is_truthy(scope.evaluate(expression)):
            return None
    evaluated = {key: value for key, value in raw.items() if key in lazy}
    evaluated.update(scope.evaluate_context({key: value for key, value in raw.items() if key not in lazy}))
    return json_safe(evaluated, "context")


def _finish_without_running(
    execution: Execution, stage: StageExecution, status: Status, context: dict, now, dispatch: Dispatch
) -> None:
    stage.context = context
    stage.status = status
    stage.end_time = now
    _save_started(execution, stage, ["context", "status", "start_time", "end_time"], dispatch)


# --- Composite stages (see composite.py) ------------------------------------------------------------


def _start_composite(
    execution: Execution, stage: StageExecution, stages: list[StageExecution] | None,
    synthetic: list[StageExecution], dispatch: Dispatch,
) -> bool:
    """Start a composite stage: its first before stages, or (with none) its first task."""
    fields = ["context", "status", "start_time", "run_token", "next_run_at", "tasks"]
    befores = [row for row in synthetic if row.synthetic_owner == SyntheticOwner.STAGE_BEFORE]
    if stages is not None:
        stages.extend(synthetic)
    if not befores:
        composite.set_task(stage, 0, Status.RUNNING)
        stage.next_run_at = timezone.now()
        _save_started(execution, stage, fields, dispatch)
        dispatch.run_stage(stage)
        dispatch.changed(execution, stage)
        return True
    _wake_at_timeout(stage, dispatch)
    _save_started(execution, stage, fields, dispatch)
    dispatch.changed(execution, stage)
    started = [start_stage(execution, row, stages, dispatch) for row in befores if not row.requisite_ref_ids]
    return all(started)


def _wake_at_timeout(stage: StageExecution, dispatch: Dispatch) -> None:
    """A parent waiting for its synthetic stages has no step due, except one when its stageTimeoutMs runs out."""
    delay = composite.until_timeout(stage)
    if delay is not None:
        stage.run_token += 1
        dispatch.run_stage(stage, delay)
    stage.next_run_at = None if delay is None else timezone.now() + timedelta(seconds=delay)


def _settle_composites(execution: Execution, stages: list[StageExecution], dispatch: Dispatch) -> bool:
    """Move each active composite parent on from what its synthetic stages did; True when one changed.

    Deepest first, so a nested parent's end is seen by its own parent in the same pass.
    """
    parents = [stage for stage in stages if stage.tasks and stage.status in ACTIVE]
    if not parents:
        return False
    children: dict = {}
    for stage in stages:
        children.setdefault(stage.parent_id, []).append(stage)
    changed = False
    for parent in sorted(parents, key=lambda stage: -composite.depth(stage.ref_id)):
        move, status, message = composite.settle(parent, children.get(parent.id, []))
        if move == composite.END:
            assert status is not None  # settle() always names the status an ending parent takes
            status = failure_status(parent.context) if status == Status.TERMINAL else status
            _end_parent(execution, parent, status, stages, dispatch, message)
        elif move == composite.BEGIN_TASKS:
            composite.set_task(parent, 0, Status.RUNNING)
            parent.run_token += 1
            parent.next_run_at = timezone.now()
            dispatch.run_stage(parent)
        elif move == composite.COMPLETE:
            parent.status, parent.end_time, parent.next_run_at = status, timezone.now(), None
        elif move == composite.REWAKE:
            _wake_at_timeout(parent, dispatch)
        if move not in (None, composite.END):
            parent.save(update_fields=["status", "end_time", "tasks", "run_token", "next_run_at"])
            dispatch.changed(execution, parent)
        changed |= move in (composite.END, composite.BEGIN_TASKS, composite.COMPLETE)
    return changed


def _end_parent(execution: Execution, parent: StageExecution, status: Status, stages: list[StageExecution],
                dispatch: Dispatch, message: str) -> None:
    """End a composite parent early (a synthetic stage failed, its timeout came); what runs below it is canceled."""
    parent.status, parent.end_time, parent.next_run_at = status, timezone.now(), None
    parent.context = {**parent.context, **error_context(message)}
    parent.run_token += 1
    parent.save(update_fields=["status", "context", "end_time", "next_run_at", "run_token"])
    dispatch.changed(execution, parent)
    before, after = composite.descendant_prefixes(parent.ref_id)
    canceled = cancel_running_stages(execution, dispatch, Q(ref_id__startswith=before) | Q(ref_id__startswith=after))
    for stage in stages:
        if stage.id in canceled:
            stage.status = Status.CANCELED
