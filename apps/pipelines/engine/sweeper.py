"""Recovering lost work: the sweeper, which queues again whatever is overdue in the database and lost in Redis.

It takes the same locks as the steps it stands in for, in the same order
(it starts and advances executions through :mod:`.graph`, and locks a lone
stage row to re-queue its step). The workers run it as the periodic job
``pipelines.sweep-engine`` (``apps.py``, ``periodic.py``): once per
``ENGINE_SWEEP_INTERVAL_SECONDS`` however many workers run.

Lost, or only waiting? A step or a start overdue by more than
``ENGINE_STAGE_LEASE_SECONDS`` may have lost its message, or may be waiting
its turn behind a backlog. Each message has a job id of its own
(``enqueue.run_stage_job_id``, ``enqueue.start_execution_job_id``), so the
sweeper asks RQ, in one round trip for each page of ``HELD_PAGE``
(:func:`~apps.pipelines.enqueue.held_page`), what it holds of each, and
re-queues only the messages RQ no longer holds: no job under the id (Redis
lost it, or the enqueue after the commit never happened), a failed job, one
started more than a lease ago (its worker died mid-job), one scheduled more
than a lease ago and never moved to the queue, or one a worker took off the
queue and never started (seen so twice, ``SECOND_LOOK_SECONDS`` apart: a
worker that is just starting it is seen started the second time). A
backlog of any length re-queues nothing. Pages go oldest first, and the
sweeper stops at a page whose every message waits on the queue: in a
backlog, each sweep asks about one page, not the whole backlog, and a
message lost behind it is found once fewer than a page of older messages
wait before it. Before re-queueing, the stage row
(locked) or the execution is read again: a message that ran meanwhile has
moved it on.

Lost steps are counted. Some crashes cannot be caught — the worker is
SIGKILLed or runs out of memory in the middle of a step, or the failure
cannot even be recorded — and the step would be re-queued every lease, for
ever. Each time the sweeper finds a step lost it adds one to the stage's
``step_failures`` (a step that records normally sets it back to 0); at
``ENGINE_MAX_STEP_ATTEMPTS`` it fails the stage instead of re-queueing it.
A step waiting in the queue is never counted: RQ says it is there. While
Redis does not answer, the sweeper re-queues no step or start (it could not
queue them anyway) and counts nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.pipelines import enqueue
from apps.pipelines.choices import ACTIVE, Status
from apps.pipelines.engine.dispatch import Dispatch
from apps.pipelines.engine.errors import crash_context
from apps.pipelines.engine.recovery import advance_execution, mark_failed, start_waiting
from apps.pipelines.enqueue import Held
from apps.pipelines.models import Execution, StageExecution

logger = logging.getLogger(__name__)

# The most of each kind of lost work one sweep recovers.
SWEEP_BATCH = 500
# Messages asked about per round trip. Each one reads the queue's ids again when a message says it is
# queued (10,000 of them in a backlog of 10,000), so pages this large keep a sweep of a long backlog to a
# few tens of milliseconds of Redis time, each round trip still a few milliseconds.
HELD_PAGE = 2000
# How long after finding a job taken off the queue but not started the sweeper looks at it again.
SECOND_LOOK_SECONDS = 0.5
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def sweep() -> dict[str, int]:
    """Find work whose message went missing and queue it again; returns how much of each kind.

    A message is presumed lost when its work is due for longer than
    ``ENGINE_STAGE_LEASE_SECONDS`` and RQ no longer holds it (see the module
    docstring). Re-queued steps carry a fresh token, so if the old message
    does turn up it does nothing. One item that cannot be recovered (logged)
    does not stop the others.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.ENGINE_STAGE_LEASE_SECONDS)
    try:
        starts = _lost_starts(cutoff)
        overdue = _lost_steps(cutoff)
    except REDIS_DOWN:
        logger.warning("Redis unreachable: the sweeper re-queues no step or start until it answers")
        starts, overdue = [], []
    started = _each(starts, _requeue_start)
    requeued = _each(overdue, lambda lost: _requeue_stage(lost[0], lost[1], cutoff))
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
    counts = {"starts": started, "stages": requeued, "executions": len(stalled), "waiting": len(waiting)}
    if any(counts.values()):
        logger.warning("sweeper re-queued lost engine work: %s", counts)
    return counts


def _lost_starts(cutoff: datetime) -> list[tuple[str, Held]]:
    """Executions not started a lease after they were created whose start message RQ no longer holds."""
    overdue = Execution.objects.filter(status=Status.NOT_STARTED, created_at__lt=cutoff)
    lost = _lost(_pages(overdue.values_list("created_at", "id"), "created_at"),
                 lambda row: enqueue.start_execution_job_id(row[1]), cutoff)
    # Read again after asking RQ: a start that ran meanwhile (its job is gone) has moved its execution on.
    still = {str(pk) for pk in Execution.objects.filter(
        id__in=[row[1] for row, _ in lost], status=Status.NOT_STARTED
    ).values_list("id", flat=True)}
    return [(str(row[1]), held) for row, held in lost if str(row[1]) in still]


def _lost_steps(cutoff: datetime) -> list[tuple[str, int]]:
    """Running stages whose step is due for more than a lease and whose message RQ no longer holds."""
    overdue = StageExecution.objects.filter(
        status=Status.RUNNING, execution__status=Status.RUNNING, next_run_at__lt=cutoff
    )
    lost = _lost(_pages(overdue.values_list("next_run_at", "id", "run_token"), "next_run_at"),
                 lambda row: enqueue.run_stage_job_id(row[1], row[2]), cutoff)
    return [(str(row[1]), row[2]) for row, _ in lost]


def _pages(rows: QuerySet, order: str) -> Iterator[list[tuple]]:
    """``rows`` (``order`` and ``id`` first) in pages of ``HELD_PAGE``, oldest first, from one query.

    Oldest first: in a backlog those jobs are nearest the head of the queue. One query read in chunks (a
    server-side cursor on PostgreSQL), not one per page: the columns are not indexed (the engine would
    maintain the index on every step), so each page's own query sorted the whole backlog again, and a
    backlog of 10,000 made each sweep outlast its interval.
    """
    page: list[tuple] = []
    for row in rows.order_by(order, "id").iterator(chunk_size=HELD_PAGE):
        page.append(row)
        if len(page) == HELD_PAGE:
            yield page
            page = []
    if page:
        yield page


def _lost(pages: Iterator[list[tuple]], job_id: Callable[[tuple], str], cutoff: datetime) -> list[tuple[tuple, Held]]:
    """The rows whose message RQ no longer holds, up to ``SWEEP_BATCH``: one round trip per page of rows."""
    lost: list[tuple[tuple, Held]] = []
    for page in pages:
        ids = {job_id(row): row for row in page}
        answer = enqueue.held_page(list(ids), cutoff)
        if answer.all_on_queue:
            # A backlog: these wait their turn, and what is overdue after them was due later still. A
            # message lost among those is found once fewer than a page of older ones wait before it.
            break
        held = answer.held
        taken = [name for name, state in held.items() if state is Held.TAKEN]
        if taken:
            # A worker that took a job off the queue a moment ago says it started it by now.
            time.sleep(SECOND_LOOK_SECONDS)
            held.update({name: Held.DEAD if state is Held.TAKEN else state
                         for name, state in enqueue.held_messages(taken, cutoff).items()})
        lost += [(ids[name], state) for name, state in held.items() if state is not Held.WAITING]
        if len(lost) >= SWEEP_BATCH:
            return lost[:SWEEP_BATCH]
    return lost


def _requeue_start(lost: tuple[str, Held]) -> bool:
    """Queue a lost start again, first deleting what RQ keeps of a dead one (so its id is free).

    False when it was queued meanwhile (the commit that created the execution queues it only once
    every row is written: an execution of a large batch can be a lease old before then).
    """
    execution_id, held = lost
    if held is not Held.GONE:
        enqueue.discard(enqueue.start_execution_job_id(execution_id))
    return enqueue.enqueue_start_execution(execution_id)


def _each(ids: list, recover) -> int:
    """Recover each item; how many were (``recover`` returns False for one that needed nothing after all)."""
    recovered = 0
    for item in ids:
        try:
            recovered += recover(item) is not False
        except Exception:  # noqa: BLE001  (the next sweep tries it again; the others must not wait for it)
            logger.exception("sweeper could not recover %s", item)
    return recovered


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


def _requeue_stage(stage_id, token: int, cutoff) -> bool:
    """Queue a lost step again with a fresh token, or fail its stage when it was lost too many times in a row.

    False when the stage moved on meanwhile (its message ran between the sweeper's two looks).
    """
    dispatch = Dispatch()
    with transaction.atomic():
        stage = StageExecution.objects.select_for_update().filter(id=stage_id).order_by().first()
        if (
            stage is None or stage.status != Status.RUNNING or stage.run_token != token
            or stage.next_run_at is None or stage.next_run_at >= cutoff
        ):
            return False  # it moved on while we looked
        stage.step_failures += 1
        give_up = stage.step_failures >= settings.ENGINE_MAX_STEP_ATTEMPTS
        if give_up:
            mark_failed(stage, _lost_context(stage.step_failures), dispatch)
        else:
            stage.run_token += 1
            stage.next_run_at = timezone.now()
            stage.save(update_fields=["run_token", "next_run_at", "step_failures"])
            dispatch.run_stage(stage)
        dispatch.send_on_commit()
    if give_up:
        advance_execution(stage.execution_id)
    return True


def _lost_context(times: int) -> dict:
    message = (
        f"the step was lost {times} times in a row (the worker running it died, its message was lost, "
        f"or it ran longer than ENGINE_STAGE_LEASE_SECONDS); giving up after ENGINE_MAX_STEP_ATTEMPTS={times}"
    )
    return crash_context("lost", StepLost(message), message)


class StepLost(Exception):
    """A step the sweeper found lost ENGINE_MAX_STEP_ATTEMPTS times in a row (shown as the exception type)."""
