"""Traffic guards on Kubernetes clusters: a guard names a Kubernetes account and a namespace (Spinnaker's
``location``) and the moniker cluster; the API and the page add, list and remove one (errors name the field),
and — against the real test cluster — the last enabled ReplicaSet of a guarded cluster is not disabled, deleted
or scaled to 0 by the clusters API or by a stage, while one that leaves another enabled is.
"""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.test import Client
from rest_framework.test import APIClient

from apps.accounts.models import AuditEvent
from apps.deployments.models import TrafficGuard
from apps.deployments.services.accounts import local_docker_account
from apps.deployments.services.kubernetes_accounts import do_save_kubernetes_account
from apps.pipelines.choices import Status
from apps.pipelines.models import Application
from tests.deployments.conftest import free_port
from tests.deployments.test_deploy import run
from tests.deployments.test_kubernetes_cluster import wait_for
from tests.deployments.test_kubernetes_clusters import CLUSTERS, UNREACHABLE, action, nowhere, person  # noqa: F401
from tests.deployments.test_kubernetes_deploy import (
    deploy_stage,
    endpoint_pods,
    failure,
    pods_of,
    replica_set,
    service,
    succeeded,
)

GUARDS = "/api/applications/shop/traffic-guards/"


def errors_of(response) -> list[tuple[str, str]]:
    return [(error["pointer"], error["message"]) for error in response.json()["errors"]]


def test_a_writer_guards_a_kubernetes_cluster_in_a_namespace_and_errors_name_the_field(nowhere):  # noqa: F811
    reader = person("bob", app_actions=["read"])
    writer = person("erin", app_actions=["write"])

    assert reader.post(GUARDS, {"account": "dev", "location": "shop", "cluster": "replicaSet shop"},
                       format="json").status_code == 403
    added = writer.post(GUARDS, {"account": "dev", "location": "shop", "cluster": "replicaSet shop"}, format="json")
    assert added.status_code == 201, added.content
    again = writer.post(GUARDS, {"account": "dev", "location": "shop", "cluster": "replicaSet shop"}, format="json")
    assert again.status_code == 201 and TrafficGuard.objects.count() == 1
    by_stack = writer.post(GUARDS, {"account": "dev", "location": "shop", "stack": "api"}, format="json")
    assert by_stack.status_code == 201
    assert reader.get(GUARDS).json() == [
        {"account": "dev", "location": "shop", "stack": "", "detail": "", "cluster": "replicaSet shop"},
        {"account": "dev", "location": "shop", "stack": "api", "detail": "", "cluster": "shop-api"}]

    unknown = writer.post(GUARDS, {"account": "x", "location": "shop", "stack": "api"}, format="json")
    assert unknown.status_code == 400
    assert errors_of(unknown) == [("/account", "there is no Docker engine or Kubernetes account 'x'")]
    no_location = writer.post(GUARDS, {"account": "dev", "cluster": "replicaSet shop"}, format="json")
    assert no_location.status_code == 400
    assert errors_of(no_location) == [("/location", "is required for a Kubernetes account: the namespace")]
    for bad in ("Shop_Prod", "a" * 64):
        refused = writer.post(GUARDS, {"account": "dev", "location": bad, "stack": "api"}, format="json")
        assert refused.status_code == 400 and errors_of(refused)[0][0] == "/location", refused.content
    outside = writer.post(GUARDS, {"account": "dev", "location": "kube-system", "stack": "api"}, format="json")
    assert outside.status_code == 400 and errors_of(outside)[0][0] == "/location"
    assert "may not touch namespace 'kube-system'" in errors_of(outside)[0][1]
    provider = writer.post(GUARDS, {"account": "dev", "location": "shop", "cloudProvider": "aws"}, format="json")
    assert provider.status_code == 400 and errors_of(provider)[0][0] == "/cloudProvider"
    assert TrafficGuard.objects.count() == 2

    # One application guards a cluster of an account's namespace.
    blog = Application.objects.create(name="blog")
    root = APIClient()
    root.force_login(User.objects.create_superuser("root"))
    taken = root.post("/api/applications/blog/traffic-guards/", {
        "account": "dev", "location": "shop", "cluster": "replicaSet shop"}, format="json")
    assert taken.status_code == 409 and "guarded by application shop" in errors_of(taken)[0][1]
    assert not TrafficGuard.objects.filter(application=blog).exists()

    assert reader.delete(f"{GUARDS}dev/replicaSet shop/?location=shop").status_code == 403
    assert writer.delete(f"{GUARDS}dev/replicaSet shop/?location=elsewhere").status_code == 404
    assert writer.delete(f"{GUARDS}dev/replicaSet shop/?location=shop").status_code == 204
    assert writer.delete(f"{GUARDS}dev/shop-api/").status_code == 204  # the one guard of that cluster
    assert writer.delete(f"{GUARDS}dev/shop-api/").status_code == 404
    assert list(AuditEvent.objects.filter(action__startswith="traffic_guard.").order_by("id").values_list(
        "action", "object_id")) == [("traffic_guard.added", "dev/shop/replicaSet shop"),
                                    ("traffic_guard.added", "dev/shop/shop-api"),
                                    ("traffic_guard.removed", "dev/shop/replicaSet shop"),
                                    ("traffic_guard.removed", "dev/shop/shop-api")]


def test_a_name_both_kinds_of_account_use_needs_its_cloud_provider_and_a_docker_guard_ignores_location(
        nowhere):  # noqa: F811
    docker = local_docker_account()
    do_save_kubernetes_account({"name": docker.name, "kubeconfigContents": UNREACHABLE}, actor="ops")
    writer = person("erin", app_actions=["write"])

    both = writer.post(GUARDS, {"account": docker.name, "location": "shop", "stack": "web"}, format="json")
    assert both.status_code == 400 and errors_of(both)[0][0] == "/account"
    assert "cloudProvider" in errors_of(both)[0][1]
    assert writer.post(GUARDS, {"account": docker.name, "location": "shop", "stack": "web",
                                "cloudProvider": "kubernetes"}, format="json").status_code == 201
    assert writer.post(GUARDS, {"account": docker.name, "location": "shop", "stack": "web",
                                "cloudProvider": "docker"}, format="json").status_code == 201
    assert writer.post(GUARDS, {"account": docker.name, "location": "other", "stack": "web",
                                "cloudProvider": "kubernetes"}, format="json").status_code == 201
    assert sorted((guard["location"], guard["cluster"]) for guard in writer.get(GUARDS).json()) == [
        ("", "shop-web"), ("other", "shop-web"), ("shop", "shop-web")]
    # The Docker guard goes first without a location; two Kubernetes namespaces then need one named.
    assert writer.delete(f"{GUARDS}{docker.name}/shop-web/").status_code == 204
    ambiguous = writer.delete(f"{GUARDS}{docker.name}/shop-web/")
    assert ambiguous.status_code == 400 and errors_of(ambiguous)[0][0] == "/location"
    assert writer.delete(f"{GUARDS}{docker.name}/shop-web/?location=other").status_code == 204
    assert [guard["location"] for guard in writer.get(GUARDS).json()] == ["shop"]


def test_a_guard_names_exactly_one_account_and_a_kubernetes_one_its_namespace(nowhere):  # noqa: F811
    shop = Application.objects.get(name="shop")
    docker = local_docker_account()
    for fields in ({"account": docker, "kubernetes_account": nowhere, "location": "shop"},
                   {}, {"kubernetes_account": nowhere}, {"account": docker, "location": "shop"}):
        with pytest.raises(IntegrityError), transaction.atomic():
            TrafficGuard.objects.create(application=shop, cluster="shop-web", **fields)
    TrafficGuard.objects.create(application=shop, cluster="shop-web", kubernetes_account=nowhere, location="shop")
    TrafficGuard.objects.create(application=shop, cluster="shop-web", kubernetes_account=nowhere, location="other")
    TrafficGuard.objects.create(application=shop, cluster="shop-web", account=docker)
    with pytest.raises(IntegrityError), transaction.atomic():
        TrafficGuard.objects.create(application=shop, cluster="shop-web", kubernetes_account=nowhere,
                                    location="shop")


def test_the_clusters_page_lists_kubernetes_guards_and_adds_and_removes_one(nowhere):  # noqa: F811
    writer = person("erin", app_actions=["write"])
    page = Client()
    page.force_login(User.objects.get(username="erin"))

    html = page.get("/applications/shop/clusters/").content.decode()
    assert '<option value="kubernetes:dev">' in html
    added = page.post("/applications/shop/clusters/traffic-guards/", {
        "account": "kubernetes:dev", "location": "shop", "cluster": "replicaSet shop"})
    assert added.status_code == 302, added.content.decode()[:500]
    refused = page.post("/applications/shop/clusters/traffic-guards/", {"account": "kubernetes:dev",
                                                                         "stack": "api"})
    assert refused.status_code == 400 and "/location: is required for a Kubernetes account" in \
        refused.content.decode()
    html = page.get("/applications/shop/clusters/").content.decode()
    assert 'data-guard="dev/shop/replicaSet shop"' in html
    removed = page.post("/applications/shop/clusters/traffic-guards/dev/replicaSet shop/delete/",
                        {"location": "shop"})
    assert removed.status_code == 302
    assert writer.get(GUARDS).json() == []


# --- Against the real test cluster ---------------------------------------------------------------------


def _names(apps, namespace: str) -> set[str]:
    return {rs.metadata.name for rs in apps.list_namespaced_replica_set(namespace).items
            if rs.metadata.deletion_timestamp is None}


def _refused(finished, *words: str) -> str:
    assert finished.status == Status.TERMINAL, finished.status
    reason = failure(finished)
    assert "traffic guard" in reason and all(word in reason for word in words), reason
    return reason


def test_a_guarded_cluster_keeps_its_last_enabled_replica_set_whether_the_api_or_a_stage_asks(kube):
    namespace, images, core, apps = kube["namespace"], kube["images"], kube["core"], kube["apps"]
    traffic = {"enabled": True, "options": {"services": ["service shop"], "enableTraffic": True,
                                            "strategy": "redblack"}}
    succeeded([deploy_stage([service("shop", {"serving": "shop"})], namespaceOverride=namespace)])
    for image in (images["v1"], images["v2"]):
        succeeded([deploy_stage([replica_set("shop", image, free_port())], namespaceOverride=namespace,
                                trafficManagement=traffic)])
    # shop-v001 serves, shop-v000 runs out of the service (red/black).
    deployer = person("erin", app_actions=["execute", "write"], account_actions=["deploy"])
    guarded = deployer.post(GUARDS, {"account": "dev", "location": namespace, "cluster": "replicaSet shop"},
                            format="json")
    assert guarded.status_code == 201, guarded.content
    page = Client()
    page.force_login(User.objects.get(username="erin"))
    assert f'data-guarded="dev/{namespace}/replicaSet shop"' in page.get("/applications/shop/clusters/").content \
        .decode()

    # The API and the page refuse to take out the last enabled one (409, naming the guard) ...
    for verb, body in (("disable", {}), ("delete", {}), ("scale", {"replicas": 0})):
        refused = action(deployer, verb, name="shop-v001", namespace=namespace, **body)
        assert refused.status_code == 409, (verb, refused.content)
        message = refused.json()["errors"][0]["message"]
        assert "traffic guard" in message and "replicaSet shop" in message and "shop-v001" in message, message
    refused = page.post(f"/applications/shop/clusters/kubernetes/dev/{namespace}/ReplicaSet/shop-v001/disable/")
    assert refused.status_code == 409 and "traffic guard" in refused.content.decode()
    # ... but the disabled one may go, and the enabled one may scale to a size that still serves.
    assert action(deployer, "scale", name="shop-v000", namespace=namespace, replicas=0).status_code == 200
    assert action(deployer, "scale", name="shop-v001", namespace=namespace, replicas=1).status_code == 200
    assert action(deployer, "scale", name="shop-v000", namespace=namespace, replicas=1).status_code == 200
    assert _names(apps, namespace) == {"shop-v000", "shop-v001"}
    assert endpoint_pods(core, namespace, "shop") <= pods_of(core, namespace, "shop-v001")
    assert not AuditEvent.objects.filter(action__in=["manifest.disable", "manifest.delete"]).exists()

    # The stages: each refusal fails the stage with the reason and changes nothing.
    def stage(kind: str, **fields) -> dict:
        return {"refId": "1", "type": kind, "cloudProvider": "kubernetes", "account": "dev", "location": namespace,
                **fields}

    _refused(run([stage("disableManifest", manifestName="replicaSet shop-v001")]), "disabling")
    _refused(run([stage("scaleManifest", manifestName="replicaSet shop-v001", replicas=0)]), "scaling to 0")
    _refused(run([stage("deleteManifest", manifestName="replicaSet shop-v001")]), "deleting")
    _refused(run([stage("deleteManifest", mode="dynamic", cluster="replicaSet shop", criteria="newest")]),
             "shop-v001")
    by_labels = stage("deleteManifest", mode="label", kinds=["replicaSet"], labelSelectors={"selectors": [
        {"kind": "EXISTS", "key": "app.kubernetes.io/managed-by"}]})
    _refused(run([by_labels]), "shop-v000", "shop-v001")
    # Highlander would delete every older version, leaving a new one of no pods.
    empty = replica_set("shop", images["v1"], free_port())
    empty["spec"]["replicas"] = 0
    highlander = {**traffic, "options": {**traffic["options"], "strategy": "highlander"}}
    _refused(run([deploy_stage([empty], namespaceOverride=namespace, trafficManagement=highlander)], timeout=150),
             "highlander", "shop-v001")
    assert {"shop-v000", "shop-v001"} <= _names(apps, namespace)
    assert apps.read_namespaced_replica_set("shop-v001", namespace).spec.replicas == 1
    wait_for("v001 to keep serving", lambda: endpoint_pods(core, namespace, "shop") &
             pods_of(core, namespace, "shop-v001") != set())

    # With another enabled ReplicaSet the same changes go through: enable v000, then disable and delete v001.
    assert action(deployer, "enable", name="shop-v000", namespace=namespace).status_code == 200
    succeeded([stage("disableManifest", manifestName="replicaSet shop-v001")])
    succeeded([stage("deleteManifest", manifestName="replicaSet shop-v001")])
    wait_for("shop-v001 to go", lambda: "shop-v001" not in _names(apps, namespace))
    # shop-v000 is now the last enabled one (the empty highlander version serves nobody).
    _refused(run([stage("scaleManifest", manifestName="replicaSet shop-v000", replicas=0)]), "shop-v000")
    assert action(deployer, "delete", name="shop-v000", namespace=namespace).status_code == 409

    # Without the guard the last one may go.
    assert deployer.delete(f"{GUARDS}dev/replicaSet shop/?location={namespace}").status_code == 204
    assert action(deployer, "scale", name="shop-v000", namespace=namespace, replicas=0).status_code == 200
