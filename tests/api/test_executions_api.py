"""The executions API: lists and filters, the execution document, starting and steering, and who may do what.

No worker runs in these tests. Executions are created with do_start_execution
and stay NOT_STARTED: their start job is queued on commit, which a test's
transaction never reaches. Where a scenario needs another state (a RUNNING
manual judgment, a finished stage), the test sets the rows' status directly.
"""

from datetime import timedelta

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from apps.accounts.models import AuditEvent
from apps.pipelines.api.serializers_executions import ExecutionDocumentSerializer
from apps.pipelines.choices import Status
from apps.pipelines.documents import execution_document
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.services import do_start_execution
from tests.scenarios import client_for, running_judgment, set_status, start

pytestmark = pytest.mark.django_db

def ids(response) -> set[str]:
    return {item["id"] for item in response.json()["results"]}


# --- Lists --------------------------------------------------------------------------------------


def test_an_imported_pipelines_executions_name_it_by_its_exported_id_as_spinnaker_does(people, shop):
    from apps.pipelines.services import do_save_pipeline

    imported, _ = do_save_pipeline({"application": "shop", "name": "from-spinnaker", "id": "pipeline1",
                                    "stages": [{"refId": "1", "name": "Wait", "type": "wait", "waitTime": 1}]},
                                   user="setup")
    execution = do_start_execution(imported, user="setup")
    start(shop)
    client = client_for(people["bob"])

    listed = {item["name"]: item["pipelineConfigId"] for item in client.get("/api/executions/").json()["results"]}
    document = client.get(f"/api/executions/{execution.id}/").json()

    assert listed == {"from-spinnaker": "pipeline1", "deliver": str(shop.id)}
    assert document["pipelineConfigId"] == "pipeline1"


def test_list_shows_summaries_with_stage_bars(people, shop):
    execution = start(shop)
    set_status(execution, Status.RUNNING, **{"1": Status.RUNNING})

    response = client_for(people["bob"]).get("/api/executions/")

    assert response.status_code == 200
    [item] = response.json()["results"]
    assert item["id"] == str(execution.id)
    assert item["application"] == "shop" and item["pipelineConfigId"] == str(shop.id)
    assert item["name"] == "deliver" and item["status"] == "RUNNING"
    assert item["trigger"] == {"type": "manual", "user": "alice"}
    assert isinstance(item["buildTime"], int) and isinstance(item["startTime"], int) and item["endTime"] is None
    assert [stage["refId"] for stage in item["stages"]] == ["1", "2"]
    assert item["stages"][0] == {
        "refId": "1", "name": "Wait", "type": "wait", "status": "RUNNING",
        "startTime": item["stages"][0]["startTime"], "endTime": None,
    }
    assert isinstance(item["stages"][0]["startTime"], int)


def test_list_filters_by_application_pipeline_status_trigger_and_time(people, shop, blog):
    waiting, running, paused = start(shop), start(shop), start(shop)
    set_status(running, Status.RUNNING)
    set_status(paused, Status.PAUSED)
    hooked = do_start_execution(blog, trigger={"type": "webhook", "user": "hooks"}, user="hooks")
    old = start(blog)
    Execution.objects.filter(id=old.id).update(created_at=timezone.now() - timedelta(days=3))
    client = client_for(people["root"])

    def listed(query: str) -> set[str]:
        response = client.get(f"/api/executions/?{query}")
        assert response.status_code == 200, response.json()
        return ids(response)

    assert listed("application=shop") == {str(waiting.id), str(running.id), str(paused.id)}
    assert listed(f"pipeline={blog.id}") == {str(hooked.id), str(old.id)}
    assert listed("status=RUNNING&status=PAUSED") == {str(running.id), str(paused.id)}
    assert listed("trigger_type=webhook") == {str(hooked.id)}
    cutoff = (timezone.now() - timedelta(days=1)).isoformat()
    assert listed(f"created_before={cutoff}".replace("+", "%2B")) == {str(old.id)}
    assert str(old.id) not in listed(f"created_after={cutoff}".replace("+", "%2B"))
    oldest_first = client.get("/api/executions/?ordering=created_at").json()["results"]
    assert oldest_first[0]["id"] == str(old.id)


def test_list_pages_with_a_cursor_newest_first(people, shop):
    executions = [start(shop) for _ in range(3)]
    client = client_for(people["bob"])

    first = client.get("/api/executions/?page_size=2").json()
    second = client.get(first["next"]).json()

    listed = [item["id"] for item in first["results"] + second["results"]]
    assert listed == [str(execution.id) for execution in reversed(executions)]
    assert second["next"] is None


@pytest.mark.parametrize(
    "query, pointer",
    [("pipeline=not-a-uuid", "/pipeline"), ("status=DONE", "/status"), ("created_after=yesterday", "/created_after")],
)
def test_list_refuses_bad_filters_in_the_error_shape(people, query, pointer):
    response = client_for(people["bob"]).get(f"/api/executions/?{query}")

    assert response.status_code == 400
    assert [error["pointer"] for error in response.json()["errors"]] == [pointer]


def test_list_costs_the_same_queries_for_2_or_20_executions(people, shop):
    client = client_for(people["bob"])

    def queries_for_page() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get("/api/executions/")
        assert response.status_code == 200
        return len(captured), len(response.json()["results"])

    for _ in range(2):
        start(shop)
    few, listed = queries_for_page()
    assert listed == 2
    for _ in range(18):
        start(shop)
    many, listed = queries_for_page()
    assert listed == 20
    assert few == many <= 3


# --- Reading one --------------------------------------------------------------------------------


def test_detail_is_the_spinnaker_execution_document(people, shop):
    execution = start(shop)

    response = client_for(people["bob"]).get(f"/api/executions/{execution.id}/")

    assert response.status_code == 200
    document = response.json()
    assert document == execution_document(Execution.objects.get(id=execution.id))
    assert set(document) == set(ExecutionDocumentSerializer().fields), "the schema describes every key"
    assert set(document["stages"][0]) == set(ExecutionDocumentSerializer().fields["stages"].child.fields)
    assert document["trigger"]["parameters"] == {"env": "staging", "version": "1.0"}


def test_outsider_gets_404_and_sees_nothing_in_lists(people, shop, blog):
    hidden, visible = start(shop), start(blog)
    client = client_for(people["charlie"])

    assert ids(client.get("/api/executions/")) == {str(visible.id)}
    assert ids(client.get("/api/executions/?application=shop")) == set()
    response = client.get(f"/api/executions/{hidden.id}/")
    assert response.status_code == 404
    assert response.json() == {"errors": [{"pointer": "", "message": "Not found."}]}
    assert client.post(f"/api/executions/{hidden.id}/cancel/", {}, format="json").status_code == 404


@pytest.mark.parametrize("key", ["not-a-uuid", "00000000-0000-0000-0000-000000000000", "1"])
def test_an_unknown_or_malformed_id_is_404(people, key):
    client = client_for(people["root"])

    assert client.get(f"/api/executions/{key}/").status_code == 404
    assert client.post(f"/api/executions/{key}/pause/").status_code == 404


def test_anonymous_is_401_in_the_error_shape(shop):
    response = APIClient().get("/api/executions/")

    assert response.status_code == 401
    assert response.json()["errors"][0]["pointer"] == ""
    assert response["WWW-Authenticate"].startswith("Bearer")


# --- Starting -----------------------------------------------------------------------------------


def test_executor_starts_a_pipeline_by_name_or_id(people, shop):
    client = client_for(people["alice"])

    by_name = client.post("/api/executions/", {"application": "shop", "pipeline": "deliver",
                                               "parameters": {"env": "prod"}}, format="json")
    by_id = client.post("/api/executions/", {"application": "shop", "pipeline": str(shop.id),
                                             "parameters": {"env": "staging"}}, format="json")

    assert by_name.status_code == 201, by_name.json()
    assert by_id.status_code == 201, by_id.json()
    document = by_name.json()
    assert document["status"] == "NOT_STARTED" and document["pipelineConfigId"] == str(shop.id)
    assert document["trigger"] == {"type": "manual", "user": "alice", "parameters": {"env": "prod", "version": "1.0"}}
    assert [stage["refId"] for stage in document["stages"]] == ["1", "2"]
    event = AuditEvent.objects.get(action="execution.started", object_id=document["id"])
    assert (event.actor, event.source, event.ip_address) == ("alice", "api", "127.0.0.1")


@pytest.mark.parametrize("trusted_proxies, recorded", [(0, "127.0.0.1"), (1, "203.0.113.9")])
def test_the_audit_log_records_the_client_behind_trusted_proxies_only(people, shop, trusted_proxies, recorded):
    """Behind a proxy the audit log names the client it forwards for, never an address a client wrote itself."""
    client = client_for(people["alice"])

    with override_settings(TRUSTED_PROXY_COUNT=trusted_proxies):
        started = client.post("/api/executions/", {"application": "shop", "pipeline": "deliver",
                                                 "parameters": {"env": "prod"}}, format="json",
                              HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9")

    assert started.status_code == 201, started.json()
    event = AuditEvent.objects.get(action="execution.started", object_id=started.json()["id"])
    assert event.ip_address == recorded


def test_start_with_bad_parameters_is_400_with_pointers_and_creates_nothing(people, shop):
    body = {"application": "shop", "pipeline": "deliver", "parameters": {"env": "qa", "colour": "red"}}

    response = client_for(people["alice"]).post("/api/executions/", body, format="json")

    assert response.status_code == 400
    assert {error["pointer"] for error in response.json()["errors"]} == {"/parameters/env", "/parameters/colour"}
    assert not Execution.objects.exists()
    assert not AuditEvent.objects.filter(action="execution.started").exists()


@pytest.mark.parametrize(
    "body, pointer",
    [
        ([1, 2], ""),
        ({"application": "shop"}, "/pipeline"),
        ({"application": "shop", "pipeline": "deliver", "parameters": ["env"]}, "/parameters"),
        ({"application": ["shop"], "pipeline": "deliver"}, "/application"),
    ],
)
def test_start_with_a_malformed_body_is_400(people, shop, body, pointer):
    response = client_for(people["alice"]).post("/api/executions/", body, format="json")

    assert response.status_code == 400
    assert pointer in {error["pointer"] for error in response.json()["errors"]}
    assert not Execution.objects.exists()


def test_start_is_404_for_an_unreadable_or_unknown_pipeline_and_403_for_a_reader(people, shop):
    body = {"application": "shop", "pipeline": "deliver", "parameters": {"env": "prod"}}

    assert client_for(people["charlie"]).post("/api/executions/", body, format="json").status_code == 404
    unknown = {**body, "pipeline": "nope"}
    assert client_for(people["alice"]).post("/api/executions/", unknown, format="json").status_code == 404
    assert client_for(people["bob"]).post("/api/executions/", body, format="json").status_code == 403
    assert not Execution.objects.exists()


# --- Steering -----------------------------------------------------------------------------------


ACTIONS = [
    ("cancel", {"reason": "no"}),
    ("pause", {}),
    ("resume", {}),
    ("restart", {"stage": "1"}),
    ("judge", {"stage": "2", "decision": "continue"}),
    ("skip-wait", {"stage": "1"}),
]


@pytest.mark.parametrize("name, body", ACTIONS)
def test_reader_is_refused_every_action(people, shop, name, body):
    execution = running_judgment(shop)
    events = AuditEvent.objects.count()

    response = client_for(people["bob"]).post(f"/api/executions/{execution.id}/{name}/", body, format="json")

    assert response.status_code == 403
    assert response.json()["errors"][0]["pointer"] == ""
    assert Execution.objects.get(id=execution.id).status == Status.RUNNING
    assert AuditEvent.objects.count() == events


def test_cancel_returns_the_canceled_document(people, shop):
    execution = start(shop)

    response = client_for(people["alice"]).post(
        f"/api/executions/{execution.id}/cancel/", {"reason": "wrong build"}, format="json"
    )

    assert response.status_code == 200
    document = response.json()
    assert document["status"] == "CANCELED" and document["canceled"] is True
    assert document["canceledBy"] == "alice" and document["cancellationReason"] == "wrong build"


def test_pause_then_resume(people, shop):
    execution = start(shop)
    set_status(execution, Status.RUNNING, **{"1": Status.RUNNING})
    client = client_for(people["alice"])

    paused = client.post(f"/api/executions/{execution.id}/pause/")
    resumed = client.post(f"/api/executions/{execution.id}/resume/")

    assert paused.status_code == 200 and paused.json()["status"] == "PAUSED"
    assert paused.json()["paused"]["isPaused"] is True
    assert resumed.status_code == 200 and resumed.json()["status"] == "RUNNING"


def test_resuming_a_running_execution_is_409_in_the_error_shape(people, shop):
    execution = start(shop)
    set_status(execution, Status.RUNNING)

    response = client_for(people["alice"]).post(f"/api/executions/{execution.id}/resume/")

    assert response.status_code == 409
    [error] = response.json()["errors"]
    assert error["pointer"] == "" and "not PAUSED" in error["message"]
    assert Execution.objects.get(id=execution.id).status == Status.RUNNING


def test_restart_runs_a_finished_stage_again(people, shop):
    execution = start(shop)
    set_status(execution, Status.TERMINAL, **{"1": Status.TERMINAL})

    response = client_for(people["alice"]).post(
        f"/api/executions/{execution.id}/restart/", {"stage": "1"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["status"] == "RUNNING"
    assert response.json()["stages"][0]["context"]["restartDetails"]["restartedBy"] == "alice"


def test_skip_wait_ends_a_running_wait(people, shop):
    execution = start(shop)
    set_status(execution, Status.RUNNING, **{"1": Status.RUNNING})

    response = client_for(people["alice"]).post(
        f"/api/executions/{execution.id}/skip-wait/", {"stage": "1"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["stages"][0]["context"]["skipRemainingWait"] is True


def test_judge_is_only_for_the_stages_roles(people, shop):
    execution = running_judgment(shop)
    body = {"stage": "2", "decision": "continue", "input": "ship"}

    refused = client_for(people["alice"]).post(f"/api/executions/{execution.id}/judge/", body, format="json")
    judged = client_for(people["dave"]).post(f"/api/executions/{execution.id}/judge/", body, format="json")

    assert refused.status_code == 403
    assert "release-managers" in refused.json()["errors"][0]["message"]
    assert judged.status_code == 200, judged.json()
    context = judged.json()["stages"][1]["context"]
    assert context["judgmentStatus"] == "continue" and context["judgmentInput"] == "ship"
    assert context["lastModifiedBy"] == "dave"


def test_a_judgment_comment_is_kept_with_the_stage(people, shop):
    execution = running_judgment(shop)
    body = {"stage": "2", "decision": "continue", "input": "ship", "comment": "  Both regions look good. "}

    judged = client_for(people["dave"]).post(f"/api/executions/{execution.id}/judge/", body, format="json")

    assert judged.json()["stages"][1]["context"]["judgmentComment"] == "Both regions look good."
    stage = StageExecution.objects.get(execution=execution, ref_id="2")
    assert stage.context["judgmentComment"] == "Both regions look good."


def test_judge_without_roles_needs_only_execute(people, shop):
    execution = running_judgment(shop)
    stage = StageExecution.objects.get(execution=execution, ref_id="2")
    stage.context = {**stage.context, "selectedStageRoles": []}
    stage.save(update_fields=["context"])

    response = client_for(people["alice"]).post(
        f"/api/executions/{execution.id}/judge/", {"stage": "2", "decision": "stop"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["stages"][1]["context"]["judgmentStatus"] == "stop"


@pytest.mark.parametrize(
    "name, body, pointer",
    [
        ("judge", {"stage": "9", "decision": "continue"}, "/stage"),
        ("judge", {"stage": "2", "decision": "maybe"}, "/decision"),
        ("judge", {"stage": "2", "decision": "continue", "input": "yolo"}, "/input"),
        ("judge", {"stage": "2", "decision": "continue", "comment": "x" * 2001}, "/comment"),
        ("judge", {"stage": {"refId": "2"}, "decision": "stop"}, "/stage"),
        ("judge", "continue", ""),
        ("restart", {"stage": "nope"}, "/stage"),
        ("restart", {}, "/stage"),
        ("skip-wait", {"stage": True}, "/stage"),
        ("cancel", {"reason": ["x"]}, "/reason"),
    ],
)
def test_bad_action_bodies_are_400_and_change_nothing(people, shop, name, body, pointer):
    execution = running_judgment(shop)
    events = AuditEvent.objects.count()

    response = client_for(people["dave"]).post(f"/api/executions/{execution.id}/{name}/", body, format="json")

    assert response.status_code == 400
    assert [error["pointer"] for error in response.json()["errors"]] == [pointer]
    assert AuditEvent.objects.count() == events
    assert StageExecution.objects.get(execution=execution, ref_id="2").context.get("judgmentStatus") is None


def test_judging_a_stage_that_is_not_a_judgment_is_409(people, shop):
    execution = running_judgment(shop)

    response = client_for(people["dave"]).post(
        f"/api/executions/{execution.id}/judge/", {"stage": "1", "decision": "continue"}, format="json"
    )

    assert response.status_code == 409


def test_an_expression_is_evaluated_against_an_execution_by_those_who_may_run_it(people, shop):
    execution = running_judgment(shop)
    url = f"/api/executions/{execution.id}/evaluate/"
    client = client_for(people["dave"])

    answer = client.post(url, {"expression": "${parameters.env}-${execution.name}"}, format="json")
    secret = client.post(url, {"expression": "${#secret('deploy-token')}"}, format="json")
    left = client.post(url, {"expression": "${trigger.nothingHere.deeper}"}, format="json")
    over_budget = client.post(url, {"expression": "${'a' * 100000000}"}, format="json")
    unknown_stage = client.post(url, {"expression": "${1}", "stageId": "9"}, format="json")
    reader = client_for(people["bob"]).post(url, {"expression": "${1}"}, format="json")

    assert answer.status_code == 200 and answer.json() == {"value": "staging-deliver"}
    assert "deploy-token" in secret.json()["value"], "a secret stays a reference"
    # As Orca evaluates a stage's context: what cannot be resolved is left as written, and the summary says why.
    assert left.status_code == 200 and left.json()["summary"]
    assert left.json()["value"] == "${trigger.nothingHere.deeper}"
    assert over_budget.status_code == 400 and over_budget.json()["errors"][0]["pointer"] == "/expression"
    assert unknown_stage.status_code == 400 and unknown_stage.json()["errors"][0]["pointer"] == "/stageId"
    assert reader.status_code == 403, "evaluating may fetch URLs: it needs execute, as running a stage does"


def test_the_application_pages_rows_are_freed_at_once_not_left_to_the_garbage_collector(people, shop):
    """The page's executions freed by reference counting once it is rendered, not kept by the cycles of its
    template context and prefetched stages until a full collection (which stalls whichever later request it
    lands in). Rendered by the view alone: the test client keeps every response's context for the test."""
    import gc

    from django.test import RequestFactory

    from apps.pipelines.views.applications import application_detail

    def render():
        request = RequestFactory().get("/applications/shop/")
        request.user = people["bob"]
        return application_detail(request, "shop")

    for _ in range(3):
        start(shop)
    assert render().status_code == 200  # warm: what the first request builds and keeps
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        response = render()
        assert response.status_code == 200
        del response
        gc.collect()
        left = [type(row).__name__ for row in gc.garbage if isinstance(row, (Execution, StageExecution))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []
