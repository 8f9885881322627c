"""Recovering lost work: the sweeper, which queues again whatever is overdue in the database.

It takes the same locks as the steps it stands in for, in the same order
(it starts and advances executions through :mod:`.graph`, and locks a lone
stage row to re-queue its step). The workers run it as the periodic job
``pipelines.sweep-engine`` (``apps.py``, ``periodic.py``): once per
``ENGINE_SWEEP_INTERVAL_SECONDS`` however many workers run.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.pipelines import enqueue
from apps.pipelines.choices import ACTIVE, Status
from apps.pipelines.engine.dispatch import Dispatch
from apps.pipelines.engine.graph import advance_execution, start_waiting
from apps.pipelines.models import Execution, StageExecution

logger = logging.getLogger(__name__)

SWEEP_BATCH = 500


def sweep() -> dict[str, int]:
    """Find work whose message went missing and queue it again; returns how much of each kind.

    A message is presumed lost when its work is due for longer than
    ``ENGINE_STAGE_LEASE_SECONDS``: a worker died mid-step, Redis lost its
    queue, or a commit's follow-up never reached Redis. Re-queued steps carry
    a fresh token, so if the old message does turn up it does nothing.
    """
    cutoff = timezone.now() - timedelta(seconds=settings.ENGINE_STAGE_LEASE_SECONDS)
    starts = list(
        Execution.objects.filter(status=Status.NOT_STARTED, created_at__lt=cutoff).values_list("id", flat=True)[
            :SWEEP_BATCH
        ]
    )
    for execution_id in starts:
        enqueue.enqueue_start_execution(execution_id)
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
