"""The engine queues its jobs by dotted path: each path must name the RQ entry point RQ has always recorded."""

from apps.pipelines import enqueue, jobs


def _func_name(function) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def test_each_queued_name_is_the_entry_point_in_jobs():
    assert enqueue.START_EXECUTION == _func_name(jobs.start_execution) == "apps.pipelines.jobs.start_execution"
    assert enqueue.RUN_STAGE == _func_name(jobs.run_stage) == "apps.pipelines.jobs.run_stage"
    assert enqueue.WAKE_STAGE == _func_name(jobs.wake_stage) == "apps.pipelines.jobs.wake_stage"
    assert enqueue.START_WAITING == _func_name(jobs.start_waiting) == "apps.pipelines.jobs.start_waiting"
    assert enqueue.RUN_CANCEL_HOOK == _func_name(jobs.run_cancel_hook) == "apps.pipelines.jobs.run_cancel_hook"
