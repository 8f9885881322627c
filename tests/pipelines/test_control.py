"""Steering running executions: cancel, pause and resume, restart a stage, concurrency limits, execution windows."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.pipelines.choices import Status
from apps.pipelines.models import Execution
from apps.pipelines.services import (
    ActionRefused,
    do_cancel_execution,
    do_pause_execution,
    do_restart_stage,
    do_resume_execution,
    do_skip_wait,
    do_start_execution,
)
from tests.conftest import wait_for_execution, wait_for_stage
from tests.scenarios import failing, save, stages_of, wait


def test_cancel_stops_running_stages_and_starts_nothing_downstream(workers):
    workers.start(1)
    pipeline = save([wait("1", 60), wait("2", 60), wait("3", 0, ["1", "2"])])
    execution = do_start_execution(pipeline)
    wait_for_stage(execution.id, "2", {Status.RUNNING})

    do_cancel_execution(execution.id, user="bob", reason="wrong build")

    execution = wait_for_execution(execution.id, timeout=5)
    stages = stages_of(execution)
    assert execution.status == Status.CANCELED
    assert execution.canceled_by == "bob" and execution.cancel_reason == "wrong build"
    assert stages["1"].status == Status.CANCELED and stages["2"].status == Status.CANCELED
    assert stages["3"].status == Status.NOT_STARTED
    time.sleep(1.5)  # nothing moves after the cancel
    assert stages_of(execution)["3"].status == Status.NOT_STARTED
    with pytest.raises(ActionRefused, match="already ended"):
        do_cancel_execution(execution.id, user="bob")


def test_pause_holds_everything_and_resume_continues_without_counting_the_pause(workers):
    workers.start(1)
    pipeline = save([wait("1", 2), wait("2", 0, ["1"])])
    execution = do_start_execution(pipeline)
    wait_for_stage(execution.id, "1", {Status.RUNNING})

    do_pause_execution(execution.id, user="bob")
    time.sleep(3)  # longer than the wait: a paused wait does not finish
    paused = stages_of(execution)
    assert Execution.objects.get(id=execution.id).status == Status.PAUSED
    assert paused["1"].status == Status.PAUSED
    assert paused["2"].status == Status.NOT_STARTED

    do_resume_execution(execution.id, user="bob")
    execution = wait_for_execution(execution.id, timeout=15)
    stages = stages_of(execution)
    assert execution.status == Status.SUCCEEDED
    waited = (stages["1"].end_time - stages["1"].start_time).total_seconds()
    assert waited >= 4.5, "the wait must not count the 3 s pause"
    assert execution.pauses and execution.pauses[0][1] is not None


def test_resume_refuses_an_execution_that_is_not_paused(workers):
    workers.start(1)
    execution = do_start_execution(save([wait("1", 30)]))
    wait_for_stage(execution.id, "1", {Status.RUNNING})
    with pytest.raises(ActionRefused, match="not PAUSED"):
        do_resume_execution(execution.id, user="bob")
    do_cancel_execution(execution.id, user="bob")


def test_restart_runs_the_failed_stage_and_downstream_again_and_keeps_upstream(workers):
    workers.start(1)
    # The check passes only when its stage was restarted, so the first run fails.
    only_after_restart = (
        "${#stage('Vars').outputs.n == '1' and #stage('Check 2').context.get('restartDetails') != null}"
    )
    check = {"type": "expression", "context": {"expression": only_after_restart}}
    pipeline = save(
        [
            {"refId": "1", "name": "Vars", "type": "evaluateVariables", "variables": [{"key": "n", "value": "1"}]},
            failing("2", ["1"]) | {"preconditions": [check]},
            wait("3", 0, ["2"]),
        ]
    )
    execution = wait_for_execution(do_start_execution(pipeline).id)
    before = stages_of(execution)
    assert execution.status == Status.TERMINAL and before["3"].status == Status.NOT_STARTED

    do_restart_stage(execution.id, "2", user="bob")

    execution = wait_for_execution(execution.id)
    after = stages_of(execution)
    assert execution.status == Status.SUCCEEDED
    assert after["1"].end_time == before["1"].end_time, "upstream stage must not run again"
    assert after["2"].status == Status.SUCCEEDED and after["3"].status == Status.SUCCEEDED
    assert after["2"].context["restartDetails"]["restartedBy"] == "bob"
    assert "precondition" in after["2"].context["restartDetails"]["previousException"]["error"]


def test_restart_refuses_a_stage_that_has_not_finished(workers):
    workers.start(1)
    execution = do_start_execution(save([wait("1", 30)]))
    wait_for_stage(execution.id, "1", {Status.RUNNING})
    with pytest.raises(ActionRefused, match="only a finished stage"):
        do_restart_stage(execution.id, "1", user="bob")
    do_cancel_execution(execution.id, user="bob")


def test_limit_concurrent_buffers_and_keeps_only_the_newest_waiting(workers):
    workers.start(2)
    pipeline = save([wait("1", 2)], limitConcurrent=True, keepWaitingPipelines=False)
    first = do_start_execution(pipeline)
    wait_for_execution(first.id, {Status.RUNNING})
    second = do_start_execution(pipeline)
    wait_for_execution(second.id, {Status.BUFFERED})
    third = do_start_execution(pipeline)
    wait_for_execution(third.id, {Status.BUFFERED})

    second = wait_for_execution(second.id)
    assert second.status == Status.CANCELED
    assert "superseded" in second.cancel_reason
    third = wait_for_execution(third.id, timeout=20)
    first = Execution.objects.get(id=first.id)
    assert first.status == Status.SUCCEEDED and third.status == Status.SUCCEEDED
    assert third.start_time >= first.end_time, "the waiting execution started before the running one ended"


def test_keep_waiting_pipelines_runs_every_waiting_execution_in_order(workers):
    workers.start(2)
    pipeline = save([wait("1", 1)], limitConcurrent=True, keepWaitingPipelines=True)
    executions = [do_start_execution(pipeline)]
    wait_for_execution(executions[0].id, {Status.RUNNING})
    executions += [do_start_execution(pipeline) for _ in range(2)]

    finished = [wait_for_execution(execution.id, timeout=20) for execution in executions]

    assert [execution.status for execution in finished] == [Status.SUCCEEDED] * 3
    for earlier, later in zip(finished, finished[1:], strict=False):
        assert later.start_time >= earlier.end_time


def window_excluding_now():
    """A one-hour window that starts two hours from now (UTC), every day."""
    start = timezone.now() + timedelta(hours=2)
    return {"whitelist": [{"startHour": start.hour, "startMin": 0, "endHour": (start.hour + 1) % 24, "endMin": 0}]}


def test_a_stage_outside_its_execution_window_waits_visibly_and_a_person_can_let_it_run(workers):
    workers.start(1)
    pipeline = save(
        [
            wait("1", 0, restrictExecutionDuringTimeWindow=True, restrictedExecutionWindow=window_excluding_now()),
            wait("2", 0, ["1"]),
        ]
    )
    execution = do_start_execution(pipeline)
    stage = wait_for_stage(execution.id, "1", {Status.RUNNING})
    for _ in range(50):
        stage.refresh_from_db()
        if (stage.context.get("executionWindow") or {}).get("waiting"):
            break
        time.sleep(0.1)
    window = stage.context["executionWindow"]
    assert window["waiting"] is True
    assert window["waitingUntil"] / 1000 > time.time() + 3600

    do_skip_wait(execution.id, "1", user="bob")

    execution = wait_for_execution(execution.id, timeout=10)
    stage = stages_of(execution)["1"]
    assert execution.status == Status.SUCCEEDED
    assert stage.context["executionWindow"]["skipped"] is True


def test_a_stage_inside_its_execution_window_runs_at_once(workers):
    workers.start(1)
    now = timezone.now()
    inside = {"whitelist": [{"startHour": now.hour, "startMin": 0, "endHour": (now.hour + 1) % 24, "endMin": 0}]}
    if now.minute == 59:
        pytest.skip("too close to the end of the hour for a stable window")
    pipeline = save([wait("1", 0, restrictExecutionDuringTimeWindow=True, restrictedExecutionWindow=inside)])

    execution = wait_for_execution(do_start_execution(pipeline).id, timeout=10)

    assert execution.status == Status.SUCCEEDED
    assert stages_of(execution)["1"].context["executionWindow"]["passed"] is True
