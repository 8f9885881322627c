"""A pipeline as Deck exports it — every field Deck writes on its deployManifest stages, a parameter, an expected
ConfigMap artifact — saved through the API and run end to end against the real test cluster: the first stage
versions a ConfigMap from the parameter, the second deploys a Deployment and a Service that use that version."""

from __future__ import annotations

import time

from django.contrib.auth.models import User
from rest_framework.test import APIClient

from apps.pipelines.choices import Status
from apps.pipelines.models import Execution
from tests.conftest import wait_for_execution
from tests.deployments.conftest import free_port
from tests.deployments.test_deploy import get
from tests.deployments.test_kubernetes_cluster import web_pod_spec
from tests.scenarios import stages_of

CONFIG_ARTIFACT = "5d0c3f8e-2b7a-4c1e-9d51-7a8f2e3b6c10"


def deck_stage(ref: str, name: str, manifests: list[dict], requisites: list[str], **fields) -> dict:
    """A deployManifest stage with the fields Deck's editor writes, used or not."""
    return {"account": "gke-dev", "cloudProvider": "kubernetes", "kinds": [], "labelSelectors": {"selectors": []},
            "location": "", "manifestArtifactAccount": "embedded-artifact", "manifests": manifests,
            "moniker": {"app": "storefront"}, "name": name, "options": {"cascading": True}, "refId": ref,
            "relationships": {"loadBalancers": [], "securityGroups": []}, "requisiteStageRefIds": requisites,
            "source": "text", "skipExpressionEvaluation": False, "type": "deployManifest",
            "trafficManagement": {"enabled": False, "options": {"enableTraffic": False, "services": []}}, **fields}


def deck_pipeline(namespace: str, port: int, image: str) -> dict:
    pod = web_pod_spec(image, port)
    pod["containers"][0]["env"] = [{"name": "ERROR_RATE", "valueFrom": {"configMapKeyRef": {
        "key": "ERROR_RATE", "name": "storefront-settings"}}}]
    config = deck_stage("1", "Deploy settings", [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": {"team": "shop"}}},
        {"apiVersion": "v1", "kind": "ConfigMap", "data": {"ERROR_RATE": "${ parameters.errorRate }"},
         "metadata": {"name": "storefront-settings", "namespace": namespace, "labels": {"app": "storefront"}}},
    ], [], expectedArtifacts=[{
        "defaultArtifact": {"kind": "custom"}, "id": CONFIG_ARTIFACT, "useDefaultArtifact": False,
        "usePriorExecution": False,
        "matchArtifact": {"kind": "custom", "name": "storefront-settings", "type": "kubernetes/configMap"}}])
    web = deck_stage("2", "Deploy storefront", [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "storefront", "namespace": namespace, "labels": {"app": "storefront"}},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "storefront"}},
                  "template": {"metadata": {"labels": {"app": "storefront"}}, "spec": pod}}},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": {"name": "storefront", "namespace": namespace, "labels": {"app": "storefront"}},
         "spec": {"selector": {"app": "storefront"}, "type": "ClusterIP",
                  "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": port}]}},
    ], ["1"], requiredArtifactIds=[CONFIG_ARTIFACT])
    return {"name": "Prod deploy", "application": "storefront", "appConfig": {}, "executionEngine": "v2",
            "keepWaitingPipelines": False, "lastModifiedBy": "anonymous", "limitConcurrent": True,
            "parallel": True, "triggers": [], "updateTs": "1567911291918", "stages": [config, web],
            "parameterConfig": [{"name": "errorRate", "label": "Error rate", "required": True, "hasOptions": True,
                                 "options": [{"value": "0"}, {"value": "10"}]}]}


def test_a_pipeline_exported_from_deck_runs_against_the_cluster(kube):
    namespace, images, core, apps = kube["namespace"], kube["images"], kube["core"], kube["apps"]
    api = APIClient()
    api.force_login(User.objects.create_superuser("root"))
    created = api.post("/api/applications/", {"name": "storefront"}, format="json")
    assert created.status_code == 201, created.content
    account = api.post("/api/kubernetes-accounts/", {"name": "gke-dev", "kubeconfigContents": kube["kubeconfig"]},
                       format="json")
    assert account.status_code == 201, account.content
    port = free_port()

    saved = api.post("/api/pipelines/", deck_pipeline(namespace, port, images["v1"]), format="json")
    assert saved.status_code == 201, saved.content
    started = api.post("/api/executions/", {"application": "storefront", "pipeline": saved.json()["id"],
                                            "parameters": {"errorRate": "10"}}, format="json")
    assert started.status_code == 201, started.content
    execution = Execution.objects.get(pk=started.json()["id"])
    finished = wait_for_execution(execution.id, timeout=180)

    assert finished.status == Status.SUCCEEDED, {ref: s.context.get("exception") for ref, s in
                                                 stages_of(finished).items()}
    assert core.read_namespace(namespace).metadata.labels["team"] == "shop"
    assert core.read_namespaced_config_map("storefront-settings-v000", namespace).data == {"ERROR_RATE": "10"}
    live = apps.read_namespaced_deployment("storefront", namespace)
    assert live.spec.template.spec.containers[0].env[0].value_from.config_map_key_ref.name == \
        "storefront-settings-v000"
    assert live.status.ready_replicas == 1
    deadline = time.monotonic() + 10
    while get(port) != (200, "v1") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert get(port) == (200, "v1")
    deployed = stages_of(finished)["2"].outputs
    assert deployed["outputs.manifestNamesByNamespace"] == {namespace: ["deployment storefront", "service storefront"]}
