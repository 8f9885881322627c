"""Deploying for real: server groups on the Docker engine behind an nginx load balancer, with the strategies.

Each test runs a real worker (with its scheduler) against the machine's
engine; the images are busybox web servers whose page names their version.
"""

from __future__ import annotations

import http.client
import socket
import time

import pytest

from apps.deployments.models import Instance, ServerGroup, TrafficGuard
from apps.deployments.services.accounts import local_docker_account
from apps.pipelines.choices import Status
from apps.pipelines.models import Application
from apps.pipelines.services import do_save_pipeline, do_start_execution
from tests.conftest import wait_for_execution
from tests.deployments.traffic import SteadyClient
from tests.scenarios import stages_of


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(port: int) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        return response.status, response.read().decode().strip()
    finally:
        connection.close()


@pytest.fixture
def platform(workers, engine, load_balancer_dir, web_images):
    """A worker that deploys to the engine with the test's labels and load balancers, and what the tests need."""
    workers.start(1, DOCKER_OWNER_LABEL=engine, LOAD_BALANCER_STATE_DIR=str(load_balancer_dir),
                  DOCKER_HEALTH_INTERVAL_SECONDS="0.2", LOAD_BALANCER_DRAIN_SECONDS="1",
                  SERVER_GROUP_RECONCILE_SECONDS="1")
    local_docker_account()
    yield {"images": web_images, "port": free_port()}
    workers.stop()  # before the engine's and the load balancers' fixtures clean up, or it would start them again


def cluster(image: str, strategy: str = "redblack", **options) -> dict:
    return {"cloudProvider": "docker", "account": "local", "application": "shop", "stack": "web",
            "strategy": strategy, "capacity": {"desired": 2}, "image": image, "containerPort": 8080,
            "healthCheck": {"path": "/health"}, "loadBalancers": ["shop-web"], **options}


def run(stages: list[dict], name: str = "deliver", timeout: float = 90):
    pipeline, _ = do_save_pipeline({"application": "shop", "name": name, "stages": stages}, user="ops")
    execution = do_start_execution(pipeline, user="ops")
    return wait_for_execution(execution.id, timeout=timeout)


def deploy(image: str, strategy: str = "redblack", refid: str = "1", **options) -> dict:
    return {"refId": refid, "name": "Deploy", "type": "deploy", "clusters": [cluster(image, strategy, **options)]}


def load_balancer(port: int) -> dict:
    return {"refId": "lb", "name": "Load balancer", "type": "upsertLoadBalancer", "loadBalancers": [{
        "cloudProvider": "docker", "account": "local", "name": "shop-web",
        "listeners": [{"externalProtocol": "HTTP", "externalPort": port, "internalProtocol": "HTTP",
                       "internalPort": 8080}],
        "healthCheck": {"path": "/health", "intervalSec": 1, "timeoutSec": 1}}]}


def first_deploy(platform) -> None:
    stages = [load_balancer(platform["port"]), {**deploy(platform["images"]["v1"]), "requisiteStageRefIds": ["lb"]}]
    finished = run(stages, "first")
    assert finished.status == Status.SUCCEEDED, {ref: s.context.get("exception") for ref, s in
                                                 stages_of(finished).items()}
    assert get(platform["port"]) == (200, "v1")


def live(cluster_name: str = "shop-web") -> dict[str, bool]:
    return dict(ServerGroup.objects.filter(cluster=cluster_name, destroyed_at=None).values_list("name", "enabled"))


def test_red_black_moves_every_request_to_the_new_group_without_one_failure(platform):
    first_deploy(platform)

    with SteadyClient(platform["port"]) as traffic:
        time.sleep(0.5)
        finished = run([deploy(platform["images"]["v2"])])
        time.sleep(1)

    assert finished.status == Status.SUCCEEDED
    assert traffic.failures == [], traffic.failures[:5]
    assert len(traffic.answers) > 50
    assert traffic.versions_in_order() == ["v1", "v2"] and traffic.answers[-1] == "v2"
    assert live() == {"shop-web-v000": False, "shop-web-v001": True}
    outputs = stages_of(finished)["1"].outputs
    assert outputs["deploy.server.groups"] == {"local": ["shop-web-v001"]}
    # The strategy's steps are stages of their own in the execution.
    assert {stage.type for stage in stages_of(finished).values()} >= {"deploy", "createServerGroup",
                                                                      "disableCluster"}


def test_highlander_leaves_only_the_new_group(platform):
    first_deploy(platform)

    with SteadyClient(platform["port"]) as traffic:
        finished = run([deploy(platform["images"]["v2"], "highlander")])
        time.sleep(0.5)

    assert finished.status == Status.SUCCEEDED
    assert traffic.failures == [], traffic.failures[:5]
    assert live() == {"shop-web-v001": True}
    assert get(platform["port"]) == (200, "v2")


def test_a_deploy_that_never_becomes_healthy_fails_rolls_back_and_the_old_version_still_serves(platform):
    first_deploy(platform)

    finished = run([deploy(platform["images"]["broken"], rollback={"onFailure": True}, waitForUpTimeoutSec=4)])

    assert finished.status == Status.TERMINAL
    create = next(s for s in stages_of(finished).values() if s.type == "createServerGroup")
    assert "rolled back" in str(create.context.get("exception"))
    assert live() == {"shop-web-v000": True}
    assert get(platform["port"]) == (200, "v1")


def test_a_killed_container_is_replaced_and_the_history_says_so(platform, docker_client):
    first_deploy(platform)
    victim = Instance.objects.filter(server_group__name="shop-web-v000", ended_at=None).first()

    docker_client.containers.get(victim.container_id).kill()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        live_instances = Instance.objects.filter(server_group__name="shop-web-v000", ended_at=None,
                                                 health="UP").exclude(pk=victim.pk)
        if live_instances.count() == 2:
            break
        time.sleep(0.5)
    victim.refresh_from_db()
    assert victim.ended_at is not None and victim.ended_reason.startswith("replaced")
    assert live_instances.count() == 2
    assert get(platform["port"]) == (200, "v1")


def test_a_traffic_guard_refuses_to_disable_the_last_enabled_group(platform):
    first_deploy(platform)
    TrafficGuard.objects.create(application=Application.objects.get(name="shop"), account=local_docker_account(),
                                cluster="shop-web")

    finished = run([{"refId": "1", "name": "Disable", "type": "disableServerGroup", "account": "local",
                     "cluster": "shop-web", "target": "current_asg_dynamic"}], "disable")

    assert finished.status == Status.TERMINAL
    assert "traffic guard" in str(stages_of(finished)["1"].context.get("exception"))
    assert live() == {"shop-web-v000": True}
    assert get(platform["port"]) == (200, "v1")


def test_find_image_then_deploy_promotes_the_exact_image_that_passed_test(platform):
    first_deploy(platform)  # "test": shop-web runs v1
    finished = run([
        {"refId": "find", "name": "Find", "type": "findImage", "account": "local", "cluster": "shop-web",
         "selectionStrategy": "NEWEST", "onlyEnabled": True},
        {"refId": "1", "name": "Promote", "type": "deploy", "requisiteStageRefIds": ["find"], "clusters": [
            {**cluster(None, "highlander", stack="prod", loadBalancers=[]), "image": None}]},
    ], "promote")

    assert finished.status == Status.SUCCEEDED
    [prod] = ServerGroup.objects.filter(cluster="shop-prod", destroyed_at=None)
    assert prod.image == platform["images"]["v1"] == stages_of(finished)["find"].outputs["image"]


def test_a_job_that_exits_3_fails_with_its_logs_and_one_that_succeeds_gives_its_outputs(platform):
    image = platform["images"]["v1"]
    finished = run([
        {"refId": "ok", "name": "Migrate", "type": "runJob", "image": image, "command": [
            "sh", "-c", 'echo SPINNAKER_PROPERTY_SCHEMA=42; echo \'SPINNAKER_CONFIG_JSON={"tables": 3}\'']},
        {"refId": "bad", "name": "Smoke", "type": "runJob", "image": image, "requisiteStageRefIds": ["ok"],
         "command": ["sh", "-c", "echo checking; echo broken >&2; exit 3"]},
    ], "jobs")

    stages = stages_of(finished)
    assert finished.status == Status.TERMINAL
    assert stages["ok"].outputs == {"schema": "42", "tables": 3, "exitCode": 0}
    assert stages["bad"].status == Status.TERMINAL and stages["bad"].context["exitCode"] == 3
    assert "checking" in stages["bad"].context["jobLog"] and "broken" in stages["bad"].context["jobLog"]
    assert "exited with 3" in str(stages["bad"].context["exception"])


def test_a_cluster_size_precondition_counts_the_clusters_server_groups_on_the_engine(platform):
    first_deploy(platform)

    def check(comparison: str, expected: int, cluster: str = "shop-web"):
        return run([{"refId": "1", "name": "Size", "type": "checkPreconditions", "preconditions": [
            {"type": "clusterSize", "context": {"credentials": "local", "regions": [], "cluster": cluster,
                                                "comparison": comparison, "expected": expected}}]}], "size")

    assert check("==", 1).status == Status.SUCCEEDED
    refused = check(">=", 2)
    assert refused.status == Status.TERMINAL
    assert "has 1 server group(s), expected >= 2" in str(stages_of(refused)["1"].context.get("exception"))
    assert check("==", 0, "shop-api").status == Status.SUCCEEDED
