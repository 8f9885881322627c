"""Operations on manifests already in a cluster, as Spinnaker's Kubernetes V2 provider does them: delete (by name or
by label selector), patch (strategic, merge or JSON patch), scale, undo a rollout, restart a rollout, read a
resource's artifacts (whether a workload has settled is ``stability.py``'s).

Everything here takes a dynamic client (``resources.dynamic``) and plain values; the stage types in
``apps/deployments/stages/manifest_operations.py`` decide which account, namespace and kind may be touched.
Lists are bounded (``MAX_RESOURCES``), and every call goes through the account's time-bounded API client.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from apps.deployments.providers.kubernetes.manifests import artifact_type, lower_camel
from apps.deployments.providers.kubernetes.resources import ManifestName, resource_for

# The same registration as the provider package's own (idempotent for the same label), so these operations'
# stage types are offered whichever module loads first.

# At most this many resources are listed, deleted or reported by one operation.
MAX_RESOURCES = 200
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
RESTARTED_AT_ANNOTATION = "kubectl.kubernetes.io/restartedAt"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"
# The label a ReplicaSet's controller adds to its pod template; a restored template must not carry it.
POD_TEMPLATE_HASH = "pod-template-hash"

PATCH_CONTENT_TYPES = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}
# The workload kinds whose replicas a scale sets, and those a rollout restart or a stability check knows.
SCALABLE_KINDS = ("deployment", "replicaset", "statefulset")
RESTARTABLE_KINDS = ("deployment", "statefulset", "daemonset")
SELECTOR_KINDS = ("EQUALS", "NOT_EQUALS", "CONTAINS", "NOT_CONTAINS", "EXISTS", "NOT_EXISTS", "ANY")
DYNAMIC_CRITERIA = ("newest", "second_newest", "oldest", "largest", "smallest")


class OperationFailed(Exception):
    """The cluster refused an operation or the resource is not in a state that allows it; the message says why."""


def api_error(error: ApiException, what: str) -> OperationFailed:
    """An OperationFailed saying what was refused, with the API server's own message (not its whole body)."""
    message = error.reason or ""
    try:
        body = json.loads(error.body) if error.body else {}
        message = body.get("message") or message
    except (TypeError, ValueError):
        pass
    return OperationFailed(f"{what}: the API server answered {error.status} {message}".strip())


def _get(dyn: DynamicClient, kind: str, name: str, namespace: str):
    resource = resource_for(dyn, kind)
    try:
        return resource, resource.get(name=name, namespace=namespace if resource.namespaced else None)
    except ApiException as error:
        if error.status == 404:
            raise OperationFailed(f"{kind} {name} is not in namespace {namespace}") from None
        raise api_error(error, f"reading {kind} {name}") from None


def read(dyn: DynamicClient, manifest: ManifestName, namespace: str) -> dict:
    """The resource ``manifest`` in ``namespace``, as a dict; OperationFailed when it is not there."""
    _, found = _get(dyn, manifest.kind, manifest.name, namespace)
    return found.to_dict()


def named(document: dict) -> str:
    """``kind name`` of a resource, Spinnaker style (``deployment web``)."""
    return f"{lower_camel(document['kind'])} {document['metadata']['name']}"


# --- Dynamic targets ------------------------------------------------------------------------------


def dynamic_target(dyn: DynamicClient, cluster: str, criteria: str, namespace: str) -> ManifestName:
    """The resource a dynamic target (``cluster: "replicaSet web"``, ``criteria: newest``) names now: among the
    resources of that kind whose Spinnaker cluster (``moniker.spinnaker.io/cluster`` annotation, else the name
    without a ``-vNNN`` version) is ``web``, the one ``criteria`` picks."""
    wanted = ManifestName.parse(cluster)
    resource = resource_for(dyn, wanted.kind)
    try:
        listed = resource.get(namespace=namespace, limit=MAX_RESOURCES).to_dict().get("items") or []
    except ApiException as error:
        raise api_error(error, f"listing {wanted.kind} in {namespace}") from None

    def cluster_of(item: dict) -> str:
        metadata = item["metadata"]
        annotated = (metadata.get("annotations") or {}).get("moniker.spinnaker.io/cluster")
        if annotated:
            return annotated.split()[-1]
        head, _, version = metadata["name"].rpartition("-v")
        return head if head and version.isdigit() else metadata["name"]

    members = [item for item in listed if cluster_of(item) == wanted.name]
    if not members:
        raise OperationFailed(f"no {wanted.kind} of cluster {wanted.name} in namespace {namespace}")
    by_age = sorted(members, key=lambda item: item["metadata"].get("creationTimestamp") or "", reverse=True)
    by_size = sorted(members, key=lambda item: (item.get("spec") or {}).get("replicas") or 0, reverse=True)
    if criteria == "second_newest" and len(by_age) < 2:
        raise OperationFailed(f"cluster {wanted.name} has a single {wanted.kind}, no second newest")
    chosen = {"newest": by_age[0], "second_newest": by_age[1] if len(by_age) > 1 else None, "oldest": by_age[-1],
              "largest": by_size[0], "smallest": by_size[-1]}[criteria]
    return ManifestName(wanted.kind, chosen["metadata"]["name"])


# --- Delete ---------------------------------------------------------------------------------------


def label_selector(selectors: list[dict]) -> str:
    """Spinnaker's ``labelSelectors.selectors`` as a Kubernetes label selector (``app = web,tier notin (db)``)."""
    parts = []
    for selector in selectors:
        kind, key, values = selector["kind"], selector.get("key") or "", selector.get("values") or []
        if kind == "EQUALS":
            parts.append(f"{key}={values[0]}")
        elif kind == "NOT_EQUALS":
            parts.append(f"{key}!={values[0]}")
        elif kind in ("CONTAINS", "NOT_CONTAINS"):
            parts.append(f"{key} {'in' if kind == 'CONTAINS' else 'notin'} ({','.join(values)})")
        elif kind == "EXISTS":
            parts.append(key)
        elif kind == "NOT_EXISTS":
            parts.append(f"!{key}")
    return ",".join(parts)


def matching(dyn: DynamicClient, kinds: list[str], selector: str, namespace: str) -> list[ManifestName]:
    """The resources of ``kinds`` in ``namespace`` whose labels match ``selector`` (at most MAX_RESOURCES)."""
    found: list[ManifestName] = []
    for kind in kinds:
        resource = resource_for(dyn, kind)
        try:
            listed = resource.get(namespace=namespace, label_selector=selector, limit=MAX_RESOURCES + 1).to_dict()
        except ApiException as error:
            raise api_error(error, f"listing {kind} in {namespace}") from None
        found += [ManifestName(lower_camel(resource.kind), item["metadata"]["name"])
                  for item in listed.get("items") or []]
        if len(found) > MAX_RESOURCES:
            raise OperationFailed(f"the selector matches more than {MAX_RESOURCES} resources; name fewer")
    return found


def delete(dyn: DynamicClient, manifest: ManifestName, namespace: str, *, cascading: bool = True,
           grace_period_seconds: int | None = None) -> bool:
    """Delete ``manifest`` (its dependents too when ``cascading``, else orphaned); False when it was already gone."""
    resource = resource_for(dyn, manifest.kind)
    body: dict = {"kind": "DeleteOptions", "apiVersion": "v1",
                  "propagationPolicy": "Background" if cascading else "Orphan"}
    if grace_period_seconds is not None:
        body["gracePeriodSeconds"] = grace_period_seconds
    try:
        resource.delete(name=manifest.name, namespace=namespace if resource.namespaced else None, body=body)
    except ApiException as error:
        if error.status == 404:
            return False
        raise api_error(error, f"deleting {manifest}") from None
    return True


def exists(dyn: DynamicClient, manifest: ManifestName, namespace: str) -> bool:
    resource = resource_for(dyn, manifest.kind)
    try:
        resource.get(name=manifest.name, namespace=namespace if resource.namespaced else None)
    except ApiException as error:
        if error.status == 404:
            return False
        raise api_error(error, f"reading {manifest}") from None
    return True


# --- Patch, scale, restart, undo ------------------------------------------------------------------


def patch(dyn: DynamicClient, manifest: ManifestName, namespace: str, body, strategy: str) -> dict:
    """Patch ``manifest`` with ``body`` (an object, or a list of operations for ``json``); the patched resource."""
    resource = resource_for(dyn, manifest.kind)
    try:
        patched = resource.patch(body=body, name=manifest.name, namespace=namespace if resource.namespaced else None,
                                 content_type=PATCH_CONTENT_TYPES[strategy])
    except ApiException as error:
        if error.status == 404:
            raise OperationFailed(f"{manifest} is not in namespace {namespace}") from None
        raise api_error(error, f"patching {manifest}") from None
    return patched.to_dict()


def record_cause(dyn: DynamicClient, manifest: ManifestName, namespace: str, cause: str) -> dict:
    """Note why the resource changed in its ``kubernetes.io/change-cause`` annotation, as ``--record`` does."""
    return patch(dyn, manifest, namespace, {"metadata": {"annotations": {CHANGE_CAUSE_ANNOTATION: cause}}}, "merge")


def scale(dyn: DynamicClient, manifest: ManifestName, namespace: str, replicas: int) -> dict:
    if manifest.kind.casefold() not in SCALABLE_KINDS:
        raise OperationFailed(f"{manifest.kind} cannot be scaled; only Deployment, ReplicaSet and StatefulSet")
    return patch(dyn, manifest, namespace, {"spec": {"replicas": replicas}}, "merge")


def restart(dyn: DynamicClient, manifest: ManifestName, namespace: str, *, now: datetime | None = None) -> dict:
    """Restart a workload's pods as ``kubectl rollout restart`` does: a new ``restartedAt`` template annotation."""
    if manifest.kind.casefold() not in RESTARTABLE_KINDS:
        raise OperationFailed(f"{manifest.kind} has no rollout to restart; only Deployment, StatefulSet and "
                              "DaemonSet")
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return patch(dyn, manifest, namespace,
                 {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT_ANNOTATION: stamp}}}}}, "merge")


def revision_of(document: dict) -> int:
    """A Deployment's or ReplicaSet's rollout revision (0 when it has none)."""
    try:
        return int((document["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION) or 0)
    except ValueError:
        return 0


def undo_rollout(dyn: DynamicClient, manifest: ManifestName, namespace: str, revisions_back: int) -> int:
    """Roll a Deployment back ``revisions_back`` revisions, as ``kubectl rollout undo`` does on a cluster with no
    rollback API: its pod template becomes that of the ReplicaSet it owns at that revision. The revision restored.
    """
    if manifest.kind.casefold() != "deployment":
        raise OperationFailed(f"only a Deployment's rollout can be undone, not a {manifest.kind}")
    deployment = read(dyn, manifest, namespace)
    uid = deployment["metadata"]["uid"]
    replica_sets = resource_for(dyn, "ReplicaSet", "apps/v1")
    try:
        listed = replica_sets.get(namespace=namespace, limit=MAX_RESOURCES).to_dict().get("items") or []
    except ApiException as error:
        raise api_error(error, f"listing the ReplicaSets of {manifest}") from None
    owned = {revision_of(item): item for item in listed
             if any(owner.get("uid") == uid for owner in item["metadata"].get("ownerReferences") or [])}
    current = revision_of(deployment)
    older = sorted((revision for revision in owned if 0 < revision < current), reverse=True)
    if revisions_back > len(older):
        raise OperationFailed(f"{manifest} is at revision {current} and has {len(older)} older revision(s) kept; "
                              f"it cannot go {revisions_back} back")
    target = older[revisions_back - 1]
    template = copy.deepcopy(owned[target]["spec"]["template"])
    (template.get("metadata") or {}).get("labels", {}).pop(POD_TEMPLATE_HASH, None)
    patch(dyn, manifest, namespace, [{"op": "replace", "path": "/spec/template", "value": template}], "json")
    return target


# --- Artifacts ------------------------------------------------------------------------------------


def pod_spec(document: dict) -> dict:
    """The pod spec a resource runs: its own (a Pod), its template's, or its job template's (a CronJob)."""
    spec = document.get("spec") or {}
    if document.get("kind") == "Pod":
        return spec
    if document.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    return ((spec.get("template") or {}).get("spec")) or {}


def image_artifact(image: str) -> dict:
    """A ``docker/image`` artifact of an image reference (``registry/repo:tag`` or ``repo@sha256:...``)."""
    if "@" in image:
        name, version = image.split("@", 1)
    else:
        head, _, tail = image.rpartition(":")
        name, version = (head, tail) if head and "/" not in tail else (image, "")
    return {"type": "docker/image", "name": name, "version": version, "reference": image, "customKind": False}


def artifacts_of(document: dict) -> list[dict]:
    """The artifacts of a resource, as Clouddriver reports them: the image of each container (init containers
    too), once each, then the resource itself (``kubernetes/deployment``)."""
    spec = pod_spec(document)
    images = []
    for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        image = container.get("image")
        if image and image not in images:
            images.append(image)
    metadata = document["metadata"]
    itself = {"type": artifact_type(document['kind']), "name": metadata["name"],
              "reference": metadata["name"], "location": metadata.get("namespace") or "",
              "version": "", "customKind": False}
    return [image_artifact(image) for image in images[:MAX_RESOURCES]] + [itself]
