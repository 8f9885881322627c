"""Nothing is lost when Redis loses its queue: the database is the truth and the workers' sweeper recovers."""

from apps.pipelines.choices import Status
from apps.pipelines.services import do_save_pipeline, do_start_execution
from tests.conftest import wait_for_execution, wait_for_stage

# Short lease and interval so recovery happens within a test's patience.
FAST_SWEEP = {"ENGINE_STAGE_LEASE_SECONDS": "1", "ENGINE_SWEEP_INTERVAL_SECONDS": "1"}


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
