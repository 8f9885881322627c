"""The test cluster the Kubernetes provider is checked against is a real one: a Deployment's pods run on the
Docker engine and answer on 127.0.0.1, and a Job runs to completion with its log read through the API server."""

from __future__ import annotations

import time

from kubernetes import client

from tests.deployments.conftest import free_port
from tests.deployments.test_deploy import get


def wait_for(what: str, check, seconds: float = 90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen in {seconds} s")


def web_pod_spec(image: str, port: int) -> dict:
    """A busybox httpd on the host's loopback (host network), so the test reaches it on 127.0.0.1."""
    return {"hostNetwork": True, "terminationGracePeriodSeconds": 0, "containers": [{
        "name": "web", "image": image, "imagePullPolicy": "Never",
        "command": ["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"],
        "readinessProbe": {"httpGet": {"host": "127.0.0.1", "port": port, "path": "/health"},
                           "periodSeconds": 1}}]}


def test_a_deployment_runs_ready_pods_that_answer_and_a_job_log_is_read(kube_cluster, kube_namespace, web_images):
    port = free_port()
    with kube_cluster.api() as api:
        apps, core, batch = client.AppsV1Api(api), client.CoreV1Api(api), client.BatchV1Api(api)
        apps.create_namespaced_deployment(kube_namespace, {
            "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}}, "spec": web_pod_spec(web_images["v1"], port)}}})
        wait_for("the deployment's pod to be ready",
                 lambda: (apps.read_namespaced_deployment_status("web", kube_namespace).status.ready_replicas or 0)
                 == 1)
        assert get(port) == (200, "v1")
        assert len(apps.list_namespaced_replica_set(kube_namespace, label_selector="app=web").items) == 1

        batch.create_namespaced_job(kube_namespace, {
            "metadata": {"name": "say"},
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [{
                "name": "say", "image": web_images["v1"], "imagePullPolicy": "Never",
                "command": ["sh", "-c", "echo SPINNAKER_PROPERTY_GREETING=hello"]}]}}}})
        wait_for("the job to complete",
                 lambda: batch.read_namespaced_job_status("say", kube_namespace).status.succeeded == 1)
        [pod] = core.list_namespaced_pod(kube_namespace, label_selector="job-name=say").items
        assert core.read_namespaced_pod_log(pod.metadata.name, kube_namespace).strip() == \
            "SPINNAKER_PROPERTY_GREETING=hello"
