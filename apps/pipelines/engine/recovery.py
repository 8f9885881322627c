"""When a step or an execution-level move raises: record the failure in a fresh transaction, then move on.

A crashed step's transaction has rolled back, so the stage is still RUNNING
as it was. :func:`fail_crashed_stage` locks it again, checks that its run
token and status are still those the crashed step held (a late duplicate
finds them changed and does nothing), ends it through its failure options
(:func:`~apps.pipelines.engine.graph.failure_status`, as Orca does for an
exception in a task: ``continuePipeline`` and ``failPipeline: false`` hold)
and advances the execution. If even that fails (the database is away), the
job fails and the sweeper runs the step again after a lease.

An execution whose reconciliation (:func:`advance_execution`) or start
raises ends TERMINAL with the error on the execution (``Execution.exception``)
and its running stages canceled: the sweeper would otherwise advance it
again every sweep, for ever. The wrappers here are what the jobs and the
other modules call; :mod:`.graph` stays free of crash handling.

Locks: as :mod:`.graph` — a stage row alone, or an execution row then its
stage rows.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from apps.pipelines.choices import ACTIVE, Status
from apps.pipelines.engine import graph, starts
from apps.pipelines.engine.dispatch import Dispatch
from apps.pipelines.engine.errors import StepCrash, crash_context, is_transient
from apps.pipelines.models import StageExecution

logger = logging.getLogger(__name__)


def mark_failed(stage: StageExecution, context: dict, dispatch: Dispatch) -> None:
    """End the locked stage through its failure options with ``context`` (the error) merged in."""
    stage.context = {**stage.context, **context}
    stage.status = graph.failure_status(stage.context)
    stage.end_time = timezone.now()
    stage.next_run_at = None
    stage.run_token += 1  # polls still queued, or a claimed call still out, become stale
    stage.save(update_fields=["context", "status", "end_time", "next_run_at", "run_token", "step_failures"])
    dispatch.changed(stage.execution, stage)


def fail_crashed_stage(stage_id, crash: StepCrash, keep_inline: bool = False) -> tuple[str, int] | None:
    """Record a crashed step as its stage's failure, if the stage is still as the step left it; then advance.

    Called from the ``except`` that caught the crash (so the log has its traceback).
    """
    logger.exception("stage %s crashed in its %s phase", stage_id, crash.phase)
    dispatch = Dispatch()
    with transaction.atomic():
        stage = (
            StageExecution.objects.select_for_update(of=("self",))
            .select_related("execution__application")
            .filter(id=stage_id)
            .order_by()
            .first()
        )
        if stage is None or stage.run_token != crash.token or stage.status not in ACTIVE:
            return None  # moved on meanwhile (canceled, restarted, or a duplicate recorded it)
        mark_failed(stage, crash_context(crash.phase, crash.error), dispatch)
        dispatch.send_on_commit()
    return advance_execution(stage.execution_id, keep_inline=keep_inline)


def fail_execution(execution_id, phase: str, error: BaseException, statuses: frozenset[Status]) -> None:
    """End an execution TERMINAL with the engine's error on it, if it is still in one of ``statuses``."""
    dispatch = Dispatch()
    with transaction.atomic():
        execution = graph.lock_execution(execution_id)
        if execution is None or execution.status not in statuses:
            return
        execution.exception = crash_context(phase, error)["exception"]
        execution.save(update_fields=["exception"])
        graph.cancel_running_stages(execution, dispatch)
        graph.complete_execution(execution, Status.TERMINAL, dispatch)
        dispatch.send_on_commit()


def advance_execution(execution_id, keep_inline: bool = False) -> tuple[str, int] | None:
    """:func:`graph.advance_execution`; if it raises (not transiently), the execution ends TERMINAL."""
    try:
        return graph.advance_execution(execution_id, keep_inline=keep_inline)
    except Exception as error:
        if is_transient(error):
            raise
        logger.exception("advancing execution %s crashed; it ends TERMINAL", execution_id)
        fail_execution(execution_id, "advance", error, frozenset({Status.RUNNING}))
        return None


def start_execution(execution_id, keep_inline: bool = False) -> tuple[str, int] | None:
    """:func:`starts.start_execution`; if it raises (not transiently), the execution ends TERMINAL."""
    try:
        return starts.start_execution(execution_id, keep_inline=keep_inline)
    except Exception as error:
        if is_transient(error):
            raise
        logger.exception("starting execution %s crashed; it ends TERMINAL", execution_id)
        fail_execution(execution_id, "start", error, frozenset({Status.NOT_STARTED, Status.BUFFERED}))
        return None


def start_waiting(pipeline_id) -> None:
    """:func:`starts.start_waiting`; if starting the next waiting execution raises, that one ends TERMINAL.

    Ending it lets the one after it start (``complete_execution`` queues
    ``start_waiting`` again), so one bad execution cannot hold up the line.
    """
    try:
        starts.start_waiting(pipeline_id)
    except Exception as error:
        if is_transient(error):
            raise
        next_id = starts.next_waiting_id(pipeline_id)
        logger.exception("starting waiting execution %s crashed; it ends TERMINAL", next_id)
        if next_id is not None:
            fail_execution(next_id, "start", error, frozenset({Status.BUFFERED}))


def record_cancel_hook_failure(stage_id, error: BaseException) -> None:
    """Show a failed cancel hook on its (still CANCELED) stage; the cancel itself stands and is not retried.

    Not retried: a hook calls out (a cancel endpoint, a child execution),
    and repeating a half-done call blindly may do harm; the error is shown
    so a person can finish the clean-up.
    """
    logger.exception("cancel hook of stage %s failed", stage_id)
    with transaction.atomic():
        stage = StageExecution.objects.select_for_update().filter(id=stage_id).order_by().first()
        if stage is None or stage.status != Status.CANCELED:
            return  # restarted meanwhile: the error belongs to a run that is gone
        stage.context = {**stage.context, **crash_context("cancel", error)}
        stage.save(update_fields=["context"])
