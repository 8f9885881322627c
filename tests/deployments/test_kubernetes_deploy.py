"""deployManifest, enableManifest and disableManifest against the real test cluster, run by real workers.

The pods run busybox web images on the host's network, each on a port of its own, so the tests read their pages
on 127.0.0.1; traffic moving between ReplicaSets is read from the Services' endpoints.
"""

from __future__ import annotations

import base64

import pytest
import yaml

from apps.deployments.providers.kubernetes.manifests import image_name, rewrite_references
from apps.deployments.providers.kubernetes.stability import workload_stability
from apps.deployments.services.kubernetes_accounts import do_save_kubernetes_account
from apps.pipelines.choices import Status
from apps.pipelines.problems import InvalidDocument
from apps.pipelines.services import do_save_pipeline, do_start_execution
from tests.conftest import wait_for_execution
from tests.deployments.conftest import free_port
from tests.deployments.test_deploy import get, run
from tests.deployments.test_kubernetes_cluster import wait_for, web_pod_spec
from tests.scenarios import stages_of


def deploy_stage(manifests: list[dict], refid: str = "1", **options) -> dict:
    return {"refId": refid, "name": "Deploy manifests", "type": "deployManifest", "cloudProvider": "kubernetes",
            "account": "dev", "source": "text", "moniker": {"app": "shop"}, "manifests": manifests,
            "stableTimeoutSec": 90, **options}


def deployment(name: str, image: str, port: int, **spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, **spec, "template": {
                "metadata": {"labels": {"app": name}}, "spec": web_pod_spec(image, port)}}}


def replica_set(name: str, image: str, port: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}}, "spec": web_pod_spec(image, port)}}}


def service(name: str, selector: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 8080}]}}


def succeeded(stages: list[dict], timeout: float = 150):
    finished = run(stages, timeout=timeout)
    assert finished.status == Status.SUCCEEDED, {ref: s.context.get("exception") for ref, s in
                                                 stages_of(finished).items()}
    return stages_of(finished)["1"]


def failure(finished) -> str:
    return str(stages_of(finished)["1"].context["exception"]["details"]["error"])


def test_a_deployment_and_a_service_become_stable_and_a_new_image_rolls_out(kube):
    namespace, images = kube["namespace"], kube["images"]
    first, second = free_port(), free_port()

    stage = succeeded([deploy_stage([service("web", {"app": "web"}), deployment("web", images["v1"], first)],
                                    namespaceOverride=namespace)])

    assert get(first) == (200, "v1")
    outputs = stage.outputs
    assert outputs["outputs.manifestNamesByNamespace"] == {namespace: ["service web", "deployment web"]}
    assert [(a["type"], a["name"], a["location"], a["version"]) for a in outputs["outputs.createdArtifacts"]] == [
        ("kubernetes/service", "web", namespace, ""), ("kubernetes/deployment", "web", namespace, "")]
    assert outputs["deploy.server.groups"] == {}
    live = kube["apps"].read_namespaced_deployment("web", namespace)
    assert live.metadata.annotations["moniker.spinnaker.io/application"] == "shop"
    assert live.metadata.annotations["moniker.spinnaker.io/cluster"] == "deployment web"
    assert live.metadata.annotations["artifact.spinnaker.io/type"] == "kubernetes/deployment"
    assert live.metadata.labels["app.kubernetes.io/managed-by"] == "cdplatform"
    assert any(entry.manager == "cdplatform" and entry.operation == "Apply" for entry in live.metadata.managed_fields)

    # The image comes from a required docker/image artifact of the same name (the manifest's tag does not matter).
    untagged = images["v2"].rsplit(":", 1)[0]
    stage = succeeded([deploy_stage(
        [deployment("web", untagged + ":latest", second)], namespaceOverride=namespace,
        requiredArtifacts=[{"artifact": {"type": "docker/image", "name": untagged, "reference": images["v2"]}}])])

    assert get(second) == (200, "v2")
    assert stage.outputs["outputs.boundArtifacts"] == [images["v2"]]
    live = kube["apps"].read_namespaced_deployment_status("web", namespace)
    assert live.spec.template.spec.containers[0].image == images["v2"]
    assert live.status.updated_replicas == live.status.available_replicas == live.status.replicas == 1


def endpoint_pods(core, namespace: str, name: str) -> set[str]:
    endpoints = core.read_namespaced_endpoints(name, namespace)
    return {address.target_ref.name for subset in endpoints.subsets or [] for address in subset.addresses or []}


def pods_of(core, namespace: str, replica_set_name: str) -> set[str]:
    return {pod.metadata.name for pod in core.list_namespaced_pod(namespace).items
            if any(owner.name == replica_set_name for owner in pod.metadata.owner_references or [])}


def test_red_black_moves_the_service_to_the_new_replica_set_and_highlander_deletes_the_old_ones(kube):
    namespace, images, core, apps = kube["namespace"], kube["images"], kube["core"], kube["apps"]
    succeeded([deploy_stage([service("shop", {"serving": "shop"})], namespaceOverride=namespace)])
    traffic = {"enabled": True, "options": {"services": ["service shop"], "enableTraffic": True,
                                            "strategy": "redblack"}}

    first = succeeded([deploy_stage([replica_set("shop", images["v1"], free_port())], namespaceOverride=namespace,
                                    trafficManagement=traffic)])
    assert first.outputs["deploy.server.groups"] == {namespace: ["replicaSet shop-v000"]}
    wait_for("the service to reach v000", lambda: endpoint_pods(core, namespace, "shop") ==
             pods_of(core, namespace, "shop-v000") != set())

    port = free_port()
    second = succeeded([deploy_stage([replica_set("shop", images["v2"], port)], namespaceOverride=namespace,
                                     trafficManagement=traffic)])

    assert second.outputs["deploy.server.groups"] == {namespace: ["replicaSet shop-v001"]}
    assert get(port) == (200, "v2")
    wait_for("the service to move to v001", lambda: endpoint_pods(core, namespace, "shop") ==
             pods_of(core, namespace, "shop-v001") != set())
    old = apps.read_namespaced_replica_set_status("shop-v000", namespace)
    assert old.status.ready_replicas == 1, "red/black keeps the old version running"
    assert "serving" not in old.spec.template.metadata.labels
    assert not endpoint_pods(core, namespace, "shop") & pods_of(core, namespace, "shop-v000")

    # disableManifest and enableManifest move one version by hand.
    succeeded([{"refId": "1", "type": "disableManifest", "cloudProvider": "kubernetes", "account": "dev",
                "manifestName": "replicaSet shop-v001", "location": namespace}])
    wait_for("the service to have no endpoints", lambda: endpoint_pods(core, namespace, "shop") == set())
    succeeded([{"refId": "1", "type": "enableManifest", "cloudProvider": "kubernetes", "account": "dev",
                "manifestName": "replicaSet shop-v000", "location": namespace}])
    wait_for("v000 to serve again", lambda: endpoint_pods(core, namespace, "shop") ==
             pods_of(core, namespace, "shop-v000") != set())

    highlander = {**traffic, "options": {**traffic["options"], "strategy": "highlander"}}
    succeeded([deploy_stage([replica_set("shop", images["v1"], free_port())], namespaceOverride=namespace,
                            trafficManagement=highlander)])

    names = {rs.metadata.name for rs in apps.list_namespaced_replica_set(namespace).items
             if rs.metadata.deletion_timestamp is None}
    assert names == {"shop-v002"}
    wait_for("the service to reach v002 alone", lambda: endpoint_pods(core, namespace, "shop") ==
             pods_of(core, namespace, "shop-v002") != set())


def test_a_config_map_is_versioned_and_the_deployment_uses_the_new_version(kube):
    namespace, images, core, apps = kube["namespace"], kube["images"], kube["core"], kube["apps"]
    port = free_port()

    def manifests(greeting: str) -> list[dict]:
        web = deployment("web", images["v1"], port, strategy={"type": "Recreate"})
        web["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "settings"}}]
        return [{"apiVersion": "v1", "kind": "ConfigMap", "data": {"GREETING": greeting},
                 "metadata": {"name": "settings", "namespace": namespace,
                              "annotations": {"strategy.spinnaker.io/max-version-history": "2"}}},
                {**web, "metadata": {"name": "web", "namespace": namespace}}]

    first = succeeded([deploy_stage(manifests("hello from ${execution.application}"))])
    assert core.read_namespaced_config_map("settings-v000", namespace).data == {"GREETING": "hello from shop"}
    assert first.outputs["outputs.createdArtifacts"][0]["reference"] == "settings-v000"

    succeeded([deploy_stage(manifests("${ 'bonjour' }"))])

    assert core.read_namespaced_config_map("settings-v001", namespace).data == {"GREETING": "bonjour"}
    container = apps.read_namespaced_deployment("web", namespace).spec.template.spec.containers[0]
    assert container.env_from[0].config_map_ref.name == "settings-v001"
    assert get(port) == (200, "v1")

    # skipExpressionEvaluation leaves the manifests as written; the history keeps two versions.
    succeeded([deploy_stage(manifests("${ 'as written' }")[:1], skipExpressionEvaluation=True)])

    assert core.read_namespaced_config_map("settings-v002", namespace).data == {"GREETING": "${ 'as written' }"}
    names = {item.metadata.name for item in core.list_namespaced_config_map(namespace).items}
    assert {"settings-v001", "settings-v002"} <= names and "settings-v000" not in names

    # The same content again (a stage run again after a crash, say) reuses its version, and the history keeps
    # the version applied even when it is the oldest.
    again = succeeded([deploy_stage(manifests("${ 'bonjour' }"))])

    assert again.outputs["outputs.createdArtifacts"][0]["reference"] == "settings-v001"
    names = {item.metadata.name for item in core.list_namespaced_config_map(namespace).items
             if item.metadata.deletion_timestamp is None}
    assert {"settings-v001", "settings-v002"} <= names and "settings-v003" not in names
    container = apps.read_namespaced_deployment("web", namespace).spec.template.spec.containers[0]
    assert container.env_from[0].config_map_ref.name == "settings-v001"


def test_manifests_from_an_artifact_use_the_config_map_an_upstream_stage_versioned(kube):
    namespace, images, apps = kube["namespace"], kube["images"], kube["apps"]
    port = free_port()
    config = {**deploy_stage([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                               "data": {"GREETING": "hi"}}], namespaceOverride=namespace),
              "expectedArtifacts": [{"id": "settings-artifact", "matchArtifact": {
                  "type": "kubernetes/configMap", "name": "settings", "kind": "custom"}}]}
    web = deployment("web", images["v1"], port)
    web["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "GREETING"}}}]
    text = base64.b64encode(yaml.safe_dump_all([web]).encode()).decode()
    from_artifact = {**deploy_stage([], "2", namespaceOverride=namespace, requiredArtifactIds=["settings-artifact"]),
                     "source": "artifact", "manifestArtifact": {"type": "embedded/base64", "reference": text},
                     "requisiteStageRefIds": ["1"]}
    del from_artifact["manifests"]

    finished = run([config, from_artifact], timeout=150)

    assert finished.status == Status.SUCCEEDED, {ref: s.context.get("exception") for ref, s in
                                                 stages_of(finished).items()}
    variable = apps.read_namespaced_deployment("web", namespace).spec.template.spec.containers[0].env[0]
    assert variable.value_from.config_map_key_ref.name == "settings-v000"
    assert get(port) == (200, "v1")


def test_a_docker_image_artifact_of_the_trigger_replaces_the_image_of_the_same_name(kube):
    namespace, images, core = kube["namespace"], kube["images"], kube["core"]
    port = free_port()
    repository = images["v2"].rsplit(":", 1)[0]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
           "spec": web_pod_spec(f"{repository}:to-be-replaced", port)}
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "deliver", "stages": [
        deploy_stage([pod], namespaceOverride=namespace)]}, user="ops")

    execution = do_start_execution(pipeline, user="ops", trigger={"type": "manual", "artifacts": [
        {"type": "docker/image", "name": repository, "reference": images["v2"]}]})
    finished = wait_for_execution(execution.id, timeout=90)

    assert finished.status == Status.SUCCEEDED, failure(finished)
    assert core.read_namespaced_pod("web", namespace).spec.containers[0].image == images["v2"]
    assert get(port) == (200, "v2")


def test_a_manifest_that_never_becomes_stable_fails_with_the_reason(kube):
    namespace, images = kube["namespace"], kube["images"]

    finished = run([deploy_stage([deployment("broken", images["broken"], free_port())], namespaceOverride=namespace,
                                 stableTimeoutSec=8)], timeout=90)

    assert finished.status == Status.TERMINAL
    assert "not stable after 8 s" in failure(finished)
    assert "Readiness probe failed" in failure(finished) and "404" in failure(finished)

    finished = run([deploy_stage([deployment("missing", "cdp-test/not-there:1", free_port())],
                                 namespaceOverride=namespace)], timeout=90)

    assert finished.status == Status.TERMINAL
    assert "deployment missing will not become stable" in failure(finished)
    assert "ErrImageNeverPull" in failure(finished)


def test_an_account_may_not_touch_a_namespace_outside_its_own(kube):
    namespace, core = kube["namespace"], kube["core"]
    do_save_kubernetes_account({"name": "narrow", "kubeconfigContents": kube["kubeconfig"],
                                "namespaces": ["elsewhere"]}, actor="ops")
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": namespace},
                  "data": {"a": "b"}}

    finished = run([deploy_stage([config_map, service("web", {"app": "web"})], account="narrow")])

    assert finished.status == Status.TERMINAL
    assert failure(finished).startswith(f"manifests.0.metadata.namespace: account narrow may not touch namespace "
                                        f"{namespace!r}")
    assert core.list_namespaced_config_map(namespace, label_selector="app.kubernetes.io/managed-by").items == []
    assert core.list_namespaced_service(namespace).items == []


@pytest.mark.django_db
@pytest.mark.parametrize(("stage", "pointer"), [
    ({"manifests": "not a list"}, "/stages/0/manifests"),
    ({"manifests": [{"apiVersion": "v1", "metadata": {"name": "a"}}]}, "/stages/0/manifests/0/kind"),
    ({"manifests": [{"kind": "ConfigMap", "apiVersion": "v1"}]}, "/stages/0/manifests/0/metadata"),
    ({"manifests": [{}, {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {}}]},
     "/stages/0/manifests/1/metadata/name"),
    ({"manifests": [], "trafficManagement": {"enabled": True, "options": {"services": ["deployment web"]}}},
     "/stages/0/trafficManagement/options/services"),
    ({"manifests": [], "trafficManagement": {"enabled": True, "options": {"strategy": "sideways"}}},
     "/stages/0/trafficManagement/options/strategy"),
    ({"manifests": [], "stableTimeoutSec": 0}, "/stages/0/stableTimeoutSec"),
    ({"source": "artifact"}, "/stages/0/manifestArtifactId"),
    ({"manifests": None}, "/stages/0/manifests"),
])
def test_a_deploy_manifest_stage_is_refused_at_the_field_that_is_wrong(stage, pointer):
    document = {"application": "shop", "name": "deliver", "stages": [
        {"refId": "1", "type": "deployManifest", "cloudProvider": "kubernetes", "account": "dev", **stage}]}

    with pytest.raises(InvalidDocument) as refused:
        do_save_pipeline(document, user="ops")

    assert pointer in [problem.pointer for problem in refused.value.problems], refused.value.problems


@pytest.mark.django_db
def test_a_disable_manifest_stage_must_name_a_replica_set():
    document = {"application": "shop", "name": "deliver", "stages": [
        {"refId": "1", "type": "disableManifest", "cloudProvider": "kubernetes", "account": "dev",
         "manifestName": "deployment web", "location": "prod"}]}

    with pytest.raises(InvalidDocument) as refused:
        do_save_pipeline(document, user="ops")

    assert [problem.pointer for problem in refused.value.problems] == ["/stages/0/manifestName"]


@pytest.mark.django_db
def test_manifests_are_not_checked_as_expressions_when_the_stage_skips_their_evaluation():
    script = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "script"},
              "data": {"run.sh": "echo ${HOME:-/root} ${"}}

    def save(**options):
        return do_save_pipeline({"application": "shop", "name": "deliver", "stages": [
            {"refId": "1", "type": "deployManifest", "cloudProvider": "kubernetes", "account": "dev",
             "manifests": [script], **options}]}, user="ops")

    with pytest.raises(InvalidDocument) as refused:
        save()
    assert "/stages/0/manifests/0/data/run.sh" in [problem.pointer for problem in refused.value.problems]

    pipeline, _ = save(skipExpressionEvaluation=True)
    assert pipeline.definition["stages"][0]["manifests"] == [script]


@pytest.mark.parametrize(("reference", "name"), [
    ("nginx", "nginx"), ("nginx:1.19", "nginx"), ("shop/web@sha256:abc", "shop/web"),
    ("127.0.0.1:5000/shop/web:v2", "127.0.0.1:5000/shop/web"), ("127.0.0.1:5000/web", "127.0.0.1:5000/web"),
])
def test_an_image_is_matched_by_its_name_whatever_its_tag_or_digest(reference, name):
    assert image_name(reference) == name


def test_uses_of_versioned_config_maps_and_secrets_are_rewritten_everywhere_a_pod_names_them():
    job = {"kind": "CronJob", "spec": {"jobTemplate": {"spec": {"template": {"spec": {
        "volumes": [{"name": "a", "configMap": {"name": "settings"}}, {"name": "b", "secret": {"secretName": "keys"}},
                    {"name": "c", "projected": {"sources": [{"configMap": {"name": "settings"}},
                                                            {"secret": {"name": "other"}}]}}],
        "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "keys"}}]}],
        "containers": [{"name": "m", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "settings",
                                                                                             "key": "x"}}}]}]}}}}}}

    rewrite_references(job, {("ConfigMap", "settings"): "settings-v003", ("Secret", "keys"): "keys-v001"})

    spec = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert [spec["volumes"][0]["configMap"]["name"], spec["volumes"][1]["secret"]["secretName"]] == \
        ["settings-v003", "keys-v001"]
    assert spec["volumes"][2]["projected"]["sources"] == [{"configMap": {"name": "settings-v003"}},
                                                          {"secret": {"name": "other"}}]
    assert spec["initContainers"][0]["envFrom"][0]["secretRef"]["name"] == "keys-v001"
    assert spec["containers"][0]["env"][0]["valueFrom"]["configMapKeyRef"]["name"] == "settings-v003"


@pytest.mark.parametrize(("obj", "stable", "failed"), [
    ({"kind": "StatefulSet", "metadata": {"generation": 2}, "spec": {"replicas": 2},
      "status": {"observedGeneration": 2, "readyReplicas": 2, "updatedReplicas": 2, "currentRevision": "a",
                 "updateRevision": "a"}}, True, False),
    ({"kind": "StatefulSet", "metadata": {"generation": 2}, "spec": {"replicas": 2},
      "status": {"observedGeneration": 2, "readyReplicas": 2, "updatedReplicas": 2, "currentRevision": "a",
                 "updateRevision": "b"}}, False, False),
    ({"kind": "DaemonSet", "metadata": {"generation": 1}, "status": {
        "observedGeneration": 1, "desiredNumberScheduled": 3, "currentNumberScheduled": 3,
        "updatedNumberScheduled": 3, "numberReady": 2, "numberAvailable": 2}}, False, False),
    ({"kind": "Deployment", "metadata": {"generation": 3}, "spec": {"replicas": 1},
      "status": {"observedGeneration": 2, "updatedReplicas": 1, "availableReplicas": 1, "replicas": 1}},
     False, False),
    ({"kind": "Deployment", "metadata": {"generation": 1}, "spec": {"replicas": 1},
      "status": {"observedGeneration": 1, "conditions": [{"type": "Progressing", "status": "False",
                                                          "reason": "ProgressDeadlineExceeded"}]}}, False, True),
    ({"kind": "Job", "status": {"conditions": [{"type": "Failed", "status": "True",
                                                "reason": "BackoffLimitExceeded"}]}}, False, True),
    ({"kind": "Job", "status": {"conditions": [{"type": "Complete", "status": "True"}]}}, True, False),
    ({"kind": "Pod", "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}},
     False, False),
    ({"kind": "Service", "spec": {}}, True, False),
])
def test_each_kind_is_stable_by_its_own_status(obj, stable, failed):
    verdict = workload_stability(obj)
    assert (verdict.stable, verdict.failed) == (stable, failed)
