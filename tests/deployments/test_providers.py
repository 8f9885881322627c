"""Stages written for a cloud provider this platform has not built load, as Spinnaker's do, and fail when they run.

The deployments' stage types check their fields for the providers they serve (Docker, the platform's own,
also when a stage names none); a stage naming another provider is not held to Docker's fields, and its
run fails at once with a message that names the provider.
"""

from __future__ import annotations

import pytest

from apps.deployments.models import RegistryAccount
from apps.pipelines.choices import Status
from apps.pipelines.definition import validate_pipeline
from apps.pipelines.models import StageExecution
from apps.pipelines.services import do_save_pipeline, do_start_execution
from apps.pipelines.stages import get_stage_type
from apps.pipelines.views.editor import describe_trigger
from tests.conftest import wait_for_execution


def document(*stages, triggers=()) -> dict:
    return {"application": "shop", "name": "release", "stages": list(stages), "triggers": list(triggers)}


def problems_of(*stages, triggers=()) -> list[tuple[str, str]]:
    return [(problem.pointer, problem.message) for problem in validate_pipeline(document(*stages, triggers=triggers))]


# Written as another provider's UI writes them: none of Docker's fields (account, containerPort, imageName).
GCE_BAKE = {"refId": "1", "type": "bake", "cloudProviderType": "gce", "baseOs": "trusty", "package": "web"}
AWS_DEPLOY = {"refId": "2", "type": "deploy", "requisiteStageRefIds": ["1"],
              "clusters": [{"provider": "aws", "account": "prod", "region": "eu-west-1", "strategy": ""}]}
TITUS_RESIZE = {"refId": "3", "type": "resizeServerGroup", "requisiteStageRefIds": ["2"], "cloudProvider": "titus",
                "credentials": "main", "capacity": {}, "target": "current_asg_dynamic", "cluster": "shop"}
KUBERNETES_JOB = {"refId": "4", "type": "runJob", "cloudProvider": "kubernetes", "manifest": {"kind": "Job"}}


@pytest.mark.django_db
def test_stages_for_providers_not_built_here_load():
    assert problems_of(GCE_BAKE, AWS_DEPLOY, TITUS_RESIZE, KUBERNETES_JOB) == []


@pytest.mark.django_db
@pytest.mark.parametrize("provider", [{}, {"cloudProvider": "docker"}, {"cloudProvider": None}])
def test_docker_stages_and_stages_naming_no_provider_keep_dockers_checks(provider):
    deploy = {"refId": "1", "type": "deploy", "clusters": [{"account": "local", **provider}]}
    resize = {"refId": "2", "type": "resizeServerGroup", "target": "current_asg_dynamic", "cluster": "shop",
              "capacity": {}, **provider}

    found = problems_of(deploy, resize)

    assert ("/stages/0/clusters/0/containerPort", "is required: the port the container serves on") in found
    assert ("/stages/1/account", "is required for a resizeServerGroup stage") in found
    assert ("/stages/1/capacity/desired", "must be a whole number from 0 to 100") in found


@pytest.mark.django_db
def test_one_cluster_for_another_provider_makes_the_deploy_another_providers():
    deploy = {"refId": "1", "type": "deploy",
              "clusters": [{"cloudProvider": "docker", "account": "local"}, {"cloudProvider": "gce"}]}
    assert problems_of(deploy) == []
    assert "clusters.1.cloudProvider: 'gce'" in get_stage_type("deploy").unavailable(deploy)


@pytest.mark.django_db
def test_a_provider_that_is_not_a_name_is_refused_at_its_field():
    found = problems_of({"refId": "1", "type": "findImage", "cloudProvider": 7, "account": "local", "cluster": "a"},
                        {"refId": "2", "type": "deploy", "clusters": [{"provider": ["aws"], "account": "local",
                                                                      "containerPort": 80}]})
    assert ("/stages/0/cloudProvider", "must be a string naming a cloud provider, e.g. docker") in found
    assert ("/stages/1/clusters/0/provider", "must be a string naming a cloud provider, e.g. docker") in found


def test_the_message_names_the_provider_and_what_is_built():
    message = get_stage_type("bake").unavailable(GCE_BAKE)
    assert message == ("cloudProviderType: 'gce' is a cloud provider this platform does not have "
                       "(built: docker, kubernetes), so this bake stage cannot run here")


def test_a_built_provider_a_stage_type_does_not_serve_is_named_as_such():
    assert get_stage_type("runJob").unavailable(KUBERNETES_JOB) == (
        "cloudProvider: the runJob stage runs on docker here, not on 'kubernetes'")


def test_a_provider_written_as_an_expression_is_decided_when_the_stage_starts():
    assert get_stage_type("findImage").unavailable({"cloudProvider": "${parameters.provider}"}) is None


def test_a_stage_for_another_provider_fails_when_it_runs_naming_it(workers):
    workers.start(1)
    find = {"refId": "1", "name": "Find", "type": "findImage", "cloudProvider": "gce", "cluster": "shop",
            "credentials": "gce", "selectionStrategy": "LARGEST"}
    after = {"refId": "2", "name": "After", "type": "wait", "waitTime": 0, "requisiteStageRefIds": ["1"]}
    pipeline, _ = do_save_pipeline(document(find, after))

    execution = wait_for_execution(do_start_execution(pipeline).id)

    stages = {stage.ref_id: stage for stage in StageExecution.objects.filter(execution=execution)}
    assert execution.status == Status.TERMINAL
    assert stages["1"].status == Status.TERMINAL
    assert stages["1"].context["exception"]["details"]["error"] == (
        "cloudProvider: 'gce' is a cloud provider this platform does not have (built: docker, kubernetes), "
        "so this findImage stage cannot run here")
    assert stages["2"].status == Status.NOT_STARTED


def test_a_provider_chosen_by_a_parameter_is_refused_when_the_stage_starts(workers):
    workers.start(1)
    job = {"refId": "1", "name": "Job", "type": "runJob", "cloudProvider": "${parameters.provider}",
           "image": "busybox", "continuePipeline": True}
    parameters = [{"name": "provider", "default": "titus"}]
    pipeline, _ = do_save_pipeline({**document(job), "parameterConfig": parameters})

    execution = wait_for_execution(do_start_execution(pipeline).id)

    stage = StageExecution.objects.get(execution=execution, ref_id="1")
    assert stage.status == Status.FAILED_CONTINUE
    assert "'titus' is a cloud provider this platform does not have" in stage.context["exception"]["details"]["error"]


@pytest.mark.django_db
def test_a_docker_trigger_on_an_account_not_configured_yet_loads_and_says_so():
    trigger = {"type": "docker", "enabled": True, "account": "ecr-devel", "repository": "shop/web"}

    assert problems_of({"refId": "1", "type": "wait"}, triggers=[trigger]) == []
    assert "registry account ecr-devel (not configured here yet)" in describe_trigger(trigger)

    RegistryAccount.objects.create(name="ecr-devel", address="127.0.0.1:5000")
    assert "(not configured here yet)" not in describe_trigger(trigger)
