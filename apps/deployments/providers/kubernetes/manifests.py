"""Manifests as Spinnaker's Clouddriver deploys them: annotated with their moniker and artifact, versioned when
their kind is, bound to the stage's artifacts, then applied server side.

- **Versioning**: a ReplicaSet, ConfigMap or Secret (or any manifest annotated
  ``strategy.spinnaker.io/versioned: "true"``; ``"false"`` turns it off) is created as ``name-v000``,
  ``name-v001``..., the version after the highest among the existing resources of the same kind, namespace,
  base name and moniker cluster — unless one of them already holds the same content (its content digest
  annotation), which is then applied again rather than copied into a new version: a stage run again after a
  crash, or an unchanged ConfigMap, makes no new version. ``strategy.spinnaker.io/max-version-history: N``
  keeps the newest N.
- **References**: manifests of the same stage that use a versioned ConfigMap or Secret by its base name (volumes,
  ``envFrom``, ``env[].valueFrom``) are rewritten to its new name.
- **Artifacts**: a ``docker/image`` artifact replaces every container image of the same name (``nginx``,
  ``nginx:1.19`` or ``nginx@sha256:...`` all have the name ``nginx``).
- **Applying**: server-side apply under the field manager ``cdplatform``, forcing conflicts, as
  ``kubectl apply --server-side --force-conflicts`` does.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from apps.deployments.providers.kubernetes.resources import UnknownKind, resource_for

FIELD_MANAGER = "cdplatform"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
APPLICATION = "moniker.spinnaker.io/application"
CLUSTER = "moniker.spinnaker.io/cluster"
SEQUENCE = "moniker.spinnaker.io/sequence"
ARTIFACT_NAME = "artifact.spinnaker.io/name"
ARTIFACT_TYPE = "artifact.spinnaker.io/type"
ARTIFACT_LOCATION = "artifact.spinnaker.io/location"
ARTIFACT_VERSION = "artifact.spinnaker.io/version"
VERSIONED = "strategy.spinnaker.io/versioned"
MAX_VERSION_HISTORY = "strategy.spinnaker.io/max-version-history"
LOAD_BALANCERS = "traffic.spinnaker.io/load-balancers"
# The digest of a versioned manifest's content (content_digest), on each version.
DIGEST = "deploy.cdplatform.io/content-digest"
VERSIONED_KINDS = ("ReplicaSet", "ConfigMap", "Secret")
# Kinds whose manifest holds a pod template, by where its pod spec is.
POD_SPEC_PATHS = {
    "Pod": ("spec",), "ReplicaSet": ("spec", "template", "spec"), "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"), "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"), "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
VERSION_SUFFIX = re.compile(r"^(?P<base>.+)-v(?P<version>\d{3,})$")
MAX_VERSIONS_LISTED = 1000


class ManifestFailed(Exception):
    """A manifest the cluster refused or a lookup that failed; the message names the manifest and the reason."""


@dataclass
class Prepared:
    """One manifest ready to apply, with where it came from in the stage (``index``) and its identity."""

    index: int
    body: dict
    resource: object
    namespace: str  # "" for a cluster-scoped kind
    base_name: str
    version: int | None = None
    bound_images: list[str] = field(default_factory=list)
    applied: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.body["kind"]

    @property
    def name(self) -> str:
        return self.body["metadata"]["name"]

    @property
    def manifest_name(self) -> str:
        """Spinnaker's ``kind name``, the kind in lower camel case (``replicaSet web-v000``)."""
        return f"{lower_camel(self.kind)} {self.name}"


def lower_camel(kind: str) -> str:
    """A kind as Spinnaker writes it in a manifestName or an artifact type: the first letter lower-cased
    (``replicaSet``)."""
    return kind[:1].lower() + kind[1:]


def artifact_type(kind: str) -> str:
    return f"kubernetes/{lower_camel(kind)}"


def api_message(error: ApiException) -> str:
    """The API server's own message for a refused request (its Status ``message``), else the HTTP reason."""
    try:
        return json.loads(error.body or "{}").get("message") or str(error.reason)
    except (ValueError, AttributeError):
        return str(error.reason)


def is_versioned(manifest: dict) -> bool:
    annotation = ((manifest.get("metadata") or {}).get("annotations") or {}).get(VERSIONED)
    if annotation is not None:
        return str(annotation).lower() == "true"
    return manifest.get("kind") in VERSIONED_KINDS


def pod_spec(manifest: dict) -> dict | None:
    """The pod spec of a workload manifest (the pod's own for a Pod), or None."""
    node: object = manifest
    for key in POD_SPEC_PATHS.get(manifest.get("kind", ""), ()):
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) and node is not manifest else None


def containers(spec: dict) -> list[dict]:
    return [container for key in ("initContainers", "containers") for container in spec.get(key) or []
            if isinstance(container, dict)]


def image_name(reference: str) -> str:
    """``registry:5000/shop/web:v1`` and ``shop/web@sha256:...`` without their tag or digest."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def bind_images(manifest: dict, artifacts: list[dict]) -> list[str]:
    """Replace the images of ``manifest``'s containers by the ``docker/image`` artifacts of the same name; the
    references bound."""
    spec = pod_spec(manifest)
    if spec is None:
        return []
    by_name: dict[str, str] = {}
    for artifact in artifacts:
        if artifact.get("type") == "docker/image" and artifact.get("name") and artifact.get("reference"):
            by_name.setdefault(image_name(str(artifact["name"])), str(artifact["reference"]))
    bound = []
    for container in containers(spec):
        image = container.get("image")
        if isinstance(image, str) and image_name(image) in by_name:
            container["image"] = by_name[image_name(image)]
            bound.append(container["image"])
    return bound


def rewrite_references(manifest: dict, renamed: dict[tuple[str, str], str]) -> None:
    """Point ``manifest``'s uses of ConfigMaps and Secrets at their new names (``renamed``: (kind, base) -> name)."""
    spec = pod_spec(manifest)
    if spec is None or not renamed:
        return

    def rename(holder, key: str, kind: str) -> None:
        if isinstance(holder, dict) and isinstance(holder.get(key), str) and (kind, holder[key]) in renamed:
            holder[key] = renamed[(kind, holder[key])]

    for volume in spec.get("volumes") or []:
        if not isinstance(volume, dict):
            continue
        rename(volume.get("configMap"), "name", "ConfigMap")
        rename(volume.get("secret"), "secretName", "Secret")
        for source in (volume.get("projected") or {}).get("sources") or []:
            if isinstance(source, dict):
                rename(source.get("configMap"), "name", "ConfigMap")
                rename(source.get("secret"), "name", "Secret")
    for container in containers(spec):
        for source in container.get("envFrom") or []:
            if isinstance(source, dict):
                rename(source.get("configMapRef"), "name", "ConfigMap")
                rename(source.get("secretRef"), "name", "Secret")
        for variable in container.get("env") or []:
            value_from = variable.get("valueFrom") if isinstance(variable, dict) else None
            if isinstance(value_from, dict):
                rename(value_from.get("configMapKeyRef"), "name", "ConfigMap")
                rename(value_from.get("secretKeyRef"), "name", "Secret")


def default_protocols(manifest: dict) -> None:
    """Write ``protocol: TCP`` where a Service's or a container's port omits it: the API server defaults it, but
    server-side apply in Kubernetes 1.20 refuses a list of ports whose entries omit it (it is part of the list's
    key)."""
    ports: list = []
    if manifest.get("kind") == "Service":
        ports += (manifest.get("spec") or {}).get("ports") or []
    spec = pod_spec(manifest)
    if spec is not None:
        ports += [port for container in containers(spec) for port in container.get("ports") or []]
    for port in ports:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")


def annotate(manifest: dict, *, application: str, cluster: str, location: str, version: int | None) -> None:
    """Spinnaker's moniker and artifact annotations and our managed-by label, on the manifest and its pod
    template (so the pods say which application and cluster they belong to)."""
    metadata = manifest.setdefault("metadata", {})
    base = metadata["name"]
    annotations = {APPLICATION: application, CLUSTER: cluster, ARTIFACT_NAME: base,
                   ARTIFACT_TYPE: artifact_type(manifest["kind"]), ARTIFACT_LOCATION: location,
                   ARTIFACT_VERSION: "" if version is None else f"v{version:03d}"}
    if version is not None:
        annotations[SEQUENCE] = str(version)
        metadata["name"] = f"{base}-v{version:03d}"
    metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}
    metadata["labels"] = {**(metadata.get("labels") or {}), MANAGED_BY_LABEL: FIELD_MANAGER}
    template = (manifest.get("spec") or {}).get("template")
    if isinstance(template, dict) and manifest["kind"] in POD_SPEC_PATHS:
        template_metadata = template.setdefault("metadata", {})
        template_metadata["annotations"] = {**(template_metadata.get("annotations") or {}),
                                            APPLICATION: application, CLUSTER: cluster}
        if version is not None:
            template_metadata["annotations"][SEQUENCE] = str(version)
        template_metadata["labels"] = {**(template_metadata.get("labels") or {}), MANAGED_BY_LABEL: FIELD_MANAGER}


def default_cluster(manifest: dict) -> str:
    """Spinnaker's cluster of a manifest with no ``moniker.cluster``: ``kind name`` (``replicaSet web``)."""
    return f"{lower_camel(manifest['kind'])} {manifest['metadata']['name']}"


def versions(client: DynamicClient, resource, namespace: str, base: str, cluster: str) -> dict[int, dict]:
    """The existing versions (by number) of ``base`` in ``namespace`` whose moniker cluster is ``cluster``."""
    listed = client.get(resource, namespace=namespace or None, limit=MAX_VERSIONS_LISTED).to_dict()
    found = {}
    for item in listed.get("items") or []:
        metadata = item.get("metadata") or {}
        match = VERSION_SUFFIX.match(metadata.get("name") or "")
        if match and match["base"] == base and (metadata.get("annotations") or {}).get(CLUSTER) == cluster:
            found[int(match["version"])] = item
    return found


def content_digest(body: dict) -> str:
    """A digest of what a versioned manifest holds, before its version is named: two deploys of the same content
    (a stage run again after a crash, or an unchanged ConfigMap) reuse the version that holds it."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _version_for(body: dict, existing: dict[int, dict]) -> int:
    """The existing version that already holds ``body``'s content, else the one after the highest."""
    digest = content_digest(body)
    for number in sorted(existing, reverse=True):
        if ((existing[number].get("metadata") or {}).get("annotations") or {}).get(DIGEST) == digest:
            return number
    return max(existing, default=-1) + 1


def prepare(client: DynamicClient, manifests: list[dict], *, application: str, cluster: str | None,
            namespace_override: str, artifacts: list[dict],
            check: Callable[[int, str, str], None]) -> list[Prepared]:
    """The stage's manifests ready to apply, in their order: namespaced, versioned, annotated, images bound and
    references to versioned ConfigMaps and Secrets rewritten (also to the ``kubernetes/configMap`` and
    ``kubernetes/secret`` artifacts given). ``check(index, namespace, kind)`` refuses a manifest before anything
    of its namespace is read. Reads the cluster (kinds, existing versions); writes nothing. ManifestFailed when
    the cluster serves no such kind.

    Manifests that hold no pod template (ConfigMaps, Secrets) are versioned first, so that the content of those
    that refer to them — and so the version they reuse or take — includes the new names."""
    prepared: list[Prepared] = []
    existing_versions: dict[int, dict[int, dict]] = {}  # index -> the existing versions of a versioned manifest
    for index, original in enumerate(manifests):
        if not original:
            continue  # an empty YAML document, as Deck's editor leaves between separators
        body = copy.deepcopy(original)
        kind, api_version = body["kind"], body.get("apiVersion")
        try:
            resource = resource_for(client, kind, api_version)
        except UnknownKind as error:
            raise ManifestFailed(f"manifests.{index}: {error}") from None
        except ApiException as error:  # discovery failing for the kind's group
            raise ManifestFailed(f"manifests.{index}: cannot find the kind {kind!r}: {api_message(error)}") from None
        metadata = body.setdefault("metadata", {})
        namespace = ""
        if resource.namespaced:
            namespace = namespace_override or metadata.get("namespace") or "default"
            metadata["namespace"] = namespace
        else:
            metadata.pop("namespace", None)
        check(index, namespace, kind)
        moniker_cluster = cluster or default_cluster(body)
        metadata.setdefault("annotations", {})[CLUSTER] = moniker_cluster
        if is_versioned(body):
            existing_versions[index] = _existing_versions(client, resource, namespace, metadata["name"],
                                                          moniker_cluster, index)
        bound = bind_images(body, artifacts)
        default_protocols(body)
        prepared.append(Prepared(index, body, resource, namespace, metadata["name"], None, bound))
    renamed: dict[tuple[str, str, str], str] = {}  # (namespace, kind, base) -> versioned name
    for item in sorted(prepared, key=lambda item: item.kind in POD_SPEC_PATHS):
        references = artifact_references(artifacts, item.namespace)
        references.update({(kind, base): name for (namespace, kind, base), name in renamed.items()
                           if namespace == item.namespace})
        rewrite_references(item.body, references)
        if item.index in existing_versions:
            item.version = _version_for(item.body, existing_versions[item.index])
            item.body["metadata"]["annotations"][DIGEST] = content_digest(item.body)
            renamed[(item.namespace, item.kind, item.base_name)] = f"{item.base_name}-v{item.version:03d}"
        annotate(item.body, application=application, cluster=item.body["metadata"]["annotations"][CLUSTER],
                 location=item.namespace, version=item.version)
    return prepared


def artifact_references(artifacts: list[dict], namespace: str) -> dict[tuple[str, str], str]:
    """(kind, base name) -> versioned name of the ConfigMap and Secret artifacts in ``namespace`` (an upstream
    stage's created ones, or required ones)."""
    kinds = {"kubernetes/configMap": "ConfigMap", "kubernetes/secret": "Secret"}
    references: dict[tuple[str, str], str] = {}
    for artifact in reversed(artifacts):  # the first given wins
        kind = kinds.get(str(artifact.get("type")))
        if kind and artifact.get("name") and artifact.get("reference") and \
                artifact.get("location", namespace) in (namespace, ""):
            references[(kind, str(artifact["name"]))] = str(artifact["reference"])
    return references


def _existing_versions(client, resource, namespace, base, cluster, index) -> dict[int, dict]:
    try:
        return versions(client, resource, namespace, base, cluster)
    except ApiException as error:
        raise ManifestFailed(f"manifests.{index}: cannot list the {resource.kind}s of {namespace or 'the cluster'}: "
                             f"{api_message(error)}") from None


def apply(client: DynamicClient, item: Prepared) -> dict:
    """Apply one prepared manifest server side; the object as the cluster now holds it. ManifestFailed when the
    cluster refuses it."""
    try:
        applied = client.server_side_apply(item.resource, body=item.body, name=item.name,
                                           namespace=item.namespace or None, field_manager=FIELD_MANAGER,
                                           force_conflicts=True)
    except ApiException as error:
        raise ManifestFailed(f"manifests.{item.index} ({item.manifest_name}): the cluster refused it: "
                             f"{api_message(error)}") from None
    item.applied = applied.to_dict()
    return item.applied


def prune_versions(client: DynamicClient, item: Prepared) -> list[str]:
    """Delete the oldest versions of a versioned manifest beyond its ``max-version-history``; their names."""
    annotations = item.body["metadata"].get("annotations") or {}
    try:
        keep = int(annotations.get(MAX_VERSION_HISTORY, ""))
    except ValueError:
        return []
    if item.version is None or keep < 1:
        return []
    existing = _existing_versions(client, item.resource, item.namespace, item.base_name,
                                  annotations[CLUSTER], item.index)
    deleted = []
    # The oldest go first, never the version just applied (it may be an older one that held the same content).
    surplus = max(len(existing) - keep, 0)
    for number in [number for number in sorted(existing) if number != item.version][:surplus]:
        name = existing[number]["metadata"]["name"]
        try:
            client.delete(item.resource, name=name, namespace=item.namespace or None,
                          body={"propagationPolicy": "Background"})
        except ApiException as error:
            if error.status != 404:
                raise ManifestFailed(f"manifests.{item.index}: cannot delete {name}: {api_message(error)}") from None
        deleted.append(name)
    return deleted


def created_artifact(item: Prepared, account: str) -> dict:
    """The ``kubernetes/<kind>`` artifact Spinnaker records for a deployed manifest."""
    return {"type": artifact_type(item.kind), "name": item.base_name, "location": item.namespace,
            "version": "" if item.version is None else f"v{item.version:03d}", "reference": item.name,
            "metadata": {"account": account, "manifestName": item.manifest_name}}
