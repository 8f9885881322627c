"""Jobs run to completion on a cluster (Spinnaker's runJobManifest): created under a name of their own, watched
until they succeed or fail, their pods' logs read back (bounded) and the reason of a failure found in their pods.
"""

from __future__ import annotations

import copy
import secrets
import string
from dataclasses import dataclass, field
from typing import Any, cast

from kubernetes import client as kubernetes_client
from kubernetes.client.exceptions import ApiException

from apps.deployments.providers.kubernetes.operations import OperationFailed, api_error

# What is kept of a job's logs: the last LOG_BYTES in all, shared among the containers of its newest pod (the one
# that completed, or the last attempt of a failed job).
LOG_BYTES = 64 * 1024
LOG_TAIL_LINES = 5000
MAX_CONTAINERS = 8
SUFFIX_ALPHABET = string.ascii_lowercase + string.digits
# A Job's name becomes a label value on its pods (at most 63 characters), so the name with its suffix must fit.
MAX_JOB_NAME = 63 - 6


def unique_job(manifest: dict, *, namespace: str, labels: dict[str, str]) -> dict:
    """The Job to create: ``manifest`` in ``namespace`` with a random suffix on its name, as Spinnaker's is (or
    its ``generateName`` left for the API server), and ``labels`` added to it and its pod template."""
    job = copy.deepcopy(manifest)
    metadata = job.setdefault("metadata", {})
    metadata["namespace"] = namespace
    if metadata.get("name"):
        suffix = "".join(secrets.choice(SUFFIX_ALPHABET) for _ in range(5))
        metadata["name"] = f"{metadata['name'][:MAX_JOB_NAME]}-{suffix}"
        metadata.pop("generateName", None)
    metadata["labels"] = {**(metadata.get("labels") or {}), **labels}
    template = job.setdefault("spec", {}).setdefault("template", {}).setdefault("metadata", {})
    template["labels"] = {**(template.get("labels") or {}), **labels}
    return job


def create(api_client, job: dict) -> str:
    """Create ``job``; the name the cluster gave it."""
    try:
        created = kubernetes_client.BatchV1Api(api_client).create_namespaced_job(job["metadata"]["namespace"],
                                                                                 cast(Any, job))
    except ApiException as error:
        raise api_error(error, "creating the job") from None
    return _plain(api_client, created)["metadata"]["name"]


def _plain(api_client, model) -> Any:
    """A model the typed API returned, as the API's own JSON (camelCase dicts)."""
    return api_client.sanitize_for_serialization(model)


@dataclass
class JobState:
    """Where a job is: ``phase`` RUNNING, SUCCEEDED or FAILED, with the reason of a failure and its pods' names."""

    phase: str
    message: str = ""
    pods: list[str] = field(default_factory=list)
    status: dict = field(default_factory=dict)


def _pods(api_client, name: str, namespace: str) -> list[dict]:
    core = kubernetes_client.CoreV1Api(api_client)
    try:
        listed = _plain(api_client, core.list_namespaced_pod(namespace, label_selector=f"job-name={name}", limit=50))
    except ApiException as error:
        raise api_error(error, f"listing the pods of job {name}") from None
    return sorted(listed.get("items") or [], key=lambda pod: pod["metadata"].get("creationTimestamp") or "",
                  reverse=True)


def _termination(pod: dict) -> str:
    """Why a pod's container ended badly (``exit code 3 (Error)``), or why it never started."""
    name, status = pod["metadata"]["name"], pod.get("status") or {}
    for container in status.get("containerStatuses") or []:
        container_state = container.get("state") or {}
        terminated, waiting = container_state.get("terminated"), container_state.get("waiting")
        if terminated and terminated.get("exitCode") != 0:
            message = (terminated.get("message") or "").strip()
            return (f"container {container['name']} of pod {name} exited with code {terminated.get('exitCode')} "
                    f"({terminated.get('reason') or 'Error'})" + (f": {message}" if message else ""))
        if waiting and waiting.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
            return f"container {container['name']} of pod {name} cannot start: {waiting['reason']}" + (
                f" ({waiting['message']})" if waiting.get("message") else "")
    if status.get("reason"):
        return f"pod {name}: {status['reason']} {status.get('message') or ''}".strip()
    return ""


def state(api_client, name: str, namespace: str) -> JobState:
    """The job's state now: FAILED with its pods' termination reason once the Job has failed."""
    batch = kubernetes_client.BatchV1Api(api_client)
    try:
        job = _plain(api_client, batch.read_namespaced_job_status(name, namespace))
    except ApiException as error:
        if error.status == 404:
            raise OperationFailed(f"job {name} disappeared from namespace {namespace} before it finished") from None
        raise api_error(error, f"reading job {name}") from None
    status = job.get("status") or {}
    summary = {key: status.get(key) or 0 for key in ("active", "succeeded", "failed")}
    pods = _pods(api_client, name, namespace)
    names = [pod["metadata"]["name"] for pod in pods]
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return JobState("SUCCEEDED", "completed", names, summary)
        if condition.get("type") == "Failed":
            reasons = [reason for reason in (_termination(pod) for pod in pods) if reason]
            message = f"{condition.get('reason') or 'Failed'}: {condition.get('message') or 'the job failed'}"
            return JobState("FAILED", "; ".join([message, *reasons[:3]]), names, summary)
    return JobState("RUNNING", "running", names, summary)


def _tail(api_client, pod: str, container: str, namespace: str, budget: int) -> str:
    core = kubernetes_client.CoreV1Api(api_client)
    try:
        # Not preloaded: the response is read as a stream, keeping only its end.
        response = cast(Any, core.read_namespaced_pod_log(pod, namespace, container=container,
                                                          tail_lines=LOG_TAIL_LINES, _preload_content=False))
    except ApiException as error:
        if error.status in (400, 404):  # not started, or gone
            return ""
        raise api_error(error, f"reading the log of pod {pod}") from None
    try:
        data = b""
        for chunk in response.stream(64 * 1024):
            data = (data + chunk)[-budget:]
    finally:
        response.release_conn()
    return data.decode("utf-8", errors="replace")


def logs(api_client, pods: list[str], namespace: str) -> list[dict]:
    """The end of the logs of the job's newest pod (``pods`` newest first), LOG_BYTES shared among its
    containers: ``[{pod, container, log}]``."""
    if not pods:
        return []
    core = kubernetes_client.CoreV1Api(api_client)
    pod_name = pods[0]
    try:
        spec = _plain(api_client, core.read_namespaced_pod(pod_name, namespace))["spec"]
    except ApiException as error:
        if error.status == 404:
            return []
        raise api_error(error, f"reading pod {pod_name}") from None
    containers = [container["name"] for container in (spec.get("initContainers") or []) + spec["containers"]]
    containers = containers[:MAX_CONTAINERS]
    budget = LOG_BYTES // len(containers)
    return [{"pod": pod_name, "container": container,
             "log": _tail(api_client, pod_name, container, namespace, budget)} for container in containers]


def delete(api_client, name: str, namespace: str) -> None:
    """Delete the job and its pods; nothing when it is already gone."""
    try:
        kubernetes_client.BatchV1Api(api_client).delete_namespaced_job(name, namespace,
                                                                       propagation_policy="Background")
    except ApiException as error:
        if error.status != 404:
            raise api_error(error, f"deleting job {name}") from None
