"""Nothing is lost when Redis loses its queue: the database is the truth and the workers' sweeper recovers."""

import time
from contextlib import contextmanager

import pytest
from django.conf import settings

from apps.pipelines.choices import Status
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.services import do_save_pipeline, do_start_execution
from cdplatform.webprocess import free_port
from tests.conftest import wait_for_execution, wait_for_stage
from tests.hookserver import Reply

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
    from tests.conftest import WorkerPool, worker_database_url

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    redis_process = start_embedded_redis(port, tmp_path)
    pool = WorkerPool(url, worker_database_url(), tmp_path)
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


FAST_WEBHOOKS = {"WEBHOOK_MONITOR_INTERVAL_SECONDS": "0.1", "WEBHOOK_RETRY_BACKOFF_SECONDS": "0.05"}


def test_a_worker_killed_mid_pipeline_loses_no_execution_and_repeats_no_call(workers, hook_server):
    """SIGKILL one of two busy workers; a new one starts; every execution ends right, each call made once."""
    hook_server.script("/deploy", Reply(202, {"job": "d"}), method="POST")
    hook_server.script("/notify", Reply(200, {}), method="POST")
    pipeline, _ = do_save_pipeline(
        {
            "application": "shop",
            "name": "killed",
            "stages": [
                {"refId": "1", "name": "Deploy", "type": "webhook", "method": "POST",
                 "url": hook_server.url("/deploy"), "payload": {"execution": "${execution.id}"},
                 "waitForCompletion": True, "statusUrlResolution": "getMethod",
                 "statusJsonPath": "$.state", "successStatuses": "DONE", "terminalStatuses": "FAILED"},
                {"refId": "2", "name": "Settle", "type": "wait", "waitTime": 1, "requisiteStageRefIds": ["1"]},
                {"refId": "3", "name": "Notify", "type": "webhook", "method": "POST", "requisiteStageRefIds": ["2"],
                 "url": hook_server.url("/notify"), "payload": {"execution": "${execution.id}"}},
            ],
        }
    )
    # The status URL is the call's URL, polled with GET: keep it RUNNING until the kill is done.
    hook_server.script("/deploy", Reply(200, {"state": "RUNNING"}), method="GET")
    workers.start(2, **FAST_SWEEP, **FAST_WEBHOOKS)
    executions = [do_start_execution(pipeline) for _ in range(8)]
    _wait_until(lambda: all(_call_recorded(execution) for execution in executions), "every first call recorded")

    workers.kill(0)  # both workers are busy polling: the killed one dies mid-job
    workers.start(1, **FAST_SWEEP, **FAST_WEBHOOKS)
    hook_server.script("/deploy", Reply(200, {"state": "DONE"}), method="GET")

    finished = [wait_for_execution(execution.id, timeout=60) for execution in executions]
    assert [execution.status for execution in finished] == [Status.SUCCEEDED] * len(executions)
    for execution in executions:
        for path in ("/deploy", "/notify"):
            calls = [c for c in hook_server.calls(path, "POST") if c.json["execution"] == str(execution.id)]
            assert len(calls) == 1, f"{path} called {len(calls)} times for {execution.id}"


def _call_recorded(execution) -> bool:
    """The first call's response is committed (not merely sent)."""
    stage = StageExecution.objects.get(execution_id=execution.id, ref_id="1")
    return "statusCode" in (stage.context.get("webhook") or {})


def _wait_until(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_starting_an_execution_while_redis_is_down_commits_it_for_the_sweeper():
    pipeline = save_chain()
    with override_redis(f"redis://127.0.0.1:{free_port()}/0"):  # nothing listens there
        execution = do_start_execution(pipeline)

    assert Execution.objects.get(id=execution.id).status == Status.NOT_STARTED
