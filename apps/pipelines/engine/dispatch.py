"""After-commit work: the jobs, cancel hooks and live events a transaction of the engine produced.

Each step of the engine locks what it changes and sends the next messages
only after it commits, so a worker never sees work that was rolled back:
a step collects them in a :class:`Dispatch` and calls ``send_on_commit``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import redis
from django.db import transaction

from apps.pipelines import enqueue
from apps.pipelines.eventlog import EventBuffer
from apps.pipelines.events import ExecutionChange, queue_publishes, stage_change
from apps.pipelines.models import Execution, StageExecution
from cdplatform import lua

logger = logging.getLogger(__name__)


@dataclass
class Dispatch:
    """Jobs, cancel hooks and live events that a transaction produced, sent only once it has committed.

    Every job and event, with the events' sequence numbers, goes to Redis
    in one pipelined round trip. The same changes go to the durable
    event log (``eventlog.py``): with the UPDATE of a row saved through
    :meth:`save`, or with one INSERT just before the commit.
    """

    runs: list[tuple[str, int, float]] = field(default_factory=list)
    canceled: list[StageExecution] = field(default_factory=list)
    changes: dict[str, ExecutionChange] = field(default_factory=dict)
    # Stages of other executions to run now (a parent waiting on a child that ended).
    wake: list[str] = field(default_factory=list)
    # Pipelines whose next waiting (BUFFERED) execution may now start.
    waiting_pipelines: set[str] = field(default_factory=set)
    # When set, one stage due now is kept back from the queue and run next by
    # the current job instead (see steps.run_stage_job); it is left in ``inline``.
    keep_one_inline: bool = False
    inline: tuple[str, int] | None = None
    # The durable log's events of this transaction, written by send_on_commit().
    events: EventBuffer = field(default_factory=EventBuffer)

    def run_stage(self, stage: StageExecution, delay: float = 0.0) -> None:
        """Queue one step of the stage (with the token it has now), after ``delay`` seconds."""
        self.runs.append((str(stage.id), stage.run_token, delay))

    def changed(self, execution: Execution, stage: StageExecution | None = None) -> None:
        """Publish the execution's (and the stage's) new state as a live event, and log its status moves."""
        key = str(execution.id)
        change = self.changes.get(key)
        if change is None:
            change = self.changes[key] = ExecutionChange(key, execution.application.name, execution.status)
        change.status = execution.status
        if stage is not None:
            change.stages[stage.ref_id] = stage_change(stage)
        self.events.track(execution, stage)

    def save(self, execution: Execution, stage: StageExecution | None, fields: list[str]) -> None:
        """Save the stage (the execution itself when None) with ``update_fields`` and log their status moves,
        on PostgreSQL in the same statement as the UPDATE (:meth:`EventBuffer.save`)."""
        self.events.track(execution, stage)
        self.events.save(stage if stage is not None else execution, fields)

    def send_on_commit(self) -> None:
        """Write the transaction's events to the log (inside it); send the rest once it commits (at once
        outside one)."""
        self.events.write()
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
        connection = enqueue.engine_queue().connection
        with connection.pipeline(transaction=False) as pipe:
            for stage_id, token, delay in self.runs:
                if self.keep_one_inline and self.inline is None and delay <= 0:
                    self.inline = (stage_id, token)
                elif delay <= 0:
                    enqueue.enqueue_run_stage(stage_id, token, delay, pipeline=pipe)
            for stage_id in self.wake:
                enqueue.enqueue_wake_stage(stage_id, pipeline=pipe)
            for pipeline_id in self.waiting_pipelines:
                enqueue.enqueue_start_waiting(pipeline_id, pipeline=pipe)
            for stage in self.canceled:
                enqueue.enqueue_cancel_hook(str(stage.id), pipeline=pipe)
            # Delayed jobs last: RQ cannot queue a job at once on a pipeline after a scheduled one
            # (a composite's start schedules its parent's timeout wake-up and starts its first stages).
            for stage_id, token, delay in self.runs:
                if delay > 0:
                    enqueue.enqueue_run_stage(stage_id, token, delay, pipeline=pipe)
            queue_publishes(connection, pipe, list(self.changes.values()))
            lua.execute(connection, pipe)
