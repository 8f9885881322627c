"""``manage.py pipeline``: what a user of Spinnaker's ``spin`` relies on."""

import getpass
import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from apps.pipelines.choices import Status
from apps.pipelines.models import Execution, Pipeline
from tests.conftest import ROOT, wait_for_execution, wait_for_stage

PIPELINE = {
    "application": "shop",
    "name": "deliver",
    "parameterConfig": [{"name": "version", "required": True}],
    "stages": [
        {"refId": "1", "name": "Prepare", "type": "evaluateVariables",
         "variables": [{"key": "tag", "value": "v${parameters.version}"}]},
        {"refId": "2", "name": "Approve", "type": "manualJudgment", "requisiteStageRefIds": ["1"],
         "judgmentInputs": [{"value": "ship"}, {"value": "hold"}]},
    ],
}


def run(*args):
    """Run the command in-process; returns (exit code, stdout, stderr)."""
    out, err = StringIO(), StringIO()
    try:
        call_command("pipeline", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, out.getvalue(), err.getvalue()


def write(tmp_path: Path, document, name="pipeline.json") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document) if name.endswith(".yml") else json.dumps(document))
    return str(path)


def test_validate_accepts_a_good_file(tmp_path):
    code, out, _ = run("validate", write(tmp_path, PIPELINE))
    assert code == 0
    assert out.strip() == "valid"


def test_validate_prints_one_pointer_line_per_problem_and_exits_1(tmp_path):
    broken = {
        "application": "shop",
        "name": "broken",
        "stages": [
            {"refId": "1", "name": "A", "type": "bake-a-cake"},
            {"refId": "1", "name": "B", "type": "wait", "requisiteStageRefIds": ["9"]},
        ],
    }
    code, _, err = run("validate", write(tmp_path, broken))
    lines = err.strip().splitlines()
    assert code == 1
    assert any(line.startswith("/stages/0/type: ") for line in lines)
    assert any(line.startswith("/stages/1/refId: ") for line in lines)
    assert any(line.startswith("/stages/1/requisiteStageRefIds/0: ") for line in lines)


@pytest.mark.django_db
def test_save_creates_then_updates_by_application_and_name_and_prints_the_id(tmp_path):
    code, out, _ = run("save", write(tmp_path, PIPELINE, "p.yml"))
    assert code == 0
    pipeline = Pipeline.objects.get(application__name="shop", name="deliver")
    assert out.strip() == str(pipeline.id)

    changed = {**PIPELINE, "description": "now with a description"}
    code, out, _ = run("save", write(tmp_path, changed))
    assert code == 0 and out.strip() == str(pipeline.id)
    pipeline.refresh_from_db()
    assert pipeline.definition["description"] == "now with a description"
    assert list(pipeline.revisions.values_list("number", flat=True)) == [2, 1]


@pytest.mark.django_db
def test_save_refuses_an_invalid_file_and_saves_nothing(tmp_path):
    code, _, err = run("save", write(tmp_path, {**PIPELINE, "stages": [{"refId": "1", "type": "wiat"}]}))
    assert code == 1
    assert "/stages/0/type" in err
    assert not Pipeline.objects.exists()


@pytest.mark.django_db
def test_execute_refuses_missing_required_parameters_before_starting(tmp_path):
    run("save", write(tmp_path, PIPELINE))
    code, _, err = run("execute", "shop", "deliver")
    assert code == 1
    assert "/parameters/version: is required" in err
    assert not Execution.objects.exists()


@pytest.mark.django_db
def test_execute_names_an_unknown_pipeline():
    with pytest.raises(CommandError, match="no pipeline 'nope'"):
        run("execute", "shop", "nope")


def test_execute_judge_and_show_drive_an_execution_to_the_end(workers, tmp_path):
    workers.start(1)
    run("save", write(tmp_path, PIPELINE))
    code, out, _ = run("execute", "shop", "deliver", "--param", "version=1.2")
    assert code == 0
    execution_id = out.strip()
    wait_for_stage(execution_id, "2", {Status.RUNNING})

    code, out, _ = run("judge", execution_id, "2", "--continue", "--input", "ship")
    assert code == 0
    judged = json.loads(out)
    assert judged["stages"][1]["context"]["judgmentStatus"] == "continue"

    wait_for_execution(execution_id)
    code, out, _ = run("show", execution_id)
    document = json.loads(out)
    assert document["status"] == "SUCCEEDED"
    assert document["id"] == execution_id
    assert document["application"] == "shop"
    assert document["parameters"] == {"version": "1.2"}
    assert document["trigger"]["type"] == "manual"
    assert isinstance(document["startTime"], int) and document["endTime"] >= document["startTime"]
    first = document["stages"][0]
    assert {"id", "refId", "type", "name", "status", "startTime", "endTime", "context", "outputs",
            "requisiteStageRefIds"} <= set(first)
    assert first["outputs"] == {"tag": "v1.2"}


def test_execute_with_wait_prints_the_final_json_and_exits_by_status(workers, tmp_path):
    workers.start(1)
    document = {
        "application": "shop",
        "name": "quick",
        "parameterConfig": [{"name": "fail", "default": "no", "options": [{"value": "no"}, {"value": "yes"}]}],
        "stages": [
            {"refId": "1", "name": "Check", "type": "checkPreconditions",
             "preconditions": [{"type": "expression", "context": {"expression": "${parameters.fail == 'no'}"}}]},
        ],
    }
    run("save", write(tmp_path, document))

    code, out, _ = run("execute", "shop", "quick", "--wait", "--timeout", "30")
    assert code == 0
    assert json.loads(out)["status"] == "SUCCEEDED"

    code, out, _ = run("execute", "shop", "quick", "--param", "fail=yes", "--wait", "--timeout", "30")
    assert code == 1
    assert json.loads(out)["status"] == "TERMINAL"


def test_judge_and_skip_wait_refuse_what_the_stage_does_not_allow(workers, tmp_path):
    workers.start(1)
    run("save", write(tmp_path, PIPELINE))
    _, out, _ = run("execute", "shop", "deliver", "--param", "version=1")
    execution_id = out.strip()
    wait_for_stage(execution_id, "2", {Status.RUNNING})

    with pytest.raises(CommandError, match="not a manual judgment"):
        run("judge", execution_id, "1", "--continue")
    with pytest.raises(CommandError, match="cannot be skipped"):
        run("skip-wait", execution_id, "2")
    code, _, err = run("judge", execution_id, "2", "--continue", "--input", "yolo")
    assert code == 1 and err.startswith("/input: 'yolo' is not one of")
    with pytest.raises(CommandError, match="is not an execution id"):
        run("show", "not-a-uuid")


def test_the_command_line_is_a_real_process_with_exit_codes(tmp_path):
    """The same command as a user types it: a separate process and its exit status."""
    path = write(tmp_path, {"application": "shop", "name": "x", "stages": [{"refId": "1", "name": "W"}]})
    result = subprocess.run(
        [sys.executable, "manage.py", "pipeline", "validate", path], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "/stages/0/type: " in result.stderr


def test_cancel_pause_resume_and_restart_print_the_execution_after_the_change(workers, tmp_path):
    workers.start(1)
    document = {
        "application": "shop",
        "name": "steer",
        "stages": [
            {"refId": "1", "name": "Wait", "type": "wait", "waitTime": 30},
            {"refId": "2", "name": "Then", "type": "wait", "waitTime": 0, "requisiteStageRefIds": ["1"]},
        ],
    }
    run("save", write(tmp_path, document))
    _, out, _ = run("execute", "shop", "steer")
    execution_id = out.strip()
    wait_for_stage(execution_id, "1", {Status.RUNNING})

    code, out, _ = run("pause", execution_id)
    assert code == 0 and json.loads(out)["status"] == "PAUSED"
    assert json.loads(out)["paused"]["isPaused"] is True
    code, out, _ = run("resume", execution_id)
    assert code == 0 and json.loads(out)["status"] == "RUNNING"
    code, out, _ = run("cancel", execution_id, "--reason", "not now")
    canceled = json.loads(out)
    assert code == 0 and canceled["status"] == "CANCELED"
    assert canceled["cancellationReason"] == "not now" and canceled["canceledBy"] == f"cli:{getpass.getuser()}"
    assert canceled["stages"][0]["status"] == "CANCELED"

    code, out, _ = run("restart", execution_id, "1")
    assert code == 0 and json.loads(out)["status"] == "RUNNING"
    code, out, _ = run("skip-wait", execution_id, "1")
    assert code == 0
    assert wait_for_execution(execution_id, timeout=15).status == Status.SUCCEEDED
    with pytest.raises(CommandError, match="not PAUSED"):
        run("resume", execution_id)
