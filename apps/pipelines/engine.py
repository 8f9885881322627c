"""The pipeline engine: a state machine driven by small, idempotent RQ jobs.

Two kinds of message move an execution forward (see ``jobs.py``):

* ``start_execution(execution_id)`` marks a new execution RUNNING and starts
  its first stages;
* ``run_stage(stage_id, token)`` runs one step of a RUNNING stage's task. When
  the task says "not yet", the same message is scheduled again after the delay
  the task asked for; no worker ever sleeps. When the task is done, the stage
  is completed and the execution is *advanced*.

Advancing (``advance_execution``) is a reconciliation of the whole execution
from the database: it starts every stage whose requisites are all done,
halts the execution when a stage failed it, and completes the execution
when nothing is left to run. Because it derives everything from the rows, it
can run any number of times: a duplicate or late message finds nothing to do.

Transactions and locks. Each step locks what it changes and enqueues the
next messages only after it commits, so a worker never sees work that was
rolled back. Lock order: an Execution row before any of its StageExecution
rows, never the other way round. Running a task locks only its stage row (so
parallel branches really run in parallel), and when the stages after it wait
on it alone, starts them under that same lock: nothing else can start them.
Every other decision — a join, a failure, the end — is made by advancing,
which locks the execution row first and so serializes the decisions of one
execution (a join can never be missed or started twice).

Duplicate messages. Each job carries the stage's ``run_token`` as it was when
the job was scheduled; scheduling a new job bumps the token, so a job with a
stale token does nothing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import timedelta

import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from apps.pipelines.choices import ACTIVE, COMPLETE, CONTINUABLE, Status
from apps.pipelines.events import ExecutionChange, add_publishes, next_sequences, stage_change
from apps.pipelines.expressions import ExpressionError, is_truthy
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.scope import ExpressionScope
from apps.pipelines.stages import TaskResult, get_stage_type
from apps.pipelines.windows import is_restricted, jitter_seconds, next_window_start

logger = logging.getLogger(__name__)

# Keys of a stage definition that describe the graph, not the stage's inputs.
STRUCTURAL_KEYS = frozenset({"refId", "type", "name", "requisiteStageRefIds"})


# --- After-commit work ---------------------------------------------------------------------------


@dataclass
class Dispatch:
    """Jobs, cancel hooks and live events that a transaction produced, sent only once it has committed.

    Every job and event goes to Redis in one pipelined round trip (plus one
    for the events' sequence numbers).
    """

    runs: list[tuple[str, int, float]] = field(default_factory=list)
    canceled: list[StageExecution] = field(default_factory=list)
    changes: dict[str, ExecutionChange] = field(default_factory=dict)
    # Stages of other executions to run now (a parent waiting on a child that ended).
    wake: list[str] = field(default_factory=list)
    # Pipelines whose next waiting (BUFFERED) execution may now start.
    waiting_pipelines: set[str] = field(default_factory=set)
    # When set, one stage due now is kept back from the queue and run next by
    # the current job instead (see run_stage_job); it is left in ``inline``.
    keep_one_inline: bool = False
    inline: tuple[str, int] | None = None

    def run_stage(self, stage: StageExecution, delay: float = 0.0) -> None:
        self.runs.append((str(stage.id), stage.run_token, delay))

    def changed(self, execution: Execution, stage: StageExecution | None = None) -> None:
        key = str(execution.id)
        change = self.changes.get(key)
        if change is None:
            change = self.changes[key] = ExecutionChange(key, execution.application.name, execution.status)
        change.status = execution.status
        if stage is not None:
            change.stages[stage.ref_id] = stage_change(stage)

    def send_on_commit(self) -> None:
        transaction.on_commit(self.send)

    def send(self) -> None:
        """Queue everything in one round trip. If Redis is unreachable the change is committed anyway:
        the sweeper finds the due work in the database later, so the caller is not failed for it."""
        try:
            self._send()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            self.inline = None
            logger.warning("Redis unreachable: %d engine jobs left for the sweeper to re-queue", len(self.runs))

    def _send(self) -> None:
        from apps.pipelines import jobs

        connection = jobs.engine_queue().connection
        changes = list(self.changes.values())
        sequences = next_sequences(connection, list(self.changes)) if changes else {}
        with connection.pipeline(transaction=False) as pipe:
            for stage_id, token, delay in self.runs:
                if self.keep_one_inline and self.inline is None and delay <= 0:
                    self.inline = (stage_id, token)
                    continue
                jobs.enqueue_run_stage(stage_id, token, delay, pipeline=pipe)
            for stage_id in self.wake:
                jobs.enqueue_wake_stage(stage_id, pipeline=pipe)
            for pipeline_id in self.waiting_pipelines:
                jobs.enqueue_start_waiting(pipeline_id, pipeline=pipe)
            for stage in self.canceled:
                jobs.enqueue_cancel_hook(str(stage.id), pipeline=pipe)
            add_publishes(pipe, changes, sequences)
            pipe.execute()


def run_cancel_hook(stage_id) -> None:
    """Undo or stop a canceled stage's outside work (its type's ``cancel``), in a job of its own.

    A job, not the canceling request: a hook may call out (a webhook's cancel
    endpoint, a child execution) and a person canceling should not wait for it.
    """
    stage = StageExecution.objects.select_related("execution__application").filter(id=stage_id).first()
    stage_type = get_stage_type(stage.type) if stage is not None else None
    if stage_type is None:
        return
    try:
        stage_type.cancel(stage)
    except Exception:  # noqa: BLE001  (a failing cancel hook must not undo the cancel)
        logger.exception("cancel hook of stage %s (%s) failed", stage.id, stage.type)


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


def _timeout_seconds(stage: StageExecution) -> float | None:
    value = stage.context.get("stageTimeoutMs")
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        return None
    return value / 1000


def _error_context(message: str) -> dict:
    """Spinnaker's shape for a stage error, which its UI and scripts read."""
    return {"exception": {"details": {"error": message, "errors": [message]}}}


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


def start_execution(execution_id) -> None:
    """Start a NOT_STARTED execution, or leave it BUFFERED behind a running one when its pipeline limits concurrency."""
    dispatch = Dispatch()
    pipeline_id = Execution.objects.filter(id=execution_id, limit_concurrent=True).values_list("pipeline_id", flat=True)
    pipeline_id = pipeline_id.first()
    with transaction.atomic():
        if pipeline_id is not None:
            _lock_pipeline(pipeline_id)  # one start decision at a time per pipeline
        execution = lock_execution(execution_id)
        if execution is None or execution.status != Status.NOT_STARTED:
            return
        if pipeline_id is not None and _must_wait(execution):
            _buffer(execution, dispatch)
        else:
            _begin(execution, dispatch)
        dispatch.send_on_commit()


def start_waiting(pipeline_id) -> None:
    """Start the next BUFFERED execution of a pipeline once none of its executions is running."""
    dispatch = Dispatch()
    with transaction.atomic():
        _lock_pipeline(pipeline_id)
        if Execution.objects.filter(pipeline_id=pipeline_id, status__in=ACTIVE).exists():
            return
        waiting = Execution.objects.filter(pipeline_id=pipeline_id, status=Status.BUFFERED).order_by("created_at")
        next_id = waiting.values_list("id", flat=True).first()
        if next_id is None:
            return
        _begin(lock_execution(next_id), dispatch)
        dispatch.send_on_commit()


def _lock_pipeline(pipeline_id) -> None:
    from apps.pipelines.models import Pipeline

    list(Pipeline.objects.select_for_update().filter(id=pipeline_id).values_list("id", flat=True))


def _must_wait(execution: Execution) -> bool:
    """Whether another execution of the pipeline runs, or (keeping all waiting) an older one waits."""
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
        _complete(older, Status.CANCELED, dispatch)


def _begin(execution: Execution, dispatch: Dispatch) -> None:
    execution.status = Status.RUNNING
    execution.start_time = timezone.now()
    execution.save(update_fields=["status", "start_time"])
    _advance(execution, dispatch)


# --- Running a stage's task ---------------------------------------------------------------------


def run_stage_job(stage_id, token: int) -> None:
    """The ``run_stage`` message: run one step of a stage, then keep going in the same job while it pays.

    When a step starts the next stage, that stage's first step runs here
    rather than in a new job, for up to ``ENGINE_INLINE_SECONDS``: a chain
    of stages that finish at once (variables, checks, quick calls) then
    costs one job, not one per stage. Other stages a step starts are
    queued, so parallel branches still run on other workers. The stage run
    inline is marked due in the database first, so a crash loses nothing the
    sweeper cannot find.
    """
    from apps.pipelines import jobs

    budget = settings.ENGINE_INLINE_SECONDS
    deadline = time.monotonic() + budget
    # Inline runs only outside an enclosing transaction, where a step's commit is final.
    keep_inline = budget > 0 and connection.get_autocommit()
    step: tuple[str, int] | None = (stage_id, token)
    while step is not None:
        step = run_stage(*step, keep_inline=keep_inline)
        if step is not None and time.monotonic() >= deadline:
            jobs.enqueue_run_stage(*step)
            return


def run_stage(stage_id, token: int, keep_inline: bool = False) -> tuple[str, int] | None:
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
    claimed = None
    must_advance = False
    with transaction.atomic():
        stage = _lock_stage(stage_id)
        if stage is None or stage.status != Status.RUNNING or stage.run_token != token:
            return None
        if stage.execution.status != Status.RUNNING:
            _hold_stage(stage.execution, stage, dispatch)
            return None
        stage_type = get_stage_type(stage.type)
        if stage_type is not None and stage_type.performs_io:
            # Claim the step and let go of the lock: the task talks to the
            # outside world with no transaction open. A duplicate message now
            # carries a stale token; the sweeper waits a lease before retrying.
            stage.run_token += 1
            stage.next_run_at = timezone.now()
            stage.save(update_fields=["run_token", "next_run_at"])
            claimed = stage
        else:
            must_advance = _record(stage, _run_task(stage), dispatch)
            dispatch.send_on_commit()
    if claimed is not None:
        must_advance = _run_claimed(claimed, dispatch)
    if must_advance:
        return advance_execution(stage.execution_id, keep_inline=keep_inline)
    return dispatch.inline


def _lock_stage(stage_id) -> StageExecution | None:
    return (
        StageExecution.objects.select_for_update(of=("self",))
        .select_related("execution__application")
        .defer("execution__definition", "execution__trigger", "execution__parameters")
        .filter(id=stage_id)
        .order_by()
        .first()
    )


def _run_claimed(claimed: StageExecution, dispatch: Dispatch) -> bool:
    """Run a claimed step's task outside any transaction, then record its result if the claim still holds."""
    result = _run_task(claimed)
    with transaction.atomic():
        stage = _lock_stage(claimed.id)
        if stage is None or stage.run_token != claimed.run_token or stage.status not in (Status.RUNNING, Status.PAUSED):
            return False  # canceled or restarted meanwhile
        if stage.status == Status.PAUSED or stage.execution.status != Status.RUNNING:
            # Keep what the call learned (so it is not repeated); resume runs the task again.
            stage.context = {**stage.context, **result.context}
            stage.outputs = {**stage.outputs, **result.outputs}
            stage.save(update_fields=["context", "outputs"])
            return False
        must_advance = _record(stage, result, dispatch)
        dispatch.send_on_commit()
    return must_advance


def _record(stage: StageExecution, result: TaskResult, dispatch: Dispatch) -> bool:
    """Save a task's result on the locked stage and move on; True when the execution's lock is needed next."""
    completed = _apply_result(stage, result, dispatch)
    dispatch.changed(stage.execution, stage)
    return completed and not _continue_chain(stage.execution, stage, dispatch)


def _hold_stage(execution: Execution, stage: StageExecution, dispatch: Dispatch) -> None:
    """A step for a stage whose execution is not running: it waits (paused) or will never run (ended)."""
    if execution.status in COMPLETE:
        cancel_stage(stage, dispatch)
    elif execution.status == Status.PAUSED:
        # Started as the pause committed; resume runs it again.
        stage.status = Status.PAUSED
        stage.save(update_fields=["status"])
    else:
        return
    dispatch.changed(execution, stage)
    dispatch.send_on_commit()


def _continue_chain(execution: Execution, stage: StageExecution, dispatch: Dispatch) -> bool:
    """Start the stages that wait on ``stage`` alone; False when the execution's lock is needed instead."""
    if stage.status not in CONTINUABLE or not stage.next_ref_ids:
        return False
    downstream = list(execution.stages.filter(ref_id__in=stage.next_ref_ids).order_by())
    if any(len(other.requisite_ref_ids) > 1 or other.status != Status.NOT_STARTED for other in downstream):
        return False
    for other in downstream:
        _start_stage(execution, other, None, dispatch)
    # A stage that was skipped or failed at start needs the full reconciliation.
    return all(other.status == Status.RUNNING for other in downstream)


def _running_seconds(stage: StageExecution) -> float:
    """How long the stage has been running, not counting time its execution spent paused."""
    elapsed = (timezone.now() - stage.start_time).total_seconds()
    return elapsed - stage.execution.paused_seconds_since(stage.start_time)


def _run_task(stage: StageExecution) -> TaskResult:
    timeout = _timeout_seconds(stage)
    if timeout is not None and stage.start_time is not None and _running_seconds(stage) >= timeout:
        return TaskResult.failed(f"Stage timed out after {int(timeout * 1000)} ms (stageTimeoutMs)")
    window_wait = _execution_window_wait(stage)
    if window_wait is not None:
        return window_wait
    stage_type = get_stage_type(stage.type)
    if stage_type is None:
        return TaskResult.failed(f"unknown stage type {stage.type!r}")
    scope = ExpressionScope(stage.execution, stage=stage)
    try:
        return stage_type.run(stage, scope)
    except ExpressionError as error:
        return TaskResult.failed(str(error))
    except Exception as error:  # noqa: BLE001  (a bug in one stage type fails that stage, not the worker)
        logger.exception("stage %s (%s) raised", stage.id, stage.type)
        return TaskResult.failed(f"{type(error).__name__}: {error}")


def _execution_window_wait(stage: StageExecution) -> TaskResult | None:
    """Keep a stage with ``restrictExecutionDuringTimeWindow`` waiting, visibly, until its window opens.

    The decision is taken once: when the window (plus jitter) has been
    reached, or a person skipped the wait, later polls do not look again.
    """
    window_state = stage.context.get("executionWindow") or {}
    if not is_restricted(stage.context) or window_state.get("passed"):
        return None
    now = timezone.now()
    if stage.context.get("skipExecutionWindow"):
        return _window_passed(stage, now, skipped=True)
    waiting_until = window_state.get("waitingUntil")
    if waiting_until is None:
        config = stage.context.get("restrictedExecutionWindow") or {}
        opening = next_window_start(now, config) or now
        waiting_until = int((opening.timestamp() + jitter_seconds(config)) * 1000)
    remaining = waiting_until / 1000 - now.timestamp()
    if remaining <= 0:
        return _window_passed(stage, now)
    state = {**window_state, "waitingUntil": waiting_until, "waiting": True}
    return TaskResult.running(retry_after=remaining, context={"executionWindow": state})


def _window_passed(stage: StageExecution, now, skipped: bool = False) -> None:
    """Record that the window no longer holds the stage; the task runs in this same step.

    Returns None (no waiting result); the context is saved with the task's result.
    """
    stage.context["executionWindow"] = {
        **(stage.context.get("executionWindow") or {}),
        "passed": True,
        "waiting": False,
        "openedAt": int(now.timestamp() * 1000),
        "skipped": skipped,
    }


def _apply_result(stage: StageExecution, result: TaskResult, dispatch: Dispatch) -> bool:
    """Persist a task's result; schedule the next poll or complete the stage. Returns True when completed."""
    stage.context = {**stage.context, **result.context}
    stage.outputs = {**stage.outputs, **result.outputs}
    fields = ["context", "outputs", "run_token", "next_run_at", "status", "end_time"]
    if result.status == Status.RUNNING:
        delay = result.retry_after
        timeout = _timeout_seconds(stage)
        if timeout is not None:
            until_timeout = max(0.0, timeout - _running_seconds(stage))
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
    if result.error:
        stage.context.update(_error_context(result.error))
    stage.status = status
    stage.end_time = timezone.now()
    stage.next_run_at = None
    stage.save(update_fields=fields)
    return True


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
        _advance(execution, dispatch)
        dispatch.send_on_commit()
    return dispatch.inline


def _advance(execution: Execution, dispatch: Dispatch) -> None:
    """The reconciliation step; the caller holds the execution's row lock."""
    stages = list(execution.stages.all())
    by_ref = {stage.ref_id: stage for stage in stages}
    progressed = True
    while progressed:
        progressed = False
        if any(stage.status in (Status.TERMINAL, Status.CANCELED) for stage in stages):
            _halt(execution, stages, dispatch)
            return
        for stage in stages:
            if stage.status == Status.NOT_STARTED and _requisites_done(stage, by_ref):
                _start_stage(execution, stage, stages, dispatch)
                progressed = True
    if not any(stage.status in ACTIVE for stage in stages):
        _complete(execution, _final_status(stages), dispatch)
    dispatch.changed(execution)


def _requisites_done(stage: StageExecution, by_ref: dict[str, StageExecution]) -> bool:
    return all(by_ref[ref].status in CONTINUABLE for ref in stage.requisite_ref_ids if ref in by_ref)


def _final_status(stages: list[StageExecution]) -> Status:
    """The status of an execution none of whose stages is running (Spinnaker's rules)."""
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
    _complete(execution, final_status, dispatch)


def cancel_running_stages(execution: Execution, dispatch: Dispatch) -> None:
    """Cancel every active stage of a locked execution."""
    while True:
        # Locking waits for any task step in progress; that step may start the
        # next stage of its chain as it commits, so look again until none is left.
        running = list(
            StageExecution.objects.select_for_update().filter(execution=execution, status__in=ACTIVE).order_by()
        )
        if not running:
            return
        for stage in running:
            cancel_stage(stage, dispatch)
            dispatch.changed(execution, stage)


def cancel_stage(stage: StageExecution, dispatch: Dispatch) -> None:
    """Mark a running stage CANCELED (the caller holds its lock); its cancel hook runs after commit."""
    stage.status = Status.CANCELED
    stage.end_time = timezone.now()
    stage.next_run_at = None
    stage.run_token += 1
    stage.save(update_fields=["status", "end_time", "next_run_at", "run_token"])
    dispatch.canceled.append(stage)


def _complete(execution: Execution, status: Status, dispatch: Dispatch) -> None:
    """End the execution; after commit, wake its parent's stage and let a waiting execution start."""
    execution.status = status
    execution.end_time = timezone.now()
    execution.save(update_fields=["status", "end_time"])
    dispatch.changed(execution)
    if execution.parent_stage_id is not None:
        dispatch.wake.append(str(execution.parent_stage_id))
    if execution.limit_concurrent and execution.pipeline_id is not None:
        dispatch.waiting_pipelines.add(str(execution.pipeline_id))


def _start_stage(
    execution: Execution, stage: StageExecution, stages: list[StageExecution] | None, dispatch: Dispatch
) -> None:
    """Move a stage out of NOT_STARTED: SKIPPED, failed on a bad expression, or RUNNING with a job queued."""
    now = timezone.now()
    stage.start_time = now
    stage_type = get_stage_type(stage.type)
    scope = ExpressionScope(execution, stages, stage)
    lazy = stage_type.lazy_fields if stage_type else ()
    raw = {key: value for key, value in stage.definition.items() if key not in STRUCTURAL_KEYS}
    try:
        enabled = raw.get("stageEnabled")
        if isinstance(enabled, dict) and "expression" in enabled:
            expression = enabled["expression"]
            if isinstance(expression, str) and "${" not in expression:
                expression = "${" + expression + "}"
            if not is_truthy(scope.evaluate(expression)):
                _finish_without_running(stage, Status.SKIPPED, raw, now)
                dispatch.changed(execution, stage)
                return
        evaluated = {key: value for key, value in raw.items() if key in lazy}
        evaluated.update(scope.evaluate({key: value for key, value in raw.items() if key not in lazy}))
    except ExpressionError as error:
        _finish_without_running(stage, failure_status(raw), {**raw, **_error_context(str(error))}, now)
        dispatch.changed(execution, stage)
        return
    # A restarted stage keeps its restartDetails.
    stage.context = {**stage.context, **evaluated}
    stage.status = Status.RUNNING
    stage.run_token += 1
    stage.next_run_at = now
    stage.save(update_fields=["context", "status", "start_time", "run_token", "next_run_at"])
    dispatch.run_stage(stage)
    dispatch.changed(execution, stage)


def _finish_without_running(stage: StageExecution, status: Status, context: dict, now) -> None:
    stage.context = context
    stage.status = status
    stage.end_time = now
    stage.save(update_fields=["context", "status", "start_time", "end_time"])


# --- Acting on an execution ---------------------------------------------------------------------
# These run in the caller's transaction, on an execution it has locked with lock_execution().


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
    _complete(execution, Status.CANCELED, dispatch)


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
    _advance(execution, dispatch)


def _close_pause(execution: Execution) -> None:
    if execution.pauses and execution.pauses[-1][1] is None:
        execution.pauses = [*execution.pauses[:-1], [execution.pauses[-1][0], int(time.time() * 1000)]]
        execution.save(update_fields=["pauses"])


def restart_stage(execution: Execution, ref_id: str, dispatch: Dispatch, *, user: str) -> list[StageExecution]:
    """Run a finished stage and everything downstream of it again; upstream results are kept.

    Stages canceled when the execution halted run again too. Returns the
    stages that were reset. The caller checked that the stage may restart.
    """
    stages = list(StageExecution.objects.select_for_update().filter(execution=execution).order_by("position"))
    by_ref = {stage.ref_id: stage for stage in stages}
    reset = downstream_closure([ref_id, *(s.ref_id for s in stages if s.status == Status.CANCELED)], stages)
    now_ms = int(time.time() * 1000)
    for ref in reset:
        stage = by_ref[ref]
        previous_error = (stage.context.get("exception") or {}).get("details")
        stage.context = {}
        if ref == ref_id:
            stage.context["restartDetails"] = {
                "restartedBy": user, "restartTime": now_ms, "previousException": previous_error,
            }
        stage.status = Status.NOT_STARTED
        stage.outputs = {}
        stage.start_time = stage.end_time = stage.next_run_at = None
        stage.run_token += 1
        stage.save(update_fields=["context", "status", "outputs", "start_time", "end_time", "next_run_at", "run_token"])
        dispatch.changed(execution, stage)
    execution.status = Status.RUNNING
    execution.end_time = None
    execution.canceled_by = execution.cancel_reason = ""
    execution.save(update_fields=["status", "end_time", "canceled_by", "cancel_reason"])
    _advance(execution, dispatch)
    return [by_ref[ref] for ref in reset]


def downstream_closure(roots: list[str], stages: list[StageExecution]) -> list[str]:
    """The given stages and every stage downstream of any of them, in pipeline order."""
    children: dict[str, list[str]] = {}
    for stage in stages:
        for requisite in stage.requisite_ref_ids:
            children.setdefault(requisite, []).append(stage.ref_id)
    found, todo = set(), list(roots)
    while todo:
        ref = todo.pop()
        if ref not in found:
            found.add(ref)
            todo.extend(children.get(ref, []))
    return [stage.ref_id for stage in stages if stage.ref_id in found]


# --- Recovering lost work ------------------------------------------------------------------------

SWEEP_BATCH = 500


def sweep() -> dict[str, int]:
    """Find work whose message went missing and queue it again; returns how much of each kind.

    A message is presumed lost when its work is due for longer than
    ``ENGINE_STAGE_LEASE_SECONDS``: a worker died mid-step, Redis lost its
    queue, or a commit's follow-up never reached Redis. Re-queued steps carry
    a fresh token, so if the old message does turn up it does nothing.
    """
    from apps.pipelines import jobs

    cutoff = timezone.now() - timedelta(seconds=settings.ENGINE_STAGE_LEASE_SECONDS)
    starts = list(
        Execution.objects.filter(status=Status.NOT_STARTED, created_at__lt=cutoff).values_list("id", flat=True)[
            :SWEEP_BATCH
        ]
    )
    for execution_id in starts:
        jobs.enqueue_start_execution(execution_id)
    overdue = list(
        StageExecution.objects.filter(
            status=Status.RUNNING, execution__status=Status.RUNNING, next_run_at__lt=cutoff
        ).values_list("id", flat=True)[:SWEEP_BATCH]
    )
    for stage_id in overdue:
        _requeue_stage(stage_id, cutoff)
    # Executions whose last stage finished but whose advance never ran.
    stalled = list(
        Execution.objects.filter(status=Status.RUNNING)
        .exclude(stages__status__in=ACTIVE)
        # Not one whose last stage just ended: its own advance is on the way.
        .exclude(stages__end_time__gte=cutoff)
        .values_list("id", flat=True)[:SWEEP_BATCH]
    )
    for execution_id in stalled:
        advance_execution(execution_id)
    # Pipelines with executions waiting their turn and none running (the start-next message was lost).
    waiting = list(
        Execution.objects.filter(status=Status.BUFFERED, created_at__lt=cutoff)
        .exclude(pipeline__executions__status__in=ACTIVE)
        .values_list("pipeline_id", flat=True)
        .distinct()[:SWEEP_BATCH]
    )
    for pipeline_id in waiting:
        start_waiting(pipeline_id)
    counts = {"starts": len(starts), "stages": len(overdue), "executions": len(stalled), "waiting": len(waiting)}
    if any(counts.values()):
        logger.warning("sweeper re-queued lost engine work: %s", counts)
    return counts


def _requeue_stage(stage_id, cutoff) -> None:
    with transaction.atomic():
        stage = StageExecution.objects.select_for_update().filter(id=stage_id).order_by().first()
        if stage is None or stage.status != Status.RUNNING or stage.next_run_at is None or stage.next_run_at >= cutoff:
            return  # it moved on while we looked
        stage.run_token += 1
        stage.next_run_at = timezone.now()
        stage.save(update_fields=["run_token", "next_run_at"])
        dispatch = Dispatch()
        dispatch.run_stage(stage)
        dispatch.send_on_commit()
