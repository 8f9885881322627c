"""The ``pipeline`` stage: a parent starts a child pipeline, waits for it, reads its results, cancels it."""

import time

from apps.pipelines.choices import Status
from apps.pipelines.documents import execution_document
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.services import do_cancel_execution, do_save_pipeline, do_start_execution
from tests.conftest import wait_for_execution, wait_for_stage


def child_pipeline(stages=None):
    pipeline, _ = do_save_pipeline(
        {
            "application": "platform",
            "name": "provision",
            "parameterConfig": [{"name": "size", "required": True}],
            "stages": stages
            or [
                {"refId": "1", "name": "Vars", "type": "evaluateVariables",
                 "variables": [{"key": "cluster", "value": "db-${parameters.size}"}]},
            ],
        }
    )
    return pipeline


def parent_pipeline(child, **stage_options):
    pipeline, _ = do_save_pipeline(
        {
            "application": "shop",
            "name": "deliver",
            "stages": [
                {"refId": "1", "name": "Provision", "type": "pipeline", "application": "platform",
                 "pipeline": str(child.id), "pipelineParameters": {"size": "large"}, **stage_options},
                {"refId": "2", "name": "Use", "type": "evaluateVariables", "requisiteStageRefIds": ["1"],
                 "variables": [{"key": "target", "value": "${#stage('Provision').outputs.cluster}"}]},
            ],
        }
    )
    return pipeline


def test_a_parent_waits_for_its_child_and_reads_its_outputs(workers):
    workers.start(2)
    child = child_pipeline()
    parent = wait_for_execution(do_start_execution(parent_pipeline(child), user="alice").id, timeout=20)

    stages = {stage.ref_id: stage for stage in parent.stages.all()}
    assert parent.status == Status.SUCCEEDED
    child_execution = Execution.objects.get(id=stages["1"].context["executionId"])
    assert child_execution.status == Status.SUCCEEDED
    assert child_execution.parameters == {"size": "large"}
    assert stages["2"].outputs == {"target": "db-large"}
    # Linked both ways in the execution JSON.
    child_json = execution_document(child_execution)
    assert child_json["trigger"]["type"] == "pipeline"
    assert child_json["trigger"]["parentExecution"]["id"] == str(parent.id)
    assert child_json["parentExecution"]["stageId"] == str(stages["1"].id)
    assert execution_document(parent)["stages"][0]["context"]["executionId"] == str(child_execution.id)


def test_a_failing_child_fails_the_parent_stage(workers):
    workers.start(1)
    child = child_pipeline(
        [{"refId": "1", "name": "Check", "type": "checkPreconditions",
          "preconditions": [{"type": "expression", "context": {"expression": "${parameters.size == 'small'}"}}]}]
    )
    parent = wait_for_execution(do_start_execution(parent_pipeline(child)).id, timeout=20)

    stage = parent.stages.get(ref_id="1")
    assert parent.status == Status.TERMINAL
    assert stage.status == Status.TERMINAL
    assert "ended TERMINAL" in stage.context["exception"]["details"]["error"]


def test_canceling_the_parent_cancels_the_child(workers):
    workers.start(1)
    child = child_pipeline([{"refId": "1", "name": "Long", "type": "wait", "waitTime": 60}])
    parent = do_start_execution(parent_pipeline(child))
    stage = wait_for_stage(parent.id, "1", {Status.RUNNING})
    for _ in range(100):
        stage.refresh_from_db()
        if stage.context.get("executionId"):
            break
        time.sleep(0.1)
    child_id = stage.context["executionId"]
    wait_for_stage(child_id, "1", {Status.RUNNING})

    do_cancel_execution(parent.id, user="bob", reason="not today")

    child_execution = wait_for_execution(child_id, timeout=10)
    assert child_execution.status == Status.CANCELED
    assert StageExecution.objects.get(execution_id=child_id, ref_id="1").status == Status.CANCELED


def test_a_child_refusing_its_parameters_fails_the_stage_with_the_reason(workers):
    workers.start(1)
    child = child_pipeline()
    parent = parent_pipeline(child, pipelineParameters={})
    parent_execution = wait_for_execution(do_start_execution(parent).id, timeout=20)

    stage = parent_execution.stages.get(ref_id="1")
    assert stage.status == Status.TERMINAL
    assert "/parameters/size" in stage.context["exception"]["details"]["error"]
    assert not Execution.objects.filter(pipeline__name="provision").exists()
