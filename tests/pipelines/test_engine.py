"""The engine, run for real: executions through real RQ worker processes on the configured database and Redis."""

import pytest

from apps.pipelines.choices import Status
from apps.pipelines.models import Execution
from apps.pipelines.problems import InvalidDocument
from apps.pipelines.services import ActionRefused, do_judge_stage, do_skip_wait, do_start_execution
from tests.conftest import wait_for_execution, wait_for_stage
from tests.scenarios import failing, save, stages_of, wait


def test_a_diamond_runs_its_branches_in_parallel_and_joins(workers):
    workers.start(2)
    pipeline = save([wait("1", 0), wait("2", 2, ["1"]), wait("3", 2, ["1"]), wait("4", 0, ["2", "3"])])

    execution = wait_for_execution(do_start_execution(pipeline).id)

    stages = stages_of(execution)
    assert execution.status == Status.SUCCEEDED
    assert {stage.status for stage in stages.values()} == {Status.SUCCEEDED}
    left, right, join = stages["2"], stages["3"], stages["4"]
    assert left.start_time < right.end_time and right.start_time < left.end_time, "branches did not overlap"
    assert join.start_time >= max(left.end_time, right.end_time)
    assert stages["2"].start_time >= stages["1"].end_time


def test_a_failing_stage_fails_the_pipeline_and_cancels_the_other_branch(workers):
    workers.start(1)
    pipeline = save([failing("1"), wait("2", 30), wait("3", 0, ["1"])])

    execution = wait_for_execution(do_start_execution(pipeline).id)

    stages = stages_of(execution)
    assert execution.status == Status.TERMINAL
    assert stages["1"].status == Status.TERMINAL
    assert stages["2"].status == Status.CANCELED
    assert stages["3"].status == Status.NOT_STARTED
    assert "precondition is false" in stages["1"].context["exception"]["details"]["error"]


def test_fail_pipeline_false_stops_only_its_branch(workers):
    workers.start(1)
    pipeline = save([failing("1", failPipeline=False), wait("2", 0, ["1"]), wait("3", 1)])

    execution = wait_for_execution(do_start_execution(pipeline).id)

    stages = stages_of(execution)
    assert stages["1"].status == Status.STOPPED
    assert stages["2"].status == Status.NOT_STARTED
    assert stages["3"].status == Status.SUCCEEDED
    assert execution.status == Status.SUCCEEDED


def test_continue_pipeline_marks_the_failure_and_goes_on(workers):
    workers.start(1)
    pipeline = save([failing("1", failPipeline=False, continuePipeline=True), wait("2", 0, ["1"])])

    execution = wait_for_execution(do_start_execution(pipeline).id)

    stages = stages_of(execution)
    assert stages["1"].status == Status.FAILED_CONTINUE
    assert stages["2"].status == Status.SUCCEEDED
    assert execution.status == Status.SUCCEEDED


def test_complete_other_branches_then_fail_lets_siblings_finish_before_failing(workers):
    workers.start(1)
    pipeline = save(
        [
            failing("1", failPipeline=False, completeOtherBranchesThenFail=True),
            wait("2", 0, ["1"]),
            wait("3", 1),
            wait("4", 0, ["3"]),
        ]
    )

    execution = wait_for_execution(do_start_execution(pipeline).id)

    stages = stages_of(execution)
    assert stages["1"].status == Status.STOPPED
    assert stages["2"].status == Status.NOT_STARTED
    assert stages["3"].status == Status.SUCCEEDED
    assert stages["4"].status == Status.SUCCEEDED
    assert execution.status == Status.TERMINAL
    assert execution.end_time >= stages["4"].end_time


def test_stage_enabled_false_skips_the_stage_and_runs_what_follows(workers):
    workers.start(1)
    pipeline = save(
        [
            wait("1", 0, stageEnabled={"type": "expression", "expression": "${parameters.env == 'prod'}"}),
            wait("2", 0, ["1"], stageEnabled={"type": "expression", "expression": "parameters.env == 'test'"}),
            wait("3", 0, ["2"]),
        ],
        parameterConfig=[{"name": "env", "default": "test"}],
    )

    execution = wait_for_execution(do_start_execution(pipeline).id)

    stages = stages_of(execution)
    assert stages["1"].status == Status.SKIPPED
    assert stages["2"].status == Status.SUCCEEDED
    assert stages["3"].status == Status.SUCCEEDED
    assert execution.status == Status.SUCCEEDED


def test_stage_timeout_ends_an_overrunning_stage_terminal(workers):
    workers.start(1)
    pipeline = save([wait("1", 60, stageTimeoutMs=1000)])

    execution = wait_for_execution(do_start_execution(pipeline).id, timeout=15)

    stage = stages_of(execution)["1"]
    assert stage.status == Status.TERMINAL
    assert execution.status == Status.TERMINAL
    assert "timed out" in stage.context["exception"]["details"]["error"]
    assert (stage.end_time - stage.start_time).total_seconds() < 10


def test_expressions_see_trigger_parameters_variables_and_earlier_stages(workers):
    workers.start(1)
    pipeline = save(
        [
            {
                "refId": "1",
                "name": "Vars",
                "type": "evaluateVariables",
                "variables": [
                    {"key": "region", "value": "${parameters.region}"},
                    {"key": "target", "value": "${region + '-' + trigger.user}"},
                ],
            },
            {
                "refId": "2",
                "name": "Check",
                "type": "checkPreconditions",
                "requisiteStageRefIds": ["1"],
                "message": "deploying to ${target} from ${#stage('Vars').outputs.region}",
                "preconditions": [
                    {"type": "expression", "context": {"expression": "${target == 'eu-alice'}"}, "failPipeline": True}
                ],
            },
        ],
        parameterConfig=[{"name": "region", "required": True, "options": [{"value": "eu"}, {"value": "us"}]}],
    )

    execution = wait_for_execution(do_start_execution(pipeline, parameters={"region": "eu"}, user="alice").id)

    stages = stages_of(execution)
    assert execution.status == Status.SUCCEEDED
    assert stages["1"].outputs == {"region": "eu", "target": "eu-alice"}
    assert stages["2"].context["message"] == "deploying to eu-alice from eu"
    # The stage's context keeps what the precondition says, not just what it gave.
    assert stages["2"].context["preconditions"][0]["context"]["expression"] == "${target == 'eu-alice'}"
    assert stages["2"].context["preconditionResults"][0] == {
        "type": "expression", "expression": "${target == 'eu-alice'}", "passed": True, "failPipeline": True}


def test_an_expression_error_fails_the_stage_naming_the_expression_when_it_asks_to(workers):
    workers.start(1)
    pipeline = save([wait("1", "${trigger.nothingHere}", failOnFailedExpressions=True)])

    execution = wait_for_execution(do_start_execution(pipeline).id)

    stage = stages_of(execution)["1"]
    assert stage.status == Status.TERMINAL
    assert execution.status == Status.TERMINAL
    assert "trigger.nothingHere" in stage.context["exception"]["details"]["error"]


@pytest.mark.django_db
def test_bad_parameters_are_refused_before_an_execution_exists():
    pipeline = save(
        [wait("1", 0)],
        parameterConfig=[
            {"name": "env", "required": True, "options": [{"value": "test"}, {"value": "prod"}]},
            {"name": "size", "default": "small"},
        ],
    )

    with pytest.raises(InvalidDocument) as refused:
        do_start_execution(pipeline, parameters={})
    assert [p.pointer for p in refused.value.problems] == ["/parameters/env"]
    with pytest.raises(InvalidDocument) as refused:
        do_start_execution(pipeline, parameters={"env": "staging"})
    assert "must be one of" in refused.value.problems[0].message
    assert Execution.objects.count() == 0

    execution = do_start_execution(pipeline, parameters={"env": "prod"})
    assert execution.parameters == {"env": "prod", "size": "small"}
    assert execution.trigger["parameters"] == {"env": "prod", "size": "small"}


def judgment(ref_id, requisites=()):
    return {
        "refId": ref_id,
        "name": "Approve",
        "type": "manualJudgment",
        "requisiteStageRefIds": list(requisites),
        "instructions": "Is test green?",
        "judgmentInputs": [{"value": "ship it"}, {"value": "hold"}],
    }


def test_a_judgment_to_continue_records_the_judge_and_goes_on(workers):
    workers.start(1)
    pipeline = save([judgment("1"), wait("2", 0, ["1"])])
    execution = do_start_execution(pipeline)
    wait_for_stage(execution.id, "1", {Status.RUNNING})

    do_judge_stage(execution.id, "1", decision="continue", user="bob", judgment_input="ship it")

    execution = wait_for_execution(execution.id)
    stage = stages_of(execution)["1"]
    assert execution.status == Status.SUCCEEDED
    assert stage.status == Status.SUCCEEDED
    assert stage.context["judgmentStatus"] == "continue"
    assert stage.context["lastModifiedBy"] == "bob"
    assert stage.context["judgmentInput"] == "ship it"
    assert stage.context["lastModified"]["time"] > 0
    assert stage.outputs["judgmentInput"] == "ship it"


def test_a_judgment_to_stop_ends_the_pipeline(workers):
    workers.start(1)
    pipeline = save([judgment("1"), wait("2", 0, ["1"])])
    execution = do_start_execution(pipeline)
    wait_for_stage(execution.id, "1", {Status.RUNNING})

    do_judge_stage(execution.id, "1", decision="stop", user="bob")

    execution = wait_for_execution(execution.id)
    stages = stages_of(execution)
    assert execution.status == Status.TERMINAL
    assert stages["1"].status == Status.TERMINAL
    assert stages["1"].context["judgmentStatus"] == "stop"
    assert stages["2"].status == Status.NOT_STARTED


def test_a_judgment_refuses_an_input_that_is_not_offered_and_a_second_judgment(workers):
    workers.start(1)
    pipeline = save([judgment("1")])
    execution = do_start_execution(pipeline)
    wait_for_stage(execution.id, "1", {Status.RUNNING})

    with pytest.raises(InvalidDocument, match="not one of") as refused:
        do_judge_stage(execution.id, "1", decision="continue", user="bob", judgment_input="yolo")
    assert refused.value.problems[0].pointer == "/input"
    do_judge_stage(execution.id, "1", decision="continue", user="bob")
    with pytest.raises(ActionRefused):
        do_judge_stage(execution.id, "1", decision="stop", user="carol")

    assert wait_for_execution(execution.id).status == Status.SUCCEEDED


def test_a_person_can_skip_a_running_wait(workers):
    workers.start(1)
    pipeline = save([wait("1", 3600), wait("2", 0, ["1"])])
    execution = do_start_execution(pipeline)
    wait_for_stage(execution.id, "1", {Status.RUNNING})

    do_skip_wait(execution.id, "1", user="bob")

    execution = wait_for_execution(execution.id, timeout=15)
    stages = stages_of(execution)
    assert execution.status == Status.SUCCEEDED
    assert stages["1"].context["skipRemainingWait"] is True
    assert stages["2"].status == Status.SUCCEEDED
