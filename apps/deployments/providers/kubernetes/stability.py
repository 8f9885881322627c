"""When an applied manifest is stable, as Spinnaker's Clouddriver decides by kind, and why it is not yet.

- Deployment: the controller saw the latest generation, and updated, available and all replicas equal the
  desired count (no old pods left); ``ProgressDeadlineExceeded`` fails it at once.
- ReplicaSet: fully labeled, ready and available replicas equal the desired count.
- StatefulSet: ready and updated replicas equal the desired count, on the update revision.
- DaemonSet: scheduled, updated, ready and available pods equal the desired count.
- Job: its ``Complete`` condition (``Failed`` fails it). Pod: ready, or succeeded (failed fails it).
- Every other kind is stable once applied.

While a workload is not stable, the reason comes from its conditions and then its pods: a container's waiting
reason (``ErrImageNeverPull: ...``, ``CrashLoopBackOff: ...``) or the pod's latest warning event (``Readiness
probe failed: ...``). A waiting reason no retry can change (an image that is not there and may not be pulled, an
invalid image name) fails the manifest at once; anything else is reported when the stage's time runs out.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from apps.deployments.providers.kubernetes.manifests import api_message
from apps.deployments.providers.kubernetes.resources import resource_for

HOPELESS_WAITING_REASONS = ("ErrImageNeverPull", "InvalidImageName")
MAX_PODS_READ = 20
MAX_EVENTS_READ = 50


@dataclass(frozen=True)
class Stability:
    """Where one manifest stands: ``stable``; else ``failed`` (it never will be) or still settling, and why."""

    stable: bool
    failed: bool = False
    reason: str = ""


STABLE = Stability(True)


def _int(value, default: int = 0) -> int:
    return value if isinstance(value, int) else default


def _condition(status: dict, kind: str) -> dict | None:
    return next((c for c in status.get("conditions") or [] if isinstance(c, dict) and c.get("type") == kind), None)


def _generation_seen(obj: dict) -> bool:
    return _int((obj.get("status") or {}).get("observedGeneration"), -1) >= _int(
        (obj.get("metadata") or {}).get("generation"), 0)


def _counts(status: dict, desired: int, *keys: str) -> str:
    return ", ".join(f"{_int(status.get(key))}/{desired} {key}" for key in keys)


def workload_stability(obj: dict) -> Stability:
    """The stability of ``obj`` (a manifest as the cluster holds it) from its own status alone."""
    kind = obj.get("kind")
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    desired = _int(spec.get("replicas"), 1)
    if kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet") and not _generation_seen(obj):
        return Stability(False, reason="waiting for the controller to see the latest generation")
    keys: tuple[str, ...]
    if kind == "Deployment":
        progressing = _condition(status, "Progressing")
        if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
            return Stability(False, True, f"ProgressDeadlineExceeded: {progressing.get('message', '')}")
        keys = ("updatedReplicas", "availableReplicas", "replicas")
        if all(_int(status.get(key)) == desired for key in keys):
            return STABLE
        failure = _condition(status, "ReplicaFailure")
        if failure and failure.get("status") == "True":
            return Stability(False, reason=f"{failure.get('reason')}: {failure.get('message', '')}")
        return Stability(False, reason=_counts(status, desired, *keys))
    if kind == "ReplicaSet":
        keys = ("fullyLabeledReplicas", "readyReplicas", "availableReplicas")
        if all(_int(status.get(key)) == desired for key in keys):
            return STABLE
        failure = _condition(status, "ReplicaFailure")
        if failure and failure.get("status") == "True":
            return Stability(False, reason=f"{failure.get('reason')}: {failure.get('message', '')}")
        return Stability(False, reason=_counts(status, desired, *keys))
    if kind == "StatefulSet":
        keys = ("readyReplicas", "updatedReplicas")
        revision_done = status.get("currentRevision") == status.get("updateRevision") or \
            (spec.get("updateStrategy") or {}).get("type") == "OnDelete"
        if revision_done and all(_int(status.get(key)) == desired for key in keys):
            return STABLE
        return Stability(False, reason=_counts(status, desired, *keys))
    if kind == "DaemonSet":
        wanted = _int(status.get("desiredNumberScheduled"))
        keys = ("currentNumberScheduled", "updatedNumberScheduled", "numberReady", "numberAvailable")
        if all(_int(status.get(key)) == wanted for key in keys):
            return STABLE
        return Stability(False, reason=_counts(status, wanted, *keys))
    if kind == "Job":
        for name, failed in (("Complete", False), ("Failed", True)):
            condition = _condition(status, name)
            if condition and condition.get("status") == "True":
                return Stability(not failed, failed, "" if not failed else
                                 f"{condition.get('reason')}: {condition.get('message', '')}")
        return Stability(False, reason=f"{_int(status.get('active'))} active, {_int(status.get('failed'))} failed")
    if kind == "Pod":
        phase = status.get("phase")
        ready = _condition(status, "Ready")
        if phase == "Succeeded" or (ready and ready.get("status") == "True"):
            return STABLE
        if phase == "Failed":
            return Stability(False, True, f"the pod failed: {status.get('reason') or status.get('message') or ''}")
        return Stability(False, reason=f"the pod is {phase or 'pending'}")
    return STABLE


def _selector(obj: dict) -> str | None:
    """The label selector of a workload's pods (its ``matchLabels``), or None for a kind without pods."""
    if obj.get("kind") == "Job":
        uid = (obj.get("metadata") or {}).get("uid")
        return f"controller-uid={uid}" if uid else None
    labels = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels")
    if not isinstance(labels, dict) or not labels:
        return None
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def pod_problem(client: DynamicClient, pod: dict) -> Stability | None:
    """What holds one pod back: a container's waiting reason (hopeless ones fail), else its latest warning."""
    status = pod.get("status") or {}
    for container in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = ((container or {}).get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason and reason not in ("ContainerCreating", "PodInitializing"):
            message = f"pod {pod['metadata']['name']}: {reason}: {waiting.get('message', '')}".rstrip(": ")
            return Stability(False, reason in HOPELESS_WAITING_REASONS, message)
    ready = _condition(status, "Ready")
    if ready and ready.get("status") == "True":
        return None
    events = client.get(resource_for(client, "Event", "v1"), namespace=pod["metadata"]["namespace"],
                        field_selector=f"involvedObject.name={pod['metadata']['name']},type=Warning",
                        limit=MAX_EVENTS_READ).to_dict().get("items") or []
    if events:
        latest = max(events, key=lambda event: event.get("lastTimestamp") or event.get("eventTime") or "")
        return Stability(False, reason=f"pod {pod['metadata']['name']}: {latest.get('reason')}: "
                                       f"{latest.get('message', '')}".strip())
    if ready:
        return Stability(False, reason=f"pod {pod['metadata']['name']}: {ready.get('reason') or 'not ready'}")
    return None


def stability(client: DynamicClient, resource, name: str, namespace: str) -> Stability:
    """Read the manifest ``name`` and say whether it is stable; for a workload that is not, why (from its pods)."""
    try:
        obj = client.get(resource, name=name, namespace=namespace or None).to_dict()
    except ApiException as error:
        if error.status == 404:
            return Stability(False, True, "it is gone: something deleted it")
        return Stability(False, reason=f"cannot read it: {api_message(error)}")
    verdict = workload_stability(obj)
    if verdict.stable or verdict.failed:
        return verdict
    selector = _selector(obj) if obj.get("kind") != "Pod" else None
    pods = [obj] if obj.get("kind") == "Pod" else []
    if selector:
        pods = client.get(resource_for(client, "Pod", "v1"), namespace=namespace, label_selector=selector,
                          limit=MAX_PODS_READ).to_dict().get("items") or []
    for pod in pods:
        problem = pod_problem(client, pod)
        if problem is not None:
            return Stability(False, problem.failed, f"{verdict.reason}; {problem.reason}")
    return verdict
