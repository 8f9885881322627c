"""Documents and expressions as Spinnaker treats them: where this platform once differed from Orca, it agrees now.

One section per difference, each with documents and expressions written for these tests. The expression
language's own cases are in test_expressions.py; the webhook's wait without a status path in test_webhook.py.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from apps.pipelines.choices import Status
from apps.pipelines.definition import validate_pipeline
from apps.pipelines.evaluation import evaluate_batch
from apps.pipelines.expressions import SUMMARY_KEY, ExpressionError
from apps.pipelines.models import Application, Execution, Pipeline, StageExecution
from apps.pipelines.scope import ExpressionScope
from apps.pipelines.services import do_save_pipeline, do_start_execution
from apps.pipelines.stage_runtime import ServiceRuntime
from apps.pipelines.stages import get_stage_type
from tests.conftest import wait_for_execution


def document(*stages, application="orders", name="release", **extra) -> dict:
    return {"application": application, "name": name, "stages": list(stages), **extra}


def save(*stages, **extra) -> Pipeline:
    pipeline, _ = do_save_pipeline(document(*stages, **extra))
    return pipeline


def rows(execution) -> dict[str, StageExecution]:
    return {stage.ref_id: stage for stage in StageExecution.objects.filter(execution=execution)}


def run_task(stage_type: str, context: dict):
    """One step of a stage type's task on an unsaved stage that started now."""
    stage = StageExecution(execution=Execution(pauses=[]), ref_id="1", name="step", type=stage_type,
                           context=context, definition=context, start_time=timezone.now())
    return get_stage_type(stage_type).run(stage, _NoScope(), None)


class _NoScope:
    stages: list = []


# --- 1. A stage without a name is named after its type ---------------------------------------------


@pytest.mark.django_db
def test_a_stage_without_a_name_loads_and_runs_named_after_its_type():
    stage = {"refId": "1", "type": "wait", "waitTime": 1}
    assert validate_pipeline(document(stage)) == []

    execution = do_start_execution(save(stage))

    assert rows(execution)["1"].name == "wait"


def test_a_stage_name_that_is_given_must_still_be_text():
    problems = validate_pipeline(document({"refId": "1", "type": "wait", "name": 7}))
    assert [(problem.pointer, problem.message) for problem in problems] == [
        ("/stages/0/name", 'must be a string (write "7")')
    ]


# --- 2. Application names: capitals, _ and ., compared in any case --------------------------------


@pytest.mark.django_db
def test_application_names_with_capitals_underscores_and_dots_are_accepted():
    for name in ("Checkout", "order_service", "payments.v2"):
        assert validate_pipeline(document({"refId": "1", "type": "wait"}, application=name)) == []


@pytest.mark.django_db
def test_an_application_named_in_another_case_is_the_same_application():
    first = save({"refId": "1", "type": "wait"}, application="Checkout")
    again, created = do_save_pipeline(document({"refId": "1", "type": "wait", "waitTime": 5}, application="CHECKOUT"))

    assert not created and again.id == first.id
    assert Application.objects.count() == 1
    assert again.definition["application"] == "Checkout"  # as it was first written
    assert Application.objects.named("checkout").get().name == "Checkout"


@pytest.mark.django_db
def test_the_api_finds_an_application_by_its_name_in_any_case_and_with_dots():
    from django.contrib.auth.models import User
    from rest_framework.test import APIClient

    save({"refId": "1", "type": "wait"}, application="payments.V2")
    client = APIClient()
    client.force_authenticate(User.objects.create_superuser("root", "root@example.com", "pw"))

    response = client.get("/api/applications/PAYMENTS.v2/")

    assert response.status_code == 200
    assert response.json()["name"] == "payments.V2"


# --- 3. A wait without waitTime waits 0 s ----------------------------------------------------------


def test_a_wait_without_wait_time_loads_and_ends_at_once():
    assert validate_pipeline(document({"refId": "1", "name": "Pause", "type": "wait"})) == []
    assert run_task("wait", {}).status == Status.SUCCEEDED
    assert run_task("wait", {"waitTime": None}).status == Status.SUCCEEDED
    assert run_task("wait", {"waitTime": 300}).status == Status.RUNNING


# --- 4. checkPreconditions with no preconditions succeeds ------------------------------------------


def test_an_empty_list_of_preconditions_loads_and_checks_nothing():
    stage = {"refId": "1", "name": "Check", "type": "checkPreconditions", "preconditions": []}
    assert validate_pipeline(document(stage)) == []
    assert validate_pipeline(document({"refId": "1", "name": "Check", "type": "checkPreconditions"})) == []
    assert run_task("checkPreconditions", {"preconditions": []}).status == Status.SUCCEEDED


@pytest.mark.django_db
def test_a_cluster_size_precondition_loads_and_says_why_it_cannot_be_checked():
    precondition = {"type": "clusterSize", "context": {"credentials": "prod", "regions": ["us-east-1"],
                                                       "cluster": "orders-prod", "comparison": "==", "expected": 1}}
    stage = {"refId": "1", "name": "Check", "type": "checkPreconditions", "preconditions": [precondition]}
    assert validate_pipeline(document(stage)) == []

    result = run_task("checkPreconditions", {"preconditions": [precondition]})

    assert result.status == Status.TERMINAL
    assert "clusterSize: there is no Docker engine account 'prod'" in result.error


def test_an_unknown_precondition_type_is_still_refused_naming_the_known_ones():
    stage = {"refId": "1", "name": "Check", "type": "checkPreconditions", "preconditions": [{"type": "vibes"}]}
    [problem] = validate_pipeline(document(stage))
    assert problem.pointer == "/stages/0/preconditions/0/type"
    assert "'expression', 'stageStatus', 'clusterSize'" in problem.message


# --- 5. (webhook waitForCompletion without statusJsonPath: test_webhook.py) ------------------------


def test_a_webhook_waiting_for_completion_needs_no_status_path():
    stage = {"refId": "1", "name": "Hook", "type": "webhook", "url": "https://hooks.example.com/build",
             "waitForCompletion": True, "statusUrlResolution": "getMethod"}
    assert validate_pipeline(document(stage)) == []


# --- 6. What cannot be resolved stays as text, recorded in expressionEvaluationSummary -------------


@pytest.mark.django_db
def test_a_stage_context_keeps_an_unresolvable_expression_as_text_and_records_why():
    stage = {"refId": "1", "name": "Note", "type": "wait", "waitTime": 0,
             "comments": "deploying ${parameters.missing.version} to ${parameters['region'] ?: 'us-east-1'}",
             "owner": "${nobody}"}
    execution = do_start_execution(save(stage))
    row = rows(execution)["1"]

    context = ExpressionScope(execution, stage=row).evaluate_context({key: stage[key] for key in ("comments", "owner")})

    assert context["comments"] == "deploying ${parameters.missing.version} to us-east-1"
    assert context["owner"] == "${nobody}"
    summary = context[SUMMARY_KEY]
    assert summary["parameters.missing.version"][0]["level"] == "ERROR"
    assert "parameters.missing is null" in summary["parameters.missing.version"][0]["description"]
    assert summary["nobody"][0]["level"] == "INFO"


@pytest.mark.django_db
def test_a_stage_that_sets_fail_on_failed_expressions_fails_for_them():
    stage = {"refId": "1", "name": "Note", "type": "wait", "failOnFailedExpressions": True, "owner": "${nobody}"}
    execution = do_start_execution(save(stage))

    with pytest.raises(ExpressionError, match="nobody"):
        ExpressionScope(execution, stage=rows(execution)["1"]).evaluate_context(
            {"owner": "${nobody}", "failOnFailedExpressions": True})


def test_a_run_keeps_the_unresolved_text_and_the_stage_succeeds(workers):
    workers.start(1)
    stage = {"refId": "1", "name": "Wait", "type": "wait", "waitTime": 0, "comments": "${parameters.derp}"}

    execution = wait_for_execution(do_start_execution(save(stage)).id)

    assert execution.status == Status.SUCCEEDED
    context = rows(execution)["1"].context
    assert context["comments"] == "${parameters.derp}"
    assert SUMMARY_KEY in context


# --- 7. A pipeline with no stages ends TERMINAL ----------------------------------------------------


def test_a_pipeline_with_no_stages_ends_terminal_saying_so(workers):
    workers.start(1)

    execution = wait_for_execution(do_start_execution(save()).id)

    assert execution.status == Status.TERMINAL
    assert execution.exception["details"]["error"] == "No initial stages found"


# --- 8. A child pipeline gets the parameters its parent passes, declared or not ---------------------


def test_a_child_is_passed_parameters_it_does_not_declare(workers):
    workers.start(2)
    child = save({"refId": "1", "name": "Vars", "type": "evaluateVariables",
                  "variables": [{"key": "seen", "value": "${parameters.flavour}-${parameters.size}"}]},
                 name="child", parameterConfig=[{"name": "size", "default": "small"}])
    parent = save({"refId": "1", "name": "Run child", "type": "pipeline", "pipeline": str(child.id),
                   "pipelineParameters": {"flavour": "vanilla"}}, name="parent")

    execution = wait_for_execution(do_start_execution(parent).id, timeout=60)

    assert execution.status == Status.SUCCEEDED
    assert rows(execution)["1"].outputs["seen"] == "vanilla-small"


@pytest.mark.django_db
def test_a_manual_start_still_refuses_a_parameter_the_pipeline_does_not_declare():
    from apps.pipelines.problems import InvalidDocument

    with pytest.raises(InvalidDocument) as refused:
        do_start_execution(save({"refId": "1", "type": "wait"}), parameters={"flavour": "vanilla"})
    assert [problem.pointer for problem in refused.value.problems] == ["/parameters/flavour"]


# --- 9. An exported id that is not a UUID is kept, and a pipeline stage finds it -------------------


@pytest.mark.django_db
def test_an_exported_non_uuid_id_is_kept_and_a_pipeline_stage_finds_it():
    child = save({"refId": "1", "type": "wait"}, name="child", id="deploy-pipeline-1")

    assert child.definition["id"] == "deploy-pipeline-1" == child.spinnaker_id
    assert ServiceRuntime().find_pipeline("ORDERS", "deploy-pipeline-1") == child
    # Saving it again (as the editor or spin does) keeps that id; another pipeline may not take it.
    again, _ = do_save_pipeline(document({"refId": "1", "type": "wait", "waitTime": 3}, name="child"))
    assert again.definition["id"] == "deploy-pipeline-1"
    other = save({"refId": "1", "type": "wait"}, name="other", id="deploy-pipeline-1")
    assert other.definition["id"] == str(other.id)


@pytest.mark.django_db
def test_pipeline_id_gives_the_id_spinnaker_knows():
    save({"refId": "1", "type": "wait"}, name="child", id="deploy-pipeline-1")
    execution = do_start_execution(save({"refId": "1", "type": "wait"}))

    scope = ExpressionScope(execution)
    assert scope.evaluate("${#pipelineId('child')}") == "deploy-pipeline-1"
    assert scope.evaluate("${#pipelineIdOrNull('nothing')}") is None


# --- 10. The SpEL real exports use (more cases in test_expressions.py) -----------------------------


def batch(expression, context=None, **extra) -> dict:
    [outcome] = evaluate_batch([{"expression": expression, "context": context or {}, **extra}])
    return outcome


STAGES = [
    {"id": "01ABC", "refId": "1", "name": "Build", "type": "wait", "status": "SUCCEEDED", "context": {"zone": "b"}},
    {"id": "01ABD", "refId": "2", "name": "Approve", "type": "evaluateVariables", "status": "TERMINAL",
     "context": {"judgmentInput": "not this one"}},
    {"id": "01ABE", "refId": "3", "name": "Approve", "type": "manualJudgment", "status": "SUCCEEDED",
     "context": {"judgmentInput": "ship it"}},
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("${#stage('Build').hasSucceeded}", True),
        ("${#stage('Approve').hasFailed}", True),
        ("${#stage('01ABC').context.zone}", "b"),
        ("${#stageExists('Build')}", True),
        ("${#stageExists('Deploy')}", False),
        ("${#judgment('Approve')}", "ship it"),
        ("${#judgement('Approve')}", "ship it"),
        ("${#stageByRefId('3').name}", "Approve"),
    ],
)
def test_stage_helpers_answer_as_orcas_do(expression, expected):
    assert batch(expression, stages=STAGES) == {"value": expected}


@pytest.mark.django_db
def test_root_and_bare_names_read_the_current_stage_context():
    current = {"package": "orders-api", "baseOs": "noble"}
    assert batch("${#root['package']}-${ baseOs }", currentStageContext=current) == {"value": "orders-api-noble"}
    assert batch("${#root.region ?: 'eu-west-1'}", currentStageContext=current) == {"value": "eu-west-1"}


@pytest.mark.django_db
def test_types_kork_allows_are_constructed_and_referenced():
    assert batch("${new Integer(parameters.replicas) * 2}", {"parameters": {"replicas": "3"}}) == {"value": 6}
    assert batch("${new java.util.UUID(0, 1).toString()}") == {"value": "00000000-0000-0000-0000-000000000001"}
    assert batch("${T(java.time.LocalDate).parse('2024-01-31').plusMonths(1)}") == {"value": "2024-02-29"}
    assert batch("${new java.text.SimpleDateFormat('yyyy/MM/dd').format(new java.util.Date(0))}") == {
        "value": "1970/01/01"}


@pytest.mark.django_db
def test_a_type_kork_does_not_allow_is_left_as_text_with_the_reason():
    outcome = batch("${T(java.lang.Runtime).getRuntime().exec('id')}")
    assert outcome["value"] == "${T(java.lang.Runtime).getRuntime().exec('id')}"
    [entry] = outcome["summary"].values()
    assert "java.lang.Runtime is not allowed" in entry[0]["description"]


@pytest.mark.django_db
def test_selection_and_projection_over_the_execution_stages():
    context = {"execution": {"stages": STAGES}}
    assert batch("${execution.stages.?[name == 'Approve'].![refId]}", context) == {"value": ["2", "3"]}
    assert batch("${execution.stages.^[status == 'SUCCEEDED'].name}", context) == {"value": "Build"}
    assert batch("${execution.stages.$[status == 'SUCCEEDED'].refId}", context) == {"value": "3"}


@pytest.mark.django_db
def test_a_map_shows_as_java_does_with_to_string():
    assert batch("${ {'region': 'eu', 'size': 2}.toString() }") == {"value": "{region=eu, size=2}"}


@pytest.mark.django_db
def test_helpers_about_deployments_are_refused_saying_why():
    outcome = batch("${#deployedServerGroups()}")
    [entry] = outcome["summary"].values()
    assert "needs the server groups deploy stages create" in entry[0]["description"]


@pytest.mark.django_db
def test_evaluate_variables_keeps_a_value_it_cannot_resolve_and_fails_only_when_asked():
    variables = [{"key": "a", "value": "${10}"}, {"key": "b", "value": "this one should fail: ${a * c}"}]
    for fail_on_failed, expected in ((False, Status.SUCCEEDED), (True, Status.TERMINAL)):
        stage = {"refId": "1", "name": "Vars", "type": "evaluateVariables", "variables": variables,
                 "failOnFailedExpressions": fail_on_failed}
        execution = do_start_execution(save(stage, name=f"vars-{fail_on_failed}"))
        row = rows(execution)["1"]

        result = get_stage_type("evaluateVariables").run(row, ExpressionScope(execution, stage=row), None)

        assert result.status == expected
        assert result.context["variables"][1]["value"] == "this one should fail: ${a * c}"
        assert "a * c" in result.context[SUMMARY_KEY]


# --- #pipelineIdInApplication reads another application only for who may read it -----------------


@pytest.mark.django_db
def test_pipeline_id_in_another_application_needs_read_on_it():
    from django.contrib.auth.models import User

    from apps.accounts.audit import Actor
    from apps.accounts.services import do_grant

    save({"refId": "1", "type": "wait"}, application="payments", name="deploy", id="payments-deploy")
    pipeline = save({"refId": "1", "type": "wait"})
    reader, stranger = User.objects.create_user("reader"), User.objects.create_user("stranger")
    for user in (reader, stranger):
        for action in ("read", "execute"):
            do_grant(pipeline.application, user, action, actor="setup")
    do_grant(Application.objects.get(name="payments"), reader, "read", actor="setup")
    expression = "${#pipelineIdInApplication('deploy', 'payments')}"

    def evaluated(user):
        execution = do_start_execution(pipeline, user=Actor(username=user.username, user=user) if user else "")
        return ExpressionScope(execution).evaluate(expression)

    assert evaluated(reader) == "payments-deploy"
    assert evaluated(None) == "payments-deploy"  # an operator's start
    with pytest.raises(ExpressionError, match="no pipeline named 'deploy' in application 'payments'"):
        evaluated(stranger)  # as for a pipeline that does not exist
