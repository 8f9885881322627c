"""Finishing the start of a stage whose inputs hold expressions, evaluated with no row lock held.

An expression may take up to its CPU budget (``EXPRESSION_TIME_LIMIT_MS``)
to evaluate. Evaluated as its stage starts — under the execution's lock,
or the lock of the stage before it in a chain — it would hold up a cancel,
a pause and the sweeper, which wait for those locks. So a stage whose
inputs hold expressions (:func:`~apps.pipelines.engine.graph.evaluates_at_start`)
starts in two steps:

1. under the caller's locks it becomes RUNNING with ``awaiting_evaluation``
   set and a fresh run token (the claim), and a step is queued (or run
   inline next); nothing is evaluated;
2. that step (:func:`start_claimed`) evaluates the context with no
   transaction open, then locks the stage and, if the token still holds,
   finishes starting it with the evaluated context
   (:func:`~apps.pipelines.engine.graph.finish_start`): RUNNING with its
   first task queued, SKIPPED for a false ``stageEnabled``, or failed.

The claim makes every race end the same way: a cancel, a restart or a
failure meanwhile changed the token, and the evaluation is dropped; a pause
left the stage PAUSED, and resuming queues the step again, which evaluates
afresh. Duplicate messages evaluate in vain: the first to finish clears
``awaiting_evaluation`` and the others find it cleared. A worker killed
mid-evaluation leaves the stage RUNNING and due, so the sweeper queues the
step again, counting it as lost (:mod:`.sweeper`). Stages without
expressions start in one step, as before.
"""

from __future__ import annotations

from django.db import transaction

from apps.pipelines.choices import Status
from apps.pipelines.engine import graph
from apps.pipelines.engine.dispatch import Dispatch
from apps.pipelines.engine.errors import START, StepCrash, is_transient
from apps.pipelines.engine.locking import hold_stage, lock_stage
from apps.pipelines.engine.recovery import advance_execution
from apps.pipelines.models import Execution, StageExecution


def start_claimed(claimed: StageExecution, keep_inline: bool) -> tuple[str, int] | None:
    """Evaluate the claimed stage's context unlocked, then finish its start if the claim still holds.

    With ``keep_inline``, returns one started stage for the caller to run
    next (the stage's first task, usually) instead of queueing it. A crash
    (not transient) is raised as a :class:`StepCrash` of the phase
    ``start`` holding the claim's token, so the stage fails with it.
    """
    dispatch = Dispatch(keep_one_inline=keep_inline)
    try:
        # The whole execution row: the expressions read its trigger and parameters.
        execution = Execution.objects.select_related("application").filter(id=claimed.execution_id).first()
        if execution is None:
            return None
        with START:
            evaluated, failure = graph.evaluate_start(execution, claimed, None)
        must_advance = _finish(claimed, evaluated, failure, dispatch)
    except Exception as error:
        if is_transient(error):
            raise
        raise StepCrash.of(error, "start", claimed.run_token) from error
    if must_advance:
        return advance_execution(claimed.execution_id, keep_inline=keep_inline)
    return dispatch.inline


def _finish(claimed: StageExecution, evaluated: dict | None, failure: dict | None, dispatch: Dispatch) -> bool:
    """Apply the evaluation to the stage, locked again; True when the stage ended (the execution must advance)."""
    with transaction.atomic():
        stage = lock_stage(claimed.id)
        if stage is None or stage.run_token != claimed.run_token or not stage.awaiting_evaluation:
            return False  # canceled, restarted or failed meanwhile, or a duplicate finished first
        if stage.status != Status.RUNNING:
            return False  # paused: resuming evaluates again
        if stage.execution.status != Status.RUNNING:
            hold_stage(stage.execution, stage, dispatch)
            return False
        with START:
            started = graph.finish_start(stage.execution, stage, None, dispatch, evaluated, failure)
        dispatch.send_on_commit()
    return not started
