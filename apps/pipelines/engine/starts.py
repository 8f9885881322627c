"""Starting an execution: at once, or BUFFERED behind a running one when its pipeline limits concurrency.

A pipeline with ``limitConcurrent`` runs one execution at a time. Each start
decision takes the Pipeline row's lock first (lock order: pipeline,
execution, stages — see :mod:`.graph`), so two executions of one pipeline
can never both decide that nothing else runs. Without
``keepWaitingPipelines`` only the newest waiting execution is kept; older
ones are CANCELED with the reason.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from apps.pipelines.choices import ACTIVE, Status
from apps.pipelines.engine.dispatch import Dispatch
from apps.pipelines.engine.errors import error_context
from apps.pipelines.engine.graph import advance_locked, complete_execution, lock_execution
from apps.pipelines.models import Execution, Pipeline


def start_execution(execution_id, keep_inline: bool = False) -> tuple[str, int] | None:
    """Start a NOT_STARTED execution, or leave it BUFFERED behind a running one when its pipeline limits concurrency.

    With ``keep_inline``, returns one started stage for the caller to run next instead of queueing it.
    """
    dispatch = Dispatch(keep_one_inline=keep_inline)
    limited = Execution.objects.filter(id=execution_id, limit_concurrent=True).values_list("pipeline_id", flat=True)
    pipeline_id = limited.first()
    with transaction.atomic():
        if pipeline_id is not None:
            _lock_pipeline(pipeline_id)  # one start decision at a time per pipeline
        execution = lock_execution(execution_id)
        if execution is None or execution.status != Status.NOT_STARTED:
            return None
        if pipeline_id is not None and _must_wait(execution):
            _buffer(execution, dispatch)
        else:
            _begin(execution, dispatch)
        dispatch.send_on_commit()
    return dispatch.inline


def start_waiting(pipeline_id) -> None:
    """Start the next BUFFERED execution of a pipeline once none of its executions is running."""
    dispatch = Dispatch()
    with transaction.atomic():
        _lock_pipeline(pipeline_id)
        if Execution.objects.filter(pipeline_id=pipeline_id, status__in=ACTIVE).exists():
            return
        next_id = next_waiting_id(pipeline_id)
        execution = lock_execution(next_id) if next_id is not None else None
        if execution is None:
            return
        _begin(execution, dispatch)
        dispatch.send_on_commit()


def next_waiting_id(pipeline_id):
    """The id of the pipeline's oldest BUFFERED execution (the next to start), or None."""
    waiting = Execution.objects.filter(pipeline_id=pipeline_id, status=Status.BUFFERED).order_by("created_at")
    return waiting.values_list("id", flat=True).first()


def _lock_pipeline(pipeline_id) -> None:
    list(Pipeline.objects.select_for_update().filter(id=pipeline_id).values_list("id", flat=True))


def _must_wait(execution: Execution) -> bool:
    """Whether another execution of the pipeline runs, or (keeping all waiting) an older one waits."""
    if execution.pipeline_id is None:  # its pipeline was deleted: nothing left to wait behind
        return False
    others = Execution.objects.filter(pipeline_id=execution.pipeline_id).exclude(id=execution.id)
    if others.filter(status__in=ACTIVE).exists():
        return True
    keep_waiting = execution.definition.get("keepWaitingPipelines") is True
    return keep_waiting and others.filter(status=Status.BUFFERED, created_at__lt=execution.created_at).exists()


def _buffer(execution: Execution, dispatch: Dispatch) -> None:
    """Make the execution wait its turn; without keepWaitingPipelines, it replaces any older waiting one."""
    execution.status = Status.BUFFERED
    execution.save(update_fields=["status"])
    dispatch.changed(execution)
    if execution.definition.get("keepWaitingPipelines") is True:
        return
    superseded = Execution.objects.select_for_update(of=("self",)).select_related("application")
    superseded = superseded.filter(pipeline_id=execution.pipeline_id, status=Status.BUFFERED).exclude(id=execution.id)
    for older in superseded:
        older.canceled_by = "system"
        older.cancel_reason = f"superseded by newer execution {execution.id} (keepWaitingPipelines is false)"
        older.save(update_fields=["canceled_by", "cancel_reason"])
        complete_execution(older, Status.CANCELED, dispatch)


def _begin(execution: Execution, dispatch: Dispatch) -> None:
    execution.status = Status.RUNNING
    execution.start_time = timezone.now()
    stages = list(execution.stages.all())  # read once: for the check below and for advancing
    if not stages:
        # As Orca's StartExecutionHandler: a pipeline with nothing to run has not done what it was asked.
        execution.exception = error_context("No initial stages found")["exception"]
        execution.save(update_fields=["status", "start_time", "exception"])
        complete_execution(execution, Status.TERMINAL, dispatch)
        return
    dispatch.save(execution, None, ["status", "start_time"])
    advance_locked(execution, dispatch, stages)
