"""The canary strategy's own steps, for real on the engine and nginx, with a stand-in for the analysis.

Baseline and canary come up beside production with a small weighted share of
the load balancer's traffic; a failed analysis destroys both and leaves
production as it was, a passed one promotes the new image red/black. The
analysis here is tests/deployments/canary_stand_in.py; the real one, with
Prometheus, is in test_canary_end_to_end.py.
"""

from __future__ import annotations

import importlib
import sys
import time
from contextlib import contextmanager

import pytest

from apps.deployments.models import LoadBalancer, ServerGroup
from apps.deployments.services.accounts import local_docker_account
from apps.deployments.stages.canary import NOT_INSTALLED
from apps.pipelines.choices import COMPLETE, Status
from apps.pipelines.models import Execution
from apps.pipelines.problems import InvalidDocument
from apps.pipelines.services import do_save_pipeline, do_start_execution
from apps.pipelines.stages import get_stage_type, register, unregister
from tests.conftest import wait_for_execution
from tests.deployments.test_deploy import free_port, get, load_balancer, run
from tests.deployments.traffic import SteadyClient
from tests.scenarios import stages_of

STAND_IN = "tests.deployments.canary_stand_in"


@contextmanager
def analysis_replaced():
    """The canary app's kayentaCanary taken out of this process's registry for the block, and put back."""
    installed = get_stage_type("kayentaCanary")
    unregister("kayentaCanary")
    try:
        yield
    finally:
        unregister("kayentaCanary")
        if installed is not None:
            register(type(installed))


@pytest.fixture
def stand_in_analysis():
    """The stand-in analysis, registered in this process for the test (and named for the workers to preload)."""
    with analysis_replaced():
        importlib.import_module(STAND_IN)
        yield STAND_IN
        sys.modules.pop(STAND_IN, None)


@pytest.fixture
def platform(workers, engine, load_balancer_dir, canary_images, stand_in_analysis):
    workers.start(1, DOCKER_OWNER_LABEL=engine, LOAD_BALANCER_STATE_DIR=str(load_balancer_dir),
                  DOCKER_HEALTH_INTERVAL_SECONDS="0.2", LOAD_BALANCER_DRAIN_SECONDS="1",
                  SERVER_GROUP_RECONCILE_SECONDS="1", preload=stand_in_analysis)
    local_docker_account()
    yield {"images": canary_images, "port": free_port()}
    workers.stop()


def cluster(image: str, strategy: str = "redblack", **options) -> dict:
    return {"cloudProvider": "docker", "account": "local", "application": "shop", "stack": "web",
            "strategy": strategy, "capacity": {"desired": 2}, "image": image, "containerPort": 8080,
            "healthCheck": {"path": "/health"}, "loadBalancers": ["shop-web"], **options}


def canary_deploy(image: str, verdict: str, **canary) -> dict:
    options = {"trafficPercentage": 10, "canaryConfig": {"standIn": verdict}, **canary}
    return {"refId": "1", "name": "Deploy", "type": "deploy",
            "clusters": [cluster(image, "canary", canary=options)]}


def first_deploy(platform) -> None:
    finished = run([load_balancer(platform["port"]), {"refId": "1", "name": "Deploy", "type": "deploy",
                                                      "requisiteStageRefIds": ["lb"],
                                                      "clusters": [cluster(platform["images"]["v1"])]}], "first")
    assert finished.status == Status.SUCCEEDED
    assert get(platform["port"]) == (200, "v1")


def everything_live() -> dict[str, bool]:
    return dict(ServerGroup.objects.filter(destroyed_at=None).values_list("name", "enabled"))


def test_a_failed_analysis_destroys_baseline_and_canary_and_production_serves_throughout(platform):
    first_deploy(platform)
    weighted = []

    with SteadyClient(platform["port"]) as traffic:
        pipeline, _ = do_save_pipeline({"application": "shop", "name": "canary",
                                        "stages": [canary_deploy(platform["images"]["good"], "fail")]}, user="ops")
        execution = do_start_execution(pipeline, user="ops")
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            targets = LoadBalancer.objects.get(name="shop-web").targets
            weighted = targets if len(targets) == 4 else weighted
            if Execution.objects.get(id=execution.id).status in COMPLETE:
                break
            time.sleep(0.1)
        finished = wait_for_execution(execution.id, timeout=1)
        time.sleep(0.5)

    assert finished.status == Status.TERMINAL
    stages = stages_of(finished)
    canary = next(stage for stage in stages.values() if stage.type == "deployCanary")
    message = str(canary.context.get("exception"))
    assert "was not promoted: the canary analysis failed: score 0 is below marginal" in message
    assert "production is as it was" in message
    analysis = next(stage for stage in stages.values() if stage.type == "kayentaCanary")
    assert analysis.context["scopesSeen"] == {"controlScope": platform["images"]["v1"],
                                              "experimentScope": platform["images"]["good"]}
    assert next(s for s in stages.values() if s.name == "Promote the canary").status == Status.SKIPPED
    # While the analysis ran: production's two instances 40% each, baseline and canary 10% each (nginx weights).
    assert sorted(int(target.split("weight=")[1]) for target in weighted) == [100, 100, 400, 400]
    assert everything_live() == {"shop-web-v000": True}
    assert traffic.failures == [], traffic.failures[:5]
    assert set(traffic.answers) <= {"v1", "v2-good"}  # the canary's share is checked by the stand-in's targets
    assert traffic.answers[-1] == "v1" and get(platform["port"]) == (200, "v1")
    assert all("weight" not in target for target in LoadBalancer.objects.get(name="shop-web").targets)


def test_a_passed_analysis_promotes_the_new_image_red_black_and_removes_baseline_and_canary(platform):
    first_deploy(platform)

    with SteadyClient(platform["port"]) as traffic:
        finished = run([canary_deploy(platform["images"]["good"], "pass")], "canary", timeout=120)
        time.sleep(0.5)

    assert finished.status == Status.SUCCEEDED, {s.name: s.context.get("exception") for s in
                                                 stages_of(finished).values()}
    assert everything_live() == {"shop-web-v000": False, "shop-web-v001": True}
    assert ServerGroup.objects.get(name="shop-web-v001").image == platform["images"]["good"]
    assert stages_of(finished)["1"].outputs["deploy.server.groups"] == {"local": ["shop-web-v001"]}
    assert traffic.failures == [], traffic.failures[:5]
    assert traffic.versions_in_order() == ["v1", "v2-good"] and traffic.answers[-1] == "v2-good"


def test_a_canary_with_no_production_group_to_compare_with_fails_saying_so(platform):
    finished = run([load_balancer(platform["port"]), {**canary_deploy(platform["images"]["good"], "pass"),
                                                      "requisiteStageRefIds": ["lb"]}], "canary")

    assert finished.status == Status.TERMINAL
    canary = next(stage for stage in stages_of(finished).values() if stage.type == "deployCanary")
    assert "cluster shop-web has no enabled server group to compare the canary with" in str(
        canary.context.get("exception"))
    assert everything_live() == {}


@pytest.mark.django_db
def test_a_canary_deploy_without_the_canary_analysis_installed_is_refused_naming_the_field():
    with analysis_replaced(), pytest.raises(InvalidDocument) as refused:
        do_save_pipeline({"application": "shop", "name": "canary",
                          "stages": [canary_deploy("shop:2", "pass")]}, user="ops")

    [problem] = refused.value.problems
    assert (problem.pointer, problem.message) == ("/stages/0/clusters/0/strategy", NOT_INSTALLED)


@pytest.mark.django_db
def test_a_canary_cluster_names_its_bad_options(stand_in_analysis):
    with pytest.raises(InvalidDocument) as refused:
        do_save_pipeline({"application": "shop", "name": "canary", "stages": [
            canary_deploy("shop:2", "maybe", trafficPercentage=60, capacity=0)]}, user="ops")

    assert {problem.pointer for problem in refused.value.problems} == {
        "/stages/0/clusters/0/canary/trafficPercentage", "/stages/0/clusters/0/canary/capacity",
        "/stages/0/clusters/0/canary/canaryConfig/standIn"}
