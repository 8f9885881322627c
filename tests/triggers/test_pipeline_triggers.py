"""Pipeline triggers: one pipeline's end starts another, read from the durable event log, never lost nor doubled."""

from __future__ import annotations

import time

from django.db import transaction

from apps.pipelines import eventlog
from apps.pipelines.choices import Status
from apps.pipelines.models import EventCursor, Execution
from apps.pipelines.services import do_save_pipeline, do_start_execution
from apps.triggers import completion as pipeline_kind
from tests.conftest import wait_for_execution
from tests.triggers.helpers import executions_of

QUICK = {"refId": "1", "name": "Wait", "type": "wait", "waitTime": 0}


def chained(status=None, by_name=False):
    upstream, _ = do_save_pipeline({"application": "shop", "name": "build", "stages": [QUICK]})
    trigger = {"type": "pipeline", "enabled": True, "application": "shop",
               "pipeline": "build" if by_name else str(upstream.id)}
    if status:
        trigger["status"] = status
    downstream, _ = do_save_pipeline({"application": "shop", "name": "deploy", "stages": [QUICK],
                                      "triggers": [trigger]})
    return upstream, downstream


def ended(pipeline, status: str) -> Execution:
    """An execution of ``pipeline`` that ended ``status``, with its event in the log (as the engine writes it)."""
    execution = do_start_execution(pipeline, user="setup")
    with transaction.atomic():
        Execution.objects.filter(id=execution.id).update(status=status)
        execution.refresh_from_db()
        event = eventlog.new_event("execution.status", Execution.objects.select_related("application").get(
            id=execution.id), status=status, previous_status="RUNNING")
        eventlog.insert_events([event])
    return execution


def deliver() -> int:
    EventCursor.objects.filter(name=pipeline_kind.CONSUMER).update(retry_at=None)
    return eventlog.consume(pipeline_kind.CONSUMER)


def test_a_pipeline_that_succeeds_starts_the_pipeline_triggered_by_it_with_its_execution(transactional_db, clean_redis):
    upstream, downstream = chained()
    parent = ended(upstream, Status.SUCCEEDED)

    deliver()

    [child] = executions_of(downstream)
    assert child.trigger["type"] == "pipeline"
    assert child.trigger["parentExecution"]["id"] == str(parent.id)
    assert child.trigger["parentExecution"]["status"] == "SUCCEEDED"
    assert child.trigger["user"] == "system:triggers"


def test_only_the_statuses_the_trigger_names_start_it(transactional_db, clean_redis):
    upstream, downstream = chained(status=["failed", "canceled"], by_name=True)
    ended(upstream, Status.SUCCEEDED)
    deliver()
    assert executions_of(downstream) == []

    failed = ended(upstream, Status.TERMINAL)
    deliver()
    assert [e.trigger["parentExecution"]["id"] for e in executions_of(downstream)] == [str(failed.id)]


def test_a_crash_mid_batch_neither_loses_nor_doubles_the_chained_start(transactional_db, clean_redis, monkeypatch):
    upstream, downstream = chained()
    ended(upstream, Status.SUCCEEDED)
    real_fire = pipeline_kind.do_fire

    def fire_then_crash(*args, **kwargs):
        real_fire(*args, **kwargs)
        raise RuntimeError("the worker died after starting the chained pipeline")

    monkeypatch.setattr(pipeline_kind, "do_fire", fire_then_crash)
    assert deliver() == 0
    assert executions_of(downstream) == []  # rolled back with the cursor it did not move

    monkeypatch.setattr(pipeline_kind, "do_fire", real_fire)
    deliver()
    deliver()
    assert len(executions_of(downstream)) == 1


def test_two_pipelines_chained_by_a_trigger_run_one_after_the_other_on_real_workers(workers):
    upstream, downstream = chained()
    workers.start(1)
    parent = do_start_execution(upstream, user="setup")
    assert wait_for_execution(parent.id).status == Status.SUCCEEDED

    deadline = time.monotonic() + 30
    while not executions_of(downstream) and time.monotonic() < deadline:
        time.sleep(0.2)
    [child] = executions_of(downstream)
    assert wait_for_execution(child.id).status == Status.SUCCEEDED
    assert child.trigger["parentExecution"]["id"] == str(parent.id)


def test_a_worker_killed_around_the_chained_start_does_not_lose_or_double_it(workers):
    upstream, downstream = chained()
    workers.start(1)
    parent = do_start_execution(upstream, user="setup")
    wait_for_execution(parent.id)
    workers.kill(0)  # wherever it was: before, during or after the consumer's batch
    workers.start(1)

    deadline = time.monotonic() + 30
    while not executions_of(downstream) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # a few more ticks of the consumer: a double would show now
    assert len(executions_of(downstream)) == 1
