"""Traffic to versioned ReplicaSets through Services, Spinnaker's way: by the labels the Services select.

A ReplicaSet deployed with traffic management names its Services in the annotation
``traffic.spinnaker.io/load-balancers`` (``["service web"]``). Enabling it puts the labels those Services
select on its pod template and on each of its pods; disabling takes them off both, so the pods leave the
Services' endpoints while they keep running (the ReplicaSet's own selector may not use those labels, or it
would lose its pods). Red/black disables the older versions of the cluster once the new one is stable;
highlander deletes them.
"""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from apps.deployments.providers.kubernetes.manifests import (
    CLUSTER,
    LOAD_BALANCERS,
    ManifestFailed,
    Prepared,
    api_message,
    versions,
)
from apps.deployments.providers.kubernetes.resources import ManifestName, resource_for

STRATEGIES = ("redblack", "highlander")
MAX_PODS_PATCHED = 500


def service_names(services: list[str]) -> list[str]:
    """The Service names of Spinnaker's ``service web`` entries; ValueError naming the first that is not one."""
    names = []
    for entry in services:
        parsed = ManifestName.parse(entry)
        if parsed.kind.lower() != "service":
            raise ValueError(f"{entry!r} is not a service: write it as 'service NAME'")
        names.append(parsed.name)
    return names


def selected_labels(client: DynamicClient, namespace: str, services: list[str]) -> dict[str, str]:
    """The labels the Services select, together; ManifestFailed when one is missing or selects nothing."""
    resource = resource_for(client, "Service", "v1")
    labels: dict[str, str] = {}
    for name in service_names(services):
        try:
            service = client.get(resource, name=name, namespace=namespace).to_dict()
        except ApiException as error:
            raise ManifestFailed(f"trafficManagement.options.services: service {name!r} in {namespace}: "
                                 f"{api_message(error)}") from None
        selector = (service.get("spec") or {}).get("selector") or {}
        if not selector:
            raise ManifestFailed(f"trafficManagement.options.services: service {name!r} selects no pods")
        labels.update(selector)
    return labels


def attach(item: Prepared, services: list[str], labels: dict[str, str], *, enable: bool) -> None:
    """Before a versioned ReplicaSet is applied: record its Services, and (``enable``) give its pods their
    labels. ManifestFailed when its own selector uses one of them."""
    selector = ((item.body.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    shared = sorted(set(selector) & set(labels))
    if shared:
        raise ManifestFailed(f"manifests.{item.index}.spec.selector.matchLabels: {', '.join(shared)} is selected by "
                             "the services too; disabling it would orphan its pods")
    metadata = item.body["metadata"]
    metadata["annotations"] = {**(metadata.get("annotations") or {}), LOAD_BALANCERS: json.dumps(services)}
    if enable:
        template = item.body["spec"].setdefault("template", {}).setdefault("metadata", {})
        template["labels"] = {**(template.get("labels") or {}), **labels}


def _patch_labels(client: DynamicClient, resource, obj: dict, path: str, labels: dict[str, str],
                  enabled: bool) -> None:
    current = obj
    for key in path.strip("/").split("/")[:-1]:
        current = (current or {}).get(key) or {}
    current = (current or {}).get("labels") or {}
    if enabled:
        operations: list[dict] = [{"op": "add", "path": f"{path}/{_escape(key)}", "value": value}
                      for key, value in labels.items() if current.get(key) != value]
        if not current:
            operations = [{"op": "add", "path": path, "value": dict(labels)}]
    else:
        operations = [{"op": "remove", "path": f"{path}/{_escape(key)}"} for key in labels if key in current]
    if operations:
        client.patch(resource, body=operations, name=obj["metadata"]["name"],
                     namespace=obj["metadata"]["namespace"], content_type="application/json-patch+json")


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def set_traffic(client: DynamicClient, replica_set: dict, *, enabled: bool) -> list[str]:
    """Enable or disable a ReplicaSet (as the cluster holds it) in its Services: its template and its pods gain
    or lose the labels they select. The pods changed. ManifestFailed when it names no Services."""
    metadata = replica_set["metadata"]
    try:
        services = json.loads((metadata.get("annotations") or {}).get(LOAD_BALANCERS) or "[]")
    except ValueError:
        services = []
    if not services:
        raise ManifestFailed(f"replicaSet {metadata['name']} names no services ({LOAD_BALANCERS}): it was not "
                             "deployed with traffic management")
    labels = selected_labels(client, metadata["namespace"], services)
    try:
        _patch_labels(client, resource_for(client, "ReplicaSet", "apps/v1"), replica_set,
                      "/spec/template/metadata/labels", labels, enabled)
        pods_resource = resource_for(client, "Pod", "v1")
        match = (replica_set.get("spec") or {}).get("selector", {}).get("matchLabels") or {}
        selector = ",".join(f"{key}={value}" for key, value in sorted(match.items()))
        pods = client.get(pods_resource, namespace=metadata["namespace"], label_selector=selector,
                          limit=MAX_PODS_PATCHED).to_dict().get("items") or []
        changed = []
        for pod in pods:
            owners = pod["metadata"].get("ownerReferences") or []
            if any(owner.get("uid") == metadata.get("uid") for owner in owners):
                _patch_labels(client, pods_resource, pod, "/metadata/labels", labels, enabled)
                changed.append(pod["metadata"]["name"])
    except ApiException as error:
        raise ManifestFailed(f"replicaSet {metadata['name']}: cannot change its labels: {api_message(error)}") \
            from None
    return changed


def older_versions(client: DynamicClient, item: Prepared) -> list[dict]:
    """The other versions of a versioned manifest's cluster, oldest first."""
    existing = versions(client, item.resource, item.namespace, item.base_name,
                        item.body["metadata"]["annotations"][CLUSTER])
    return [existing[number] for number in sorted(existing) if number != item.version]


def in_services(replica_set: dict) -> bool:
    """Whether a ReplicaSet was deployed with traffic management (it names its Services)."""
    return bool(((replica_set.get("metadata") or {}).get("annotations") or {}).get(LOAD_BALANCERS))


def apply_strategy(client: DynamicClient, item: Prepared, strategy: str) -> list[str]:
    """After the new version is stable: red/black disables the older versions, highlander deletes them. What was
    done, one line per version."""
    done = []
    for old in older_versions(client, item):
        name = old["metadata"]["name"]
        try:
            if strategy == "highlander":
                client.delete(item.resource, name=name, namespace=item.namespace,
                              body={"propagationPolicy": "Background"})
                done.append(f"deleted replicaSet {name}")
            elif not in_services(old):
                done.append(f"left replicaSet {name}: it is in no services")
            else:
                set_traffic(client, old, enabled=False)
                done.append(f"disabled replicaSet {name}")
        except ApiException as error:
            if error.status != 404:
                raise ManifestFailed(f"replicaSet {name}: {api_message(error)}") from None
    return done
