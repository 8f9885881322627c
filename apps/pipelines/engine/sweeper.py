"""Recovering lost work: the sweeper, which queues again whatever is overdue in the database.

It takes the same locks as the steps it stands in for, in the same order
(it starts and advances executions through :mod:`.graph`, and locks a lone
stage row to re-queue its step). The workers run it as the periodic job
``pipelines.sweep-engine`` (``apps.py``, ``periodic.py``): once per
``ENGINE_SWEEP_INTERVAL_SECONDS`` however many workers run.

Lost steps are counted. Some crashes cannot be caught — the worker is
SIGKILLed or runs out of memory in the middle of a step, or the failure
cannot even be recorded — and the step would be re-queued every lease, for
ever. Each time the sweeper finds a step lost it adds one to the stage's
``step_failures`` (a step that records normally sets it back to 0); at
``ENGINE_MAX_STEP_ATTEMPTS`` it fails the stage instead of re-queueing it.
A step is only counted when the queue is not backlogged (its oldest job
has waited less than a lease) and Redis answers: otherwise the step may
simply be waiting its turn, or could not have been queued at all, which is
no fault of the step.
"""

from __future__ import annotations

import logging
from datetime import UTC, timedelta

import redis
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rq.utils import utcparse

from apps.pipelines import enqueue
from apps.pipelines.choices import ACTIVE, Status
from apps.pipelines.engine.dispatch import Dispatch
from apps.pipelines.engine.errors import crash_context
from apps.pipelines.engine.recovery import advance_execution, mark_failed, start_waiting
from apps.pipelines.models import Execution, StageExecution

logger = logging.getLogger(__name__)

SWEEP_BATCH = 500


def sweep() -> dict[str, int]:
    """Find work whose message went missing and queue it again; returns how much of each kind.

    A message is presumed lost when its work is due for longer than
    ``ENGINE_STAGE_LEASE_SECONDS``: a worker died mid-step, Redis lost its
    queue, or a commit's follow-up never reached Redis. Re-queued steps carry
    a fresh token, so if the old message does turn up it does nothing. One
    item that cannot be recovered (logged) does not stop the others.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.ENGINE_STAGE_LEASE_SECONDS)
    starts = list(
        Execution.objects.filter(status=Status.NOT_STARTED, created_at__lt=cutoff).values_list("id", flat=True)[
            :SWEEP_BATCH
        ]
    )
    _each(starts, enqueue.enqueue_start_execution)
    overdue = list(
        StageExecution.objects.filter(
            status=Status.RUNNING, execution__status=Status.RUNNING, next_run_at__lt=cutoff
        ).values_list("id", flat=True)[:SWEEP_BATCH]
    )
    count_lost = bool(overdue) and not _queue_backlogged()
    _each(overdue, lambda stage_id: _requeue_stage(stage_id, cutoff, count_lost))
    # Executions whose last stage finished but whose advance never ran.
    stalled = list(
        Execution.objects.filter(status=Status.RUNNING)
        .exclude(stages__status__in=ACTIVE)
        # Not one whose last stage just ended: its own advance is on the way.
        .exclude(stages__end_time__gte=cutoff)
        .values_list("id", flat=True)[:SWEEP_BATCH]
    )
    # Composite parents waiting on synthetic stages that all ended, whose advance never ran.
    stalled += _stalled_parents(cutoff)
    _each(stalled, advance_execution)
    # Pipelines with executions waiting their turn and none running (the start-next message was lost).
    waiting = list(
        Execution.objects.filter(status=Status.BUFFERED, created_at__lt=cutoff)
        .exclude(pipeline__executions__status__in=ACTIVE)
        .values_list("pipeline_id", flat=True)
        .distinct()[:SWEEP_BATCH]
    )
    _each(waiting, start_waiting)
    counts = {"starts": len(starts), "stages": len(overdue), "executions": len(stalled), "waiting": len(waiting)}
    if any(counts.values()):
        logger.warning("sweeper re-queued lost engine work: %s", counts)
    return counts


def _each(ids: list, recover) -> None:
    for item in ids:
        try:
            recover(item)
        except Exception:  # noqa: BLE001  (the next sweep tries it again; the others must not wait for it)
            logger.exception("sweeper could not recover %s", item)


def _stalled_parents(cutoff) -> list:
    """Executions with a composite parent that has no step due and no synthetic stage active or just ended."""
    parents = (
        StageExecution.objects.filter(
            status=Status.RUNNING, execution__status=Status.RUNNING, next_run_at__isnull=True,
            synthetic_stages__isnull=False,
        )
        .exclude(synthetic_stages__status__in=ACTIVE)
        .exclude(synthetic_stages__end_time__gte=cutoff)
    )
    return list(parents.values_list("execution_id", flat=True).distinct()[:SWEEP_BATCH])


def _queue_backlogged() -> bool:
    """Whether the queue's oldest job has waited a lease or more (or Redis cannot tell)."""
    queue = enqueue.engine_queue()
    try:
        head = queue.get_job_ids(0, 1)
        if not head:
            return False
        enqueued_at = queue.connection.hget(queue.job_class.key_for(head[0]), "enqueued_at")
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        return True
    if not enqueued_at:
        return False
    text = enqueued_at.decode() if isinstance(enqueued_at, bytes) else enqueued_at
    waited = timezone.now() - utcparse(text).replace(tzinfo=UTC)
    return waited.total_seconds() >= settings.ENGINE_STAGE_LEASE_SECONDS


def _requeue_stage(stage_id, cutoff, count_lost: bool) -> None:
    """Queue a lost step again with a fresh token, or fail its stage when it was lost too many times in a row."""
    dispatch = Dispatch()
    with transaction.atomic():
        stage = StageExecution.objects.select_for_update().filter(id=stage_id).order_by().first()
        if stage is None or stage.status != Status.RUNNING or stage.next_run_at is None or stage.next_run_at >= cutoff:
            return  # it moved on while we looked
        if count_lost:
            stage.step_failures += 1
        give_up = stage.step_failures >= settings.ENGINE_MAX_STEP_ATTEMPTS and count_lost
        if give_up:
            mark_failed(stage, _lost_context(stage.step_failures), dispatch)
        else:
            stage.run_token += 1
            stage.next_run_at = timezone.now()
            stage.save(update_fields=["run_token", "next_run_at", *(["step_failures"] if count_lost else [])])
            dispatch.run_stage(stage)
        dispatch.send_on_commit()
    if give_up:
        advance_execution(stage.execution_id)


def _lost_context(times: int) -> dict:
    message = (
        f"the step was lost {times} times in a row (the worker running it died, its message was lost, "
        f"or it ran longer than ENGINE_STAGE_LEASE_SECONDS); giving up after ENGINE_MAX_STEP_ATTEMPTS={times}"
    )
    return crash_context("lost", StepLost(message), message)


class StepLost(Exception):
    """A step the sweeper found lost ENGINE_MAX_STEP_ATTEMPTS times in a row (shown as the exception type)."""
