"""Spinnaker's Kubernetes manifest operations, on resources already in a cluster: ``deleteManifest``,
``patchManifest``, ``scaleManifest``, ``undoRolloutManifest`` and ``rollingRestartManifest``, with Orca's and
Deck's field names (``runJobManifest`` and ``findArtifactsFromResource`` are in ``manifest_jobs.py``).

A stage names its ``account`` (a Kubernetes account the execution's identity may deploy to), its ``location``
(the namespace) and its resource: ``manifestName`` ("deployment web", ``mode: static``), or ``cluster`` and
``criteria`` (``mode: dynamic``: the newest, oldest, ... resource of a Spinnaker cluster). Every namespace and
kind is checked against the account's limits before anything is sent; a refusal names the field. Each stage
acts, then waits (at most WAIT_SECONDS, or its ``stageTimeoutMs``) for the cluster to settle: resources gone, a
workload's rollout done, a job finished.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import ClassVar

from kubernetes.client.exceptions import ApiException

from apps.deployments.providers.kubernetes import operations as ops
from apps.deployments.providers.kubernetes.client import (
    KubernetesUnreachable,
    api_client,
    check_kind,
    check_namespace,
)
from apps.deployments.providers.kubernetes.resources import ManifestName, UnknownKind, dynamic
from apps.deployments.providers.kubernetes.stability import workload_stability
from apps.deployments.services.kubernetes_clusters import check_traffic_guard
from apps.deployments.services.server_groups import TrafficGuarded
from apps.deployments.stages.common import ProviderStage, StageRefused, is_expression, kubernetes_account
from apps.deployments.stages.manifest_checks import typed_problems
from apps.deployments.stages.sources import (
    artifact_document,
    read_at_run_time,
    run_time_artifact_problems,
    skips_evaluation,
)
from apps.pipelines.problems import InvalidDocument, Problem
from apps.pipelines.stages.base import StageField, Task, TaskResult, register

PROVIDER = "kubernetes"
# How long a stage waits for the cluster to settle after it acted (its stageTimeoutMs can cut it shorter).
WAIT_SECONDS = 600
# How long a job may run when its stage sets no stageTimeoutMs.
JOB_WAIT_SECONDS = 3600
POLL_SECONDS = 1.0
MAX_REPLICAS = 1000
MAX_REVISIONS_BACK = 100
MAX_GRACE_SECONDS = 3600
MAX_PATCH_BYTES = 256 * 1024
# The largest resource findArtifactsFromResource copies into its outputs (a resource may hold up to 1.5 MB).
MAX_MANIFEST_OUTPUT_BYTES = 256 * 1024
MODES = ("static", "dynamic")
# A failure message quotes at most this much of a failed job's log.
FAILED_LOG_CHARS = 2000
STARTED_KEY = "operationStartedAt"

FAILURES = (StageRefused, InvalidDocument, ops.OperationFailed, UnknownKind, KubernetesUnreachable, ApiException,
            TrafficGuarded)


def failing_clearly(step):
    """Run a task step, turning refusals and cluster errors into a failed stage that says why."""
    def run(self, stage, scope, runtime) -> TaskResult:
        try:
            return step(self, stage, scope, runtime)
        except ApiException as error:
            return TaskResult.failed(str(ops.api_error(error, "the cluster refused")))
        except FAILURES as error:
            return TaskResult.failed(str(error))
    return run


# --- Field checks ---------------------------------------------------------------------------------


def is_text(value) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 1000 and "\x00" not in value


def _whole(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def manifest_name_problem(value, pointer: str) -> list[Problem]:
    if is_expression(value):
        return []
    if not is_text(value):
        return [Problem(pointer, "is required: a kind and a name, as in 'deployment my-app'")]
    try:
        ManifestName.parse(value)
    except ValueError as error:
        return [Problem(pointer, str(error))]
    return []


def target_problems(stage: dict, pointer: str) -> list[Problem]:
    """What is wrong with how the stage names its resource: ``manifestName`` (static) or ``cluster`` and
    ``criteria`` (dynamic), and its ``location``."""
    problems = []
    if not is_expression(stage.get("location")) and not is_text(stage.get("location")):
        problems.append(Problem(f"{pointer}/location", "is required: the namespace of the resource"))
    mode = stage.get("mode") or "static"
    if mode not in MODES and not is_expression(mode):
        return [*problems, Problem(f"{pointer}/mode", f"must be one of {', '.join(MODES)}")]
    if mode == "dynamic":
        problems += manifest_name_problem(stage.get("cluster"), f"{pointer}/cluster")
        criteria = stage.get("criteria") or "newest"
        if criteria not in ops.DYNAMIC_CRITERIA and not is_expression(criteria):
            problems.append(Problem(f"{pointer}/criteria", f"must be one of {', '.join(ops.DYNAMIC_CRITERIA)}"))
    else:
        problems += manifest_name_problem(stage.get("manifestName"), f"{pointer}/manifestName")
    return problems


def refuse_if_invalid(stage_type, stage) -> None:
    """Check the evaluated context as the document was checked (an expression may have given anything)."""
    problems = stage_type.validate(stage.context, "") + stage_type.missing_fields(stage.context, "")
    if problems:
        raise InvalidDocument(problems)


def checked_account(stage):
    """The stage's Kubernetes account, if the execution's identity may deploy to it."""
    return kubernetes_account(stage, stage.context.get("account"))


def checked_target(stage, account, dyn) -> tuple[ManifestName, str]:
    """The resource the stage acts on and its namespace, both allowed to the account. A dynamic target is
    resolved once, when the stage acts, and kept in the context's ``manifestName`` (as Orca does)."""
    context = stage.context
    namespace = context["location"]
    check_namespace(account, namespace, pointer="/location")
    if (context.get("mode") or "static") == "dynamic" and not context.get("resolvedManifestName"):
        cluster = ManifestName.parse(context["cluster"])
        check_kind(account, cluster.kind, pointer="/cluster")
        return ops.dynamic_target(dyn, context["cluster"], context.get("criteria") or "newest", namespace), namespace
    manifest = ManifestName.parse(context.get("resolvedManifestName") or context["manifestName"])
    check_kind(account, manifest.kind, pointer="/manifestName" if (context.get("mode") or "static") == "static"
               else "/cluster")
    return manifest, namespace


def acted(manifests: list[ManifestName], namespace: str, **context) -> dict:
    """The context a stage's acting task leaves for its waiting one (when it started, what it acted on)."""
    return {STARTED_KEY: time.time(), "manifestNamesByNamespace": {namespace: [str(m) for m in manifests]},
            **context}


def outputs_of(manifests: list[ManifestName], namespace: str) -> dict:
    return {"outputs.manifestNamesByNamespace": {namespace: [str(manifest) for manifest in manifests]}}


TARGET_FIELDS: tuple[StageField, ...] = (
    StageField("cloudProvider", "choice", choices=(PROVIDER,), default=PROVIDER),
    StageField("account", required=True, help="The Kubernetes account"),
    StageField("location", help="The namespace"),
    StageField("mode", "choice", choices=MODES, default="static"),
    StageField("manifestName", help="kind and name, e.g. 'deployment my-app' (static mode)"),
    StageField("cluster", help="kind and Spinnaker cluster, e.g. 'replicaSet my-app' (dynamic mode)"),
    StageField("criteria", "choice", choices=ops.DYNAMIC_CRITERIA, default="newest", help="Dynamic mode"),
)


class ManifestStage(ProviderStage):
    """A stage acting on one resource: it acts (``act``), then waits until the resource has settled."""

    serves = (PROVIDER,)
    performs_io = True
    fields = TARGET_FIELDS
    waits: ClassVar[bool] = True
    # The acting task's class, named after the stage type as Orca's tasks are (``patchManifest``).
    acting_task: ClassVar[type[Act]]

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "type_name" in cls.__dict__:
            cls.acting_task = type(f"{cls.__name__}Task", (Act,), {
                "name": cls.type_name, "__module__": __name__, "evaluates_expressions": bool(cls.lazy_fields)})

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        return target_problems(stage, pointer) + self.own_problems(stage, pointer)

    def own_problems(self, stage: dict, pointer: str) -> list[Problem]:
        return []

    def task_graph(self, stage):
        acting = self.acting_task(self)
        return [acting, WaitForStable()] if self.waits else [acting]

    def act(self, stage, scope, dyn, manifest: ManifestName, namespace: str) -> TaskResult:
        """Change ``manifest``; ``scope`` evaluates what the stage evaluates itself (its ``lazy_fields``)."""
        raise NotImplementedError

    def traffic_removal(self, stage) -> str:
        """What the stage's change does that a traffic guard weighs ("scaling to 0"), or "" when it takes no
        server group out of service."""
        return ""


class Act(Task):
    """The stage's one change to the cluster, made once (a step run again after it acted does nothing)."""

    name = "actOnManifest"
    performs_io = True

    def __init__(self, stage_type):
        self.stage_type = stage_type

    @failing_clearly
    def run(self, stage, scope, runtime) -> TaskResult:
        if stage.context.get(STARTED_KEY):
            return TaskResult.succeeded()
        refuse_if_invalid(self.stage_type, stage)
        account = checked_account(stage)
        with api_client(account) as client:
            return self.change_cluster(stage, scope, account, dynamic(client))

    def change_cluster(self, stage, scope, account, dyn) -> TaskResult:
        """Change the cluster, with the account's client; the result carries what was acted on (``acted``)."""
        manifest, namespace = checked_target(stage, account, dyn)
        change = self.stage_type.traffic_removal(stage)
        if change:
            check_traffic_guard(dyn, account, namespace, [manifest], change=change)
        result = self.stage_type.act(stage, scope, dyn, manifest, namespace)
        result.context = {**acted([manifest], namespace, resolvedManifestName=str(manifest)), **result.context}
        result.outputs = {**outputs_of([manifest], namespace), **result.outputs}
        return result


def waited_too_long(stage, limit: float, what: str) -> TaskResult | None:
    started = stage.context.get(STARTED_KEY) or time.time()
    if time.time() - started > limit:
        return TaskResult.failed(f"{what} after {int(limit)} s")
    return None


class WaitForStable(Task):
    """Polls the resource until its workload runs the current spec, every replica ready (other kinds: at once)."""

    name = "waitForManifestStable"
    performs_io = True

    @failing_clearly
    def run(self, stage, scope, runtime) -> TaskResult:
        account = checked_account(stage)
        manifest = ManifestName.parse(stage.context["resolvedManifestName"])
        namespace = stage.context["location"]
        try:
            with api_client(account) as client:
                document = ops.read(dynamic(client), manifest, namespace)
        except KubernetesUnreachable as error:  # a passing outage: poll again, within the bound
            return waited_too_long(stage, WAIT_SECONDS, f"{manifest} did not settle ({error})") or \
                TaskResult.running(POLL_SECONDS)
        settled = workload_stability(document)
        context = {"stability": "stable" if settled.stable else settled.reason}
        if settled.failed:
            return TaskResult.failed(f"{manifest}: {settled.reason}", context=context)
        if settled.stable:
            return TaskResult.succeeded(context=context)
        late = waited_too_long(stage, WAIT_SECONDS, f"{manifest} did not settle: {settled.reason}")
        return late or TaskResult.running(POLL_SECONDS, context=context)


# --- deleteManifest -------------------------------------------------------------------------------


def _selectors(stage: dict) -> list | None:
    selectors = stage.get("labelSelectors")
    return selectors.get("selectors") if isinstance(selectors, dict) else None


def by_labels(stage: dict) -> bool:
    """Whether a deleteManifest stage chooses its resources by kinds and label selectors (Deck's ``mode: label``)."""
    return stage.get("mode") == "label" or (not stage.get("manifestName") and stage.get("kinds") is not None)


def selector_problems(stage: dict, pointer: str) -> list[Problem]:
    problems = []
    kinds = stage.get("kinds")
    if not is_expression(kinds) and (not isinstance(kinds, list) or not kinds or len(kinds) > 20
                                     or not all(is_text(kind) for kind in kinds)):
        problems.append(Problem(f"{pointer}/kinds", "must list the kinds to delete from (1 to 20 kinds)"))
    selectors = _selectors(stage)
    if is_expression(stage.get("labelSelectors")):
        return problems
    if not isinstance(selectors, list) or not selectors or len(selectors) > 20:
        return [*problems, Problem(f"{pointer}/labelSelectors/selectors",
                                   "must list 1 to 20 selectors ({kind, key, values})")]
    for index, selector in enumerate(selectors):
        at = f"{pointer}/labelSelectors/selectors/{index}"
        if not isinstance(selector, dict):
            problems.append(Problem(at, "must be an object: {kind, key, values}"))
            continue
        kind, values = selector.get("kind"), selector.get("values")
        if kind not in ops.SELECTOR_KINDS:
            problems.append(Problem(f"{at}/kind", f"must be one of {', '.join(ops.SELECTOR_KINDS)}"))
            continue
        if kind != "ANY" and not is_text(selector.get("key")):
            problems.append(Problem(f"{at}/key", "is required: a label key"))
        if values is not None and (not isinstance(values, list) or not all(is_text(v) for v in values)):
            problems.append(Problem(f"{at}/values", "must be a list of label values"))
        elif kind in ("EQUALS", "NOT_EQUALS") and len(values or []) != 1:
            problems.append(Problem(f"{at}/values", f"must hold exactly one value for {kind}"))
        elif kind in ("CONTAINS", "NOT_CONTAINS") and not values:
            problems.append(Problem(f"{at}/values", f"must hold at least one value for {kind}"))
    if not problems and not ops.label_selector(selectors):
        problems.append(Problem(f"{pointer}/labelSelectors/selectors",
                                "select every resource of the kinds (ANY alone); name at least one label"))
    return problems


def options_problems(stage: dict, pointer: str) -> list[Problem]:
    options = stage.get("options")
    if options is None or is_expression(options):
        return []
    if not isinstance(options, dict):
        return [Problem(f"{pointer}/options", "must be an object")]
    problems = []
    if "cascading" in options and not isinstance(options["cascading"], bool) and \
            not is_expression(options["cascading"]):
        problems.append(Problem(f"{pointer}/options/cascading", "must be true or false"))
    grace = options.get("gracePeriodSeconds")
    if grace is not None and not is_expression(grace) and not _whole(grace, 0, MAX_GRACE_SECONDS):
        problems.append(Problem(f"{pointer}/options/gracePeriodSeconds",
                                f"must be a whole number of seconds from 0 to {MAX_GRACE_SECONDS}"))
    return problems


@register
class DeleteManifestStage(ProviderStage):
    """Deletes one resource (``manifestName``) or every resource of ``kinds`` matching ``labelSelectors``."""

    type_name = "deleteManifest"
    label = "Delete (Manifest)"
    description = "Deletes Kubernetes resources by name or by kinds and label selectors, and waits until they are gone."
    serves = (PROVIDER,)
    performs_io = True
    fields = (
        *TARGET_FIELDS[:3],
        StageField("mode", "choice", choices=("static", "dynamic", "label"), default="static"),
        *TARGET_FIELDS[4:],
        StageField("kinds", "list", help="Label mode: the kinds to delete from, e.g. [deployment, service]"),
        StageField("labelSelectors", "object", help="Label mode: {selectors: [{kind: EQUALS, key, values}]}"),
        StageField("options", "object", help="{cascading: true, gracePeriodSeconds}"),
    )

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        if by_labels(stage):
            problems = selector_problems(stage, pointer)
            if not is_expression(stage.get("location")) and not is_text(stage.get("location")):
                problems.append(Problem(f"{pointer}/location", "is required: the namespace of the resources"))
        else:
            problems = target_problems(stage, pointer)
        return problems + options_problems(stage, pointer)

    def task_graph(self, stage):
        return [DeleteResources(self), WaitForDeleted()]


class DeleteResources(Act):
    """Deletes the named resource, or every resource of the stage's kinds its label selectors match."""

    name = "deleteManifest"

    def change_cluster(self, stage, scope, account, dyn) -> TaskResult:
        context = stage.context
        options = context.get("options") or {}
        if by_labels(context):
            namespace = context["location"]
            check_namespace(account, namespace, pointer="/location")
            for index, kind in enumerate(context["kinds"]):
                check_kind(account, kind, pointer=f"/kinds/{index}")
            manifests = ops.matching(dyn, context["kinds"], ops.label_selector(_selectors(context) or []), namespace)
        else:
            manifest, namespace = checked_target(stage, account, dyn)
            manifests = [manifest]
        check_traffic_guard(dyn, account, namespace, manifests, change="deleting")
        for manifest in manifests:
            ops.delete(dyn, manifest, namespace, cascading=options.get("cascading", True) is not False,
                       grace_period_seconds=options.get("gracePeriodSeconds"))
        return TaskResult.succeeded(context=acted(manifests, namespace), outputs=outputs_of(manifests, namespace))


class WaitForDeleted(Task):
    """Polls until every deleted resource is gone from the cluster (finalizers and grace periods done)."""

    name = "waitForManifestsToDelete"
    performs_io = True

    @failing_clearly
    def run(self, stage, scope, runtime) -> TaskResult:
        account = checked_account(stage)
        remaining = []
        try:
            with api_client(account) as client:
                dyn = dynamic(client)
                for namespace, names in (stage.context.get("manifestNamesByNamespace") or {}).items():
                    remaining += [name for name in names if ops.exists(dyn, ManifestName.parse(name), namespace)]
        except KubernetesUnreachable as error:
            return waited_too_long(stage, WAIT_SECONDS, f"the deletion could not be confirmed ({error})") or \
                TaskResult.running(POLL_SECONDS)
        if not remaining:
            return TaskResult.succeeded(context={"remainingManifests": []})
        late = waited_too_long(stage, WAIT_SECONDS, f"still there: {', '.join(remaining)}")
        return late or TaskResult.running(POLL_SECONDS, context={"remainingManifests": remaining})


# --- patchManifest --------------------------------------------------------------------------------


def patch_body(stage: dict):
    """The patch the stage sends: ``patchBody`` inline (Deck keeps an object patch as a list of one object), or
    the embedded artifact of ``source: artifact``."""
    if stage.get("source") == "artifact":
        artifact = stage.get("manifestArtifact") or {}
        body = json.loads(base64.b64decode(artifact["reference"], validate=True))
    else:
        body = stage.get("patchBody")
    return _unwrapped(body, stage)


def _unwrapped(body, stage: dict):
    strategy = (stage.get("options") or {}).get("mergeStrategy") or "strategic"
    if strategy != "json" and isinstance(body, list) and len(body) == 1 and isinstance(body[0], dict):
        return body[0]
    return body


def fetched_patch(stage, scope):
    """The patch the stage's artifact holds (YAML or JSON), read now, its expressions evaluated unless
    skipExpressionEvaluation, and checked as a saved one is."""
    document, field = artifact_document(stage, scope)
    body = _unwrapped(document, stage.context)
    problems = _body_problems(body, (stage.context.get("options") or {}).get("mergeStrategy") or "strategic",
                              f"/{field}")
    if problems:
        raise InvalidDocument(problems)
    return body


def _body_problems(body, strategy: str, pointer: str) -> list[Problem]:
    if len(json.dumps(body)) > MAX_PATCH_BYTES:
        return [Problem(pointer, f"is over {MAX_PATCH_BYTES // 1024} KB")]
    if strategy == "json":
        if not isinstance(body, list) or not body:
            return [Problem(pointer, "must be a list of JSON patch operations for mergeStrategy json")]
        return [Problem(f"{pointer}/{index}", "must be an operation: {op, path[, value]}")
                for index, operation in enumerate(body)
                if not isinstance(operation, dict) or operation.get("op") not in (
                    "add", "remove", "replace", "move", "copy", "test") or not isinstance(operation.get("path"), str)]
    if not isinstance(body, dict) or not body:
        return [Problem(pointer, f"must be an object (or a list of one object) for mergeStrategy {strategy}")]
    return []


@register
class PatchManifestStage(ManifestStage):
    """Patches a resource in place (strategic merge, JSON merge or JSON patch), then waits for it to settle."""

    type_name = "patchManifest"
    label = "Patch (Manifest)"
    description = "Patches a Kubernetes resource in place and waits for a patched workload to roll out."
    fields = (
        *TARGET_FIELDS,
        StageField("source", "choice", choices=("text", "artifact"), default="text"),
        StageField("patchBody", "object", help="The patch: an object, or a list of operations for a json patch"),
        StageField("manifestArtifact", "object", help="source artifact: {type, reference[, version, location]}"),
        StageField("manifestArtifactId", help="source artifact: the expected artifact holding the patch"),
        StageField("skipExpressionEvaluation", "boolean", default=False,
                   help="source artifact: leave the expressions of the patch read from the artifact as written"),
        StageField("options", "object", help="{mergeStrategy: strategic|merge|json, record: true}"),
    )
    # Evaluated when the patch is read (sources.artifact_documents), so skipExpressionEvaluation can leave it.
    lazy_fields = ("manifestArtifact",)

    def unevaluated_fields(self, stage: dict) -> tuple[str, ...]:
        return self.lazy_fields if skips_evaluation(stage) else ()

    def own_problems(self, stage: dict, pointer: str) -> list[Problem]:
        options = stage.get("options") or {}
        if not isinstance(options, dict):
            return [Problem(f"{pointer}/options", "must be an object")]
        strategy = options.get("mergeStrategy") or "strategic"
        if is_expression(strategy):
            return []
        if strategy not in ops.PATCH_CONTENT_TYPES:
            return [Problem(f"{pointer}/options/mergeStrategy", f"must be one of {', '.join(ops.PATCH_CONTENT_TYPES)}")]
        if "record" in options and not isinstance(options["record"], bool):
            return [Problem(f"{pointer}/options/record", "must be true or false")]
        skip = typed_problems(stage, pointer, "skipExpressionEvaluation", bool, "must be true or false")
        if skip:
            return skip
        source = stage.get("source") or "text"
        if source == "artifact":
            artifact = stage.get("manifestArtifact")
            if is_expression(artifact):
                return []
            if read_at_run_time(stage) or not isinstance(artifact, dict):
                return run_time_artifact_problems(stage, pointer)
            if not isinstance(artifact.get("reference"), str):
                return [Problem(f"{pointer}/manifestArtifact/reference", "must be base64 of a JSON patch")]
            try:
                patch_body(stage)
            except (binascii.Error, ValueError):
                return [Problem(f"{pointer}/manifestArtifact/reference", "must be base64 of a JSON patch")]
            return _body_problems(patch_body(stage), strategy, f"{pointer}/manifestArtifact/reference")
        if source != "text" and not is_expression(source):
            return [Problem(f"{pointer}/source", "must be text or artifact")]
        if stage.get("patchBody") is None:
            return [Problem(f"{pointer}/patchBody", "is required: the patch")]
        if is_expression(stage.get("patchBody")):
            return []
        return _body_problems(patch_body(stage), strategy, f"{pointer}/patchBody")

    def act(self, stage, scope, dyn, manifest, namespace) -> TaskResult:
        options = stage.context.get("options") or {}
        strategy = options.get("mergeStrategy") or "strategic"
        body = fetched_patch(stage, scope) if stage.context.get("source") == "artifact" else patch_body(stage.context)
        patched = ops.patch(dyn, manifest, namespace, body, strategy)
        if options.get("record"):
            patched = ops.record_cause(dyn, manifest, namespace, f"patchManifest stage {stage.name!r} of "
                                                                 f"execution {stage.execution_id}")
        return TaskResult.succeeded(context={"patchedGeneration": patched["metadata"].get("generation")})


# --- scaleManifest, undoRolloutManifest, rollingRestartManifest -----------------------------------


@register
class ScaleManifestStage(ManifestStage):
    """Sets a workload's replicas, then waits until that many are ready."""

    type_name = "scaleManifest"
    label = "Scale (Manifest)"
    description = "Scales a Deployment, ReplicaSet or StatefulSet and waits until that many replicas are ready."
    fields = (*TARGET_FIELDS, StageField("replicas", "integer", required=True, help=f"0 to {MAX_REPLICAS}"))

    def own_problems(self, stage: dict, pointer: str) -> list[Problem]:
        replicas = stage.get("replicas")
        if isinstance(replicas, str) and replicas.isdigit():
            return []  # Deck keeps the number as typed
        if replicas is not None and not is_expression(replicas) and not _whole(replicas, 0, MAX_REPLICAS):
            return [Problem(f"{pointer}/replicas", f"must be a whole number from 0 to {MAX_REPLICAS}")]
        return []

    def traffic_removal(self, stage) -> str:
        return "scaling to 0" if int(stage.context["replicas"]) == 0 else ""

    def act(self, stage, scope, dyn, manifest, namespace) -> TaskResult:
        replicas = int(stage.context["replicas"])
        if replicas > MAX_REPLICAS:
            raise StageRefused(f"replicas: must be a whole number from 0 to {MAX_REPLICAS}")
        ops.scale(dyn, manifest, namespace, replicas)
        return TaskResult.succeeded(outputs={"replicas": replicas})


def revisions_back(stage: dict):
    return stage.get("numRevisionsBack", stage.get("revisionsBack", 1))


@register
class UndoRolloutManifestStage(ManifestStage):
    """Rolls a Deployment back to the pod template it had ``numRevisionsBack`` revisions ago."""

    type_name = "undoRolloutManifest"
    label = "Undo Rollout (Manifest)"
    description = "Rolls a Deployment back some revisions, as kubectl rollout undo, and waits for the rollout."
    fields = (*TARGET_FIELDS, StageField("numRevisionsBack", "integer", default=1, help="1: the previous revision"))

    def own_problems(self, stage: dict, pointer: str) -> list[Problem]:
        value = revisions_back(stage)
        key = "numRevisionsBack" if "numRevisionsBack" in stage else "revisionsBack"
        if not is_expression(value) and not _whole(value, 1, MAX_REVISIONS_BACK):
            return [Problem(f"{pointer}/{key}", f"must be a whole number from 1 to {MAX_REVISIONS_BACK}")]
        return []

    def act(self, stage, scope, dyn, manifest, namespace) -> TaskResult:
        restored = ops.undo_rollout(dyn, manifest, namespace, int(revisions_back(stage.context)))
        return TaskResult.succeeded(context={"restoredRevision": restored}, outputs={"restoredRevision": restored})


@register
class RollingRestartManifestStage(ManifestStage):
    """Replaces a workload's pods through its rollout, as kubectl rollout restart."""

    type_name = "rollingRestartManifest"
    label = "Rolling Restart (Manifest)"
    description = "Restarts a Deployment's (StatefulSet's, DaemonSet's) pods through a rollout and waits for it."

    def act(self, stage, scope, dyn, manifest, namespace) -> TaskResult:
        restarted = ops.restart(dyn, manifest, namespace)
        stamp = restarted["spec"]["template"]["metadata"]["annotations"][ops.RESTARTED_AT_ANNOTATION]
        return TaskResult.succeeded(context={"restartedAt": stamp})
