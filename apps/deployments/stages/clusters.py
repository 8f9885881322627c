"""Stages that act on a cluster's older server groups (the strategies' after stages) or on one server group.

Cluster stages keep the group their deploy just created (the parent
``createServerGroup``'s) and act on the others: ``disableCluster``,
``shrinkCluster``, ``scaleDownCluster``, ``rollingRedBlackStep``. A group
taken out of traffic keeps its containers for LOAD_BALANCER_DRAIN_SECONDS
before anything removes them, so requests in flight finish.

Server group stages (Spinnaker's): ``enableServerGroup``,
``disableServerGroup``, ``resizeServerGroup``, ``destroyServerGroup``,
``rollbackServerGroup``, each with ``target`` or ``serverGroupName``.
"""

from __future__ import annotations

import time

from apps.deployments.services import server_groups as groups
from apps.deployments.stages.common import ProviderStage, StageRefused, docker_account
from apps.deployments.stages.deploy import drain_pending, guarded
from apps.deployments.stages.targets import TARGETS, cluster_groups, target_group
from apps.pipelines.problems import Problem
from apps.pipelines.stages.base import StageField, Task, TaskResult, register

TARGET_FIELDS: tuple[StageField, ...] = (
    StageField("cloudProvider", "choice", choices=("docker",), default="docker"),
    StageField("account", required=True, help="The Docker engine account"),
    StageField("cluster", help="app[-stack[-detail]]"),
    StageField("target", "choice", choices=TARGETS, default="current_asg_dynamic"),
    StageField("serverGroupName", help="Instead of a target: the server group's name"),
)


def kept_and_others(stage, keep_newest: int = 1):
    """The groups of the stage's cluster to keep (its deploy's new group, and the newest up to ``keep_newest``)
    and the others, newest first."""
    account = docker_account(stage, stage.context.get("account"))
    everything = cluster_groups(account, stage.context.get("cluster") or "")
    created = stage.parent.context.get("serverGroupName") if stage.parent_id else None
    kept = [group for group in everything if group.name == created]
    for group in everything:
        if len(kept) >= keep_newest:
            break
        if group not in kept:
            kept.append(group)
    return kept, [group for group in everything if group not in kept]


class DisableOthers(Task):
    name = "disableOlderServerGroups"
    performs_io = True

    def __init__(self, keep_key: str):
        self.keep_key = keep_key

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        _, others = kept_and_others(stage, int(stage.context.get(self.keep_key) or 1))
        disabled = []
        for group in others:
            if group.enabled:
                groups.do_set_traffic(group, enabled=False)
                disabled.append(group.name)
        return TaskResult.succeeded(context={"disabledAt": time.time()}, outputs={"disabledServerGroups": disabled})


class Drain(Task):
    """Waits LOAD_BALANCER_DRAIN_SECONDS after traffic moved, so requests in flight finish first."""

    name = "waitForDrain"

    def run(self, stage, scope, runtime) -> TaskResult:
        return drain_pending(stage, "disabledAt") or TaskResult.succeeded()


class DestroyOthers(Task):
    name = "destroyOlderServerGroups"
    performs_io = True

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        _, others = kept_and_others(stage, int(stage.context.get("shrinkToSize") or 1))
        for group in others:
            groups.do_destroy(group)
        return TaskResult.succeeded(outputs={"destroyedServerGroups": [group.name for group in others]})


class ScaleDownOthers(Task):
    name = "scaleDownOlderServerGroups"
    performs_io = True

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        _, others = kept_and_others(stage, int(stage.context.get("remainingFullSizeServerGroups") or 1))
        scaled = [group for group in others if not group.enabled and group.desired > 0]
        for group in scaled:
            groups.do_resize(group, 0)
        return TaskResult.succeeded(outputs={"scaledDownServerGroups": [group.name for group in scaled]})


class MoveTraffic(Task):
    """One step of rolling red/black: the new group takes ``percentage`` of its instances into traffic, the
    older enabled ones keep the rest of theirs."""

    name = "moveTraffic"
    performs_io = True

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        percentage = float(stage.context.get("percentage") or 100)
        kept, others = kept_and_others(stage)
        new = kept[0]
        groups.do_set_traffic(new, enabled=True,
                              instances=None if percentage >= 100 else groups.traffic_steps(new.desired, percentage))
        for group in others:
            if group.enabled:
                remaining = group.desired - groups.traffic_steps(group.desired, percentage)
                groups.do_set_traffic(group, enabled=True, instances=remaining)
        return TaskResult.succeeded(context={"disabledAt": time.time()})


class ClusterStage(ProviderStage):
    fields = (StageField("account", required=True), StageField("cluster", required=True))


@register
class DisableClusterStage(ClusterStage):
    type_name = "disableCluster"
    label = "Disable cluster"

    def task_graph(self, stage):
        return [DisableOthers("remainingEnabledServerGroups"), Drain()]


@register
class ShrinkClusterStage(ClusterStage):
    type_name = "shrinkCluster"
    label = "Shrink cluster"

    def task_graph(self, stage):
        return [DisableOthers("shrinkToSize"), Drain(), DestroyOthers()]


@register
class ScaleDownClusterStage(ClusterStage):
    type_name = "scaleDownCluster"
    label = "Scale down cluster"

    def task_graph(self, stage):
        return [ScaleDownOthers()]


@register
class RollingRedBlackStep(ClusterStage):
    type_name = "rollingRedBlackStep"
    label = "Move traffic"

    def task_graph(self, stage):
        return [MoveTraffic(), Drain()]


# --- One server group ---------------------------------------------------------------------------


def target_problems(stage: dict, pointer: str) -> list[Problem]:
    if stage.get("serverGroupName") or stage.get("serverGroup"):
        return []
    if stage.get("target") not in TARGETS and "${" not in str(stage.get("target")):
        return [Problem(f"{pointer}/target", f"must be one of {', '.join(TARGETS)}, or name serverGroupName")]
    if not stage.get("cluster"):
        return [Problem(f"{pointer}/cluster", "is required with a dynamic target")]
    return []


class ServerGroupStage(ProviderStage):
    performs_io = True
    fields = TARGET_FIELDS

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        return target_problems(stage, pointer)

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        group = target_group(docker_account(stage, stage.context.get("account")), stage.context)
        outputs = {"serverGroupName": group.name, "deploy.server.groups": {group.account.name: [group.name]}}
        return self.act(stage, group) or TaskResult.succeeded(outputs=outputs)

    def act(self, stage, group) -> TaskResult | None:
        raise NotImplementedError


@register
class EnableServerGroupStage(ServerGroupStage):
    type_name = "enableServerGroup"
    label = "Enable server group"

    def act(self, stage, group):
        groups.do_set_traffic(group, enabled=True)


@register
class DisableServerGroupStage(ServerGroupStage):
    type_name = "disableServerGroup"
    label = "Disable server group"

    def act(self, stage, group):
        groups.do_set_traffic(group, enabled=False)


@register
class DestroyServerGroupStage(ServerGroupStage):
    type_name = "destroyServerGroup"
    label = "Destroy server group"

    def act(self, stage, group):
        groups.do_destroy(group)


@register
class ResizeServerGroupStage(ServerGroupStage):
    type_name = "resizeServerGroup"
    label = "Resize server group"
    fields = (*TARGET_FIELDS, StageField("capacity", "object", required=True, help="{desired: N}"))

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        desired = (stage.get("capacity") or {}).get("desired") if isinstance(stage.get("capacity"), dict) else None
        problems = target_problems(stage, pointer)
        if "${" not in str(desired) and (not isinstance(desired, int) or not 0 <= desired <= 100):
            problems.append(Problem(f"{pointer}/capacity/desired", "must be a whole number from 0 to 100"))
        return problems

    def act(self, stage, group):
        groups.do_resize(group, int(stage.context["capacity"]["desired"]))


@register
class RollbackServerGroupStage(ProviderStage):
    """EXPLICIT: enable ``restoreServerGroupName``, then disable ``rollbackServerGroupName``. PREVIOUS_IMAGE:
    deploy the cluster's previous image as a new server group, red/black."""

    type_name = "rollbackServerGroup"
    label = "Rollback server group"
    performs_io = True
    fields = (
        StageField("account", required=True), StageField("cluster"),
        StageField("rollbackType", "choice", choices=("EXPLICIT", "PREVIOUS_IMAGE"), default="EXPLICIT"),
        StageField("rollbackContext", "object", help="{rollbackServerGroupName, restoreServerGroupName}"),
    )

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        kind = stage.get("rollbackType", "EXPLICIT")
        if kind not in ("EXPLICIT", "PREVIOUS_IMAGE"):
            return [Problem(f"{pointer}/rollbackType", "must be EXPLICIT or PREVIOUS_IMAGE")]
        context = stage.get("rollbackContext") or {}
        if kind == "EXPLICIT" and not (isinstance(context, dict) and context.get("rollbackServerGroupName")):
            return [Problem(f"{pointer}/rollbackContext/rollbackServerGroupName", "is required for EXPLICIT")]
        return []

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        account = docker_account(stage, stage.context.get("account"))
        context = stage.context.get("rollbackContext") or {}
        if stage.context.get("rollbackType", "EXPLICIT") == "PREVIOUS_IMAGE":
            return self._previous_image(stage, account)
        rollback = target_group(account, {"serverGroupName": context["rollbackServerGroupName"]})
        restore_name = context.get("restoreServerGroupName")
        restore = target_group(account, {"serverGroupName": restore_name}) if restore_name else next(
            (group for group in cluster_groups(account, rollback.cluster) if group.pk != rollback.pk), None)
        if restore is None:
            raise StageRefused(f"rollbackContext: cluster {rollback.cluster} has no server group to restore")
        groups.do_set_traffic(restore, enabled=True)
        groups.do_set_traffic(rollback, enabled=False)
        return TaskResult.succeeded(outputs={"restoredServerGroup": restore.name, "rolledBack": rollback.name})

    def _previous_image(self, stage, account) -> TaskResult:
        everything = cluster_groups(account, stage.context.get("cluster") or "")
        current, older = (everything[0], everything[1:]) if everything else (None, [])
        previous = next((group for group in older if current and group.image != current.image), None)
        if current is None or previous is None:
            raise StageRefused("cluster: no server group with a previous image to roll back to")
        for group in older:
            if group.pk == previous.pk:
                groups.do_set_traffic(group, enabled=True)
        groups.do_set_traffic(current, enabled=False)
        return TaskResult.succeeded(outputs={"restoredServerGroup": previous.name, "rolledBack": current.name,
                                             "image": previous.image})
