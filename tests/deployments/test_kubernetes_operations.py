"""The Kubernetes manifest operations against a real cluster: each stage runs in the real engine (worker
processes) on resources the test creates with the kubernetes client in a namespace of its own."""

from __future__ import annotations

import base64
import time

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.test import Client
from kubernetes import client

from apps.deployments.services.kubernetes_accounts import do_save_kubernetes_account
from apps.pipelines.choices import Status
from apps.pipelines.problems import InvalidDocument
from apps.pipelines.services import do_save_pipeline
from tests.deployments.conftest import free_port
from tests.deployments.test_deploy import get, run
from tests.deployments.test_kubernetes_cluster import wait_for, web_pod_spec
from tests.scenarios import stages_of


@pytest.fixture
def cluster(workers, kube_cluster, kube_namespace):
    """A worker, and a Kubernetes account ``k8s`` of the test cluster limited to the test's namespace."""
    workers.start(1)
    do_save_kubernetes_account({"name": "k8s", "kubeconfigContents": kube_cluster.kubeconfig,
                                "namespaces": [kube_namespace]}, actor="ops")
    with kube_cluster.api() as api:
        yield {"namespace": kube_namespace, "apps": client.AppsV1Api(api), "core": client.CoreV1Api(api),
               "batch": client.BatchV1Api(api)}
    workers.stop()


def stage(ref: str, kind: str, namespace: str, requisites: tuple[str, ...] = (), **fields) -> dict:
    return {"refId": ref, "name": fields.pop("name", f"{kind} {ref}"), "type": kind, "cloudProvider": "kubernetes",
            "account": "k8s", "location": namespace, "requisiteStageRefIds": list(requisites), **fields}


def finished(stages: list[dict], timeout: float = 120):
    execution = run(stages, timeout=timeout)
    return execution, stages_of(execution)


def errors(by_ref) -> dict:
    return {ref: (s.status, s.context.get("exception")) for ref, s in by_ref.items()}


def web_deployment(name: str, image: str, port: int, *, replicas: int = 1, labels: dict | None = None) -> dict:
    """A Deployment of busybox httpd pods on the host's loopback: one pod at a time (Recreate), since two pods
    cannot bind one host port."""
    labels = {"app": name, **(labels or {})}
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"replicas": replicas, "strategy": {"type": "Recreate"}, "revisionHistoryLimit": 5,
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": web_pod_spec(image, port)}}}


def sleeper_deployment(name: str, image: str, labels: dict | None = None) -> dict:
    """A Deployment whose pods only sleep (no port), so several fit on the one node."""
    return {"metadata": {"name": name, "labels": {"app": name, **(labels or {})}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"hostNetwork": True, "terminationGracePeriodSeconds": 0, "containers": [{
                    "name": "sleep", "image": image, "imagePullPolicy": "Never", "command": ["sleep", "3600"],
                    "readinessProbe": {"exec": {"command": ["true"]}, "periodSeconds": 1}}]}}}}


def ready(apps, name: str, namespace: str) -> int:
    return apps.read_namespaced_deployment_status(name, namespace).status.ready_replicas or 0


def pod_names(core, namespace: str, app: str) -> set[str]:
    return {pod.metadata.name for pod in core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
            if pod.metadata.deletion_timestamp is None}


def test_patches_of_each_kind_show_on_the_resources_and_the_artifacts_are_found(cluster, web_images):
    namespace, apps, core = cluster["namespace"], cluster["apps"], cluster["core"]
    apps.create_namespaced_deployment(namespace, sleeper_deployment("web", web_images["v1"]))
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "settings"}, "data": {"colour": "red"}})

    execution, by_ref = finished([
        stage("strategic", "patchManifest", namespace, manifestName="deployment web",
              options={"mergeStrategy": "strategic", "record": True}, source="text",
              patchBody=[{"spec": {"template": {"spec": {"containers": [
                  {"name": "sleep", "image": web_images["v2"]}]}}}}]),
        stage("merge", "patchManifest", namespace, ("strategic",), manifestName="configMap settings",
              options={"mergeStrategy": "merge"}, patchBody={"data": {"colour": "blue", "size": "large"}}),
        stage("json", "patchManifest", namespace, ("merge",), manifestName="configMap settings",
              options={"mergeStrategy": "json"},
              patchBody=[{"op": "remove", "path": "/data/size"},
                         {"op": "add", "path": "/data/shape", "value": "round"}]),
        stage("find", "findArtifactsFromResource", namespace, ("strategic",), manifestName="deployment web"),
    ])

    assert execution.status == Status.SUCCEEDED, errors(by_ref)
    deployment = apps.read_namespaced_deployment("web", namespace)
    assert deployment.spec.template.spec.containers[0].image == web_images["v2"]
    assert "patchManifest stage" in deployment.metadata.annotations["kubernetes.io/change-cause"]
    assert deployment.status.updated_replicas == 1 and deployment.status.ready_replicas == 1  # waited for it
    assert core.read_namespaced_config_map("settings", namespace).data == {"colour": "blue", "shape": "round"}
    assert by_ref["merge"].outputs["outputs.manifestNamesByNamespace"] == {namespace: ["configMap settings"]}
    artifacts = by_ref["find"].outputs["artifacts"]
    assert artifacts[0]["type"] == "docker/image" and artifacts[0]["reference"] == web_images["v2"]
    assert artifacts[-1] == {"type": "kubernetes/deployment", "name": "web", "reference": "web",
                             "location": namespace, "version": "", "customKind": False}
    assert by_ref["find"].outputs["manifest"]["metadata"]["name"] == "web"


def test_a_dynamic_target_acts_on_the_newest_resource_of_the_cluster(cluster):
    namespace, core = cluster["namespace"], cluster["core"]
    for version in ("v000", "v001"):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": f"settings-{version}"},
                                                      "data": {"colour": "red"}})
        time.sleep(1.1)  # creation times are kept to the second
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "other-v002"}, "data": {"colour": "red"}})

    execution, by_ref = finished([stage("patch", "patchManifest", namespace, mode="dynamic",
                                        cluster="configMap settings", criteria="newest",
                                        options={"mergeStrategy": "merge"}, patchBody={"data": {"colour": "blue"}})])

    assert execution.status == Status.SUCCEEDED, errors(by_ref)
    assert by_ref["patch"].context["resolvedManifestName"] == "configMap settings-v001"
    colours = {name: core.read_namespaced_config_map(name, namespace).data["colour"]
               for name in ("settings-v000", "settings-v001", "other-v002")}
    assert colours == {"settings-v000": "red", "settings-v001": "blue", "other-v002": "red"}


def test_a_delete_by_label_selector_removes_exactly_the_matching_resources(cluster, web_images):
    namespace, apps, core = cluster["namespace"], cluster["apps"], cluster["core"]
    for name, labels in (("a", {"app": "shop"}), ("b", {"app": "shop", "tier": "db"}), ("c", {"app": "blog"}),
                         ("d", {"tier": "db"})):
        core.create_namespaced_config_map(namespace, {"metadata": {"name": name, "labels": labels}})
    apps.create_namespaced_deployment(namespace, sleeper_deployment("shop-web", web_images["v1"], {"app": "shop"}))
    apps.create_namespaced_deployment(namespace, sleeper_deployment("blog-web", web_images["v1"], {"app": "blog"}))

    execution, by_ref = finished([stage(
        "delete", "deleteManifest", namespace, mode="label", kinds=["configMap", "deployment"],
        options={"cascading": True, "gracePeriodSeconds": 0},
        labelSelectors={"selectors": [{"kind": "EQUALS", "key": "app", "values": ["shop"]},
                                      {"kind": "NOT_CONTAINS", "key": "tier", "values": ["db"]}]})])

    assert execution.status == Status.SUCCEEDED, errors(by_ref)
    assert sorted(by_ref["delete"].outputs["outputs.manifestNamesByNamespace"][namespace]) == [
        "configMap a", "deployment shop-web"]
    assert sorted(m.metadata.name for m in core.list_namespaced_config_map(namespace).items
                  if m.metadata.name in "abcd") == ["b", "c", "d"]
    assert [d.metadata.name for d in apps.list_namespaced_deployment(namespace).items] == ["blog-web"]


def test_scale_to_two_gives_two_ready_pods(cluster, web_images):
    namespace, apps = cluster["namespace"], cluster["apps"]
    apps.create_namespaced_deployment(namespace, sleeper_deployment("workers", web_images["v1"]))

    execution, by_ref = finished([stage("scale", "scaleManifest", namespace, manifestName="deployment workers",
                                        replicas=2)])

    assert execution.status == Status.SUCCEEDED, errors(by_ref)
    assert ready(apps, "workers", namespace) == 2  # the stage ended only once both were ready
    assert len(pod_names(cluster["core"], namespace, "workers")) == 2


def test_undo_rollout_serves_the_previous_image_again_and_a_rolling_restart_replaces_the_pods(cluster, web_images):
    namespace, apps, core = cluster["namespace"], cluster["apps"], cluster["core"]
    port = free_port()
    apps.create_namespaced_deployment(namespace, web_deployment("web", web_images["v1"], port))
    wait_for("v1 to answer", lambda: ready(apps, "web", namespace) == 1)
    apps.patch_namespaced_deployment("web", namespace, {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "image": web_images["v2"]}]}}}})
    wait_for("v2 to answer", lambda: _answer(port) == (200, "v2"))

    execution, by_ref = finished([stage("undo", "undoRolloutManifest", namespace, manifestName="deployment web",
                                        numRevisionsBack=1)])

    assert execution.status == Status.SUCCEEDED, errors(by_ref)
    assert get(port) == (200, "v1")
    assert by_ref["undo"].outputs["restoredRevision"] == 1
    before = pod_names(core, namespace, "web")

    execution, by_ref = finished([stage("restart", "rollingRestartManifest", namespace,
                                        manifestName="deployment web")])

    assert execution.status == Status.SUCCEEDED, errors(by_ref)
    after = pod_names(core, namespace, "web")
    assert len(after) == 1 and after.isdisjoint(before)
    template = apps.read_namespaced_deployment("web", namespace).spec.template
    assert template.metadata.annotations["kubectl.kubernetes.io/restartedAt"] == by_ref["restart"].context[
        "restartedAt"]
    assert get(port) == (200, "v1")


def _answer(port: int):
    try:
        return get(port)
    except OSError:
        return None


def job(image: str, script: str) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [{
                "name": "migrate", "image": image, "imagePullPolicy": "Never", "command": ["sh", "-c", script]}]}}}}


def test_a_job_runs_to_completion_and_a_later_stage_reads_its_properties(cluster, web_images):
    namespace, batch = cluster["namespace"], cluster["batch"]
    script = ("echo migrating; echo SPINNAKER_PROPERTY_VERSION=42; "
              """echo 'SPINNAKER_CONFIG_JSON={"schema": "v7"}'""")
    run_job = {"refId": "job", "name": "Run job", "type": "runJobManifest", "cloudProvider": "kubernetes",
               "account": "k8s", "application": "shop", "source": "text", "propertyFile": "migrate",
               "consumeArtifactSource": "propertyFile",
               "manifests": [{**job(web_images["v1"], script), "metadata": {"name": "migrate",
                                                                              "namespace": namespace}}]}
    read = {"refId": "read", "name": "Read", "type": "evaluateVariables", "requisiteStageRefIds": ["job"],
            "variables": [{"key": "fromContext", "value": "${#stage('Run job')['context']['propertyFileContents']"
                                                          "['version']}"},
                          {"key": "fromOutputs", "value": "${schema}"}]}

    execution, by_ref = finished([run_job, read])

    assert execution.status == Status.SUCCEEDED, errors(by_ref)
    ran = by_ref["job"]
    assert ran.outputs["version"] == "42" and ran.outputs["schema"] == "v7"
    assert by_ref["read"].outputs["fromContext"] == "42" and by_ref["read"].outputs["fromOutputs"] == "v7"
    name = ran.context["jobName"]
    assert name.startswith("migrate-") and len(name) == len("migrate-") + 5
    assert batch.read_namespaced_job_status(name, namespace).status.succeeded == 1
    assert ran.context["jobStatus"]["phase"] == "SUCCEEDED"
    assert ran.context["logs"][0]["container"] == "migrate" and "migrating" in ran.context["logs"][0]["log"]
    assert ran.outputs["deploy.jobs"] == {namespace: [f"job {name}"]}

    viewer = Client()
    viewer.force_login(get_user_model().objects.create_superuser("root"))
    panel = viewer.get(f"/executions/{execution.id}/stages/{ran.id}/").content.decode()
    assert f"{namespace}/{name}" in panel and 'data-job-log="migrate">migrating' in panel


def test_a_failing_job_from_an_artifact_fails_the_stage_with_its_exit_code_and_keeps_its_log(cluster, web_images):
    namespace = cluster["namespace"]
    failing = base64.b64encode(yaml.safe_dump(job(web_images["v1"], "echo the database is locked; exit 3")).encode())
    run_job = {"refId": "job", "name": "Run job", "type": "runJobManifest", "cloudProvider": "kubernetes",
               "account": "k8s", "namespace": namespace, "source": "artifact",
               "manifestArtifact": {"type": "embedded/base64", "reference": failing.decode()}}

    execution, by_ref = finished([run_job])

    assert execution.status == Status.TERMINAL
    failure = by_ref["job"].context["exception"]
    message = str(failure)
    assert "exited with code 3" in message and "the database is locked" in message, failure
    assert by_ref["job"].context["jobStatus"]["phase"] == "FAILED"
    assert "the database is locked" in by_ref["job"].context["logs"][0]["log"]


def test_an_account_limited_to_other_namespaces_or_kinds_is_refused_and_nothing_changes(cluster, kube_cluster):
    namespace, core = cluster["namespace"], cluster["core"]
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "kept", "labels": {"app": "shop"}},
                                                  "data": {"colour": "red"}})
    do_save_kubernetes_account({"name": "elsewhere", "kubeconfigContents": kube_cluster.kubeconfig,
                                "namespaces": ["some-other-namespace"]}, actor="ops")
    do_save_kubernetes_account({"name": "deployments-only", "kubeconfigContents": kube_cluster.kubeconfig,
                                "kinds": ["deployment"]}, actor="ops")

    refusals = {}
    for refused in (
        stage("namespace", "deleteManifest", namespace, account="elsewhere", manifestName="configMap kept"),
        stage("kind", "patchManifest", namespace, account="deployments-only", manifestName="configMap kept",
              options={"mergeStrategy": "merge"}, patchBody={"data": {"colour": "blue"}}),
        stage("labels", "deleteManifest", namespace, account="deployments-only", kinds=["deployment", "configMap"],
              labelSelectors={"selectors": [{"kind": "EQUALS", "key": "app", "values": ["shop"]}]}),
    ):
        execution, by_ref = finished([refused])  # one execution each: a failed stage stops its execution
        assert execution.status == Status.TERMINAL
        refusals[refused["refId"]] = str(by_ref[refused["refId"]].context["exception"])

    assert "/location: account elsewhere may not touch namespace" in refusals["namespace"]
    assert "/manifestName: account deployments-only may not touch kind 'configMap'" in refusals["kind"]
    assert "/kinds/1: account deployments-only may not touch kind 'configMap'" in refusals["labels"]
    assert core.read_namespaced_config_map("kept", namespace).data == {"colour": "red"}


@pytest.mark.django_db
def test_stage_definitions_are_checked_at_their_json_pointers():
    stages = [
        {"refId": "1", "type": "patchManifest", "account": "k8s", "location": "shop", "manifestName": "web",
         "options": {"mergeStrategy": "json"}, "patchBody": {"spec": {}}},
        {"refId": "2", "type": "deleteManifest", "account": "k8s", "location": "shop", "kinds": ["deployment"],
         "labelSelectors": {"selectors": [{"kind": "SIMILAR", "key": "app"}, {"kind": "EQUALS", "key": "app"}]},
         "options": {"gracePeriodSeconds": -1}},
        {"refId": "3", "type": "scaleManifest", "account": "k8s", "manifestName": "deployment web", "replicas": -2},
        {"refId": "4", "type": "undoRolloutManifest", "account": "k8s", "location": "shop", "mode": "dynamic",
         "cluster": "deployment web", "criteria": "biggest", "numRevisionsBack": 0},
        {"refId": "5", "type": "runJobManifest", "account": "k8s",
         "manifest": {"kind": "Deployment", "metadata": {}, "spec": {}}},
    ]
    with pytest.raises(InvalidDocument) as refused:
        do_save_pipeline({"application": "shop", "name": "bad", "stages": stages}, user="ops")
    problems = {problem.pointer: problem.message for problem in refused.value.problems}

    assert problems["/stages/0/manifestName"] == "must be a kind and a name, as in 'deployment my-app'"
    assert problems["/stages/0/patchBody"] == "must be a list of JSON patch operations for mergeStrategy json"
    assert problems["/stages/1/labelSelectors/selectors/0/kind"].startswith("must be one of EQUALS")
    assert problems["/stages/1/labelSelectors/selectors/1/values"] == "must hold exactly one value for EQUALS"
    assert problems["/stages/1/options/gracePeriodSeconds"].startswith("must be a whole number of seconds")
    assert problems["/stages/2/location"] == "is required: the namespace of the resource"
    assert problems["/stages/2/replicas"] == "must be a whole number from 0 to 1000"
    assert problems["/stages/3/criteria"].startswith("must be one of newest")
    assert problems["/stages/3/numRevisionsBack"] == "must be a whole number from 1 to 100"
    assert problems["/stages/4/manifest/kind"] == "must be Job"
    assert problems["/stages/4/manifest/metadata/name"] == "is required (or metadata.generateName)"
    assert problems["/stages/4/manifest/spec/template/spec/containers"] == "is required: the job's containers"


# --- The pieces the stages are made of, without a cluster -----------------------------------------


def test_spinnakers_selectors_become_a_kubernetes_label_selector():
    from apps.deployments.providers.kubernetes.operations import label_selector

    assert label_selector([
        {"kind": "EQUALS", "key": "app", "values": ["shop"]}, {"kind": "NOT_EQUALS", "key": "stack", "values": ["x"]},
        {"kind": "CONTAINS", "key": "tier", "values": ["web", "api"]},
        {"kind": "NOT_CONTAINS", "key": "zone", "values": ["b"]}, {"kind": "EXISTS", "key": "team"},
        {"kind": "NOT_EXISTS", "key": "canary"}, {"kind": "ANY", "key": "whatever"},
    ]) == "app=shop,stack!=x,tier in (web,api),zone notin (b),team,!canary"


def test_image_artifacts_split_name_and_version_as_clouddriver_does():
    from apps.deployments.providers.kubernetes.operations import image_artifact

    assert [(a["name"], a["version"]) for a in map(image_artifact, [
        "nginx", "nginx:1.25", "127.0.0.1:5000/shop/web:v2", "127.0.0.1:5000/shop/web",
        "web@sha256:abc"])] == [("nginx", ""), ("nginx", "1.25"), ("127.0.0.1:5000/shop/web", "v2"),
                                ("127.0.0.1:5000/shop/web", ""), ("web", "sha256:abc")]


def test_a_deployment_is_stable_only_with_every_replica_updated_and_no_old_one_left():
    from apps.deployments.providers.kubernetes.stability import workload_stability as stability

    def deployment(generation=2, observed=2, **status):
        return {"kind": "Deployment", "metadata": {"generation": generation}, "spec": {"replicas": 2},
                "status": {"observedGeneration": observed, **status}}

    settled = {"updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2, "replicas": 2}
    assert stability(deployment(**settled)).stable
    assert not stability(deployment(observed=1, **settled)).stable
    assert not stability(deployment(**{**settled, "replicas": 3})).stable  # an old pod still running
    assert not stability(deployment(**{**settled, "availableReplicas": 1})).stable
    stuck = stability(deployment(conditions=[{"type": "Progressing", "reason": "ProgressDeadlineExceeded",
                                              "message": "ReplicaSet web-1 has timed out progressing."}]))
    assert stuck.failed and "timed out progressing" in stuck.reason
    assert stability({"kind": "ConfigMap", "metadata": {}}).stable
