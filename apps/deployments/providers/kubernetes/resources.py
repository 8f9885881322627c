"""Kubernetes resources by kind, whatever their API group: the official client's dynamic client, discovered once.

Manifests name their ``apiVersion`` and ``kind``; stages name a kind alone,
Spinnaker style (``deployment``, ``replicaSet``, ``deployment my-app`` in a
``manifestName``). :func:`resource_for` finds the API resource either way, so
a custom resource is handled like the built-in kinds.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError, ResourceNotUniqueError


class UnknownKind(Exception):
    """The cluster serves no such kind (or apiVersion/kind pair)."""


def dynamic(api_client) -> DynamicClient:
    """A dynamic client on ``api_client``; discovery is cached per API server in this process' temp directory."""
    host = api_client.configuration.host.replace("/", "_").replace(":", "_")
    cache = Path(tempfile.gettempdir()) / f"cdplatform-kube-discovery-{host}.json"
    return DynamicClient(api_client, cache_file=str(cache))


def resource_for(client: DynamicClient, kind: str, api_version: str | None = None):
    """The API resource of ``kind`` (case-insensitive, as Spinnaker writes kinds), in ``api_version`` when given."""
    wanted = kind.strip()
    for candidate in (wanted, wanted[:1].upper() + wanted[1:]):
        try:
            if api_version:
                return client.resources.get(api_version=api_version, kind=candidate)
            return client.resources.get(kind=candidate, preferred=True)
        except ResourceNotFoundError:
            continue
        except ResourceNotUniqueError:  # several groups serve the kind: the core, apps and batch groups win
            for group in ("apps/v1", "v1", "batch/v1"):
                try:
                    return client.resources.get(api_version=group, kind=candidate)
                except ResourceNotFoundError:
                    continue
    for resource in client.resources.search():
        if getattr(resource, "kind", "").lower() == wanted.lower() and (not api_version or
                                                                         resource.group_version == api_version):
            return resource
    raise UnknownKind(f"the cluster serves no kind {kind!r}" + (f" in {api_version}" if api_version else ""))


@dataclass(frozen=True)
class ManifestName:
    """Spinnaker's ``manifestName``: ``kind name`` (``deployment my-app``)."""

    kind: str
    name: str

    @classmethod
    def parse(cls, text: str) -> ManifestName:
        parts = text.split()
        if len(parts) != 2:
            raise ValueError("must be a kind and a name, as in 'deployment my-app'")
        return cls(parts[0], parts[1])

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"
