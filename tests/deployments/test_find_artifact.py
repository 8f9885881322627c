"""``findArtifactFromExecution``: a consumer pipeline binds what another pipeline's newest execution produced.

The producer ``images/build`` outputs a docker/image artifact from its first stage (an ``artifacts`` output, as
bake's) and fails its second stage when asked, so that its executions end SUCCEEDED or TERMINAL. The consumer
``shop/deliver`` finds the artifact and a later stage reads it. alice may read images; charlie may not.
"""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.services import do_grant
from apps.deployments.stages.artifacts import bound_artifact
from apps.deployments.stages.find_artifact import execution_artifacts
from apps.pipelines.choices import Status
from apps.pipelines.definition import validate_pipeline
from apps.pipelines.models import Application, Execution, StageExecution
from apps.pipelines.services import do_save_pipeline, do_start_execution
from apps.pipelines.stage_runtime import ServiceRuntime
from apps.pipelines.stages import get_stage_type
from tests.conftest import wait_for_execution

IMAGE_ID = "image-of-build"


def image(tag: str) -> dict:
    return {"type": "docker/image", "name": "registry.local/images/web", "version": tag,
            "reference": f"registry.local/images/web:{tag}"}


def expected(**options) -> dict:
    return {"id": IMAGE_ID, "displayName": "web image",
            "matchArtifact": {"type": "docker/image", "name": r"registry\.local/images/web", "kind": "custom"},
            **options}


@pytest.fixture
def producer():
    pipeline, _ = do_save_pipeline({
        "application": "images", "name": "build",
        "parameterConfig": [{"name": "tag", "required": True}, {"name": "fail", "default": "no"}],
        "stages": [
            {"refId": "1", "name": "Build", "type": "evaluateVariables", "variables": [
                {"key": "artifacts", "value": [{"type": "docker/image", "name": "registry.local/images/web",
                                                "version": "${parameters.tag}",
                                                "reference": "registry.local/images/web:${parameters.tag}"}]}]},
            {"refId": "2", "name": "Test", "type": "checkPreconditions", "requisiteStageRefIds": ["1"],
             "preconditions": [{"type": "expression", "context": {"expression": "${parameters.fail == 'no'}"}}]},
        ],
    })
    return pipeline


@pytest.fixture
def people(producer):
    shop = Application.objects.get_or_create(name="shop")[0]
    users = {name: User.objects.create_user(name) for name in ("alice", "charlie")}
    for user in users.values():
        do_grant(shop, user, "execute", actor="setup")
    do_grant(producer.application, users["alice"], "read", actor="setup")
    return users


def consumer(producer, application="images", **stage_options):
    find = {"refId": "1", "name": "Find", "type": "findArtifactFromExecution", "application": application,
            "pipeline": str(producer.id), "executionOptions": {"successful": True},
            "expectedArtifacts": [expected()], **stage_options}
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "deliver", "stages": [
        find,
        {"refId": "2", "name": "Use", "type": "evaluateVariables", "requisiteStageRefIds": ["1"], "variables": [
            {"key": "version", "value": "${#stage('Find').outputs.artifacts[0].version}"},
            {"key": "bound", "value": "${#stage('Find').outputs.resolvedExpectedArtifacts[0].boundArtifact.reference}"},
        ]},
    ]})
    return pipeline


def produce(producer, tag: str, fail: str = "no") -> Execution:
    return wait_for_execution(do_start_execution(producer, parameters={"tag": tag, "fail": fail}).id, timeout=20)


def consume(pipeline, user) -> Execution:
    return wait_for_execution(do_start_execution(pipeline, user=user).id, timeout=20)


def failure(execution: Execution) -> str:
    return execution.stages.get(ref_id="1").context["exception"]["details"]["error"]


def test_a_consumer_binds_the_newest_succeeded_executions_artifact_and_a_later_stage_reads_it(workers, producer,
                                                                                                people):
    workers.start(2)
    assert produce(producer, "1.0").status == Status.SUCCEEDED
    newest = produce(producer, "2.0")
    assert produce(producer, "3.0", fail="yes").status == Status.TERMINAL

    execution = consume(consumer(producer), people["alice"])

    assert execution.status == Status.SUCCEEDED
    find, use = execution.stages.get(ref_id="1"), execution.stages.get(ref_id="2")
    assert find.outputs["artifacts"] == [image("2.0")]
    assert find.outputs["resolvedExpectedArtifacts"] == [{**expected(), "boundArtifact": image("2.0")}]
    assert find.context["sourceExecutionId"] == str(newest.id)
    assert use.outputs == {"version": "2.0", "bound": "registry.local/images/web:2.0"}
    # What deployManifest's requiredArtifactIds binds, from a stage after Find.
    assert bound_artifact(use, IMAGE_ID, "requiredArtifactIds.0") == image("2.0")


def test_execution_options_choose_which_statuses_count(workers, producer, people):
    workers.start(2)
    produce(producer, "1.0")
    produce(producer, "2.0", fail="yes")
    produce(producer, "3.0")

    terminal = consume(consumer(producer, executionOptions={"terminal": True}), people["alice"])
    either = consume(consumer(producer, executionOptions={"terminal": True, "succeeded": True}), people["alice"])
    running = consume(consumer(producer, executionOptions={"running": True}), people["alice"])

    assert terminal.stages.get(ref_id="2").outputs["version"] == "2.0"
    assert either.stages.get(ref_id="2").outputs["version"] == "3.0"
    assert running.status == Status.TERMINAL
    assert "has no RUNNING execution among its newest" in failure(running)


def test_an_expected_artifact_that_matches_nothing_binds_its_default(workers, producer, people):
    workers.start(1)
    produce(producer, "1.0")
    default = image("0.9-fallback")
    unmatched = {"id": IMAGE_ID, "matchArtifact": {"type": "docker/image", "name": "elsewhere/.*"},
                 "useDefaultArtifact": True, "defaultArtifact": default}
    pipeline = consumer(producer, expectedArtifacts=None, expectedArtifact=unmatched)  # the older single form

    execution = consume(pipeline, people["alice"])

    assert execution.status == Status.SUCCEEDED
    assert execution.stages.get(ref_id="2").outputs["version"] == "0.9-fallback"
    assert bound_artifact(execution.stages.get(ref_id="2"), IMAGE_ID, "requiredArtifactIds.0") == default


def test_what_cannot_be_found_ends_the_stage_terminal_saying_what(workers, producer, people):
    workers.start(2)
    before_any = consume(consumer(producer), people["alice"])
    produce(producer, "1.0")
    unmatched = consume(consumer(producer, expectedArtifacts=[expected(matchArtifact={"name": "nothing-.*"})]),
                        people["alice"])
    no_pipeline = consume(consumer(producer, pipeline="no-such-pipeline"), people["alice"])

    assert before_any.status == Status.TERMINAL
    assert "pipeline 'build' of application 'images' has no SUCCEEDED execution" in failure(before_any)
    assert unmatched.status == Status.TERMINAL
    assert failure(unmatched).startswith("expectedArtifacts.0: expected artifact 'web image' matched no artifact")
    assert "and has no default" in failure(unmatched)
    assert no_pipeline.status == Status.TERMINAL
    assert failure(no_pipeline) == "pipeline: application 'images' has no pipeline 'no-such-pipeline'"


def test_it_refuses_an_identity_that_may_not_read_the_other_application_as_if_it_did_not_exist(workers, producer,
                                                                                                 people):
    workers.start(2)
    produce(producer, "1.0")

    refused = consume(consumer(producer), people["charlie"])
    missing = consume(consumer(producer, application="ghost"), people["alice"])

    assert refused.status == missing.status == Status.TERMINAL
    assert refused.stages.get(ref_id="1").outputs == {}
    assert failure(refused) == "application: charlie may not read an application 'images' (or there is none)"
    assert failure(missing) == "application: alice may not read an application 'ghost' (or there is none)"


def test_the_search_takes_as_many_queries_however_many_executions_and_stages(workers, producer, people):
    workers.start(1)
    produce(producer, "1.0")
    execution = consume(consumer(producer), people["alice"])
    find = StageExecution.objects.select_related("execution").get(execution=execution, ref_id="1")
    stage_type = get_stage_type("findArtifactFromExecution")

    def queries() -> tuple[int, dict]:
        with CaptureQueriesContext(connection) as captured:
            result = stage_type.run(find, None, ServiceRuntime())
        return len(captured), result.outputs

    before, _ = queries()
    for number in range(5):  # newer executions, one with many stages
        newer = Execution.objects.create(application=producer.application, pipeline=producer, name="build",
                                         definition={}, status=Status.SUCCEEDED)
        for position in range(10):
            StageExecution.objects.create(execution=newer, ref_id=str(position), position=position, type="wait",
                                          name=f"s{position}", definition={},
                                          outputs={"artifacts": [image(f"4.{number}")]} if position == 3 else {})
    after, outputs = queries()

    # The identity, the application, the grant, the pipeline, the newest execution, its stages.
    assert after == before == 6
    assert outputs["artifacts"] == [image("4.4")]


@pytest.mark.django_db
@pytest.mark.parametrize(("stage", "pointer"), [
    ({}, "/stages/0/expectedArtifacts"),
    ({"application": 7}, "/stages/0/application"),
    ({"expectedArtifacts": "web"}, "/stages/0/expectedArtifacts"),
    ({"expectedArtifacts": [{"matchArtifact": {}}]}, "/stages/0/expectedArtifacts/0/id"),
    ({"expectedArtifacts": [expected(matchArtifact={"name": "web("})]},
     "/stages/0/expectedArtifacts/0/matchArtifact/name"),
    ({"expectedArtifacts": [expected(useDefaultArtifact="yes")]}, "/stages/0/expectedArtifacts/0/useDefaultArtifact"),
    ({"expectedArtifact": {"id": "x", "defaultArtifact": "web"}}, "/stages/0/expectedArtifact/defaultArtifact"),
    ({"executionOptions": {"successful": "yes"}}, "/stages/0/executionOptions/successful"),
    ({"executionOptions": {"successful": False}}, "/stages/0/executionOptions"),
    ({"executionOptions": ["successful"]}, "/stages/0/executionOptions"),
])
def test_a_stage_with_a_wrong_field_is_refused_at_save_naming_the_field(stage, pointer):
    written = {"application": "images", "pipeline": "build-id", "expectedArtifacts": [expected()], **stage}
    if stage == {} or "expectedArtifact" in stage:
        del written["expectedArtifacts"]
    document = {"application": "shop", "name": "deliver",
                "stages": [{"refId": "1", "name": "Find", "type": "findArtifactFromExecution", **written}]}

    assert pointer in [problem.pointer for problem in validate_pipeline(document)]


@pytest.mark.django_db
def test_a_stage_missing_application_or_pipeline_is_refused_at_save():
    document = {"application": "shop", "name": "deliver", "stages": [
        {"refId": "1", "name": "Find", "type": "findArtifactFromExecution", "expectedArtifacts": [expected()]}]}

    pointers = [problem.pointer for problem in validate_pipeline(document)]

    assert "/stages/0/application" in pointers and "/stages/0/pipeline" in pointers


@pytest.mark.django_db
def test_an_executions_artifacts_are_its_later_stages_first_then_its_triggers_less_the_skipped_stage(producer):
    execution = Execution.objects.create(application=producer.application, pipeline=producer, name="build",
                                         definition={}, status=Status.SUCCEEDED,
                                         trigger={"artifacts": [image("trigger")]})
    for position, ref_id in enumerate(["1", "2", "3"]):
        StageExecution.objects.create(execution=execution, ref_id=ref_id, position=position, type="wait",
                                      name=ref_id, definition={}, outputs={"artifacts": [image(ref_id)]})

    assert execution_artifacts(execution, skip_ref_id=None) == [image("3"), image("2"), image("1"), image("trigger")]
    assert execution_artifacts(execution, skip_ref_id="2") == [image("3"), image("1"), image("trigger")]
