"""Server groups and load balancers: created, resized, enabled, disabled, destroyed — by stages, the API and pages.

The engine is the truth about what runs: :func:`refresh` reads a group's
containers (by label) and brings its instance rows in line. A load
balancer sends traffic to the UP instances of the enabled groups that name
it; :func:`apply_load_balancer` writes that to the proxy after every change.
One change to a server group at a time, across processes (:func:`changing`):
the periodic keeper, a stage and a person's action each read the group's
``enabled``/``desired`` afresh under the group's lock, so none of them writes
instance health from a stale copy (which would take a just-enabled group out
of its load balancer). Lock order: a group's lock, then a load balancer row
(``select_for_update``, taken alone after any server group change has committed).

Callers check ``deploy`` on the account first (``check_deploy``); the
traffic guard (:func:`check_traffic_guard`) is checked here, whoever asks.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import django_rq
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from apps.deployments.models import DockerAccount, Instance, InstanceHealth, LoadBalancer, ServerGroup, TrafficGuard
from apps.deployments.providers import docker as provider
from apps.deployments.providers import nginx
from apps.deployments.providers.engines import engine_client

MAX_VERSION = 1000
# A change holds its group's lock for at most this long (an image pull, starting containers, a drain), and a
# caller waits at most LOCK_WAIT_SECONDS for another change to finish before it is refused.
LOCK_SECONDS = 600
LOCK_WAIT_SECONDS = 120
_held = threading.local()


class TrafficGuarded(Exception):
    """The change would leave a guarded cluster with no enabled server group."""


class ServerGroupBusy(provider.ProviderError):
    """Another change to the server group did not finish within LOCK_WAIT_SECONDS."""


@contextmanager
def changing(group: ServerGroup, *, wait: bool = True) -> Iterator[bool]:
    """Hold the group's lock (re-entrant within a thread) with the group's state re-read; yields True.

    With ``wait=False`` it yields False at once when another change holds the lock (the keeper skips the group
    this round); otherwise it waits up to LOCK_WAIT_SECONDS and raises ServerGroupBusy.
    """
    held = _held.__dict__.setdefault("groups", set())
    if group.pk in held:
        yield True
        return
    lock = django_rq.get_connection().lock(f"cdplatform:server-group:{group.pk}", timeout=LOCK_SECONDS,
                                           blocking=wait, blocking_timeout=LOCK_WAIT_SECONDS)
    if not lock.acquire():
        if not wait:
            yield False
            return
        raise ServerGroupBusy(f"{group.name} is busy with another change; try again when it has finished")
    held.add(group.pk)
    try:
        group.refresh_from_db(fields=["enabled", "traffic_instances", "desired", "disabled_at", "destroyed_at"])
        yield True
    finally:
        held.discard(group.pk)
        if lock.owned():
            lock.release()


def cluster_name(application: str, stack: str = "", detail: str = "") -> str:
    """Spinnaker's cluster naming: ``app``, ``app-stack``, ``app-stack-detail``, ``app--detail``."""
    if detail:
        return f"{application}-{stack}-{detail}"
    return f"{application}-{stack}" if stack else application


def live_groups(account: DockerAccount, cluster: str):
    return ServerGroup.objects.filter(account=account, cluster=cluster, destroyed_at=None)


def next_version(account: DockerAccount, cluster: str) -> int:
    """The next free version after the newest group's, wrapping at 999 and skipping versions still live."""
    newest = ServerGroup.objects.filter(account=account, cluster=cluster).order_by("-created_at").first()
    taken = set(live_groups(account, cluster).values_list("version", flat=True))
    start = (newest.version + 1) % MAX_VERSION if newest else 0
    for offset in range(MAX_VERSION):
        version = (start + offset) % MAX_VERSION
        if version not in taken:
            return version
    raise provider.ProviderError(f"cluster {cluster} has {MAX_VERSION} live server groups: destroy some first")


# --- Instances ----------------------------------------------------------------------------------


def _health(group: ServerGroup, state: provider.ContainerState, index: int) -> str:
    if not state.running or state.health == "unhealthy":
        return InstanceHealth.DOWN
    if state.health == "starting":
        return InstanceHealth.STARTING
    in_traffic = group.enabled and (group.traffic_instances is None or index < group.traffic_instances)
    return InstanceHealth.UP if in_traffic else InstanceHealth.OUT_OF_SERVICE


def refresh(group: ServerGroup, client=None) -> list[Instance]:
    """Bring the group's instance rows in line with its containers on the engine; its live instances."""
    if client is None:
        with engine_client(group.account) as own:
            return refresh(group, own)
    with changing(group):
        return _refresh(group, client)


def _refresh(group: ServerGroup, client) -> list[Instance]:
    states = provider.list_containers(client, group.spec.get("containerPort"), server_group=group.name)
    by_id = {state.id: state for state in states}
    rows = {row.container_id: row for row in Instance.objects.filter(server_group=group, ended_at=None)}
    now = timezone.now()
    for container_id, row in rows.items():
        if container_id not in by_id:
            Instance.objects.filter(pk=row.pk).update(ended_at=now, ended_reason="gone from the engine",
                                                      health=InstanceHealth.DOWN)
    for state in states:
        if state.id not in rows:
            Instance.objects.get_or_create(container_id=state.id, defaults={
                "server_group": group, "name": state.name, "host_port": state.host_port})
    live = list(Instance.objects.filter(server_group=group, ended_at=None).order_by("created_at", "name"))
    for index, row in enumerate(live):
        health = _health(group, by_id[row.container_id], index)
        port = by_id[row.container_id].host_port
        if (row.health, row.host_port) != (health, port):
            row.health, row.host_port = health, port
            Instance.objects.filter(pk=row.pk).update(health=health, host_port=port)
    return live


def _spec(group: ServerGroup, image: str) -> provider.ContainerSpec:
    spec = group.spec
    resources, health = spec.get("resources") or {}, spec.get("healthCheck") or {}
    labels = provider.labels_for(application=group.application.name, cluster=group.cluster,
                                 server_group=group.name, version=group.version)
    return provider.ContainerSpec(
        name=f"{group.name}-{uuid.uuid4().hex[:8]}", image=image, labels=labels,
        container_port=int(spec["containerPort"]), command=spec.get("command") or None, env=spec.get("env") or {},
        cpus=resources.get("cpus"), memory=resources.get("memory"), health_path=health.get("path") or "",
        health_port=health.get("port"))


def _start_instances(group: ServerGroup, client, count: int) -> None:
    image = provider.ensure_image(client, group.image, list(group.account.registries.all()))
    for _ in range(count):
        spec = _spec(group, image)
        container_id = provider.run_container(client, spec)
        Instance.objects.get_or_create(container_id=container_id, defaults={"server_group": group, "name": spec.name})


# --- Server groups ------------------------------------------------------------------------------


def do_create_server_group(*, account: DockerAccount, application, cluster: str, image: str, desired: int,
                           spec: dict, load_balancers: list[str], created_by: str) -> ServerGroup:
    """Create the cluster's next server group (disabled) and start its containers."""
    for _ in range(3):
        version = next_version(account, cluster)
        try:
            with transaction.atomic():
                group = ServerGroup.objects.create(
                    application=application, account=account, cluster=cluster, name=f"{cluster}-v{version:03d}",
                    version=version, image=image, desired=desired, spec=spec, load_balancers=load_balancers,
                    created_by=created_by)
            break
        except IntegrityError:  # a concurrent deploy of the same cluster took the version
            continue
    else:
        raise provider.ProviderError(f"no free version for cluster {cluster}")
    with changing(group), engine_client(account) as client:
        # The keeper may have seen the new row first and started some already.
        _start_instances(group, client, max(0, desired - len(refresh(group, client))))
        refresh(group, client)
    return group


def up_count(group: ServerGroup) -> tuple[int, int]:
    """(instances healthy, instances down) of the group as the engine says now (UP or OUT_OF_SERVICE are healthy)."""
    live = refresh(group)
    healthy = sum(1 for row in live if row.health in (InstanceHealth.UP, InstanceHealth.OUT_OF_SERVICE))
    return healthy, sum(1 for row in live if row.health == InstanceHealth.DOWN)


def check_traffic_guard(group: ServerGroup) -> None:
    """Refuse taking the last enabled server group of a guarded cluster out of service."""
    if not group.enabled:
        return
    if not TrafficGuard.objects.filter(application=group.application, account=group.account,
                                       cluster=group.cluster).exists():
        return
    others = live_groups(group.account, group.cluster).filter(enabled=True).exclude(pk=group.pk)
    if not others.exists():
        raise TrafficGuarded(f"cluster {group.cluster} has a traffic guard: {group.name} is its last enabled "
                             "server group and may not be disabled, destroyed or resized to zero")


def do_set_traffic(group: ServerGroup, *, enabled: bool, instances: int | None = None) -> ServerGroup:
    """Enable the group (its first ``instances`` only, when given) or disable it; its load balancers follow."""
    with changing(group):
        if not enabled or instances == 0:
            check_traffic_guard(group)
        ServerGroup.objects.filter(pk=group.pk).update(
            enabled=enabled, traffic_instances=instances, disabled_at=None if enabled else timezone.now())
        group.refresh_from_db()
        refresh(group)
        apply_load_balancers(group)
    return group


def do_resize(group: ServerGroup, desired: int) -> ServerGroup:
    """Start or remove containers until the group has ``desired``; removed ones leave its load balancers first and
    keep running for LOAD_BALANCER_DRAIN_SECONDS when they were taking traffic, so no request to them fails."""
    with changing(group):
        _resize(group, desired)
    return group


def _resize(group: ServerGroup, desired: int) -> None:
    if desired == 0:
        check_traffic_guard(group)
    ServerGroup.objects.filter(pk=group.pk).update(desired=desired)
    group.refresh_from_db()
    with engine_client(group.account) as client:
        live = refresh(group, client)
        if len(live) < desired:
            _start_instances(group, client, desired - len(live))
        else:
            removed = live[desired:]
            Instance.objects.filter(pk__in=[row.pk for row in removed]).update(
                ended_at=timezone.now(), ended_reason="removed by a resize", health=InstanceHealth.DOWN)
            apply_load_balancers(group)
            if any(row.health == InstanceHealth.UP for row in removed):
                time.sleep(settings.LOAD_BALANCER_DRAIN_SECONDS)  # requests in flight to them finish first
            for row in removed:
                provider.remove_container(client, row.container_id)
        refresh(group, client)
    apply_load_balancers(group)


def do_destroy(group: ServerGroup) -> None:
    """Take the group out of its load balancers, remove its containers, and keep its row as history."""
    with changing(group):
        _destroy(group)


def _destroy(group: ServerGroup) -> None:
    check_traffic_guard(group)
    if group.enabled:
        do_set_traffic(group, enabled=False)
    with engine_client(group.account) as client:
        for state in provider.list_containers(client, server_group=group.name):
            provider.remove_container(client, state.id)
    now = timezone.now()
    Instance.objects.filter(server_group=group, ended_at=None).update(
        ended_at=now, ended_reason="server group destroyed", health=InstanceHealth.DOWN)
    ServerGroup.objects.filter(pk=group.pk).update(destroyed_at=now, enabled=False)
    group.refresh_from_db()


def keep_capacity(group: ServerGroup) -> list[str]:
    """Replace the group's instances that exited or failed their health check, and start missing ones.

    A group another change holds (a resize, a deploy's traffic move) is left for the next round, and a group
    destroyed meanwhile is left alone."""
    with changing(group, wait=False) as mine:
        if not mine or group.destroyed_at is not None:
            return []
        return _keep_capacity(group)


def _keep_capacity(group: ServerGroup) -> list[str]:
    notes = []
    with engine_client(group.account) as client:
        live = refresh(group, client)
        for row in live:
            if row.health == InstanceHealth.DOWN:
                provider.remove_container(client, row.container_id)
                Instance.objects.filter(pk=row.pk).update(ended_at=timezone.now(),
                                                          ended_reason="replaced: exited or failed its health check")
                notes.append(f"replaced {row.name}")
        missing = group.desired - len([row for row in live if row.health != InstanceHealth.DOWN])
        if missing > 0:
            _start_instances(group, client, missing)
            refresh(group, client)
    if notes or missing > 0:
        apply_load_balancers(group)
    return notes


def keep_every_group_at_capacity() -> None:
    """The periodic job: every live server group kept at its desired capacity, and load balancers following."""
    for group in ServerGroup.objects.filter(destroyed_at=None).select_related("account", "application"):
        try:
            keep_capacity(group)
        except Exception as error:  # noqa: BLE001  (one unreachable engine must not stop the others)
            provider.logger.warning("keeping %s at capacity failed: %s", group.name, error)


# --- Load balancers -----------------------------------------------------------------------------


def lb_targets(balancer: LoadBalancer) -> list[str]:
    """Where a load balancer sends traffic: the UP instances of the live groups of its account that name it.

    A group whose spec has ``trafficPercentage`` (a canary's baseline and canary) takes that share of the
    traffic whatever its size; the other groups' instances share the rest evenly. With such a group each
    target is ``address weight=N`` (nginx's weights, in tenths of a percent); without one, the bare address.
    """
    shares = {pk: (spec or {}).get("trafficPercentage") for pk, names, spec in ServerGroup.objects.filter(
        account=balancer.account, destroyed_at=None, enabled=True).values_list("pk", "load_balancers", "spec")
        if balancer.name in (names or [])}
    rows = list(Instance.objects.filter(server_group__in=shares, ended_at=None, health=InstanceHealth.UP,
                                        host_port__isnull=False).values_list("server_group_id", "host_port"))
    if not any(shares[group] for group, _ in rows):
        return sorted(f"127.0.0.1:{port}" for _, port in rows)
    sizes: dict[int, int] = {}
    for group, _ in rows:
        sizes[group] = sizes.get(group, 0) + 1
    fixed = {group: float(share) for group in sizes if (share := shares[group])}
    rest = max(0.0, 100.0 - sum(fixed.values()))
    others = sum(size for group, size in sizes.items() if group not in fixed)

    def weight(group: int) -> int:
        share = fixed[group] / sizes[group] if group in fixed else rest / others
        return max(1, round(share * 10))

    return sorted(f"127.0.0.1:{port} weight={weight(group)}" for group, port in rows)


def apply_load_balancer(balancer: LoadBalancer) -> LoadBalancer:
    """Write the load balancer's targets to its proxy (started if it is not running); one change at a time."""
    with transaction.atomic():
        locked = LoadBalancer.objects.select_for_update().select_related("account").get(pk=balancer.pk)
        targets = lb_targets(locked)
        if targets != locked.targets or not nginx.running(locked.account.name, locked.name):
            nginx.apply(locked.account.name, locked.name, locked.listeners, targets)
            LoadBalancer.objects.filter(pk=locked.pk).update(targets=targets, updated_at=timezone.now())
            locked.targets = targets
    return locked


def apply_load_balancers(group: ServerGroup) -> None:
    for balancer in LoadBalancer.objects.filter(account=group.account, name__in=group.load_balancers):
        apply_load_balancer(balancer)


def do_upsert_load_balancer(*, account: DockerAccount, application, name: str, listeners: list[dict],
                            health_check: dict) -> LoadBalancer:
    """Create or change a load balancer and (re)configure its proxy."""
    balancer, _ = LoadBalancer.objects.update_or_create(
        account=account, name=name,
        defaults={"application": application, "listeners": listeners, "health_check": health_check})
    LoadBalancer.objects.filter(pk=balancer.pk).update(targets=["(changed)"])  # forces the proxy to be rewritten
    return apply_load_balancer(balancer)


def do_delete_load_balancer(balancer: LoadBalancer) -> None:
    nginx.stop(balancer.account.name, balancer.name)
    balancer.delete()


def traffic_steps(desired: int, percentage: float) -> int:
    """How many of ``desired`` instances carry ``percentage`` of the traffic (at least one above 0%)."""
    return min(desired, max(1 if percentage > 0 else 0, math.ceil(desired * percentage / 100)))
