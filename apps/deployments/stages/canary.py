"""The ``canary`` deploy strategy: a baseline and a canary beside production, judged, then promoted or destroyed.

A deploy cluster with ``strategy: canary`` becomes a ``deployCanary`` stage
(Orca-Kayenta's ``deployCanaryServerGroups`` and ``destroyCanaryServerGroups``
around a ``kayentaCanary``, as one strategy). Its steps, each a stage of its
own in the execution:

1. ``createServerGroup`` of the baseline, in cluster ``<cluster>-baseline``, running the
   production cluster's current image, and of the canary, in ``<cluster>-canary``, running
   the new image; side by side, ``canary.capacity`` instances each (default 1), behind the
   cluster's load balancers with ``canary.trafficPercentage`` of their traffic each (default 10);
2. the analysis: a stage of type :data:`ANALYSIS_STAGE_TYPE` with the cluster's
   ``canary.canaryConfig`` (Spinnaker's ``kayentaCanary`` fields), whose scope is the pair of
   server groups (``controlScope`` the baseline's name, ``experimentScope`` the canary's);
3. when the analysis passed, ``createServerGroup`` of the new image in the production
   cluster with ``redblack`` (and the cluster's ``delayBeforeDisableSec``, ``maxRemainingAsgs``,
   ``scaleDown``); otherwise that step is skipped and production is left as it was;
4. ``destroyCanaryServerGroups``: baseline and canary out of the load balancers, drained, removed;
5. the verdict (the stage's own task): it succeeds with the promoted group, or fails saying why
   the new version was not promoted — a stage status change that notifications relay.

The seam: deployments never imports the analysis. It plans a stage of the
type :data:`ANALYSIS_STAGE_TYPE` by name, registered in the stage registry by
the app that judges canaries; without it, a canary deploy is refused (when the
pipeline is saved, and when it runs) with a message that says so. The analysis
stage is expected to succeed when the canary passed and to fail otherwise.
"""

from __future__ import annotations

import time

from apps.deployments.services import server_groups as groups
from apps.deployments.stages.clusters import Drain
from apps.deployments.stages.common import StageRefused, docker_account
from apps.deployments.stages.deploy import guarded
from apps.deployments.stages.targets import cluster_groups
from apps.pipelines.choices import Status
from apps.pipelines.problems import Problem
from apps.pipelines.stages.base import StageField, StageType, Task, TaskResult, get_stage_type, register

ANALYSIS_STAGE_TYPE = "kayentaCanary"
DEFAULT_TRAFFIC_PERCENTAGE = 10
MAX_TRAFFIC_PERCENTAGE = 25
MAX_CAPACITY = 10
# The keys of a deploy cluster a baseline and a canary keep (not its strategy, capacity or strategy's options).
SERVER_GROUP_KEYS = ("cloudProvider", "account", "application", "stack", "containerPort", "command", "env",
                     "resources", "healthCheck", "loadBalancers", "waitForUpTimeoutSec")
PROMOTION_KEYS = ("delayBeforeDisableSec", "maxRemainingAsgs", "scaleDown")
# The local refIds of deployCanary's steps; their position (from 1) makes the absolute refId.
STEPS = ("baseline", "canary", "analysis", "promote", "cleanup")
# What the strategy's verdict repeats of the analysis stage's outputs (Spinnaker's kayentaCanary outputs).
VERDICT_KEYS = ("canaryScores", "lastScore", "canaryResult", "canaryAnalysisId")
NOT_INSTALLED = (f"the canary strategy needs canary analysis, and no {ANALYSIS_STAGE_TYPE} stage type is installed "
                 "(add apps.canary to INSTALLED_APPS and configure a metrics account)")


def detail(cluster: dict, role: str) -> str:
    """The ``freeFormDetails`` of the cluster's baseline or canary: ``baseline``, or ``<detail>-baseline``."""
    own = cluster.get("freeFormDetails") or ""
    return f"{own}-{role}" if own else role


def canary_options(cluster: dict) -> dict:
    options = cluster.get("canary")
    return options if isinstance(options, dict) else {}


def canary_problems(cluster: dict, pointer: str) -> list[Problem]:
    """What is wrong with a ``canary`` cluster's ``canary`` block (the analysis stage type checks its config)."""
    options = cluster.get("canary")
    if not isinstance(options, dict):
        return [Problem(f"{pointer}/canary", "is required with strategy canary: {canaryConfig, trafficPercentage, "
                                              "capacity}")]
    problems = []
    share = options.get("trafficPercentage", DEFAULT_TRAFFIC_PERCENTAGE)
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share <= MAX_TRAFFIC_PERCENTAGE:
        problems.append(Problem(f"{pointer}/canary/trafficPercentage",
                                f"must be a percentage above 0 and at most {MAX_TRAFFIC_PERCENTAGE} (each of baseline "
                                "and canary takes that share)"))
    capacity = options.get("capacity", 1)
    if isinstance(capacity, bool) or not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
        problems.append(Problem(f"{pointer}/canary/capacity", f"must be a whole number from 1 to {MAX_CAPACITY}"))
    if not isinstance(options.get("canaryConfig"), dict):
        problems.append(Problem(f"{pointer}/canary/canaryConfig", f"is required: the {ANALYSIS_STAGE_TYPE} "
                                                                  "stage's canaryConfig"))
        return problems
    analysis = get_stage_type(ANALYSIS_STAGE_TYPE)
    if analysis is None:
        return [*problems, Problem(f"{pointer}/strategy", NOT_INSTALLED)]
    # The scopes are the server groups the strategy creates: named when they exist, so expressions here.
    definition = analysis_definition(cluster, ("${baseline}", "${canary}"))
    return problems + analysis.missing_fields(definition, f"{pointer}/canary") + analysis.validate(
        definition, f"{pointer}/canary")


def analysis_definition(cluster: dict, scopes: tuple[str, str]) -> dict:
    """The analysis stage: the cluster's canaryConfig with its scopes set to the baseline and canary groups."""
    config = dict(canary_options(cluster).get("canaryConfig") or {})
    scopes_given = config.get("scopes")
    given: list = scopes_given if isinstance(scopes_given, list) and scopes_given else [{}]
    control, experiment = scopes
    config["scopes"] = [{**(scope if isinstance(scope, dict) else {}), "controlScope": control,
                         "experimentScope": experiment} for scope in given]
    return {"type": ANALYSIS_STAGE_TYPE, "name": "Canary analysis", "canaryConfig": config}


def when(expression: str) -> dict:
    """Spinnaker's conditional stage: it runs only when ``expression`` is true, and is SKIPPED otherwise."""
    return {"type": "expression", "expression": expression}


def production_image(stage, cluster: dict) -> tuple[str, str]:
    """The production cluster's current server group and its image: what the baseline runs."""
    account = docker_account(stage, cluster.get("account"))
    name = groups.cluster_name(cluster.get("application") or stage.execution.application.name,
                               cluster.get("stack") or "", cluster.get("freeFormDetails") or "")
    current = next((group for group in cluster_groups(account, name) if group.enabled), None)
    if current is None:
        raise StageRefused(f"strategy canary: cluster {name} has no enabled server group to compare the canary with; "
                           "deploy its first version with another strategy")
    return current.name, current.image


@register
class DeployCanaryStage(StageType):
    """One canary cluster of a deploy: baseline and canary, analysis, promotion or not, cleanup, verdict."""

    type_name = "deployCanary"
    label = "Canary"
    internal = True
    fields = (StageField("account", required=True), StageField("image", required=True),
              StageField("canary", "object", required=True))

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        return canary_problems(stage, pointer)

    def before_stages(self, stage) -> list[dict]:
        context = stage.context
        if get_stage_type(ANALYSIS_STAGE_TYPE) is None:
            raise StageRefused(NOT_INSTALLED)
        production, baseline_image = production_image(stage, context)
        options = canary_options(context)
        ref = {step: f"{stage.ref_id}<{index}" for index, step in enumerate(STEPS, start=1)}
        common = {key: context[key] for key in SERVER_GROUP_KEYS if key in context}
        pair = {**common, "type": "createServerGroup", "strategy": "none", "requisiteStageRefIds": [],
                "capacity": {"desired": options.get("capacity", 1)}, "rollback": {"onFailure": True},
                "trafficPercentage": options.get("trafficPercentage", DEFAULT_TRAFFIC_PERCENTAGE),
                "continuePipeline": True}
        made = " && ".join(f"#stageByRefId('{ref[step]}').status == 'SUCCEEDED'" for step in ("baseline", "canary"))
        baseline, canary = (f"${{#stageByRefId('{ref[step]}').outputs.serverGroup}}" for step in ("baseline", "canary"))
        return [
            {**pair, "refId": "baseline", "name": f"Deploy baseline ({production})", "image": baseline_image,
             "freeFormDetails": detail(context, "baseline")},
            {**pair, "refId": "canary", "name": "Deploy canary", "image": context["image"],
             "freeFormDetails": detail(context, "canary")},
            {**analysis_definition(context, (baseline, canary)), "refId": "analysis",
             "requisiteStageRefIds": ["baseline", "canary"], "stageEnabled": when(made),
             "continuePipeline": True},
            {**common, **{key: context[key] for key in PROMOTION_KEYS if key in context},
             "type": "createServerGroup", "refId": "promote", "name": "Promote the canary", "requisiteStageRefIds": [
                 "analysis"], "strategy": "redblack", "image": context["image"],
             "freeFormDetails": context.get("freeFormDetails") or "", "capacity": context.get("capacity") or {},
             "stageEnabled": when(f"#stageByRefId('{ref['analysis']}').status == 'SUCCEEDED'"),
             "continuePipeline": True},
            {"type": "destroyCanaryServerGroups", "refId": "cleanup", "name": "Destroy baseline and canary",
             "requisiteStageRefIds": ["promote"], "account": context["account"],
             "clusters": [groups.cluster_name(context.get("application") or stage.execution.application.name,
                                              context.get("stack") or "", detail(context, role))
                          for role in ("baseline", "canary")]},
        ]

    def task_graph(self, stage):
        return [CanaryVerdict()]


def failure_reason(stage) -> str:
    """Why a synthetic stage failed, as its exception says."""
    details = (stage.context.get("exception") or {}).get("details") or {}
    errors = details.get("errors") or [details.get("error") or ""]
    return "; ".join(str(error) for error in errors if error) or f"it ended {stage.status}"


class CanaryVerdict(Task):
    """deployCanary's own task: the promoted group, or a failure saying why the new version was not promoted."""

    name = "canaryVerdict"

    def run(self, stage, scope, runtime) -> TaskResult:
        steps = {row.ref_id: row for row in stage.synthetic_stages.all()}
        ref = {step: f"{stage.ref_id}<{index}" for index, step in enumerate(STEPS, start=1)}
        analysis, promote = steps[ref["analysis"]], steps[ref["promote"]]
        verdict = {key: analysis.outputs.get(key, analysis.context.get(key))
                   for key in VERDICT_KEYS if key in {
                       **analysis.context, **analysis.outputs}}
        if promote.status == Status.SUCCEEDED:
            return TaskResult.succeeded(outputs={**verdict, "canaryPromoted": True,
                                                 "deploy.server.groups": promote.outputs.get("deploy.server.groups")
                                                 or {}, "serverGroup": promote.outputs.get("serverGroup")})
        if analysis.status == Status.SKIPPED:
            made = [steps[ref[role]] for role in ("baseline", "canary")]
            reason = "; ".join(f"{row.name}: {failure_reason(row)}" for row in made if row.status != Status.SUCCEEDED)
            reason = f"the baseline or the canary never became healthy ({reason})"
        elif analysis.status != Status.SUCCEEDED:
            reason = f"the canary analysis failed: {failure_reason(analysis)}"
        else:
            reason = f"the canary passed, but promoting it failed: {failure_reason(promote)}"
        return TaskResult.failed(f"{stage.context.get('image')} was not promoted: {reason}. The baseline and canary "
                                 "server groups were destroyed; production is as it was",
                                 context={**verdict, "canaryPromoted": False})


class DisableCanaryGroups(Task):
    name = "disableCanaryServerGroups"
    performs_io = True

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        account = docker_account(stage, stage.context.get("account"))
        disabled = []
        for cluster in stage.context.get("clusters") or []:
            for group in cluster_groups(account, cluster):
                if group.enabled:
                    groups.do_set_traffic(group, enabled=False)
                    disabled.append(group.name)
        return TaskResult.succeeded(context={"disabledAt": time.time() if disabled else 0},
                                    outputs={"disabledServerGroups": disabled})


class DestroyCanaryGroups(Task):
    name = "destroyCanaryServerGroups"
    performs_io = True

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        account = docker_account(stage, stage.context.get("account"))
        destroyed = []
        for cluster in stage.context.get("clusters") or []:
            for group in cluster_groups(account, cluster):
                groups.do_destroy(group)
                destroyed.append(group.name)
        return TaskResult.succeeded(outputs={"destroyedServerGroups": destroyed})


@register
class DestroyCanaryServerGroupsStage(StageType):
    """Every live server group of the given clusters (a canary's baseline and canary): disabled, drained, destroyed."""

    type_name = "destroyCanaryServerGroups"
    label = "Destroy canary server groups"
    internal = True
    fields = (StageField("account", required=True), StageField("clusters", "list", required=True))

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        clusters = stage.get("clusters")
        if not isinstance(clusters, list) or not all(isinstance(name, str) and name for name in clusters):
            return [Problem(f"{pointer}/clusters", "must be a list of cluster names")]
        return []

    def task_graph(self, stage):
        return [DisableCanaryGroups(), Drain(), DestroyCanaryGroups()]
