"""Spinnaker's Kubernetes manifest stages: ``deployManifest``, ``enableManifest`` and ``disableManifest``.

``deployManifest`` runs three tasks: ``deployManifest`` (evaluate the manifests' expressions unless
``skipExpressionEvaluation``, check each against the account's namespaces and kinds, bind artifacts, version,
annotate, apply server side), ``waitForManifestStable`` (each manifest stable by its kind, within
``stableTimeoutSec``), then, with traffic management and a strategy, ``applyTrafficStrategy`` (red/black
disables the older versions, highlander deletes them). The provider's rules are in
apps/deployments/providers/kubernetes/.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes.client.exceptions import ApiException

from apps.deployments.models import KubernetesAccount
from apps.deployments.providers.kubernetes import PROVIDER, traffic
from apps.deployments.providers.kubernetes import manifests as kube_manifests
from apps.deployments.providers.kubernetes.client import (
    KubernetesUnreachable,
    api_client,
    check_kind,
    check_namespace,
)
from apps.deployments.providers.kubernetes.manifests import ManifestFailed, Prepared
from apps.deployments.providers.kubernetes.resources import ManifestName, UnknownKind, dynamic, resource_for
from apps.deployments.providers.kubernetes.stability import stability
from apps.deployments.services.kubernetes_clusters import SERVER_GROUP_KINDS, check_traffic_guard, remember_namespaces
from apps.deployments.services.server_groups import TrafficGuarded
from apps.deployments.stages.artifacts import available_artifacts, required_artifacts
from apps.deployments.stages.common import ProviderStage, StageRefused, is_expression, kubernetes_account
from apps.deployments.stages.manifest_checks import (
    MAX_STABLE_TIMEOUT_SECONDS,
    SOURCES,
    manifests_problems,
    stage_problems,
    typed_problems,
)
from apps.deployments.stages.sources import artifact_documents, evaluated
from apps.pipelines.problems import InvalidDocument, Problem
from apps.pipelines.stages.base import StageField, Task, TaskResult, register

FAILURES = (StageRefused, ManifestFailed, KubernetesUnreachable, InvalidDocument, UnknownKind, TrafficGuarded)
DEFAULT_STABLE_TIMEOUT_SECONDS = 600
POLL_SECONDS = 2


def guarded(step):
    """Run a task step, turning refusals and cluster failures into a failed stage that says why."""
    def run(self, stage, scope, runtime) -> TaskResult:
        try:
            return step(self, stage, scope, runtime)
        except FAILURES as error:
            return TaskResult.failed(str(error))
        except ApiException as error:  # a request the cluster refused that no step above names
            return TaskResult.failed(f"the cluster refused a request: {kube_manifests.api_message(error)}")
    return run


# --- The stage types --------------------------------------------------------------------------------


class KubernetesStage(ProviderStage):
    serves = (PROVIDER,)


@register
class DeployManifestStage(KubernetesStage):
    type_name = "deployManifest"
    label = "Deploy (Manifest)"
    description = "Applies Kubernetes manifests to a cluster and waits until they are stable."
    fields = (
        StageField("cloudProvider", "choice", "Cloud provider", choices=(PROVIDER,), default=PROVIDER),
        StageField("account", label="Kubernetes account", required=True),
        StageField("source", "choice", "Manifest source", choices=SOURCES, default="text"),
        StageField("manifests", "list", "Manifests", help="Kubernetes manifests, applied in their order"),
        StageField("manifestArtifactId", label="Manifest artifact",
                   help="For source artifact: the expected artifact holding the manifests (embedded/base64, git/repo "
                        "with a location, github/file, gitlab/file, bitbucket/file, http/file)"),
        StageField("skipExpressionEvaluation", "boolean", "Skip expression evaluation", default=False),
        StageField("namespaceOverride", label="Namespace override"),
        StageField("moniker", "object", "Moniker", help="{app, cluster}"),
        StageField("requiredArtifactIds", "list", "Required artifacts"),
        StageField("trafficManagement", "object", "Traffic management",
                   help="{enabled, options: {services: ['service NAME'], enableTraffic, strategy: redblack|"
                        "highlander}}"),
        StageField("stableTimeoutSec", "integer", "Time to become stable (seconds)",
                   default=DEFAULT_STABLE_TIMEOUT_SECONDS),
    )
    # Evaluated by the deploy task itself, so skipExpressionEvaluation can leave them as written.
    lazy_fields = ("manifests", "manifestArtifact")

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        return stage_problems(stage, pointer)

    def unevaluated_fields(self, stage: dict) -> tuple[str, ...]:
        return self.lazy_fields if stage.get("skipExpressionEvaluation") is True else ()

    def task_graph(self, stage):
        tasks: list[Task] = [DeployManifestTask(), WaitForManifestStableTask()]
        if strategy_of(stage.context):
            tasks.append(TrafficStrategyTask())
        return tasks


def traffic_options(context: dict) -> dict | None:
    """The traffic management options when it is enabled, else None."""
    management = context.get("trafficManagement") or {}
    return (management.get("options") or {}) if management.get("enabled") else None


def strategy_of(context: dict) -> str | None:
    options = traffic_options(context)
    if options is None:
        return None
    strategy = options.get("strategy")
    return strategy if strategy in traffic.STRATEGIES and options.get("enableTraffic") else None


def checked(account: KubernetesAccount, context: dict):
    """A check of one manifest against what the account may touch, naming the field that chose the value."""
    def check(index: int, namespace: str, kind: str) -> None:
        where = "namespaceOverride" if context.get("namespaceOverride") else f"manifests.{index}.metadata.namespace"
        if namespace:
            check_namespace(account, namespace, pointer=where)
        check_kind(account, kind, pointer=f"manifests.{index}.kind")
    return check


def _record(item: Prepared) -> dict:
    return {"index": item.index, "kind": item.kind, "apiVersion": item.body.get("apiVersion"), "name": item.name,
            "namespace": item.namespace, "baseName": item.base_name, "version": item.version,
            "cluster": item.body["metadata"]["annotations"][kube_manifests.CLUSTER]}


def _without_managed_fields(obj: dict) -> dict:
    return {**obj, "metadata": {key: value for key, value in (obj.get("metadata") or {}).items()
                                if key != "managedFields"}}


class DeployManifestTask(Task):
    name = "deployManifest"
    performs_io = True
    evaluates_expressions = True

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        context = stage.context
        if context.get("deployedManifests") is not None:  # applied already: this is a repeated step
            return TaskResult.succeeded()
        account = kubernetes_account(stage, context.get("account"))
        evaluation: dict = {}
        if (context.get("source") or "text") == "artifact":
            manifests: Any = artifact_documents(stage, scope)[0]
        else:
            manifests, evaluation = evaluated(stage, scope, context.get("manifests"), "manifests")
        problems = manifests_problems(manifests, "/manifests", evaluated=True)
        if problems:
            raise InvalidDocument(problems)
        if not any(manifests):
            raise StageRefused("manifests: there is no manifest to deploy")
        artifacts = required_artifacts(stage) + available_artifacts(stage)
        moniker = context.get("moniker") or {}
        application = moniker.get("app") or stage.execution.application.name
        options = traffic_options(context)
        with api_client(account) as api:
            client = dynamic(api)
            prepared = kube_manifests.prepare(
                client, manifests, application=application, cluster=moniker.get("cluster"),
                namespace_override=context.get("namespaceOverride") or "", artifacts=artifacts,
                check=checked(account, context))
            if options is not None:
                self._attach_traffic(client, prepared, options)
            for item in prepared:
                kube_manifests.apply(client, item)
            pruned = [name for item in prepared for name in kube_manifests.prune_versions(client, item)]
        remember_namespaces(stage.execution.application, application, account,
                            [item.namespace for item in prepared if item.namespace])
        return TaskResult.succeeded(context={"deployedManifests": [_record(item) for item in prepared],
                                             "stableSince": time.time(), "prunedVersions": pruned, **evaluation},
                                    outputs=deploy_outputs(account, prepared))

    @staticmethod
    def _attach_traffic(client, prepared: list[Prepared], options: dict) -> None:
        services = list(options.get("services") or [])
        strategy = options.get("strategy")
        for item in prepared:
            if item.kind != "ReplicaSet" or not services:
                if strategy in traffic.STRATEGIES and item.kind in SERVER_GROUP_KINDS + ("Deployment",):
                    raise ManifestFailed(f"manifests.{item.index}: the {strategy} strategy moves traffic between "
                                         f"versions of a ReplicaSet; this is a {item.kind}")
                continue
            if item.version is None:
                raise ManifestFailed(f"manifests.{item.index}: traffic management needs a versioned ReplicaSet "
                                     f"(annotation {kube_manifests.VERSIONED} is false)")
            labels = traffic.selected_labels(client, item.namespace, services)
            traffic.attach(item, services, labels, enable=bool(options.get("enableTraffic")))


def deploy_outputs(account: KubernetesAccount, prepared: list[Prepared]) -> dict:
    """What later stages read, in Spinnaker's names."""
    by_namespace: dict[str, list[str]] = {}
    server_groups: dict[str, list[str]] = {}
    for item in prepared:
        by_namespace.setdefault(item.namespace, []).append(item.manifest_name)
        if item.kind in SERVER_GROUP_KINDS:
            server_groups.setdefault(item.namespace, []).append(item.manifest_name)
    created = [kube_manifests.created_artifact(item, account.name) for item in prepared]
    return {"manifests": [_without_managed_fields(item.applied) for item in prepared],
            "outputs.createdArtifacts": created, "outputs.manifestNamesByNamespace": by_namespace,
            "outputs.boundArtifacts": [image for item in prepared for image in item.bound_images],
            "deploy.server.groups": server_groups, "deploy.account.name": account.name, "artifacts": created}


class WaitForManifestStableTask(Task):
    """Polls until every deployed manifest is stable; fails with the reason when one never will be, or when the
    stage's time to become stable runs out."""

    name = "waitForManifestStable"
    performs_io = True

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        context = stage.context
        account = kubernetes_account(stage, context.get("account"))
        waiting = []
        try:
            with api_client(account) as api:
                client = dynamic(api)
                for record in context.get("deployedManifests") or []:
                    resource = resource_for(client, record["kind"], record["apiVersion"])
                    verdict = stability(client, resource, record["name"], record["namespace"])
                    label = f"{kube_manifests.lower_camel(record['kind'])} {record['name']}"
                    if verdict.failed:
                        return TaskResult.failed(f"{label} will not become stable: {verdict.reason}")
                    if not verdict.stable:
                        waiting.append(f"{label}: {verdict.reason}")
        except (KubernetesUnreachable, ApiException) as error:  # it may answer again before the time runs out
            reason = kube_manifests.api_message(error) if isinstance(error, ApiException) else str(error)
            waiting.append(reason)
        if not waiting:
            return TaskResult.succeeded(context={"stableWaiting": []})
        limit = float(context.get("stableTimeoutSec") or DEFAULT_STABLE_TIMEOUT_SECONDS)
        if time.time() - float(context.get("stableSince") or time.time()) < min(limit, MAX_STABLE_TIMEOUT_SECONDS):
            return TaskResult.running(retry_after=POLL_SECONDS, context={"stableWaiting": waiting})
        return TaskResult.failed(f"not stable after {limit:g} s: {'; '.join(waiting)}")


class TrafficStrategyTask(Task):
    """Red/black: the older versions of each traffic-managed ReplicaSet leave the services; highlander: they go.
    A traffic guard is weighed for every ReplicaSet first, so a refusal changes nothing."""

    name = "applyTrafficStrategy"
    performs_io = True

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        context = stage.context
        strategy = strategy_of(context)
        account = kubernetes_account(stage, context.get("account"))
        done = []
        with api_client(account) as api:
            client = dynamic(api)
            items = []
            for record in context.get("deployedManifests") or []:
                if record["kind"] != "ReplicaSet" or record["version"] is None:
                    continue
                items.append(Prepared(record["index"], {"kind": "ReplicaSet", "metadata": {
                    "name": record["name"], "annotations": {kube_manifests.CLUSTER: record["cluster"]}}},
                    resource_for(client, "ReplicaSet", record["apiVersion"]), record["namespace"],
                    record["baseName"], record["version"]))
            verb = "deleting" if strategy == "highlander" else "disabling"
            for item in items:
                leaving = [ManifestName("replicaSet", old["metadata"]["name"])
                           for old in traffic.older_versions(client, item)
                           if strategy == "highlander" or traffic.in_services(old)]
                check_traffic_guard(client, account, item.namespace, leaving,
                                    change=f"{strategy}: {verb}")
            for item in items:
                done += traffic.apply_strategy(client, item, strategy or "")
        return TaskResult.succeeded(context={"trafficChanges": done})


# --- enableManifest / disableManifest ---------------------------------------------------------------


class TrafficManifestStage(KubernetesStage):
    """One ReplicaSet deployed with traffic management, put into (or taken out of) its services."""

    enabled: bool
    fields = (
        StageField("cloudProvider", "choice", "Cloud provider", choices=(PROVIDER,), default=PROVIDER),
        StageField("account", label="Kubernetes account", required=True),
        StageField("manifestName", label="Manifest", required=True, help="e.g. replicaSet web-v001"),
        StageField("location", label="Namespace", required=True),
    )
    performs_io = True

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        problems = []
        for key in ("account", "location"):
            problems += typed_problems(stage, pointer, key, str, "must be a string")
        name = stage.get("manifestName")
        if isinstance(name, str) and not is_expression(name):
            try:
                if ManifestName.parse(name).kind.lower() != "replicaset":
                    raise ValueError("must name a replicaSet: traffic moves between versions of ReplicaSets")
            except ValueError as error:
                problems.append(Problem(f"{pointer}/manifestName", str(error)))
        elif name is not None and not is_expression(name):
            problems.append(Problem(f"{pointer}/manifestName", "must be a string, e.g. replicaSet web-v001"))
        return problems

    @guarded
    def run(self, stage, scope, runtime) -> TaskResult:
        context = stage.context
        account = kubernetes_account(stage, context.get("account"))
        namespace = str(context.get("location") or "")
        check_namespace(account, namespace, pointer="location")
        check_kind(account, "ReplicaSet", pointer="manifestName")
        try:
            name = ManifestName.parse(str(context.get("manifestName") or "")).name
        except ValueError as error:
            raise StageRefused(f"manifestName: {error}") from None
        with api_client(account) as api:
            client = dynamic(api)
            try:
                replica_set = client.get(resource_for(client, "ReplicaSet", "apps/v1"), name=name,
                                         namespace=namespace).to_dict()
            except ApiException as error:
                raise StageRefused(f"manifestName: replicaSet {name} in {namespace}: "
                                   f"{kube_manifests.api_message(error)}") from None
            if not self.enabled:
                check_traffic_guard(client, account, namespace, [ManifestName("replicaSet", name)],
                                    change="disabling")
            pods = traffic.set_traffic(client, replica_set, enabled=self.enabled)
        return TaskResult.succeeded(outputs={"manifestName": f"replicaSet {name}", "location": namespace},
                                    context={"podsChanged": pods})


@register
class EnableManifestStage(TrafficManifestStage):
    type_name = "enableManifest"
    label = "Enable (Manifest)"
    description = "Puts a ReplicaSet's pods into the services it was deployed with."
    enabled = True


@register
class DisableManifestStage(TrafficManifestStage):
    type_name = "disableManifest"
    label = "Disable (Manifest)"
    description = "Takes a ReplicaSet's pods out of its services; they keep running."
    enabled = False
