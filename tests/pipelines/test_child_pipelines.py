"""The ``pipeline`` stage: a parent starts a child pipeline, waits for it, reads its results, cancels it."""

import time

import pytest
from django.contrib.auth.models import User

from apps.accounts.audit import Actor
from apps.accounts.models import AuditEvent, AuditSource
from apps.accounts.permissions import EXECUTE
from apps.accounts.services import do_grant
from apps.pipelines.checks import child_start_refusal
from apps.pipelines.choices import Status
from apps.pipelines.documents import execution_document
from apps.pipelines.models import Application, Execution, StageExecution
from apps.pipelines.services import (
    do_cancel_execution,
    do_restart_stage,
    do_resume_execution,
    do_save_pipeline,
    do_start_execution,
)
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


# --- Whom the child acts as: the one who asked, authorized when it starts ---------------------------


def person(username, *, superuser=False, execute_in=()):
    """A user account (a person or a service account's user), granted execute on the named applications."""
    user = User.objects.create_user(username, is_superuser=superuser)
    for name in execute_in:
        application, _ = Application.objects.get_or_create(name=name)
        do_grant(application, user, EXECUTE, actor="system")
    return Actor(username=username, source=AuditSource.API, user=user)


def test_a_restarted_pipeline_stage_runs_its_child_as_the_restarter_and_is_refused_outside_their_rights(workers):
    workers.start(2)
    child = child_pipeline()
    parent = parent_pipeline(child)
    admin, mallory = person("admin", superuser=True), person("mallory", execute_in=["shop"])
    first = wait_for_execution(do_start_execution(parent, user=admin).id, timeout=20)
    assert first.status == Status.SUCCEEDED  # the admin may run platform's pipeline

    do_restart_stage(first.id, "1", user=mallory)

    again = wait_for_execution(first.id, timeout=20)
    stage = again.stages.get(ref_id="1")
    assert (again.status, stage.status) == (Status.TERMINAL, Status.TERMINAL)
    assert stage.context["exception"]["details"]["error"] == "mallory may not run pipelines of application 'platform'"
    # platform's pipeline ran once, for the admin; nobody is recorded starting it again.
    assert Execution.objects.filter(pipeline=child).count() == 1
    assert list(AuditEvent.objects.filter(action="execution.started", application__name="platform")
                .values_list("actor", flat=True)) == ["admin"]


def test_a_restarter_who_may_run_the_child_starts_it_in_their_own_name(workers):
    workers.start(2)
    child = child_pipeline()
    parent = parent_pipeline(child)
    admin, erin = person("admin", superuser=True), person("erin", execute_in=["shop", "platform"])
    first = wait_for_execution(do_start_execution(parent, user=admin).id, timeout=20)

    do_restart_stage(first.id, "1", user=erin)

    assert wait_for_execution(first.id, timeout=20).status == Status.SUCCEEDED
    rerun = Execution.objects.filter(pipeline=child).order_by("-created_at").first()
    assert (rerun.started_by, rerun.trigger["user"], rerun.run_as.username) == ("erin", "erin", "erin")
    started = AuditEvent.objects.filter(action="execution.started", object_id=str(rerun.id)).get()
    assert (started.actor, started.details["parentExecution"]) == ("erin", str(first.id))


def waiting_parent(child):
    """A parent whose pipeline stage starts its child only after a short wait."""
    pipeline, _ = do_save_pipeline({
        "application": "shop", "name": "later",
        "stages": [
            {"refId": "1", "name": "Settle", "type": "wait", "waitTime": 2},
            {"refId": "2", "name": "Provision", "type": "pipeline", "application": "platform",
             "pipeline": str(child.id), "pipelineParameters": {"size": "large"}, "requisiteStageRefIds": ["1"]},
        ],
    })
    return pipeline


@pytest.mark.parametrize("gone", ["deleted", "deactivated"])
def test_an_account_gone_while_its_execution_runs_is_refused_not_taken_for_the_system(workers, gone):
    workers.start(2)
    child = child_pipeline()
    bot = person("ci-bot", execute_in=["shop", "platform"])
    execution = do_start_execution(waiting_parent(child), user=bot)
    if gone == "deleted":
        bot.user.delete()
    else:
        User.objects.filter(pk=bot.user.pk).update(is_active=False)

    ended = wait_for_execution(execution.id, timeout=20)
    stage = ended.stages.get(ref_id="2")
    assert (ended.status, stage.status) == (Status.TERMINAL, Status.TERMINAL)
    reason = "no longer exists" if gone == "deleted" else "is inactive"
    assert stage.context["exception"]["details"]["error"] == f"ci-bot who started this execution {reason}"
    assert not Execution.objects.filter(pipeline=child).exists()


@pytest.mark.django_db
def test_an_execution_acts_as_whoever_resumed_it_and_a_command_line_start_as_the_system():
    child = child_pipeline()
    admin, mallory = person("admin", superuser=True), person("mallory", execute_in=["shop"])
    execution = do_start_execution(parent_pipeline(child), user=admin)
    assert child_start_refusal(execution, child) is None
    Execution.objects.filter(pk=execution.pk).update(status=Status.PAUSED)

    do_resume_execution(execution.id, user=mallory)

    execution.refresh_from_db()
    assert (execution.started_by, execution.run_as.username, execution.run_as_system) == ("admin", "mallory", False)
    assert child_start_refusal(execution, child) == "mallory may not run pipelines of application 'platform'"
    assert AuditEvent.objects.get(action="execution.resumed").actor == "mallory"
    # The command line is the system, said so explicitly: it may start anything.
    cli = do_start_execution(parent_pipeline(child), user=Actor(username="cli", source=AuditSource.CLI))
    assert (cli.run_as, cli.run_as_system) == (None, True)
    assert child_start_refusal(cli, child) is None
