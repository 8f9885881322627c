"""What the engine and the services write to the event log: every transition and action, in order, with the change."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from apps.pipelines import engine
from apps.pipelines.choices import Status
from apps.pipelines.models import Event
from apps.pipelines.services import (
    ActionRefused,
    do_cancel_execution,
    do_judge_stage,
    do_pause_execution,
    do_restart_stage,
    do_resume_execution,
    do_start_execution,
)
from tests.conftest import wait_for_execution, wait_for_stage
from tests.scenarios import save, set_status, wait


def judgment(ref_id, requisites):
    return {"refId": ref_id, "name": "Approve", "type": "manualJudgment", "requisiteStageRefIds": list(requisites)}


def log_of(execution) -> list[tuple]:
    """The execution's events as a person reads them: what, which stage, from, to, who."""
    events = Event.objects.filter(execution_id=execution.id).order_by("xact", "id")
    return [(e.kind, e.stage_ref_id, e.previous_status, e.status, e.actor) for e in events]


def transitions(ref_id, *statuses) -> list[tuple]:
    kind = "stage.status" if ref_id else "execution.status"
    return [(kind, ref_id, before, after, "") for before, after in zip(statuses, statuses[1:], strict=False)]


def test_a_chain_a_judgment_and_a_restart_are_logged_in_the_order_they_happened(workers):
    workers.start(1)
    variables = {"refId": "1", "name": "Vars", "type": "evaluateVariables", "variables": [{"key": "v", "value": 1}]}
    execution = do_start_execution(save([variables, wait("2", 0, ["1"]), judgment("3", ["2"])]), user="alice")
    wait_for_stage(execution.id, "3", {Status.RUNNING})
    do_judge_stage(execution.id, "3", decision="continue", user="alice", judgment_input=None)
    wait_for_execution(execution.id)
    do_restart_stage(execution.id, "2", user="bob")
    wait_for_stage(execution.id, "3", {Status.RUNNING})

    assert log_of(execution) == [
        *transitions("", "NOT_STARTED", "RUNNING"),
        *transitions("1", "NOT_STARTED", "RUNNING", "SUCCEEDED"),
        *transitions("2", "NOT_STARTED", "RUNNING", "SUCCEEDED"),
        *transitions("3", "NOT_STARTED", "RUNNING"),
        ("stage.judged", "3", "", "", "alice"),
        *transitions("3", "RUNNING", "SUCCEEDED"),
        *transitions("", "RUNNING", "SUCCEEDED"),
        ("stage.restarted", "", "", "", "bob"),
        *transitions("2", "SUCCEEDED", "NOT_STARTED"),
        *transitions("3", "SUCCEEDED", "NOT_STARTED"),
        *transitions("", "SUCCEEDED", "RUNNING"),
        *transitions("2", "NOT_STARTED", "RUNNING", "SUCCEEDED"),
        *transitions("3", "NOT_STARTED", "RUNNING"),
    ]
    judged = Event.objects.get(execution_id=execution.id, kind="stage.judged")
    assert judged.payload == {"decision": "continue", "input": None}
    assert (judged.application_name, judged.pipeline_name, judged.stage_name, judged.stage_type) == (
        "shop", "deliver", "Approve", "manualJudgment"
    )
    restarted = Event.objects.get(execution_id=execution.id, kind="stage.restarted")
    assert restarted.payload == {"stage": "2"}


def test_a_pause_a_resume_and_a_cancel_are_logged_with_who_did_them(workers):
    workers.start(1)
    execution = do_start_execution(save([wait("1", 60)]))
    wait_for_stage(execution.id, "1", {Status.RUNNING})
    do_pause_execution(execution.id, user="bob")
    do_resume_execution(execution.id, user="bob")
    do_cancel_execution(execution.id, user="carol", reason="wrong build")
    wait_for_execution(execution.id)

    assert log_of(execution) == [
        *transitions("", "NOT_STARTED", "RUNNING"),
        *transitions("1", "NOT_STARTED", "RUNNING"),
        ("execution.paused", "", "", "", "bob"),
        *transitions("", "RUNNING", "PAUSED"),
        *transitions("1", "RUNNING", "PAUSED"),
        ("execution.resumed", "", "", "", "bob"),
        *transitions("", "PAUSED", "RUNNING"),
        *transitions("1", "PAUSED", "RUNNING"),
        ("execution.canceled", "", "", "", "carol"),
        *transitions("1", "RUNNING", "CANCELED"),
        *transitions("", "RUNNING", "CANCELED"),
    ]
    canceled = Event.objects.get(execution_id=execution.id, kind="execution.canceled")
    assert canceled.payload == {"reason": "wrong build"}


@pytest.mark.django_db
def test_an_action_writes_its_events_with_one_insert_in_its_own_transaction():
    execution = do_start_execution(save([wait("1", 60), wait("2", 60)]))
    set_status(execution, Status.RUNNING, **{"1": Status.RUNNING, "2": Status.RUNNING})

    with CaptureQueriesContext(connection) as queries:
        do_pause_execution(execution.id, user="bob")

    inserts = [q["sql"] for q in queries if q["sql"].startswith('INSERT INTO "pipelines_event"')]
    assert len(inserts) == 1
    assert [(kind, ref) for kind, ref, *_ in log_of(execution)] == [
        ("execution.paused", ""), ("execution.status", ""), ("stage.status", "1"), ("stage.status", "2"),
    ]


@pytest.mark.django_db
def test_a_rolled_back_change_or_a_refused_action_writes_no_event():
    execution = do_start_execution(save([wait("1", 60)]))
    set_status(execution, Status.RUNNING, **{"1": Status.RUNNING})

    with pytest.raises(RuntimeError), transaction.atomic():
        dispatch = engine.Dispatch()
        engine.pause_execution(engine.lock_execution(execution.id), dispatch)
        dispatch.send_on_commit()
        assert Event.objects.filter(execution_id=execution.id).count() == 2  # written inside the transaction
        raise RuntimeError("the change fails after its events were written")
    with pytest.raises(ActionRefused):
        do_resume_execution(execution.id, user="bob")  # it is RUNNING, not PAUSED

    assert not Event.objects.filter(execution_id=execution.id).exists()
