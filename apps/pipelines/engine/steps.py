"""Running one step of a stage's task: the ``run_stage`` message.

``run_stage(stage_id, token)`` runs one step of a RUNNING stage's task. When
the task says "not yet", the same message is scheduled again after the delay
the task asked for; no worker ever sleeps. When the task is done, the stage
is completed and the execution is advanced (:mod:`.graph`).

Locks. Running a task locks only its stage row (so parallel branches really
run in parallel), and when the stages after it wait on it alone, starts them
under that same lock: nothing else can start them. On PostgreSQL those
NOT_STARTED stages are locked with it, in the same statement and in
``position`` order (see :func:`~apps.pipelines.engine.locking.lock_stage`). Anything else is left to
:func:`~apps.pipelines.engine.graph.advance_execution`, which takes the
execution's lock after this step's transaction has ended, keeping the lock
order (execution before stages). A task that calls the outside world
(``performs_io``), or evaluates expressions itself (``runs_unlocked``),
runs with no transaction open and no lock held: its step is claimed first by
bumping the run token. So does the first step of a stage whose start
evaluates expressions, claimed as it started (:mod:`.evaluation`).

Duplicate messages. Each job carries the stage's ``run_token`` as it was when
the job was scheduled; scheduling a new job bumps the token, so a job with a
stale token does nothing.

Crashes. Each phase of a step (timeout, window, run, record, advance) is
wrapped (:mod:`.errors`); an exception escaping one rolls the step back and
is recorded as the stage's failure in a fresh transaction (:mod:`.recovery`),
so a step can never leave its stage RUNNING to be re-queued for ever. What
a task returns is made JSON-safe (:mod:`apps.pipelines.jsonsafe`) in one
place, :func:`_merge_result`, on every path that saves it.

Stage types get the :class:`~apps.pipelines.stages.StageRuntime` the caller
(``jobs.py``) passes in: the engine itself does not import the services.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.pipelines import enqueue
from apps.pipelines.choices import CONTINUABLE, Status
from apps.pipelines.engine import composite
from apps.pipelines.engine.composite import running_seconds, timeout_seconds
from apps.pipelines.engine.dispatch import Dispatch
from apps.pipelines.engine.errors import ADVANCE, RECORD, RUN, TIMEOUT, WINDOW, StepCrash, error_context, is_transient
from apps.pipelines.engine.evaluation import start_claimed
from apps.pipelines.engine.graph import failure_status, start_stage
from apps.pipelines.engine.locking import hold_stage, lock_stage
from apps.pipelines.engine.recovery import advance_execution, fail_crashed_stage, start_execution
from apps.pipelines.expressions import ExpressionError
from apps.pipelines.jsonsafe import json_safe
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.scope import ExpressionScope
from apps.pipelines.stages import StageRuntime, StageType, Task, TaskResult, get_stage_type
from apps.pipelines.windows import is_restricted, jitter_seconds, next_window_start

logger = logging.getLogger(__name__)

# Recording a claimed step's result while the database is away: the first wait, and the longest.
RECORD_RETRY_FIRST_DELAY = 0.2
RECORD_RETRY_MAX_DELAY = 1.0


def start_execution_job(execution_id, runtime: StageRuntime) -> None:
    """The ``start_execution`` message: start the execution, then run its first stage's step in the same job,
    and what follows at once, as :func:`run_stage_job` does (its other first stages are queued)."""
    step = start_execution(execution_id, keep_inline=_may_run_inline())
    if step is not None:
        run_stage_job(*step, runtime)


def _may_run_inline() -> bool:
    # Inline runs only outside an enclosing transaction, where a step's commit is final.
    return settings.ENGINE_INLINE_SECONDS > 0 and connection.get_autocommit()


def run_stage_job(stage_id, token: int, runtime: StageRuntime) -> None:
    """The ``run_stage`` message: run one step of a stage, then keep going in the same job while it pays.

    When a step starts the next stage, that stage's first step runs here
    rather than in a new job, for up to ``ENGINE_INLINE_SECONDS``: a chain
    of stages that finish at once (variables, checks, quick calls) then
    costs one job, not one per stage. Other stages a step starts are
    queued, so parallel branches still run on other workers. The stage run
    inline is marked due in the database first, so a crash loses nothing the
    sweeper cannot find.
    """
    deadline = time.monotonic() + settings.ENGINE_INLINE_SECONDS
    keep_inline = _may_run_inline()
    step: tuple[str, int] | None = (stage_id, token)
    while step is not None:
        step = run_stage(*step, runtime, keep_inline=keep_inline)
        if step is not None and time.monotonic() >= deadline:
            enqueue.enqueue_run_stage(*step)
            return


def run_stage(stage_id, token: int, runtime: StageRuntime, keep_inline: bool = False) -> tuple[str, int] | None:
    """Run one step of a stage (see :func:`_run_step`); a crash in any part of it fails the stage instead.

    Transient errors (the database or Redis away) are raised: the job fails
    and the sweeper runs the step again after a lease.
    """
    try:
        return _run_step(stage_id, token, runtime, keep_inline)
    except Exception as error:
        if is_transient(error):
            raise
        return fail_crashed_stage(stage_id, StepCrash.of(error, "step", token), keep_inline)


def _run_step(stage_id, token: int, runtime: StageRuntime, keep_inline: bool) -> tuple[str, int] | None:
    """Run one step of a RUNNING stage's task; when it is done, complete the stage and move on.

    Moving on usually happens in the same transaction: when every stage
    downstream of this one waits on this stage alone (a chain), nothing else
    can start them, so they are started here under this stage's lock.
    Anything else — a join, the end of the pipeline, a failure — goes through
    :func:`advance_execution`, which takes the execution's lock.

    With ``keep_inline``, returns one started stage for the caller to run
    next instead of queueing it.
    """
    dispatch = Dispatch(keep_one_inline=keep_inline)
    claimed = evaluate = None
    must_advance = False
    with transaction.atomic():
        stage = lock_stage(stage_id)
        if stage is None or stage.status != Status.RUNNING or stage.run_token != token:
            return None
        if stage.execution.status != Status.RUNNING:
            hold_stage(stage.execution, stage, dispatch)
            return None
        runner = _runner(stage)
        if stage.awaiting_evaluation:
            # Its start evaluates expressions: with no lock held, under the token
            # its start claimed (see evaluation.py). Nothing to write here.
            evaluate = stage
        elif runner is _BETWEEN_SYNTHETIC_STAGES:
            # A composite parent's wake-up (its timeout, possibly early; a resume) is used up:
            # advancing decides what comes next, and schedules the next wake-up.
            stage.next_run_at = None
            stage.save(update_fields=["next_run_at"])
            must_advance = True
        elif runner is not None and runner.runs_unlocked(stage):
            # Claim the step and let go of the lock: the task talks to the
            # outside world (or evaluates expressions, up to their budget) with
            # no transaction open. A duplicate message now carries a stale
            # token; the sweeper waits a lease before retrying.
            stage.run_token += 1
            stage.next_run_at = timezone.now()
            stage.save(update_fields=["run_token", "next_run_at"])
            claimed = stage
        else:
            must_advance = _record(stage, _run_task(stage, runner, runtime), dispatch)
            dispatch.send_on_commit()
    if evaluate is not None:
        return start_claimed(evaluate, keep_inline)
    if claimed is not None:
        try:
            must_advance, dispatch = _run_claimed(claimed, runner, runtime, keep_inline)
        except Exception as error:
            if is_transient(error):
                raise
            raise StepCrash.of(error, "record", claimed.run_token) from error
    if must_advance:
        return advance_execution(stage.execution_id, keep_inline=keep_inline)
    return dispatch.inline


def _run_claimed(
    claimed: StageExecution, runner: StageType | Task, runtime: StageRuntime, keep_inline: bool
) -> tuple[bool, Dispatch]:
    """Run a claimed step's task outside any transaction, then record its result if the claim still holds.

    The task has talked to the outside world: should the database be away
    when its result is recorded, the result is kept and recording is tried
    again (with a fresh connection) for up to half a lease, rather than
    leaving the step for the sweeper, which would run the task — and its
    call — again a lease later.
    """
    result = _run_task(claimed, runner, runtime)
    deadline = time.monotonic() + settings.ENGINE_STAGE_LEASE_SECONDS / 2
    delay = RECORD_RETRY_FIRST_DELAY
    while True:
        dispatch = Dispatch(keep_one_inline=keep_inline)
        try:
            return _record_claimed(claimed, result, dispatch), dispatch
        except Exception as error:
            # Retried only outside an enclosing transaction, where a new connection may be opened.
            if not is_transient(error) or connection.in_atomic_block or time.monotonic() + delay > deadline:
                raise
            logger.warning("recording the result of stage %s failed, retrying in %.1f s: %s", claimed.id, delay, error)
        _drop_connection()
        time.sleep(delay)
        delay = min(delay * 2, RECORD_RETRY_MAX_DELAY)


def _drop_connection() -> None:
    """Close the (broken) database connection, so the next query opens a new one."""
    try:
        connection.close()
    except Exception as error:
        if not is_transient(error):
            raise


def _record_claimed(claimed: StageExecution, result: TaskResult, dispatch: Dispatch) -> bool:
    with transaction.atomic():
        stage = lock_stage(claimed.id)
        if stage is None or stage.run_token != claimed.run_token or stage.status not in (Status.RUNNING, Status.PAUSED):
            return False  # canceled or restarted meanwhile
        if stage.status == Status.PAUSED or stage.execution.status != Status.RUNNING:
            # Keep what the call learned (so it is not repeated); resume runs the task again.
            with RECORD:
                stage.save(update_fields=_merge_result(stage, result))
            return False
        must_advance = _record(stage, result, dispatch)
        dispatch.send_on_commit()
    return must_advance


def _record(stage: StageExecution, result: TaskResult, dispatch: Dispatch) -> bool:
    """Save a task's result on the locked stage and move on; True when the execution's lock is needed next."""
    with RECORD:
        completed = _apply_result(stage, result, dispatch)
        dispatch.changed(stage.execution, stage)
    if not completed:
        return False
    with ADVANCE:
        return not _continue_chain(stage.execution, stage, dispatch)


def _continue_chain(execution: Execution, stage: StageExecution, dispatch: Dispatch) -> bool:
    """Start the stages that wait on ``stage`` alone; False when the execution's lock is needed instead."""
    if stage.status not in CONTINUABLE or not stage.next_ref_ids:
        return False
    downstream = getattr(stage, "startable_next", None)  # locked with the stage (see lock_stage)
    if downstream is None:
        downstream = list(execution.stages.filter(ref_id__in=stage.next_ref_ids).order_by())
    if len(downstream) != len(set(stage.next_ref_ids)):
        return False  # one was not startable when the stage was locked
    if any(len(other.requisite_ref_ids) > 1 or other.status != Status.NOT_STARTED for other in downstream):
        return False
    # A stage that was skipped or failed at start (or a composite one whose first
    # synthetic stages did) needs the full reconciliation.
    started = [start_stage(execution, other, None, dispatch) for other in downstream]
    return all(started)


# What a composite parent's step runs while its synthetic stages do (nothing: see run_stage).
_BETWEEN_SYNTHETIC_STAGES = object()


class _FailingTask(Task):
    """Stands in for a task that cannot be found, so the stage fails with the reason."""

    def __init__(self, message: str):
        self.message = message

    def run(self, stage, scope, runtime) -> TaskResult:
        return TaskResult.failed(self.message)


def _runner(stage: StageExecution):
    """What runs the stage's step: its type (one task), its running task, or nothing between synthetic stages."""
    stage_type = get_stage_type(stage.type)
    if not stage.tasks or stage_type is None:
        return stage_type
    try:
        runner = composite.task_runner(stage, stage_type)
    except composite.PlanningError as error:
        return _FailingTask(str(error))
    return _BETWEEN_SYNTHETIC_STAGES if runner is None else runner


def _run_task(stage: StageExecution, runner: StageType | Task | None, runtime: StageRuntime) -> TaskResult:
    """The timeout, the execution window, then the running task; a crash in any names its phase."""
    with TIMEOUT:
        timeout = timeout_seconds(stage)
        timed_out = timeout is not None and stage.start_time is not None and running_seconds(stage) >= timeout
    if timed_out and timeout is not None:
        return TaskResult.failed(f"Stage timed out after {int(timeout * 1000)} ms (stageTimeoutMs)")
    with WINDOW:
        window_wait = _execution_window_wait(stage)
    if window_wait is not None:
        return window_wait
    if runner is None:
        return TaskResult.failed(f"unknown stage type {stage.type!r}")
    with RUN:
        try:
            return runner.run(stage, ExpressionScope(stage.execution, stage=stage), runtime)
        except ExpressionError as error:
            return TaskResult.failed(str(error))


def _execution_window_wait(stage: StageExecution) -> TaskResult | None:
    """Keep a stage with ``restrictExecutionDuringTimeWindow`` waiting, visibly, until its window opens.

    The decision is taken once: when the window (plus jitter) has been
    reached, or a person skipped the wait, later polls do not look again.
    """
    window_state = stage.context.get("executionWindow") or {}
    if not is_restricted(stage.context) or window_state.get("passed") or window_state.get("syntheticStage"):
        return None  # (a composite stage's window is a synthetic stage of its own)
    now = timezone.now()
    if stage.context.get("skipExecutionWindow"):
        _window_passed(stage, now, skipped=True)
        return None
    waiting_until = window_state.get("waitingUntil")
    if waiting_until is None:
        config = stage.context.get("restrictedExecutionWindow") or {}
        opening = next_window_start(now, config) or now
        waiting_until = int((opening.timestamp() + jitter_seconds(config)) * 1000)
    remaining = waiting_until / 1000 - now.timestamp()
    if remaining <= 0:
        _window_passed(stage, now)
        return None
    state = {**window_state, "waitingUntil": waiting_until, "waiting": True}
    return TaskResult.running(retry_after=remaining, context={"executionWindow": state})


def _window_passed(stage: StageExecution, now, skipped: bool = False) -> None:
    """Record that the window no longer holds the stage; the task runs in this same step.

    The context is saved with the task's result.
    """
    stage.context["executionWindow"] = {
        **(stage.context.get("executionWindow") or {}),
        "passed": True,
        "waiting": False,
        "openedAt": int(now.timestamp() * 1000),
        "skipped": skipped,
    }


def _merge_result(stage: StageExecution, result: TaskResult) -> list[str]:
    """Merge a task's context and outputs into the stage, made JSON-safe; the fields to save.

    The one place a task's result reaches the stage: a value JSON cannot
    hold raises :class:`~apps.pipelines.jsonsafe.NotJsonSafe` naming its
    key path. A step that records normally ends a run of lost steps.
    """
    stage.context = {**stage.context, **json_safe(result.context, "context")}
    stage.outputs = {**stage.outputs, **json_safe(result.outputs, "outputs")}
    if not stage.step_failures:
        return ["context", "outputs"]
    stage.step_failures = 0
    return ["context", "outputs", "step_failures"]


def _apply_result(stage: StageExecution, result: TaskResult, dispatch: Dispatch) -> bool:
    """Persist a task's result; schedule the next poll or complete the stage. Returns True when completed."""
    fields = [*_merge_result(stage, result), "run_token", "next_run_at", "status", "end_time"]
    if stage.tasks:
        fields.append("tasks")
        if result.status == Status.SUCCEEDED:
            return _next_task(stage, dispatch, fields)
    if result.status == Status.RUNNING:
        delay = result.retry_after
        with TIMEOUT:
            timeout = timeout_seconds(stage)
            until_timeout = None if timeout is None else max(0.0, timeout - running_seconds(stage))
        if until_timeout is not None:
            delay = until_timeout if delay is None else min(delay, until_timeout)
        if delay is None:
            stage.next_run_at = None
        else:
            stage.run_token += 1
            stage.next_run_at = timezone.now() + timedelta(seconds=delay)
            dispatch.run_stage(stage, delay)
        stage.save(update_fields=fields)
        return False
    status = failure_status(stage.context) if result.status == Status.TERMINAL else result.status
    task_index = composite.running_task(stage) if stage.tasks else None
    if task_index is not None:
        composite.set_task(stage, task_index, result.status)
    if result.error:
        stage.context.update(error_context(result.error))
    stage.status = status
    stage.end_time = timezone.now()
    stage.next_run_at = None
    dispatch.save(stage.execution, stage, fields)
    return True


def _next_task(stage: StageExecution, dispatch: Dispatch, fields: list[str]) -> bool:
    """A task of a stage with several succeeded: run the next one (at once, inline when allowed) or finish.

    After its last task the stage stays RUNNING: advancing (which then
    needs the execution's lock; True is returned) starts its after stages,
    or completes it when there are none.
    """
    index = composite.running_task(stage)
    if index is not None:
        composite.set_task(stage, index, Status.SUCCEEDED)
    if index is not None and index + 1 < len(stage.tasks):
        composite.set_task(stage, index + 1, Status.RUNNING)
        stage.run_token += 1
        stage.next_run_at = timezone.now()
        dispatch.run_stage(stage)
        stage.save(update_fields=fields)
        return False
    stage.next_run_at = None
    stage.save(update_fields=fields)
    return True
