"""The Docker provider: the one place that builds, pushes, pulls, runs and removes containers on an engine.

Everything the platform makes carries the labels of :func:`labels_for`
(``io.cdplatform.*``): server groups are found on the engine by label, so the
engine stays the truth about what runs, and the rows are refreshed from it.
``DOCKER_OWNER_LABEL`` tells apart what one installation (or one test run)
made on a shared engine. Containers publish their port on 127.0.0.1 only and
run with an init process (busybox as PID 1 ignores SIGTERM).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings
from docker.errors import APIError, BuildError, DockerException, ImageNotFound, NotFound

from apps.deployments.credentials import decrypted
from apps.deployments.models import RegistryAccount

logger = logging.getLogger(__name__)
LABEL = "io.cdplatform"
MAX_LOG_CHARACTERS = 65536


class ProviderError(Exception):
    """An engine refused an operation, or it failed; the message says what and where."""


def owner_label() -> dict[str, str]:
    return {f"{LABEL}.owner": settings.DOCKER_OWNER_LABEL}


def labels_for(**values: str | int) -> dict[str, str]:
    """The labels of everything the platform makes: managed, its owner, and ``application``, ``cluster``, ..."""
    labels = {f"{LABEL}.managed": "true", **owner_label()}
    labels.update({f"{LABEL}.{key.replace('_', '-')}": str(value) for key, value in values.items()})
    return labels


def label_filter(**values: str | int) -> list[str]:
    """A docker ``label`` filter matching :func:`labels_for` of the same values."""
    return [f"{key}={value}" for key, value in labels_for(**values).items()]


def tail(text: str) -> str:
    """The end of a long log, as much as a stage keeps."""
    return text if len(text) <= MAX_LOG_CHARACTERS else "...\n" + text[-MAX_LOG_CHARACTERS:]


def auth_config(registry: RegistryAccount | None) -> dict | None:
    """The registry's credentials for a push or pull (decrypted in the worker, just before use), or None."""
    if registry is None or not registry.credentials:
        return None
    return {"username": registry.username, "password": decrypted(registry.credentials)}


# --- Images -------------------------------------------------------------------------------------


@dataclass
class BuiltImage:
    image_id: str
    log: str


def build_image(client, *, context: str, dockerfile: str, tag: str, build_args: dict, labels: dict) -> BuiltImage:
    """Build ``context`` into ``tag``; ProviderError with the build log's end when the build fails."""
    lines: list[str] = []
    try:
        image, chunks = client.images.build(path=context, dockerfile=dockerfile, tag=tag, buildargs=build_args,
                                            labels=labels, rm=True, forcerm=True,
                                            timeout=settings.DOCKER_BUILD_TIMEOUT_SECONDS)
        lines.extend(chunk.get("stream", "") for chunk in chunks if isinstance(chunk, dict))
    except BuildError as error:
        lines.extend(chunk.get("stream", "") or chunk.get("error", "") for chunk in error.build_log
                     if isinstance(chunk, dict))
        raise ProviderError(f"the build failed: {error.msg}\n{tail(''.join(lines))}") from None
    except (APIError, DockerException) as error:
        raise ProviderError(f"the build failed: {error}") from None
    return BuiltImage(image.id, "".join(lines))


def push_image(client, repository: str, tag: str, registry: RegistryAccount) -> str:
    """Push ``repository:tag``; returns the digest the registry gave it. ProviderError naming the registry."""
    digest, errors = "", []
    try:
        for event in client.images.push(repository, tag=tag, auth_config=auth_config(registry), stream=True,
                                        decode=True):
            if "error" in event:
                errors.append(event["error"])
            digest = event.get("aux", {}).get("Digest", digest)
    except (APIError, DockerException) as error:
        errors.append(str(error))
    if errors or not digest:
        raise ProviderError(f"pushing {repository}:{tag} to registry {registry.name!r} ({registry.address}) failed: "
                            f"{'; '.join(errors) or 'no digest returned'}")
    return digest


def ensure_image(client, image: str, registries: list[RegistryAccount]) -> str:
    """The id of ``image`` on the engine, pulled first if it is not there (with the credentials of its registry)."""
    try:
        return client.images.get(image).id
    except ImageNotFound:
        pass
    except (APIError, DockerException) as error:
        raise ProviderError(f"cannot inspect image {image}: {error}") from None
    registry = next((r for r in registries if image.startswith(f"{r.address}/")), None)
    try:
        return client.images.pull(image, auth_config=auth_config(registry)).id
    except (APIError, DockerException) as error:
        raise ProviderError(f"image {image} is not on the engine and cannot be pulled: {error}") from None


# --- Containers ---------------------------------------------------------------------------------


@dataclass
class ContainerSpec:
    """One instance of a server group, as the engine is asked to run it."""

    name: str
    image: str
    labels: dict
    container_port: int
    command: list | None = None
    env: dict | None = None
    cpus: float | None = None
    memory: str | None = None
    health_path: str = ""
    health_port: int | None = None


def healthcheck(spec: ContainerSpec) -> dict | None:
    """The engine's own health check of an instance: an HTTP GET from inside the container (busybox ``wget``)."""
    if not spec.health_path:
        return None
    port = spec.health_port or spec.container_port
    url = f"http://127.0.0.1:{port}{spec.health_path}"
    # No -T: the engine's timeout bounds the check, and busybox's wget crashes with -T here.
    return {"test": ["CMD", "wget", "-q", "-O", "/dev/null", url],
            "interval": int(settings.DOCKER_HEALTH_INTERVAL_SECONDS * 1e9), "timeout": int(2e9), "retries": 2,
            "start_period": 0}


def run_container(client, spec: ContainerSpec) -> str:
    """Start one instance, its port published on 127.0.0.1 (the engine picks it); returns the container id."""
    options = {"name": spec.name, "labels": spec.labels, "detach": True, "init": True,
               "ports": {f"{spec.container_port}/tcp": ("127.0.0.1", None)}, "healthcheck": healthcheck(spec),
               "environment": spec.env or {}, "command": spec.command or None}
    if spec.cpus:
        options["nano_cpus"] = int(spec.cpus * 1e9)
    if spec.memory:
        options["mem_limit"] = spec.memory
    try:
        return client.containers.run(spec.image, **options).id
    except (APIError, DockerException) as error:
        raise ProviderError(f"cannot start {spec.name}: {error}") from None


@dataclass
class ContainerState:
    """What the engine says of one instance."""

    id: str
    name: str
    labels: dict
    running: bool
    health: str  # healthy, unhealthy, starting, none
    host_port: int | None
    exit_code: int | None


def _state(container, container_port: int | None) -> ContainerState:
    attrs = container.attrs
    state = attrs.get("State", {})
    port = None
    for key, bindings in (attrs.get("NetworkSettings", {}).get("Ports") or {}).items():
        if bindings and (container_port is None or key == f"{container_port}/tcp"):
            port = int(bindings[0]["HostPort"])
            break
    return ContainerState(container.id, container.name, container.labels, state.get("Running", False),
                          (state.get("Health") or {}).get("Status", "none"), port,
                          state.get("ExitCode") if not state.get("Running") else None)


def list_containers(client, container_port: int | None = None, **labels: str | int) -> list[ContainerState]:
    """The platform's containers carrying ``labels``, running or not."""
    try:
        found = client.containers.list(all=True, filters={"label": label_filter(**labels)})
    except (APIError, DockerException) as error:
        raise ProviderError(f"cannot list containers: {error}") from None
    return [_state(container, container_port) for container in found]


def remove_container(client, container_id: str) -> None:
    """Stop and remove one container; one already gone is fine."""
    try:
        client.containers.get(container_id).remove(force=True)
    except NotFound:
        pass
    except APIError as error:
        if error.status_code != 404 and "removal of container" not in str(error):
            raise ProviderError(f"cannot remove container {container_id[:12]}: {error}") from None


def container_logs(client, container_id: str) -> str:
    try:
        return tail(client.containers.get(container_id).logs(stdout=True, stderr=True).decode("utf-8", "replace"))
    except (APIError, DockerException):
        return ""


def wait_seconds(started: float) -> float:
    return time.monotonic() - started
