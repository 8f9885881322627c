"""RQ entry points of the engine. Each job carries only ids; the database holds the state.

All engine jobs go to the ``default`` queue, so django-rq's plain
``manage.py rqworker --with-scheduler`` serves them; delayed jobs (polls,
waits) need the worker's scheduler.
"""

import logging
from datetime import timedelta

import django_rq
import redis
from django.conf import settings
from rq import Queue

from apps.pipelines import engine

logger = logging.getLogger(__name__)

QUEUE_NAME = "default"
# Results of engine jobs are never read: keeping none saves Redis work on every step.
JOB_OPTIONS = {"result_ttl": 0, "job_timeout": 600}


def start_execution(execution_id: str) -> None:
    engine.start_execution(execution_id)


def run_stage(stage_id: str, token: int) -> None:
    engine.run_stage_job(stage_id, token)


def wake_stage(stage_id: str) -> None:
    engine.wake_stage(stage_id)


def start_waiting(pipeline_id: str) -> None:
    engine.start_waiting(pipeline_id)


def run_cancel_hook(stage_id: str) -> None:
    engine.run_cancel_hook(stage_id)


def enqueue_cancel_hook(stage_id: str, pipeline=None) -> None:
    engine_queue().enqueue(run_cancel_hook, str(stage_id), pipeline=pipeline, **JOB_OPTIONS)


def enqueue_wake_stage(stage_id: str, pipeline=None) -> None:
    engine_queue().enqueue(wake_stage, str(stage_id), pipeline=pipeline, **JOB_OPTIONS)


def enqueue_start_waiting(pipeline_id: str, pipeline=None) -> None:
    engine_queue().enqueue(start_waiting, str(pipeline_id), pipeline=pipeline, **JOB_OPTIONS)


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
    engine_queue().enqueue(start_execution, str(execution_id), **JOB_OPTIONS)


_queues: dict[str, Queue] = {}


def engine_queue() -> Queue:
    """The engine's queue, one per Redis URL per process.

    django-rq builds a new Redis connection pool on every ``get_queue`` call;
    reusing one saves a connection handshake on every engine step.
    """
    url = settings.RQ_QUEUES[QUEUE_NAME]["URL"]
    queue = _queues.get(url)
    if queue is None:
        queue = _queues[url] = django_rq.get_queue(QUEUE_NAME)
    return queue


def enqueue_run_stage(stage_id: str, token: int, delay: float = 0.0, pipeline=None) -> None:
    """Queue one step of a stage, now or after ``delay`` seconds; on ``pipeline`` when given (sent by the caller)."""
    queue = engine_queue()
    if delay > 0:
        queue.enqueue_in(timedelta(seconds=delay), run_stage, stage_id, token, pipeline=pipeline, **JOB_OPTIONS)
    else:
        queue.enqueue(run_stage, stage_id, token, pipeline=pipeline, **JOB_OPTIONS)
