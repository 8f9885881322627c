"""Composite stages run for real: tasks in order, synthetic stages before and after, failure, restart, cancel, pause.

The stage types are the tests' own (``composite_stages.py``), registered in
the workers through STAGE_TYPE_MODULES and in this process by a fixture.
"""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.pipelines import engine, enqueue
from apps.pipelines.choices import Status
from apps.pipelines.documents import execution_document
from apps.pipelines.jobs import RUNTIME
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.services import (
    ActionRefused,
    do_cancel_execution,
    do_pause_execution,
    do_restart_stage,
    do_resume_execution,
    do_save_pipeline,
    do_skip_wait,
    do_start_execution,
)
from tests.conftest import wait_for_execution, wait_for_stage
from tests.pipelines import composite_stages

TEST_TYPES = "tests.pipelines.composite_stages"


@pytest.fixture(autouse=True)
def composite_types():
    """The test-only stage types, registered for this test and removed after it."""
    with composite_stages.registered():
        yield


def save(stages):
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "deliver", "stages": stages}, user="alice")
    return pipeline


def composite(**options):
    return {"refId": "1", "name": "Deploy", "type": "testComposite", **options}


def then_wait():
    return {"refId": "2", "name": "After", "type": "wait", "waitTime": 0, "requisiteStageRefIds": ["1"]}


def stages_of(execution):
    return {stage.ref_id: stage for stage in StageExecution.objects.filter(execution_id=execution.id)}


def wait_for_synthetic(execution_id, ref_id: str, statuses, timeout: float = 30.0) -> StageExecution:
    """As wait_for_stage, for a stage that exists only once its parent has started."""
    deadline = time.monotonic() + timeout
    while not StageExecution.objects.filter(execution_id=execution_id, ref_id=ref_id).exists():
        assert time.monotonic() < deadline, f"stage {ref_id} was never planned"
        time.sleep(0.1)
    return wait_for_stage(execution_id, ref_id, statuses, timeout)


def ms(moment) -> int:
    return int(moment.timestamp() * 1000)


def test_the_composite_stage_runs_before_stages_tasks_and_after_stages_in_order(workers):
    workers.start(1, STAGE_TYPE_MODULES=TEST_TYPES)

    # After a first stage, so that the composite one starts from a chain (under the first one's lock).
    first_stage = {"refId": "0", "name": "Begin", "type": "wait", "waitTime": 0}
    pipeline = save([first_stage, composite(requisiteStageRefIds=["0"]), then_wait()])
    execution = wait_for_execution(do_start_execution(pipeline).id)

    assert execution.status == Status.SUCCEEDED
    stages = stages_of(execution)
    assert sorted(stages) == ["0", "1", "1<1", "1<1<1", "1<2", "1>1", "2"]
    assert {stage.status for stage in stages.values()} == {Status.SUCCEEDED}
    parent, prepare, nested, settle, tidy = (stages[ref] for ref in ("1", "1<1", "1<1<1", "1<2", "1>1"))
    first, second = parent.tasks
    assert parent.start_time <= nested.start_time and nested.end_time <= prepare.end_time
    assert prepare.end_time <= settle.start_time
    assert ms(settle.end_time) <= first["startTime"] <= first["endTime"] <= second["startTime"] <= second["endTime"]
    assert second["endTime"] <= ms(tidy.start_time) and tidy.end_time <= parent.end_time <= stages["2"].start_time
    assert tidy.outputs == {"settled": "SUCCEEDED"}, "a synthetic stage's expression finds another by name"
    assert parent.outputs == {"ran_first": True, "ran_second": True}

    document = {stage["refId"]: stage for stage in execution_document(execution)["stages"]}
    assert [stage["refId"] for stage in execution_document(execution)["stages"]] == [
        "0", "1", "1<1", "1<1<1", "1<2", "1>1", "2"]
    links = {ref: (stage["syntheticStageOwner"], stage["parentStageId"]) for ref, stage in document.items()}
    assert links == {
        "0": (None, None), "1": (None, None), "2": (None, None),
        "1<1": ("STAGE_BEFORE", str(parent.id)), "1<1<1": ("STAGE_BEFORE", str(prepare.id)),
        "1<2": ("STAGE_BEFORE", str(parent.id)), "1>1": ("STAGE_AFTER", str(parent.id)),
    }
    assert [(task["name"], task["status"]) for task in document["1"]["tasks"]] == [
        ("first", "SUCCEEDED"), ("second", "SUCCEEDED")]
    assert document["1"]["tasks"][0]["implementingClass"] == "tests.pipelines.composite_stages.RecordTask"
    assert [(task["name"], task["status"]) for task in document["2"]["tasks"]] == [("wait", "SUCCEEDED")]


def test_a_failing_before_stage_fails_its_parent_and_the_execution(workers, tmp_path):
    workers.start(1, STAGE_TYPE_MODULES=TEST_TYPES)
    pipeline = save([composite(gateFile=str(tmp_path / "open")), then_wait()])

    execution = wait_for_execution(do_start_execution(pipeline).id)

    stages = stages_of(execution)
    assert execution.status == Status.TERMINAL
    assert stages["1<1"].status == Status.SUCCEEDED
    assert stages["1<2"].status == Status.TERMINAL
    assert stages["1<3"].status == Status.NOT_STARTED, "the sibling after the failure does not start"
    assert stages["1"].status == Status.TERMINAL
    assert "'Gate' (1<2) ended TERMINAL; the gate is closed" in stages["1"].context["exception"]["details"]["error"]
    assert [task["status"] for task in stages["1"].tasks] == [Status.NOT_STARTED] * 2
    assert stages["1>1"].status == stages["2"].status == Status.NOT_STARTED


def test_continue_pipeline_on_the_parent_lets_the_execution_go_on_after_a_synthetic_failure(workers, tmp_path):
    workers.start(1, STAGE_TYPE_MODULES=TEST_TYPES)
    pipeline = save([composite(gateFile=str(tmp_path / "open"), continuePipeline=True), then_wait()])

    execution = wait_for_execution(do_start_execution(pipeline).id)

    stages = stages_of(execution)
    assert stages["1<2"].status == Status.TERMINAL
    assert stages["1"].status == Status.FAILED_CONTINUE
    assert stages["2"].status == Status.SUCCEEDED
    assert execution.status == Status.SUCCEEDED


def test_a_failing_task_in_the_middle_fails_the_stage_before_its_after_stages(workers):
    workers.start(1, STAGE_TYPE_MODULES=TEST_TYPES)

    execution = wait_for_execution(do_start_execution(save([composite(failTask="second"), then_wait()])).id)

    stages = stages_of(execution)
    assert execution.status == Status.TERMINAL
    assert [task["status"] for task in stages["1"].tasks] == [Status.SUCCEEDED, Status.TERMINAL]
    assert stages["1"].status == Status.TERMINAL
    assert "task second failed as asked" in stages["1"].context["exception"]["details"]["error"]
    assert stages["1>1"].status == stages["2"].status == Status.NOT_STARTED


def test_restart_from_a_synthetic_stage_reruns_it_and_what_follows_it_only(workers, tmp_path):
    workers.start(1, STAGE_TYPE_MODULES=TEST_TYPES)
    gate = tmp_path / "open"
    execution = wait_for_execution(do_start_execution(save([composite(gateFile=str(gate)), then_wait()])).id)
    before = stages_of(execution)
    assert execution.status == Status.TERMINAL

    gate.touch()
    do_restart_stage(execution.id, "1<2", user="alice")
    execution = wait_for_execution(execution.id)

    after = stages_of(execution)
    assert execution.status == Status.SUCCEEDED
    assert {stage.status for stage in after.values()} == {Status.SUCCEEDED}
    for kept in ("1<1", "1<1<1"):
        assert after[kept].start_time == before[kept].start_time, f"{kept} ran again"
    for rerun in ("1<2", "1<3", "1>1", "2"):
        assert after[rerun].start_time > before["1<2"].end_time, f"{rerun} did not run again"
    assert after["1"].tasks[0]["startTime"] >= ms(after["1<3"].end_time)
    assert after["1<2"].context["restartDetails"]["restartedBy"] == "alice"
    assert "restartDetails" not in after["1<3"].context

    do_restart_stage(execution.id, "1", user="alice")
    execution = wait_for_execution(execution.id)
    again = stages_of(execution)
    assert execution.status == Status.SUCCEEDED
    assert sorted(again) == sorted(after)
    assert again["1<1<1"].id != after["1<1<1"].id, "restarting the parent plans its synthetic stages afresh"


def test_cancel_mid_composite_cancels_the_running_synthetic_stage_and_its_parent_hooks_once(workers, tmp_path):
    workers.start(2, STAGE_TYPE_MODULES=TEST_TYPES)
    log = tmp_path / "hooks.log"
    pipeline = save([composite(releaseFile=str(tmp_path / "never"), hookLog=str(log)), then_wait()])
    execution = do_start_execution(pipeline)
    wait_for_synthetic(execution.id, "1<2", {Status.RUNNING})

    do_cancel_execution(execution.id, user="alice", reason="enough")
    execution = wait_for_execution(execution.id)

    stages = stages_of(execution)
    assert execution.status == Status.CANCELED
    assert stages["1<1"].status == Status.SUCCEEDED
    assert stages["1<2"].status == stages["1"].status == Status.CANCELED
    assert stages["1<3"].status == stages["2"].status == Status.NOT_STARTED
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(log.read_text().split() if log.exists() else []) < 2:
        time.sleep(0.1)
    time.sleep(0.5)  # a second run of a hook would show by now
    assert sorted(log.read_text().split()) == ["1", "1<2"]


def test_pause_mid_composite_holds_it_and_resume_finishes_it(workers, tmp_path):
    workers.start(1, STAGE_TYPE_MODULES=TEST_TYPES)
    release = tmp_path / "release"
    execution = do_start_execution(save([composite(releaseFile=str(release)), then_wait()]))
    wait_for_synthetic(execution.id, "1<2", {Status.RUNNING})

    do_pause_execution(execution.id, user="alice")
    release.touch()
    time.sleep(1.5)
    stages = stages_of(execution)
    assert stages["1"].status == stages["1<2"].status == Status.PAUSED
    assert stages["1<3"].status == Status.NOT_STARTED, "nothing moves while paused"

    do_resume_execution(execution.id, user="alice")
    execution = wait_for_execution(execution.id)
    assert execution.status == Status.SUCCEEDED
    assert {stage.status for stage in stages_of(execution).values()} == {Status.SUCCEEDED}


def test_the_parents_timeout_covers_its_synthetic_stages(workers, tmp_path):
    workers.start(1, STAGE_TYPE_MODULES=TEST_TYPES)
    pipeline = save([composite(releaseFile=str(tmp_path / "never"), stageTimeoutMs=1500)])

    execution = wait_for_execution(do_start_execution(pipeline).id, timeout=15)

    stages = stages_of(execution)
    assert execution.status == Status.TERMINAL
    assert stages["1"].status == Status.TERMINAL
    assert "timed out after 1500 ms" in stages["1"].context["exception"]["details"]["error"]
    assert stages["1<2"].status == Status.CANCELED
    assert (stages["1"].end_time - stages["1"].start_time).total_seconds() < 10


# --- In this process, no worker: planning errors and restart legality -----------------------------------------


def start_here(stages) -> Execution:
    """Start an execution in this process: the engine's first transaction runs here, its jobs go to Redis unrun."""
    execution = do_start_execution(save(stages))
    engine.start_execution(execution.id)
    return Execution.objects.get(id=execution.id)


def test_an_invalid_synthetic_stage_fails_its_parent_with_the_reason(transactional_db, clean_redis):
    execution = start_here([{"refId": "1", "name": "Bad", "type": "testBadPlan"}])

    stage = StageExecution.objects.get(execution=execution, ref_id="1")
    assert execution.status == Status.TERMINAL and stage.status == Status.TERMINAL
    error = stage.context["exception"]["details"]["error"]
    assert "invalid before stages planned by stage 'Bad'" in error and "unknown stage type 'noSuchType'" in error
    assert not StageExecution.objects.filter(execution=execution, parent__isnull=False).exists()


def test_synthetic_stages_nest_only_to_the_bound(transactional_db, clean_redis):
    execution = start_here([{"refId": "1", "name": "Deep", "type": "testTooDeep"}])

    refs = set(StageExecution.objects.filter(execution=execution).values_list("ref_id", flat=True))
    assert refs == {"1", "1<1", "1<1<1", "1<1<1<1"}
    deepest = StageExecution.objects.get(execution=execution, ref_id="1<1<1<1")
    assert "nest at most 3 levels" in deepest.context["exception"]["details"]["error"]
    assert Execution.objects.get(id=execution.id).status == Status.TERMINAL


def test_a_synthetic_stage_cannot_restart_while_its_parent_runs(transactional_db, clean_redis):
    execution = start_here([composite()])
    assert StageExecution.objects.get(execution=execution, ref_id="1").status == Status.RUNNING
    StageExecution.objects.filter(execution=execution, ref_id="1<1<1").update(status=Status.SUCCEEDED)

    with pytest.raises(ActionRefused, match="still running"):
        do_restart_stage(execution.id, "1<1<1", user="alice")
    assert engine.restart_scope("1<1<1", list(execution.stages.all())) == {"1<1<1", "1<1", "1<2", "1", "1>1"}


def test_the_sweeper_finds_a_lost_step_of_a_synthetic_stage_and_a_parent_whose_advance_was_lost(
    transactional_db, clean_redis,
):
    execution = start_here([composite()])
    long_ago = timezone.now() - timedelta(hours=1)
    lost = StageExecution.objects.get(execution=execution, ref_id="1<1<1")
    enqueue.discard(enqueue.run_stage_job_id(lost.id, lost.run_token))  # its message is gone from Redis
    StageExecution.objects.filter(id=lost.id).update(next_run_at=long_ago)

    assert engine.sweep()["stages"] == 1
    assert StageExecution.objects.get(execution=execution, ref_id="1<1<1").next_run_at > long_ago

    # The nested wait ended, but the advance that would start its parent's task never ran.
    StageExecution.objects.filter(execution=execution, ref_id="1<1<1").update(
        status=Status.SUCCEEDED, end_time=long_ago, next_run_at=None)
    engine.sweep()
    nested = StageExecution.objects.get(execution=execution, ref_id="1<1")
    assert nested.status == Status.RUNNING and nested.tasks[0]["status"] == Status.RUNNING


def test_a_composite_stages_window_is_a_before_stage_ahead_of_the_others(transactional_db, clean_redis):
    hour = (timezone.now().hour + 2) % 24
    window = {"whitelist": [{"startHour": hour, "startMin": 0, "endHour": (hour + 1) % 24, "endMin": 0}]}
    execution = start_here([composite(restrictExecutionDuringTimeWindow=True, restrictedExecutionWindow=window)])
    stages = stages_of(execution)
    assert stages["1<1"].type == "restrictExecutionDuringTimeWindow"
    assert stages["1<2"].requisite_ref_ids == ["1<1"] and stages["1<2"].status == Status.NOT_STARTED

    engine.run_stage(stages["1<1"].id, stages["1<1"].run_token, RUNTIME)
    held = StageExecution.objects.get(id=stages["1<1"].id)
    assert held.status == Status.RUNNING and held.context["executionWindow"]["waiting"] is True
    assert StageExecution.objects.get(id=stages["1<2"].id).status == Status.NOT_STARTED

    do_skip_wait(execution.id, "1<1", user="alice")
    engine.run_stage(held.id, StageExecution.objects.get(id=held.id).run_token, RUNTIME)
    stages = stages_of(execution)
    assert stages["1<1"].status == Status.SUCCEEDED and stages["1<1"].context["executionWindow"]["skipped"] is True
    assert stages["1<2"].status == Status.RUNNING, "the composite's own before stages follow the window"
    assert "executionWindow" not in stages["1"].context or "waiting" not in stages["1"].context["executionWindow"]
