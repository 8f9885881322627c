"""Spinnaker's ``runJobManifest`` (a Job run to completion, its logs and properties kept with the stage) and
``findArtifactsFromResource`` (a resource's images as artifacts), on the shared ground of ``manifest_operations``:
the account, the namespace and kind limits, the bounded waits.
"""

from __future__ import annotations

import base64
import binascii
import json
import time

import yaml

from apps.deployments.providers.kubernetes import jobs
from apps.deployments.providers.kubernetes import operations as ops
from apps.deployments.providers.kubernetes.client import (
    KubernetesUnreachable,
    api_client,
    check_kind,
    check_namespace,
)
from apps.deployments.stages.common import ProviderStage, is_expression
from apps.deployments.stages.images_and_jobs import job_outputs
from apps.deployments.stages.manifest_checks import typed_problems
from apps.deployments.stages.manifest_operations import (
    FAILED_LOG_CHARS,
    JOB_WAIT_SECONDS,
    MAX_MANIFEST_OUTPUT_BYTES,
    MAX_PATCH_BYTES,
    POLL_SECONDS,
    PROVIDER,
    STARTED_KEY,
    ManifestStage,
    checked_account,
    failing_clearly,
    is_text,
    refuse_if_invalid,
    waited_too_long,
)
from apps.deployments.stages.sources import (
    artifact_document,
    read_at_run_time,
    run_time_artifact_problems,
    skips_evaluation,
)
from apps.pipelines.problems import InvalidDocument, Problem
from apps.pipelines.stages.base import StageField, Task, TaskResult, register

# --- findArtifactsFromResource --------------------------------------------------------------------


@register
class FindArtifactsFromResourceStage(ManifestStage):
    """The artifacts a resource runs (its containers' images) and the resource itself, for later stages."""

    type_name = "findArtifactsFromResource"
    label = "Find Artifacts From Resource (Manifest)"
    description = "Reads a Kubernetes resource and outputs its container images and itself as artifacts."
    waits = False

    def act(self, stage, scope, dyn, manifest, namespace) -> TaskResult:
        document = ops.read(dyn, manifest, namespace)
        document.get("metadata", {}).pop("managedFields", None)
        document.pop("status", None)
        artifacts = ops.artifacts_of(document)
        if len(json.dumps(document)) > MAX_MANIFEST_OUTPUT_BYTES:  # a large ConfigMap, say: its artifacts only
            return TaskResult.succeeded(outputs={"artifacts": artifacts},
                                        context={"manifestOmitted": f"over {MAX_MANIFEST_OUTPUT_BYTES // 1024} KB"})
        return TaskResult.succeeded(outputs={"artifacts": artifacts, "manifest": document})


# --- runJobManifest -------------------------------------------------------------------------------


def embedded_document(artifact, pointer: str):
    """The YAML or JSON document an ``embedded/base64`` artifact holds; InvalidDocument at ``pointer`` otherwise."""
    if not isinstance(artifact, dict) or artifact.get("type") != "embedded/base64" or \
            not isinstance(artifact.get("reference"), str) or len(artifact["reference"]) > 2 * MAX_PATCH_BYTES:
        raise InvalidDocument([Problem(pointer, "must be an embedded/base64 artifact (reference: base64 text)")])
    try:
        return yaml.safe_load(base64.b64decode(artifact["reference"], validate=True))
    except (binascii.Error, ValueError, yaml.YAMLError):
        raise InvalidDocument([Problem(f"{pointer}/reference", "must be base64 of a YAML or JSON document")]) from None


def job_manifest(stage: dict):
    """The Job of the stage: ``manifest``, or the one entry of ``manifests`` (Deck writes either), or with
    ``source: artifact`` the document of its embedded ``manifestArtifact``."""
    if stage.get("source") == "artifact":
        return embedded_document(stage.get("manifestArtifact"), "/manifestArtifact"), "/manifestArtifact/reference"
    if stage.get("manifest") is not None:
        return stage["manifest"], "/manifest"
    manifests = stage.get("manifests")
    if isinstance(manifests, list) and len(manifests) == 1:
        return manifests[0], "/manifests/0"
    return manifests, "/manifests"


def job_namespace(stage: dict, manifest: dict) -> tuple[str, str]:
    """The namespace the job runs in and the field that named it: ``namespace``, the manifest's, else default."""
    _, at = job_manifest(stage)
    if stage.get("namespace"):
        return stage["namespace"], "/namespace"
    return (manifest.get("metadata") or {}).get("namespace") or "default", f"{at}/metadata/namespace"


def _job_problems(stage: dict, pointer: str) -> list[Problem]:
    if stage.get("source") == "artifact" and is_expression(stage.get("manifestArtifact")):
        return []
    if read_at_run_time(stage):  # its Job is checked when the stage has read it
        return run_time_artifact_problems(stage, pointer) + _stage_field_problems(stage, pointer)
    try:
        manifest, at = job_manifest(stage)
    except InvalidDocument as refused:
        return [Problem(pointer + problem.pointer, problem.message) for problem in refused.problems]
    at = pointer + at
    if is_expression(manifest):
        return []
    if not isinstance(manifest, dict):
        return [Problem(at, "is required: one Job manifest (manifest, or manifests with one entry)")]
    problems = []
    if manifest.get("kind") != "Job":
        problems.append(Problem(f"{at}/kind", "must be Job"))
    metadata = manifest.get("metadata")
    if not isinstance(metadata, dict) or not (is_text(metadata.get("name")) or is_text(metadata.get("generateName"))):
        problems.append(Problem(f"{at}/metadata/name", "is required (or metadata.generateName)"))
    spec = manifest.get("spec")
    template = spec.get("template") if isinstance(spec, dict) else None
    if not isinstance(template, dict) or not isinstance(template.get("spec"), dict) or \
            not isinstance(template["spec"].get("containers"), list):
        problems.append(Problem(f"{at}/spec/template/spec/containers", "is required: the job's containers"))
    if len(json.dumps(manifest)) > MAX_PATCH_BYTES:
        problems.append(Problem(at, f"is over {MAX_PATCH_BYTES // 1024} KB"))
    return problems + _stage_field_problems(stage, pointer)


def _stage_field_problems(stage: dict, pointer: str) -> list[Problem]:
    problems = []
    if "namespace" in stage and stage["namespace"] is not None and not is_text(stage["namespace"]):
        problems.append(Problem(f"{pointer}/namespace", "must be a namespace's name"))
    if stage.get("propertyFile") is not None and not is_text(stage["propertyFile"]):
        problems.append(Problem(f"{pointer}/propertyFile", "must name the container whose log holds the properties"))
    problems += typed_problems(stage, pointer, "skipExpressionEvaluation", bool, "must be true or false")
    return problems


def fetched_job(stage, scope) -> dict:
    """The stage's context with the Job its artifact holds, read now, its expressions evaluated unless
    skipExpressionEvaluation, and checked as a saved one is (the problems point at the artifact's field)."""
    document, field = artifact_document(stage, scope)
    context = {**stage.context, "source": "text", "manifest": document}
    problems = _job_problems(context, "")
    if problems:
        raise InvalidDocument([Problem(problem.pointer.replace("/manifest", f"/{field}", 1), problem.message)
                               for problem in problems])
    return context


@register
class RunJobManifestStage(ProviderStage):
    """A Kubernetes Job run to completion under a name of its own; its logs kept and its printed properties read
    into the stage's outputs."""

    type_name = "runJobManifest"
    label = "Run Job (Manifest)"
    description = ("Runs a Kubernetes Job to completion, keeps its pods' logs, and reads SPINNAKER_PROPERTY_ and "
                   "SPINNAKER_CONFIG_JSON lines into the stage's outputs.")
    serves = (PROVIDER,)
    performs_io = True
    panel_template = "deployments/_kubernetes_job.html"
    fields = (
        StageField("cloudProvider", "choice", choices=(PROVIDER,), default=PROVIDER),
        StageField("account", required=True, help="The Kubernetes account"),
        StageField("application"),
        StageField("namespace", help="Blank: the manifest's metadata.namespace, else default"),
        StageField("source", "choice", choices=("text", "artifact"), default="text"),
        StageField("manifest", "object", help="The Job (or manifests: [the Job])"),
        StageField("manifestArtifact", "object", help="source artifact: {type, reference[, version, location]}"),
        StageField("manifestArtifactId", help="source artifact: the expected artifact holding the Job"),
        StageField("skipExpressionEvaluation", "boolean", default=False,
                   help="source artifact: leave the expressions of the Job read from the artifact as written"),
        StageField("propertyFile", help="The container whose log holds SPINNAKER_PROPERTY_ lines; blank: all"),
        StageField("consumeArtifactSource", "choice", choices=("none", "propertyFile", "artifact"), default="none"),
    )

    # Evaluated when the Job is read (sources.artifact_documents), so skipExpressionEvaluation can leave it.
    lazy_fields = ("manifestArtifact",)

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        return _job_problems(stage, pointer)

    def unevaluated_fields(self, stage: dict) -> tuple[str, ...]:
        return self.lazy_fields if skips_evaluation(stage) else ()

    def task_graph(self, stage):
        return [CreateJob(self), WaitForJob()]

    def panel_context(self, stage) -> dict:
        return {"job": stage.context.get("jobStatus") or {}, "logs": stage.context.get("logs") or []}

    def cancel(self, stage, runtime) -> None:
        name, namespace = stage.context.get("jobName"), stage.context.get("jobNamespace")
        if name and namespace:
            with api_client(checked_account(stage)) as client:
                jobs.delete(client, name, namespace)


class CreateJob(Task):
    name = "runJob"
    performs_io = True
    evaluates_expressions = True

    def __init__(self, stage_type: RunJobManifestStage):
        self.stage_type = stage_type

    @failing_clearly
    def run(self, stage, scope, runtime) -> TaskResult:
        if stage.context.get("jobName"):
            return TaskResult.succeeded()
        refuse_if_invalid(self.stage_type, stage)
        context = fetched_job(stage, scope) if stage.context.get("source") == "artifact" else stage.context
        manifest, at = job_manifest(context)
        namespace, namespace_at = job_namespace(context, manifest)
        account = checked_account(stage)
        check_namespace(account, namespace, pointer=namespace_at)
        check_kind(account, "Job", pointer=f"{at}/kind")
        application = stage.context.get("application") or stage.execution.application.name
        labels = {"app.kubernetes.io/managed-by": "cdplatform", "moniker.spinnaker.io/application": application[:63]}
        with api_client(account) as client:
            name = jobs.create(client, jobs.unique_job(manifest, namespace=namespace, labels=labels))
        return TaskResult.succeeded(
            context={"jobName": name, "jobNamespace": namespace, STARTED_KEY: time.time(),
                     "jobStatus": {"name": name, "namespace": namespace, "phase": "RUNNING"},
                     "deploy.jobs": {namespace: [f"job {name}"]}},
            outputs={"deploy.jobs": {namespace: [f"job {name}"]}})


def properties_from(logs: list[dict], container: str | None) -> dict:
    """What the job printed as SPINNAKER_PROPERTY_ / SPINNAKER_CONFIG_JSON lines, in ``container``'s log (all
    containers' when none is named)."""
    found: dict = {}
    for entry in logs:
        if not container or entry["container"] == container:
            found.update(job_outputs(entry["log"]))
    return found


class WaitForJob(Task):
    """Polls the job until it completes or fails; then keeps its logs and reads its properties."""

    name = "waitOnJobCompletion"
    performs_io = True

    @failing_clearly
    def run(self, stage, scope, runtime) -> TaskResult:
        context = stage.context
        name, namespace = context["jobName"], context["jobNamespace"]
        account = checked_account(stage)
        try:
            with api_client(account) as client:
                found = jobs.state(client, name, namespace)
                if found.phase == "RUNNING":
                    status = {"name": name, "namespace": namespace, "phase": "RUNNING", **found.status}
                    limit = None if context.get("stageTimeoutMs") else JOB_WAIT_SECONDS
                    late = waited_too_long(stage, limit, f"job {name} did not finish") if limit else None
                    if late is not None:
                        jobs.delete(client, name, namespace)
                        return late
                    return TaskResult.running(POLL_SECONDS, context={"jobStatus": status})
                logs = jobs.logs(client, found.pods, namespace)
        except KubernetesUnreachable as error:
            return waited_too_long(stage, JOB_WAIT_SECONDS, f"job {name} could not be followed ({error})") or \
                TaskResult.running(POLL_SECONDS)
        status = {"name": name, "namespace": namespace, "phase": found.phase, "message": found.message,
                  "pods": found.pods, **found.status}
        kept = {"jobStatus": status, "logs": logs, "completionDetails": {"message": found.message}}
        if found.phase == "FAILED":
            tail = "\n".join(entry["log"] for entry in logs)[-FAILED_LOG_CHARS:]
            return TaskResult.failed(f"job {name} failed: {found.message}" + (f"\nits log:\n{tail}" if tail else ""),
                                     context=kept)
        properties = properties_from(logs, context.get("propertyFile"))
        return TaskResult.succeeded(context={**kept, "propertyFileContents": properties},
                                    outputs={**properties, "propertyFileContents": properties, "jobStatus": status})
