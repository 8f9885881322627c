"""bin/run's demo: with the machine's Docker engine it bakes the demo image and deploys it red/black; without one
it stays as deliver.yml has it and says why."""

from __future__ import annotations

import http.client
import io

import pytest
from django.core.management import call_command

from apps.deployments.models import ServerGroup
from apps.pipelines.choices import Status
from apps.pipelines.models import Execution, Pipeline
from apps.pipelines.services import do_cancel_execution
from tests.conftest import wait_for_stage
from tests.deployments.conftest import free_port
from tests.scenarios import stages_of


def seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def page(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        connection.request("GET", "/")
        return connection.getresponse().read().decode().strip()
    finally:
        connection.close()


@pytest.mark.django_db
def test_without_an_engine_the_demo_keeps_its_waits_and_says_why(settings, tmp_path, monkeypatch):
    settings.VAR_DIR = tmp_path
    settings.BAKE_LOCAL_ROOTS = [str(tmp_path)]
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    out = seed()
    assert "Demo deploys are waits: no Docker engine is reachable" in out
    types = {stage["refId"]: stage["type"] for stage in Pipeline.objects.get(name="deliver").definition["stages"]}
    assert types["2"] == "wait" and "bake" not in types
    assert not (tmp_path / "demo-app").exists()


def test_with_the_engine_the_demo_bakes_and_deploys_red_black_behind_its_load_balancer(
        workers, engine, load_balancer_dir, settings, tmp_path):
    port = free_port()
    settings.VAR_DIR = tmp_path
    settings.BAKE_LOCAL_ROOTS = [str(tmp_path / "demo-app")]
    settings.DEMO_LOAD_BALANCER_PORT = port
    workers.start(1, DOCKER_OWNER_LABEL=engine, LOAD_BALANCER_STATE_DIR=str(load_balancer_dir),
                  BAKE_LOCAL_ROOTS=str(tmp_path / "demo-app"), DOCKER_HEALTH_INTERVAL_SECONDS="0.2",
                  LOAD_BALANCER_DRAIN_SECONDS="1")
    try:
        out = seed()
        assert f"Demo bakes and deploys red/black to the local Docker engine; it serves on http://127.0.0.1:{port}/" \
            in out
        stages = {stage["refId"]: stage for stage in Pipeline.objects.get(name="deliver").definition["stages"]}
        assert stages["bake"]["type"] == "bake" and stages["bake"]["context"] == str(tmp_path / "demo-app")
        assert stages["2"]["type"] == "deploy" and stages["2"]["requisiteStageRefIds"] == ["bake", "lb"]
        assert stages["2"]["clusters"][0]["strategy"] == "redblack"
        assert stages["4"]["preconditions"][-1]["type"] == "clusterSize"

        execution = Execution.objects.get(pipeline__name="deliver")
        wait_for_stage(execution.id, "5", {Status.RUNNING}, timeout=120)  # bake, deploy, smoke tests done
        ran = stages_of(Execution.objects.get(pk=execution.pk))
        assert ran["bake"].status == ran["2"].status == ran["4"].status == Status.SUCCEEDED
        assert ran["bake"].outputs["image"] == "demo/web:1.0.0"
        group = ServerGroup.objects.get(cluster="demo-test", destroyed_at=None)
        assert (group.name, group.image, group.enabled) == ("demo-test-v000", "demo/web:1.0.0", True)
        assert page(port) == "demo-1.0.0"
        do_cancel_execution(execution.id, user="admin")
    finally:
        workers.stop()
