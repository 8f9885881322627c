"""The bake stage for real: a busybox web image built from a git repository on the engine and pushed to a registry."""

from __future__ import annotations

import json
import urllib.request

import pytest
from django.contrib.auth.models import User

from apps.accounts.services import do_grant
from apps.deployments.services.accounts import do_save_registry_account
from apps.pipelines.choices import Status
from apps.pipelines.services import do_save_pipeline, do_start_execution
from tests.conftest import wait_for_execution
from tests.scenarios import stages_of


def bake_stage(repository, **options) -> dict:
    return {"refId": "1", "name": "Bake", "type": "bake", "cloudProvider": "docker", "account": "registry",
            "imageName": "shop/web", "repository": str(repository), "ref": "main", "tags": ["${trigger.tag}"],
            "buildArgs": {"VERSION": "${trigger.tag}"}, **options}


@pytest.fixture
def registry_account(registry_address):
    account, _ = do_save_registry_account({"name": "registry", "address": registry_address, "insecure": True},
                                          actor="ops")
    return account


def run(workers, engine, repository, stage: dict, *, user="ops", timeout=60):
    workers.start(1, DOCKER_OWNER_LABEL=engine, BAKE_LOCAL_ROOTS=str(repository.parent),
                  DOCKER_HEALTH_INTERVAL_SECONDS="0.2")
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "bake", "stages": [stage]}, user="ops")
    if isinstance(user, User):
        do_grant(pipeline.application, user, "execute", actor="ops")
    execution = do_start_execution(pipeline, trigger={"tag": "1.0.3"}, user=user)
    return wait_for_execution(execution.id, timeout=timeout)


def test_a_bake_builds_the_repository_pushes_it_and_outputs_the_image(
        workers, engine, registry_address, registry_account, web_repository, docker_client):
    finished = run(workers, engine, web_repository, bake_stage(web_repository))

    bake = stages_of(finished)["1"]
    assert finished.status == Status.SUCCEEDED, bake.outputs
    outputs = bake.outputs
    repository = f"{registry_address}/shop/web"
    assert (outputs["repository"], outputs["tag"]) == (repository, "1.0.3")
    assert outputs["digest"].startswith("sha256:") and outputs["image"] == f"{repository}@{outputs['digest']}"
    assert outputs["artifacts"] == [{"type": "docker/image", "name": repository, "version": "1.0.3",
                                     "reference": f"{repository}:1.0.3", "metadata": {"digest": outputs["digest"]}}]
    assert "Successfully built" in bake.context["buildLog"] or "writing image" in bake.context["buildLog"].lower()
    with urllib.request.urlopen(f"http://{registry_address}/v2/shop/web/tags/list", timeout=5) as response:
        assert json.load(response)["tags"] == ["1.0.3"]
    # The image runs: the page of the repository, and the build argument baked in.
    output = docker_client.containers.run(outputs["image"], ["cat", "/www/index.html", "/www/version"], remove=True,
                                          labels={"io.cdplatform.owner": engine})
    assert output.decode() == "v1\n1.0.3\n"


def test_a_bake_refuses_a_person_without_deploy_on_the_registry(
        workers, engine, registry_account, web_repository):
    alice = User.objects.create_user("alice")

    finished = run(workers, engine, web_repository, bake_stage(web_repository), user=alice)

    assert finished.status == Status.TERMINAL
    assert "account: You may not deploy" in json.dumps(stages_of(finished)["1"].context)


def test_a_bake_outside_the_allowed_directories_is_refused(workers, engine, registry_account, web_repository):
    finished = run(workers, engine, web_repository, bake_stage("/etc"))

    assert finished.status == Status.TERMINAL
    assert "not under BAKE_LOCAL_ROOTS" in json.dumps(stages_of(finished)["1"].context)
