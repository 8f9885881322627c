"""Kubernetes workloads on the clusters API and page, beside Docker's: ReplicaSets under their Deployment with
their pods, health and traffic, and the actions (scale, enable, disable, delete, undo rollout) that the API and
the page take on them — permissions and refusals first (no cluster needed), then against the real test cluster.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.models import AuditEvent
from apps.accounts.services import do_grant
from apps.deployments.models import KubernetesAccount, ManifestNamespace
from apps.deployments.services.kubernetes_accounts import do_save_kubernetes_account
from apps.deployments.services.kubernetes_clusters import ingress_rules, pod_health, routes_to
from apps.pipelines.models import Application
from tests.deployments.conftest import free_port
from tests.deployments.test_kubernetes_cluster import wait_for
from tests.deployments.test_kubernetes_deploy import (
    deploy_stage,
    deployment,
    endpoint_pods,
    pods_of,
    replica_set,
    service,
    succeeded,
)

CLUSTERS = "/api/applications/shop/clusters/"
ACTION = "/api/applications/shop/manifests/{account}/{namespace}/{kind}/{name}/{action}/"
# A cluster nobody answers at: permission checks and refusals come before any call to it.
UNREACHABLE = """
clusters: [{name: nowhere, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: nowhere, user: {token: nowhere-token}}]
contexts: [{name: nowhere, context: {cluster: nowhere, user: nowhere}}]
current-context: nowhere
"""


def person(name: str, *, app_actions=(), account_actions=(), account: str = "dev") -> APIClient:
    user = User.objects.create_user(name)
    for action in app_actions:
        do_grant(Application.objects.get(name="shop"), user, action, actor="ops")
    for action in account_actions:
        do_grant(KubernetesAccount.objects.get(name=account), user, action, actor="ops")
    client = APIClient()
    client.force_login(user)
    return client


def action(client, action: str, kind: str = "replicaSet", name: str = "shop-v000", *, namespace: str = "shop",
           account: str = "dev", **body):
    return client.post(ACTION.format(account=account, namespace=namespace, kind=kind, name=name, action=action),
                       body, format="json")


@pytest.fixture
def nowhere(db):
    """Application shop deployed (as far as the platform knows) to namespace shop of a cluster that is down."""
    shop = Application.objects.create(name="shop")
    account, _ = do_save_kubernetes_account({"name": "dev", "kubeconfigContents": UNREACHABLE,
                                             "namespaces": ["shop"], "omitKinds": ["Secret"]}, actor="ops")
    ManifestNamespace.objects.create(application=shop, account=account, namespace="shop")
    return account


def test_an_action_needs_execute_on_the_application_and_deploy_on_the_account(nowhere):
    stranger = person("zoe")
    reader = person("bob", app_actions=["read"], account_actions=["deploy"])
    executor = person("erin", app_actions=["execute"], account_actions=["read"])

    assert action(stranger, "disable").status_code == 404
    refused = action(reader, "disable")
    assert refused.status_code == 403 and refused.json()["errors"][0]["pointer"] == "/application"
    refused = action(executor, "disable")
    assert refused.status_code == 403 and refused.json()["errors"][0]["pointer"] == "/account"
    assert not AuditEvent.objects.filter(action__startswith="manifest.").exists()


def test_refusals_name_the_field_and_a_cluster_that_does_not_answer_is_503(nowhere):
    deployer = person("erin", app_actions=["execute"], account_actions=["deploy"])

    outside = action(deployer, "delete", namespace="kube-system")
    assert outside.status_code == 400 and outside.json()["errors"][0]["pointer"] == "/namespace"
    assert "may not touch namespace 'kube-system'" in outside.json()["errors"][0]["message"]
    omitted = action(deployer, "delete", kind="secret", name="passwords")
    assert omitted.status_code == 400 and omitted.json()["errors"][0]["pointer"] == "/kind"
    missing = action(deployer, "scale")
    assert missing.status_code == 400 and missing.json()["errors"][0]["pointer"] == "/replicas"
    too_many = action(deployer, "scale", replicas=1001)
    assert too_many.status_code == 400 and too_many.json()["errors"][0]["pointer"] == "/replicas"
    assert action(deployer, "delete", account="nope").status_code == 404

    down = action(deployer, "scale", replicas=2)
    assert down.status_code == 503, down.content
    assert down.json()["errors"][0]["message"]
    assert not AuditEvent.objects.filter(action__startswith="manifest.").exists()


def test_the_clusters_api_and_page_report_a_cluster_that_does_not_answer_and_still_show_the_rest(nowhere):
    reader = person("bob", app_actions=["read"])

    listed = reader.get(CLUSTERS)

    assert listed.status_code == 200
    assert listed.json()["kubernetesClusters"] == listed.json()["kubernetesLoadBalancers"] == []
    [unavailable] = listed.json()["unavailable"]
    assert (unavailable["account"], unavailable["namespace"]) == ("dev", "shop") and unavailable["error"]
    page = Client()
    page.force_login(User.objects.get(username="bob"))
    html = page.get("/applications/shop/clusters/").content.decode()
    assert 'data-unavailable="dev/shop"' in html


def test_pods_health_reads_as_a_docker_instances():
    ready = {"metadata": {}, "status": {"phase": "Running", "containerStatuses": [{"ready": True}],
                                        "conditions": [{"type": "Ready", "status": "True"}]}}
    crashing = {"metadata": {}, "status": {"phase": "Running", "containerStatuses": [
        {"state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    creating = {"metadata": {}, "status": {"phase": "Pending", "containerStatuses": [
        {"state": {"waiting": {"reason": "ContainerCreating"}}}]}}
    leaving = {"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Running"}}

    assert pod_health(ready) == ("UP", "")
    assert pod_health(crashing) == ("DOWN", "CrashLoopBackOff")
    assert pod_health(creating) == ("STARTING", "Pending")
    assert pod_health(leaving) == ("OUT_OF_SERVICE", "terminating")


def test_a_service_routes_to_the_pods_carrying_every_label_it_selects():
    assert routes_to({"app": "web"}, {"app": "web", "pod-template-hash": "5d8f"})
    assert routes_to({"app": "web", "serving": "shop"}, {"app": "web", "serving": "shop"})
    assert not routes_to({"app": "web", "serving": "shop"}, {"app": "web"})
    assert not routes_to({"app": "web"}, {"app": "api"})
    assert not routes_to({}, {"app": "web"}), "a Service without a selector has its endpoints kept by hand"


def test_an_ingress_lists_its_default_backend_and_each_path_with_the_service_and_port_it_sends_to():
    found = ingress_rules({"spec": {
        "defaultBackend": {"service": {"name": "web", "port": {"name": "http"}}},
        "rules": [{"host": "shop.example", "http": {"paths": [
            {"path": "/api", "backend": {"service": {"name": "api", "port": {"number": 8080}}}},
            {"path": "/files", "backend": {"resource": {"kind": "StorageBucket", "name": "files"}}}]}},
                  {"host": "empty.example"}]}})

    assert found == [{"host": "", "path": "", "service": "web", "port": "http"},
                     {"host": "shop.example", "path": "/api", "service": "api", "port": "8080"},
                     {"host": "shop.example", "path": "/files", "service": "", "port": ""}]


def _cluster(listed: dict, name: str) -> dict:
    [found] = [cluster for cluster in listed["kubernetesClusters"] if cluster["name"] == name]
    return found


def test_workloads_show_as_server_groups_and_the_actions_move_traffic_scale_undo_and_delete(kube):
    namespace, images, core, apps = kube["namespace"], kube["images"], kube["core"], kube["apps"]
    traffic = {"enabled": True, "options": {"services": ["service shop"], "enableTraffic": True,
                                            "strategy": "redblack"}}
    succeeded([deploy_stage([service("shop", {"serving": "shop"})], namespaceOverride=namespace)])
    for image in (images["v1"], images["v2"]):
        succeeded([deploy_stage([replica_set("shop", image, free_port())], namespaceOverride=namespace,
                                trafficManagement=traffic)])
    web_port = free_port()
    for image in (images["v1"], images["v2"]):
        succeeded([deploy_stage([deployment("web", image, web_port, strategy={"type": "Recreate"})],
                                namespaceOverride=namespace)])
    User.objects.create_superuser("root")
    deployer = person("erin", app_actions=["execute"], account_actions=["deploy"])

    listed = deployer.get(CLUSTERS)
    assert listed.status_code == 200, listed.content
    body = listed.json()
    assert body["unavailable"] == []
    shop = _cluster(body, "replicaSet shop")
    assert (shop["account"], shop["namespace"]) == ("dev", namespace)
    assert [(g["name"], g["version"], g["enabled"], g["desired"]) for g in shop["serverGroups"]] == [
        ("shop-v001", 1, True, 1), ("shop-v000", 0, False, 1)]
    newest = shop["serverGroups"][0]
    assert newest["manifestName"] == "replicaSet shop-v001" and newest["images"] == [images["v2"]]
    assert newest["loadBalancers"] == ["service shop"] and newest["manager"] == ""
    assert [pod["health"] for pod in newest["instances"]] == ["UP"]
    web = _cluster(body, "deployment web")
    assert [(m["manifestName"], m["revision"]) for m in web["managers"]] == [("deployment web", 2)]
    assert {g["manager"] for g in web["serverGroups"]} == {"deployment web"}
    assert sorted(g["images"][0] for g in web["serverGroups"]) == sorted([images["v1"], images["v2"]])
    # The Service is the cluster's load balancer; after the red/black it routes to the new version alone.
    [balancer] = body["kubernetesLoadBalancers"]
    assert (balancer["manifestName"], balancer["namespace"], balancer["selector"]) == (
        "service shop", namespace, {"serving": "shop"})
    assert balancer["serverGroups"] == ["replicaSet shop-v001"]

    # The page shows the same, with the actions for one who may take them.
    page = Client()
    page.force_login(User.objects.get(username="erin"))
    html = page.get("/applications/shop/clusters/").content.decode()
    assert f'data-kubernetes-cluster="dev/{namespace}/replicaSet shop"' in html
    assert 'data-server-group="replicaSet shop-v001"' in html and 'data-action="undo-rollout"' in html

    # Disable the newest version from the API, enable the older one from the page: the service follows.
    disabled = action(deployer, "disable", name="shop-v001", namespace=namespace)
    assert disabled.status_code == 200, disabled.content
    wait_for("the service to have no endpoints", lambda: endpoint_pods(core, namespace, "shop") == set())
    enabled = page.post(f"/applications/shop/clusters/kubernetes/dev/{namespace}/ReplicaSet/shop-v000/enable/")
    assert enabled.status_code == 302, enabled.content.decode()[:500]
    wait_for("v000 to serve", lambda: endpoint_pods(core, namespace, "shop") ==
             pods_of(core, namespace, "shop-v000") != set())
    moved = deployer.get(CLUSTERS).json()
    assert [(g["name"], g["enabled"]) for g in _cluster(moved, "replicaSet shop")["serverGroups"]] == [
        ("shop-v001", False), ("shop-v000", True)]
    assert [balancer["serverGroups"] for balancer in moved["kubernetesLoadBalancers"]] == [["replicaSet shop-v000"]]

    scaled = action(deployer, "scale", name="shop-v000", namespace=namespace, replicas=0)
    assert scaled.status_code == 200 and scaled.json()["details"]["to"] == 0
    wait_for("v000 to have no pods", lambda: not pods_of(core, namespace, "shop-v000"))

    undone = action(deployer, "undo-rollout", kind="deployment", name="web", namespace=namespace)
    assert undone.status_code == 200, undone.content
    assert undone.json()["details"]["restoredRevision"] == 1
    wait_for("web to run v1 again", lambda: apps.read_namespaced_deployment("web", namespace)
             .spec.template.spec.containers[0].image == images["v1"])

    deleted = action(deployer, "delete", name="shop-v001", namespace=namespace)
    assert deleted.status_code == 200 and deleted.json()["details"]["deleted"] is True
    wait_for("shop-v001 to go", lambda: "shop-v001" not in {
        rs.metadata.name for rs in apps.list_namespaced_replica_set(namespace).items
        if rs.metadata.deletion_timestamp is None})

    # A resource that is not the application's is refused, and so is an action that does not apply to its kind.
    apps.create_namespaced_deployment(namespace, deployment("other", images["v1"], free_port()))
    refused = action(deployer, "scale", kind="deployment", name="other", namespace=namespace, replicas=2)
    assert refused.status_code == 409 and "not a resource of application shop" in refused.json()["errors"][0][
        "message"]
    refused = action(deployer, "enable", kind="deployment", name="web", namespace=namespace)
    assert refused.status_code == 409 and "only a ReplicaSet" in refused.json()["errors"][0]["message"]
    assert list(AuditEvent.objects.filter(action__startswith="manifest.").order_by("id")
                .values_list("action", flat=True)) == ["manifest.disable", "manifest.enable", "manifest.scale",
                                                       "manifest.undo-rollout", "manifest.delete"]


def ingress(name: str, service_name: str) -> dict:
    backend = {"service": {"name": service_name, "port": {"number": 80}}}
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": name},
            "spec": {"rules": [{"host": "shop.example", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": backend}]}}]}}


def test_a_deployments_service_and_ingress_show_as_its_load_balancers_with_the_replica_set_they_route_to(kube):
    namespace, images, core, apps = kube["namespace"], kube["images"], kube["core"], kube["apps"]
    succeeded([deploy_stage([service("web", {"app": "web"}), deployment("web", images["v1"], free_port()),
                             ingress("web", "web")], namespaceOverride=namespace)])
    core.create_namespaced_service(namespace, service("other", {"app": "web"}))  # not the application's
    [replica_set_name] = [rs.metadata.name for rs in apps.list_namespaced_replica_set(namespace).items]
    reader = person("bob", app_actions=["read"])

    listed = reader.get(CLUSTERS)

    assert listed.status_code == 200, listed.content
    [balancer, front] = listed.json()["kubernetesLoadBalancers"]
    live = core.read_namespaced_service("web", namespace)
    assert balancer == {
        "name": "web", "kind": "Service", "manifestName": "service web", "account": "dev", "namespace": namespace,
        "type": "ClusterIP", "clusterIp": live.spec.cluster_ip, "selector": {"app": "web"},
        "ports": [{"name": "", "protocol": "TCP", "port": 80, "targetPort": "8080", "nodePort": None}],
        "rules": [], "services": [], "createdAt": balancer["createdAt"],
        "serverGroups": [f"replicaSet {replica_set_name}"]}
    assert live.spec.cluster_ip and balancer["createdAt"]
    assert (front["manifestName"], front["rules"], front["services"], front["serverGroups"]) == (
        "ingress web", [{"host": "shop.example", "path": "/", "service": "web", "port": "80"}], ["service web"],
        [f"replicaSet {replica_set_name}"])

    page = Client()
    page.force_login(User.objects.get(username="bob"))
    html = page.get("/applications/shop/clusters/").content.decode()
    assert f'data-kubernetes-load-balancer="dev/{namespace}/service web"' in html
    assert f'data-kubernetes-load-balancer="dev/{namespace}/ingress web"' in html
    assert html.count(f'data-routes-to="replicaSet {replica_set_name}"') == 2
    assert "shop.example/→web:80" in html
    assert f'data-kubernetes-load-balancer="dev/{namespace}/service other"' not in html
