"""Spinnaker's ``findArtifactFromExecution`` (Orca's FindArtifactFromExecutionTask): the artifacts another
pipeline's newest execution produced, bound to this stage's expected artifacts for the stages after it.

Fields, as Deck writes them: ``application`` and ``pipeline`` (the pipeline's id, its ``pipelineConfigId``),
``executionOptions`` (which of its executions count: ``successful`` — Orca also reads ``succeeded`` —
``terminal``, ``running``; absent, the successful ones), and ``expectedArtifacts`` (older documents: one
``expectedArtifact``). The newest execution of that pipeline in a chosen status, among its newest
SEARCHED_EXECUTIONS and never this execution, gives its artifacts: every stage's outputs (later stages first)
then its trigger's. Each expected artifact binds the one artifact its ``matchArtifact`` matches (several
different ones is an error, as in Orca), or its ``defaultArtifact`` when ``useDefaultArtifact`` is true. When
the pipeline is this stage's own, what this stage found last time is not a candidate (Orca's rule).

The outputs are ``artifacts`` (those bound) and ``resolvedExpectedArtifacts`` (each expected artifact with its
``boundArtifact``), which a later deployManifest binds through ``requiredArtifactIds``. The identity the
execution acts as must be able to read the other application; a refusal reads the same whether or not that
application exists.
"""

from __future__ import annotations

from apps.accounts.permissions import READ, PermissionRefused, can
from apps.deployments.stages.artifacts import produced
from apps.deployments.stages.common import StageRefused, is_expression, string_problems
from apps.pipelines.artifacts import ArtifactMissing, bind_expected, expected_artifact_problems, expected_problems
from apps.pipelines.checks import execution_actor
from apps.pipelines.choices import Status
from apps.pipelines.models import Application, Execution, Pipeline, StageExecution
from apps.pipelines.problems import Problem
from apps.pipelines.stages.base import StageField, StageType, TaskResult, register

# How many of the pipeline's newest executions are searched for one in a chosen status.
SEARCHED_EXECUTIONS = 1000
MAX_EXPECTED_ARTIFACTS = 100
# executionOptions' keys and the status each chooses (``succeeded``: an old Orca spelling it still reads).
STATUS_OPTIONS = {"successful": Status.SUCCEEDED, "succeeded": Status.SUCCEEDED, "terminal": Status.TERMINAL,
                  "running": Status.RUNNING}
DEFAULT_STATUSES = (Status.SUCCEEDED,)


@register
class FindArtifactFromExecutionStage(StageType):
    """Binds expected artifacts to what another pipeline's newest execution (in the chosen statuses) produced."""

    type_name = "findArtifactFromExecution"
    label = "Find Artifacts From Execution"
    description = "Finds artifacts another pipeline's newest execution produced, for the stages after this one."
    fields = (
        StageField("application", label="Application", required=True, help="The other pipeline's application."),
        StageField("pipeline", label="Pipeline", required=True, help="The other pipeline's id (pipelineConfigId)."),
        StageField("executionOptions", "object", label="Execution options",
                   help="Which of its executions count: {successful, terminal, running}; absent: successful."),
        StageField("expectedArtifacts", "list", label="Expected artifacts", items=(
            StageField("id", label="Id", required=True),
            StageField("displayName", label="Display name"),
            StageField("matchArtifact", "object", label="Match artifact",
                       help="type, name, version, location, reference: regexes on the whole value."),
            StageField("useDefaultArtifact", "boolean", label="Use the default artifact"),
            StageField("defaultArtifact", "object", label="Default artifact"),
        ), help="What to find; older documents write one expectedArtifact."),
    )

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        """The names are text, the options true or false, the expected artifacts a list with ids and regexes."""
        return (string_problems(stage, pointer, ("application", "pipeline"), limit=200)
                + options_problems(stage.get("executionOptions"), f"{pointer}/executionOptions")
                + expected_field_problems(stage, pointer))

    def run(self, stage, scope, runtime) -> TaskResult:
        """Find the execution, bind each expected artifact among its artifacts; TERMINAL saying what is missing."""
        context = stage.context
        # What expressions made of the fields when the stage started.
        problems = self.missing_fields(context, "") + self.validate(context, "")
        if problems:
            return TaskResult.failed("; ".join(f"{p.pointer.lstrip('/').replace('/', '.')}: {p.message}"
                                               for p in problems))
        try:
            pipeline = readable_pipeline(stage, runtime, context["application"], str(context["pipeline"]))
            source = newest_execution(pipeline, chosen_statuses(context.get("executionOptions")), stage)
            candidates = execution_artifacts(source, skip_ref_id=stage.ref_id
                                             if pipeline.pk == stage.execution.pipeline_id else None)
            outputs = bind_all(expected_of(context), candidates, f"execution {source.id} of pipeline {pipeline.name!r}")
        except StageRefused as refused:
            return TaskResult.failed(str(refused))
        return TaskResult.succeeded(outputs=outputs, context={"sourceExecutionId": str(source.id),
                                                              "sourceExecutionStatus": source.status})


def options_problems(options, where: str) -> list[Problem]:
    if options is None or is_expression(options):
        return []
    if not isinstance(options, dict):
        return [Problem(where, "must be an object: {successful, terminal, running}, each true or false")]
    problems = [Problem(f"{where}/{key}", "must be true or false") for key in STATUS_OPTIONS
                if options.get(key) is not None and not isinstance(options[key], bool)]
    if not problems and not any(options.get(key) is True for key in STATUS_OPTIONS):
        problems.append(Problem(where, "must choose at least one of successful, terminal, running"))
    return problems


def expected_field_problems(stage: dict, pointer: str) -> list[Problem]:
    """``expectedArtifacts`` (a non-empty list), else ``expectedArtifact`` (one), is required and well formed."""
    items = stage.get("expectedArtifacts")
    if items is None and stage.get("expectedArtifact") is not None:
        return [] if is_expression(stage["expectedArtifact"]) else expected_problems(
            stage["expectedArtifact"], f"{pointer}/expectedArtifact")
    where = f"{pointer}/expectedArtifacts"
    if is_expression(items):
        return []
    if items in (None, []):
        return [Problem(where, "is required: the artifacts to find (or expectedArtifact, one of them)")]
    if isinstance(items, list) and len(items) > MAX_EXPECTED_ARTIFACTS:
        return [Problem(where, f"must list at most {MAX_EXPECTED_ARTIFACTS} expected artifacts")]
    return expected_artifact_problems(items, where)


def expected_of(context: dict) -> list[tuple[str, dict]]:
    """Each expected artifact with the field that names it (``expectedArtifacts.0``, or ``expectedArtifact``)."""
    if context.get("expectedArtifacts") is None:
        return [("expectedArtifact", context["expectedArtifact"])]
    return [(f"expectedArtifacts.{index}", item) for index, item in enumerate(context["expectedArtifacts"])]


def chosen_statuses(options) -> tuple[str, ...]:
    if not isinstance(options, dict):
        return DEFAULT_STATUSES
    return tuple(dict.fromkeys(status for key, status in STATUS_OPTIONS.items() if options.get(key) is True))


def readable_pipeline(stage, runtime, application: str, reference: str) -> Pipeline:
    """The pipeline, if the execution's identity may read its application. The refusal is the same whether the
    application is missing or unreadable, so that a stage cannot be used to learn which applications exist."""
    try:
        actor = execution_actor(stage.execution)
    except PermissionRefused as refused:
        raise StageRefused(refused.message) from None
    found = Application.objects.filter(name__iexact=application).first()
    if found is None or (actor.user is not None and not can(actor.user, READ, found)):
        raise StageRefused(f"application: {actor.username} may not read an application {application!r} "
                           "(or there is none)")
    pipeline = runtime.find_pipeline(found.name, reference)
    if pipeline is None:
        raise StageRefused(f"pipeline: application {found.name!r} has no pipeline {reference!r}")
    return pipeline


def newest_execution(pipeline: Pipeline, statuses: tuple[str, ...], stage) -> Execution:
    """The newest execution of ``pipeline`` in ``statuses`` among its newest SEARCHED_EXECUTIONS, never the stage's
    own (one query: the window is a subquery on the pipeline's recent-executions index)."""
    window = Execution.objects.filter(pipeline=pipeline).order_by("-created_at").values("id")[:SEARCHED_EXECUTIONS]
    found = (Execution.objects.filter(id__in=window, status__in=statuses).exclude(id=stage.execution_id)
             .order_by("-created_at").only("id", "status", "trigger", "created_at").first())
    if found is None:
        raise StageRefused(f"pipeline: pipeline {pipeline.name!r} of application {pipeline.application.name!r} has "
                           f"no {' or '.join(statuses)} execution among its newest {SEARCHED_EXECUTIONS}")
    return found


def execution_artifacts(execution: Execution, skip_ref_id: str | None) -> list[dict]:
    """What the execution produced, as Orca lists it: its stages' artifacts, later stages first, then the
    trigger's (one query). ``skip_ref_id``: a stage whose artifacts are left out."""
    rows = StageExecution.objects.filter(execution_id=execution.id).order_by("position").only("ref_id", "outputs")
    found = [artifact for row in rows if row.ref_id != skip_ref_id for artifact in produced(row)]
    found.reverse()
    trigger = execution.trigger if isinstance(execution.trigger, dict) else {}
    return found + [artifact for artifact in trigger.get("artifacts") or [] if isinstance(artifact, dict)]


def bind_all(expected: list[tuple[str, dict]], candidates: list[dict], where: str) -> dict:
    """The stage's outputs: the bound artifacts and the resolved expected artifacts; StageRefused naming the
    expected artifact that binds none (or several)."""
    artifacts: list[dict] = []
    resolved = []
    for field, item in expected:
        try:
            bound, _how = bind_expected(item, candidates, where=where, unique=True)
        except ArtifactMissing as missing:
            raise StageRefused(f"{field}: {missing}") from None
        resolved.append({**item, "boundArtifact": bound})
        if bound not in artifacts:
            artifacts.append(bound)
    return {"artifacts": artifacts, "resolvedExpectedArtifacts": resolved}
