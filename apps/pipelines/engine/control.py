"""Acting on an execution: wake a stage, cancel, pause, resume, restart; and running a canceled stage's hook.

Except for :func:`wake_stage` and :func:`run_cancel_hook` (jobs of their
own), these run in the caller's transaction, on an execution it has locked
with :func:`~apps.pipelines.engine.graph.lock_execution`; they lock the
execution's stage rows after it, keeping the lock order (execution before
stages). The service functions decide whether an action is allowed; these
only carry it out.
"""

from __future__ import annotations

import logging
import time

from django.db import transaction
from django.utils import timezone

from apps.pipelines.choices import Status
from apps.pipelines.engine.composite import restart_plan
from apps.pipelines.engine.dispatch import Dispatch
from apps.pipelines.engine.graph import advance_locked, cancel_running_stages, complete_execution
from apps.pipelines.engine.recovery import record_cancel_hook_failure
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.stages import StageRuntime, get_stage_type

logger = logging.getLogger(__name__)


def wake_stage(stage_id) -> None:
    """Run a waiting stage's task now (its child execution ended, a person acted): a fresh token, a job."""
    dispatch = Dispatch()
    with transaction.atomic():
        stage = StageExecution.objects.select_for_update().select_related("execution").filter(id=stage_id).first()
        if stage is None or stage.status != Status.RUNNING or stage.execution.status != Status.RUNNING:
            return
        schedule_now(stage, dispatch)
        dispatch.send_on_commit()


def schedule_now(stage: StageExecution, dispatch: Dispatch, fields: tuple[str, ...] = ()) -> None:
    """Save the locked stage and run its task at once; queued polls with the older token become stale."""
    stage.run_token += 1
    stage.next_run_at = timezone.now()
    stage.save(update_fields=[*fields, "run_token", "next_run_at"])
    dispatch.run_stage(stage)


def cancel_execution(execution: Execution, dispatch: Dispatch, *, user: str, reason: str) -> None:
    """Stop everything: running stages become CANCELED (their cancel hooks run), nothing else starts."""
    execution.canceled_by = user
    execution.cancel_reason = reason
    execution.save(update_fields=["canceled_by", "cancel_reason"])
    cancel_running_stages(execution, dispatch)
    _close_pause(execution)
    complete_execution(execution, Status.CANCELED, dispatch)


def pause_execution(execution: Execution, dispatch: Dispatch) -> None:
    """Nothing new starts and no task runs until resumed; running stages keep their state, shown PAUSED."""
    execution.status = Status.PAUSED
    execution.pauses = [*execution.pauses, [int(time.time() * 1000), None]]
    execution.save(update_fields=["status", "pauses"])
    for stage in StageExecution.objects.select_for_update().filter(execution=execution, status=Status.RUNNING):
        stage.status = Status.PAUSED
        stage.save(update_fields=["status"])
        dispatch.changed(execution, stage)
    dispatch.changed(execution)


def resume_execution(execution: Execution, dispatch: Dispatch) -> None:
    """Pick up where the pause left: paused stages run their task again at once, then whatever is ready starts."""
    execution.status = Status.RUNNING
    _close_pause(execution)
    execution.save(update_fields=["status", "pauses"])
    for stage in StageExecution.objects.select_for_update().filter(execution=execution, status=Status.PAUSED):
        stage.status = Status.RUNNING
        schedule_now(stage, dispatch, fields=("status",))
        dispatch.changed(execution, stage)
    advance_locked(execution, dispatch)


def _close_pause(execution: Execution) -> None:
    if execution.pauses and execution.pauses[-1][1] is None:
        execution.pauses = [*execution.pauses[:-1], [execution.pauses[-1][0], int(time.time() * 1000)]]
        execution.save(update_fields=["pauses"])


def restart_stage(execution: Execution, ref_id: str, dispatch: Dispatch, *, user: str) -> list[StageExecution]:
    """Run a finished stage and everything downstream of it again; upstream results are kept.

    Stages canceled when the execution halted run again too. A synthetic
    stage reruns with the siblings after it, its parent's tasks (after a
    before stage), its parent's after stages and what follows the parent
    (:func:`~apps.pipelines.engine.composite.restart_plan`); a composite
    stage's synthetic stages are planned afresh. Returns the stages that
    were reset. The caller checked that the stage may restart.
    """
    stages = list(StageExecution.objects.select_for_update().filter(execution=execution).order_by("position"))
    by_ref = {stage.ref_id: stage for stage in stages}
    plan = restart_plan(ref_id, stages, with_canceled=True)
    if plan.drop:
        StageExecution.objects.filter(id__in=[by_ref[ref].id for ref in plan.drop]).delete()
    now_ms = int(time.time() * 1000)
    for ref in plan.reset:
        details = {"restartedBy": user, "restartTime": now_ms} if ref == ref_id else None
        _reset_stage(by_ref[ref], details)
        dispatch.changed(execution, by_ref[ref])
    for ref, rerun_tasks in plan.reopen.items():
        _reopen_parent(by_ref[ref], rerun_tasks)
        dispatch.changed(execution, by_ref[ref])
    execution.status = Status.RUNNING
    execution.end_time = None
    execution.canceled_by = execution.cancel_reason = ""
    execution.exception = None
    execution.save(update_fields=["status", "end_time", "canceled_by", "cancel_reason", "exception"])
    advance_locked(execution, dispatch)
    return [by_ref[ref] for ref in plan.reset]


def _reset_stage(stage: StageExecution, restart_details: dict | None) -> None:
    """Back to NOT_STARTED with nothing kept; the restarted stage itself records who restarted it and why."""
    previous_error = (stage.context.get("exception") or {}).get("details")
    stage.context = {}
    if restart_details is not None:
        stage.context["restartDetails"] = {**restart_details, "previousException": previous_error}
    stage.status = Status.NOT_STARTED
    stage.outputs = {}
    stage.tasks = []
    stage.start_time = stage.end_time = stage.next_run_at = None
    stage.awaiting_evaluation = False  # (one canceled before its context was evaluated)
    stage.run_token += 1
    stage.save(update_fields=["context", "status", "outputs", "tasks", "start_time", "end_time", "next_run_at",
                              "run_token", "awaiting_evaluation"])


def _reopen_parent(stage: StageExecution, rerun_tasks: bool) -> None:
    """A composite parent some of whose synthetic stages run again: RUNNING, its error gone, its timeout anew."""
    stage.context = {key: value for key, value in stage.context.items() if key != "exception"}
    if rerun_tasks:
        stage.tasks = [{**task, "status": Status.NOT_STARTED, "startTime": None, "endTime": None}
                       for task in stage.tasks]
    stage.status = Status.RUNNING
    stage.start_time = timezone.now()
    stage.end_time = stage.next_run_at = None
    stage.run_token += 1
    stage.save(update_fields=["context", "tasks", "status", "start_time", "end_time", "next_run_at", "run_token"])


def run_cancel_hook(stage_id, runtime: StageRuntime) -> None:
    """Undo or stop a canceled stage's outside work (its type's ``cancel``), in a job of its own.

    A job, not the canceling request: a hook may call out (a webhook's cancel
    endpoint, a child execution) and a person canceling should not wait for it.
    A hook that raises is shown on its stage and not retried.
    """
    stage = StageExecution.objects.select_related("execution__application").filter(id=stage_id).first()
    stage_type = get_stage_type(stage.type) if stage is not None else None
    if stage is None or stage_type is None:
        return
    try:
        stage_type.cancel(stage, runtime)
    except Exception as error:  # noqa: BLE001  (a failing cancel hook must not undo the cancel)
        record_cancel_hook_failure(stage.id, error)
