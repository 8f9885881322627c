"""Nothing is lost when Redis loses its queue: the database is the truth and the workers' sweeper recovers."""

from contextlib import contextmanager

from django.conf import settings

from apps.pipelines.choices import Status
from apps.pipelines.services import do_save_pipeline, do_start_execution
from tests.conftest import wait_for_execution, wait_for_stage

# Short lease and interval so recovery happens within a test's patience.
FAST_SWEEP = {"ENGINE_STAGE_LEASE_SECONDS": "1", "ENGINE_SWEEP_INTERVAL_SECONDS": "1"}


@contextmanager
def override_redis(url: str):
    """Point this process's engine (its enqueues on commit) at another Redis for the duration."""
    saved = settings.RQ_QUEUES["default"]["URL"]
    settings.RQ_QUEUES["default"]["URL"] = url
    try:
        yield
    finally:
        settings.RQ_QUEUES["default"]["URL"] = saved


def save_chain():
    pipeline, _ = do_save_pipeline(
        {
            "application": "shop",
            "name": "durable",
            "stages": [
                {"refId": "1", "name": "Wait", "type": "wait", "waitTime": 2},
                {"refId": "2", "name": "Then", "type": "wait", "waitTime": 0, "requisiteStageRefIds": ["1"]},
            ],
        }
    )
    return pipeline


def test_a_wait_whose_scheduled_job_redis_lost_still_finishes(workers, clean_redis):
    workers.start(1, **FAST_SWEEP)
    execution = do_start_execution(save_chain())
    wait_for_stage(execution.id, "1", {Status.RUNNING})

    clean_redis.flushdb()  # the scheduled poll of the wait is gone

    execution = wait_for_execution(execution.id, timeout=20)
    assert execution.status == Status.SUCCEEDED
    assert set(execution.stages.values_list("status", flat=True)) == {Status.SUCCEEDED}


def test_an_execution_whose_start_message_was_lost_is_started_by_the_sweeper(workers, clean_redis):
    pipeline = save_chain()
    execution = do_start_execution(pipeline)
    clean_redis.flushdb()  # the start message never reaches a worker

    workers.start(1, **FAST_SWEEP)

    assert wait_for_execution(execution.id, timeout=20).status == Status.SUCCEEDED


def test_executions_survive_a_redis_restart_that_loses_every_queue(transactional_db, tmp_path):
    """A Redis of the test's own is stopped and started empty while waits are pending; all executions finish."""
    from cdplatform.embedded_redis import start_embedded_redis, stop
    from tests.conftest import WorkerPool, _worker_database_url, free_port

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    redis_process = start_embedded_redis(port, tmp_path)
    pool = WorkerPool(url, _worker_database_url(), tmp_path)
    try:
        with override_redis(url):
            pool.start(2, **FAST_SWEEP)
            pipeline = save_chain()
            executions = [do_start_execution(pipeline) for _ in range(5)]
            for execution in executions:
                wait_for_stage(execution.id, "1", {Status.RUNNING}, timeout=15)

            stop(redis_process)  # every queued and scheduled job is gone
            redis_process = start_embedded_redis(port, tmp_path)

            finished = [wait_for_execution(execution.id, timeout=60) for execution in executions]
        assert [execution.status for execution in finished] == [Status.SUCCEEDED] * 5
        assert all(process.poll() is None for process in pool.processes), "a worker quit when Redis went away"
    finally:
        pool.stop()
        stop(redis_process)
