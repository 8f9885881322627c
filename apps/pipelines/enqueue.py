"""The engine's queue and the functions that put its messages on it.

Jobs are named by dotted path (``apps.pipelines.jobs.run_stage``), not by
function object: the engine enqueues its next messages without importing
``jobs.py``, which imports the engine to run them. RQ records the same
function name either way, so jobs already waiting in Redis keep working.

All engine jobs go to the ``default`` queue, so django-rq's plain
``manage.py rqworker --with-scheduler`` serves them; delayed jobs (polls,
waits) need the worker's scheduler.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import django_rq
import redis
from django.conf import settings
from rq import Queue

logger = logging.getLogger(__name__)

QUEUE_NAME = "default"
# Results of engine jobs are never read: keeping none saves Redis work on every step.
JOB_OPTIONS = {"result_ttl": 0, "job_timeout": 600}

# The RQ entry points (apps/pipelines/jobs.py), by the names RQ records for them.
START_EXECUTION = "apps.pipelines.jobs.start_execution"
RUN_STAGE = "apps.pipelines.jobs.run_stage"
WAKE_STAGE = "apps.pipelines.jobs.wake_stage"
START_WAITING = "apps.pipelines.jobs.start_waiting"
RUN_CANCEL_HOOK = "apps.pipelines.jobs.run_cancel_hook"

_queues: dict[str, Queue] = {}


def engine_queue() -> Queue:
    """The engine's queue, one per Redis URL per process.

    django-rq builds a new Redis connection pool on every ``get_queue`` call;
    reusing one saves a connection handshake on every engine step.
    """
    url = str(settings.RQ_QUEUES[QUEUE_NAME]["URL"])
    queue = _queues.get(url)
    if queue is None:
        queue = _queues[url] = django_rq.get_queue(QUEUE_NAME)
    return queue


def enqueue_run_stage(stage_id: str, token: int, delay: float = 0.0, pipeline=None) -> None:
    """Queue one step of a stage, now or after ``delay`` seconds; on ``pipeline`` when given (sent by the caller)."""
    queue = engine_queue()
    if delay > 0:
        queue.enqueue_in(timedelta(seconds=delay), RUN_STAGE, stage_id, token, pipeline=pipeline, **JOB_OPTIONS)
    else:
        queue.enqueue(RUN_STAGE, stage_id, token, pipeline=pipeline, **JOB_OPTIONS)


def enqueue_cancel_hook(stage_id: str, pipeline=None) -> None:
    """Queue the cancel hook of a canceled stage."""
    engine_queue().enqueue(RUN_CANCEL_HOOK, str(stage_id), pipeline=pipeline, **JOB_OPTIONS)


def enqueue_wake_stage(stage_id: str, pipeline=None) -> None:
    """Queue a waiting stage's task to run now (its child execution ended)."""
    engine_queue().enqueue(WAKE_STAGE, str(stage_id), pipeline=pipeline, **JOB_OPTIONS)


def enqueue_start_waiting(pipeline_id: str, pipeline=None) -> None:
    """Queue the start of a pipeline's next waiting (BUFFERED) execution."""
    engine_queue().enqueue(START_WAITING, str(pipeline_id), pipeline=pipeline, **JOB_OPTIONS)


def enqueue_start_execution(execution_id) -> None:
    """Queue an execution's start (called after the commit that created it).

    With Redis unreachable the execution stays NOT_STARTED in the database and
    the sweeper starts it later; the request that created it does not fail.
    """
    try:
        _enqueue_start(execution_id)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        logger.warning("Redis unreachable: execution %s will be started by the sweeper", execution_id)


def _enqueue_start(execution_id) -> None:
    engine_queue().enqueue(START_EXECUTION, str(execution_id), **JOB_OPTIONS)
