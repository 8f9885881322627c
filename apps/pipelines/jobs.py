"""RQ entry points of the engine. Each job carries only ids; the database holds the state.

All engine jobs go to the ``default`` queue, so django-rq's plain
``manage.py rqworker --with-scheduler`` serves them; delayed jobs (polls,
waits) need the worker's scheduler.
"""

from datetime import timedelta

import django_rq

from apps.pipelines import engine

QUEUE_NAME = "default"
# Results of engine jobs are never read: keeping none saves Redis work on every step.
JOB_OPTIONS = {"result_ttl": 0, "job_timeout": 600}


def start_execution(execution_id: str) -> None:
    engine.start_execution(execution_id)


def run_stage(stage_id: str, token: int) -> None:
    engine.run_stage(stage_id, token)


def enqueue_start_execution(execution_id) -> None:
    django_rq.get_queue(QUEUE_NAME).enqueue(start_execution, str(execution_id), **JOB_OPTIONS)


def enqueue_run_stage(stage_id: str, token: int, delay: float = 0.0) -> None:
    queue = django_rq.get_queue(QUEUE_NAME)
    if delay > 0:
        queue.enqueue_in(timedelta(seconds=delay), run_stage, stage_id, token, **JOB_OPTIONS)
    else:
        queue.enqueue(run_stage, stage_id, token, **JOB_OPTIONS)
