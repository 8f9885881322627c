"""The ``deploy`` stage and its strategies, as composite stages whose steps show in the execution.

``deploy`` plans one ``createServerGroup`` per cluster before its own task
(which gathers their outputs into Spinnaker's ``deploy.server.groups``).
``createServerGroup`` creates the next server group, waits for every
instance to be healthy (failing, and with ``rollback.onFailure`` removing
the new group, when they never are), enables it, and plans what its
strategy does next as after stages:

- ``highlander``: ``shrinkCluster`` to this group alone (older ones disabled, drained, destroyed);
- ``redblack``: a ``wait`` of ``delayBeforeDisableSec``, ``disableCluster`` (older ones
  disabled, drained), then ``shrinkCluster`` to ``maxRemainingAsgs`` and
  ``scaleDownCluster`` with ``scaleDown``;
- ``rollingredblack``: one ``rollingRedBlackStep`` per ``targetPercentages``
  (the new group takes that share of the instances in traffic, the older
  ones the rest), then ``disableCluster``;
- ``none``: nothing more.

``canary`` (apps/deployments/stages/canary.py) plans a ``deployCanary`` stage
instead of a ``createServerGroup``: a baseline and a canary beside the
production group, the canary analysis, then promotion (red/black) or not.
"""

from __future__ import annotations

import time

from django.conf import settings

from apps.deployments.providers.docker import ProviderError
from apps.deployments.providers.engines import EngineUnreachable
from apps.deployments.services import server_groups as groups
from apps.deployments.stages.common import ProviderStage, StageRefused, docker_account, is_expression
from apps.deployments.stages.targets import cluster_groups, upstream_image
from apps.pipelines.problems import Problem
from apps.pipelines.stages.base import StageField, Task, TaskResult, get_stage_type, register

STRATEGIES = ("highlander", "redblack", "rollingredblack", "none", "canary")
# The stage a canary cluster becomes (registered by apps/deployments/stages/canary.py).
CANARY_STAGE_TYPE = "deployCanary"
FAILURES = (StageRefused, ProviderError, EngineUnreachable, groups.TrafficGuarded)
DEFAULT_WAIT_FOR_UP_SECONDS = 300


def guarded(step):
    """Run a task step, turning refusals and engine failures into a failed stage that says why."""
    def run(self, stage, scope, runtime) -> TaskResult:
        try:
            return step(self, stage, scope, runtime)
        except FAILURES as error:
            return TaskResult.failed(str(error))
    return run


def cluster_of(stage) -> str:
    context = stage.context
    return groups.cluster_name(context.get("application") or stage.execution.application.name,
                               context.get("stack") or "", context.get("freeFormDetails") or "")


def cluster_problems(cluster, pointer: str) -> list[Problem]:
    """What is wrong with one cluster of a deploy stage."""
    if not isinstance(cluster, dict):
        return [Problem(pointer, "must be an object")]
    problems = []
    if not cluster.get("account"):
        problems.append(Problem(f"{pointer}/account", "is required: a Docker engine account"))
    if cluster.get("strategy", "redblack") not in STRATEGIES:
        problems.append(Problem(f"{pointer}/strategy", f"must be one of {', '.join(STRATEGIES)}"))
    port = cluster.get("containerPort")
    if not is_expression(port) and (not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536):
        problems.append(Problem(f"{pointer}/containerPort", "is required: the port the container serves on"))
    desired = (cluster.get("capacity") or {}).get("desired", 1) if isinstance(cluster.get("capacity"), dict | None) \
        else None
    if not is_expression(desired) and (not isinstance(desired, int) or isinstance(desired, bool)
                                       or not 0 <= desired <= 100):
        problems.append(Problem(f"{pointer}/capacity/desired", "must be a whole number from 0 to 100"))
    percentages = cluster.get("targetPercentages")
    if percentages is not None and (not isinstance(percentages, list) or not all(
            isinstance(p, int | float) and 0 < p <= 100 for p in percentages)):
        problems.append(Problem(f"{pointer}/targetPercentages", "must be a list of percentages, e.g. [50, 100]"))
    share = cluster.get("trafficPercentage")
    if share is not None and not is_expression(share) and (
            isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 100):
        problems.append(Problem(f"{pointer}/trafficPercentage", "must be a percentage between 0 and 100"))
    if cluster.get("strategy") == "canary":
        canary = get_stage_type(CANARY_STAGE_TYPE)
        problems += canary.validate(cluster, pointer) if canary is not None else []
    return problems


@register
class DeployStage(ProviderStage):
    type_name = "deploy"
    label = "Deploy"
    items = "clusters"
    fields = (StageField("clusters", "list", "Clusters", required=True, help=(
        "[{cloudProvider: docker, account, application, stack, freeFormDetails, strategy, capacity: {desired}, image, "
        "containerPort, command, env, resources, healthCheck: {path, port}, loadBalancers, maxRemainingAsgs, "
        "scaleDown, delayBeforeDisableSec, rollback: {onFailure}, targetPercentages, trafficPercentage, canary: "
        "{canaryConfig, trafficPercentage, capacity}}]")),)

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        clusters = stage.get("clusters")
        if clusters is None or is_expression(clusters):
            return []
        if not isinstance(clusters, list) or not clusters or len(clusters) > 20:
            return [Problem(f"{pointer}/clusters", "must be a list of 1 to 20 clusters")]
        return [problem for index, cluster in enumerate(clusters)
                for problem in cluster_problems(cluster, f"{pointer}/clusters/{index}")]

    def before_stages(self, stage) -> list[dict]:
        image = None
        planned = []
        for cluster in stage.context.get("clusters") or []:
            if not cluster.get("image"):
                image = image or upstream_image(stage)
            name = groups.cluster_name(cluster.get("application") or stage.execution.application.name,
                                       cluster.get("stack") or "", cluster.get("freeFormDetails") or "")
            canary = cluster.get("strategy") == "canary"
            planned.append({**cluster, "type": CANARY_STAGE_TYPE if canary else "createServerGroup",
                            "name": f"{'Canary' if canary else 'Deploy'} {name}",
                            "image": cluster.get("image") or image or ""})
        return planned

    def task_graph(self, stage):
        return [CollectDeployOutputs()]


class CollectDeployOutputs(Task):
    """The deploy stage's own task: its clusters' new server groups, in Spinnaker's shape."""

    name = "collectDeployOutputs"

    def run(self, stage, scope, runtime) -> TaskResult:
        server_groups: dict[str, list[str]] = {}
        children = stage.synthetic_stages.filter(type__in=("createServerGroup", CANARY_STAGE_TYPE))
        for child in children.order_by("position"):
            for location, names in (child.outputs.get("deploy.server.groups") or {}).items():
                server_groups.setdefault(location, []).extend(names)
        return TaskResult.succeeded(outputs={"deploy.server.groups": server_groups})


@register
class CreateServerGroupStage(ProviderStage):
    """One cluster of a deploy: create, wait for health, enable, then the strategy's after stages."""

    type_name = "createServerGroup"
    label = "Create server group"
    fields = (StageField("account", required=True), StageField("containerPort", "integer", required=True),
              StageField("image"), StageField("strategy", "choice", choices=STRATEGIES, default="redblack"))

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        if stage.get("strategy") == "canary":
            return [Problem(f"{pointer}/strategy", "canary is a strategy of the deploy stage's clusters")]
        return cluster_problems(stage, pointer)

    def task_graph(self, stage):
        tasks: list[Task] = [CreateTask(), WaitForUpTask()]
        if stage.context.get("strategy", "redblack") != "rollingredblack":
            tasks.append(EnableTask())
        return tasks

    def after_stages(self, stage) -> list[dict]:
        context = stage.context
        base = {"account": context["account"], "cluster": cluster_of(stage)}
        strategy = context.get("strategy", "redblack")
        if strategy == "highlander":
            return [{**base, "type": "shrinkCluster", "name": "Destroy older server groups", "shrinkToSize": 1}]
        if strategy == "rollingredblack":
            steps = [float(p) for p in context.get("targetPercentages") or [50, 100]]
            steps += [] if steps[-1] == 100 else [100.0]
            return [{**base, "type": "rollingRedBlackStep", "name": f"Move {p:g}% of traffic", "percentage": p}
                    for p in steps] + [{**base, "type": "disableCluster", "name": "Disable older server groups",
                                        "remainingEnabledServerGroups": 1}]
        if strategy != "redblack":
            return []
        after = []
        if context.get("delayBeforeDisableSec"):
            after.append({"type": "wait", "name": "Wait before disable", "waitTime": context["delayBeforeDisableSec"]})
        after.append({**base, "type": "disableCluster", "name": "Disable older server groups",
                      "remainingEnabledServerGroups": 1})
        if context.get("maxRemainingAsgs"):
            after.append({**base, "type": "shrinkCluster", "name": "Shrink cluster",
                          "shrinkToSize": context["maxRemainingAsgs"]})
        if context.get("scaleDown"):
            after.append({**base, "type": "scaleDownCluster", "name": "Scale down older server groups",
                          "remainingFullSizeServerGroups": 1})
        return after


class CreateTask(Task):
    name = "createServerGroup"
    performs_io = True

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        context = stage.context
        if context.get("serverGroupName"):  # created already: this is a repeated step
            return TaskResult.succeeded()
        account = docker_account(stage, context.get("account"))
        if not context.get("image"):
            raise StageRefused("image: none given, and no bake or findImage stage upstream produced one")
        cluster = cluster_of(stage)
        before = [group.name for group in cluster_groups(account, cluster) if group.enabled]
        spec = {key: context.get(key) for key in ("containerPort", "command", "env", "resources", "healthCheck",
                                                  "trafficPercentage")}
        group = groups.do_create_server_group(
            account=account, application=stage.execution.application, cluster=cluster, image=context["image"],
            desired=int((context.get("capacity") or {}).get("desired", 1)), spec=spec,
            load_balancers=list(context.get("loadBalancers") or []), created_by=stage.execution.run_as_name)
        return TaskResult.succeeded(
            context={"serverGroupName": group.name, "previouslyEnabled": before, "waitForUpSince": time.time()},
            outputs={"deploy.server.groups": {account.name: [group.name]}, "serverGroup": group.name,
                     "deploy.account.name": account.name, "image": group.image, "cluster": cluster})


class WaitForUpTask(Task):
    """Polls until every instance of the new group is healthy; fails (and rolls back when asked) when they never are."""

    name = "waitForUpInstances"
    performs_io = True

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        context = stage.context
        account = docker_account(stage, context.get("account"))
        group = groups.live_groups(account, cluster_of(stage)).get(name=context["serverGroupName"])
        healthy, _down = groups.up_count(group)
        if healthy >= group.desired:
            return TaskResult.succeeded()
        limit = float(context.get("waitForUpTimeoutSec") or DEFAULT_WAIT_FOR_UP_SECONDS)
        if time.time() - float(context.get("waitForUpSince") or time.time()) < limit:
            return TaskResult.running(retry_after=1)
        message = f"{group.name}: {healthy} of {group.desired} instances healthy after {limit:g} s"
        if (context.get("rollback") or {}).get("onFailure"):
            groups.do_destroy(group)
            return TaskResult.failed(f"{message}; rolled back: {group.name} destroyed, the cluster is as it was",
                                     context={"rolledBack": True})
        return TaskResult.failed(message)


class EnableTask(Task):
    name = "enableServerGroup"
    performs_io = True

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        account = docker_account(stage, stage.context.get("account"))
        group = groups.live_groups(account, cluster_of(stage)).get(name=stage.context["serverGroupName"])
        groups.do_set_traffic(group, enabled=True)
        return TaskResult.succeeded()


def drain_pending(stage, key: str) -> TaskResult | None:
    """RUNNING until LOAD_BALANCER_DRAIN_SECONDS have passed since ``key`` was stamped in the context."""
    since = stage.context.get(key)
    remaining = settings.LOAD_BALANCER_DRAIN_SECONDS - (time.time() - float(since or 0))
    return TaskResult.running(retry_after=max(remaining, 0.1)) if remaining > 0 else None
