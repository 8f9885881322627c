"""The cloud providers built on this platform, by the names Spinnaker documents give them (``cloudProvider``).

A stage type that acts on a provider's resources (bake, deploy, resizeServerGroup, ...) names the providers
it serves (``ProviderStage.serves`` in ``apps.deployments.stages.common``); a document written for any other
provider loads as Spinnaker's does, and its stage fails when it starts, naming the provider. A provider module
registers itself here when it is built; ``docker`` is the platform's own, used when a stage names none.
"""

from __future__ import annotations

from dataclasses import dataclass

PLATFORM_PROVIDER = "docker"


@dataclass(frozen=True)
class CloudProvider:
    name: str
    label: str


_BUILT: dict[str, CloudProvider] = {}


def register_provider(name: str, label: str) -> CloudProvider:
    """Record that the provider ``name`` is built (idempotent for the same label)."""
    existing = _BUILT.get(name)
    if existing is not None and existing.label != label:
        raise ValueError(f"cloud provider {name!r} is already registered as {existing.label!r}")
    _BUILT[name] = CloudProvider(name, label)
    return _BUILT[name]


def unregister_provider(name: str) -> None:
    """Forget a provider (a test's, once the test is done); the platform's own stays."""
    if name != PLATFORM_PROVIDER:
        _BUILT.pop(name, None)


def built_provider(name: str) -> CloudProvider | None:
    return _BUILT.get(name)


def built_providers() -> list[str]:
    """The names of the built providers, sorted."""
    return sorted(_BUILT)


register_provider(PLATFORM_PROVIDER, "Docker engines")
