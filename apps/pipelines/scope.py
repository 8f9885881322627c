"""What a stage's expressions can see: trigger, parameters, execution, #stage('Name') and upstream outputs.

The root of an evaluation (``#root``, and where bare names are looked up) is, as in Orca, the stage's own
context over its ancestors' outputs, under ``trigger``, ``parameters`` and ``execution``. Orca's helper
functions about the execution are here (``#stage``, ``#stageExists``, ``#judgment``, ``#currentStage``,
``#stageByRefId``, ``#pipelineId``, ``#triggerResolvedArtifact``...), with the URL helpers
(``expressions.remote``); those about deployed server groups and manifests are refused with the reason.

``#secret('name')`` gives its own reference text, except in the scope a stage
gets from :meth:`ExpressionScope.with_secrets` just before it uses the values
(``apps/pipelines/secrets/resolution.py``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from apps.accounts.permissions import READ, can
from apps.pipelines.choices import Status
from apps.pipelines.expressions import SUMMARY_KEY, Budget, ExpressionError, Summary, evaluate, has_expressions
from apps.pipelines.expressions.remote import UrlFunctions
from apps.pipelines.models import Pipeline, epoch_millis
from apps.pipelines.secrets.references import reference_text

if TYPE_CHECKING:
    from apps.pipelines.models import Execution, StageExecution


def stage_summary(stage: StageExecution) -> dict:
    """The view of a stage that expressions get from ``#stage('Name')``."""
    return {
        "id": str(stage.id),
        "refId": stage.ref_id,
        "name": stage.name,
        "type": stage.type,
        "status": stage.status,
        "context": stage.context,
        "outputs": stage.outputs,
        "startTime": epoch_millis(stage.start_time),
        "endTime": epoch_millis(stage.end_time),
        # Orca's StageExecution properties that expressions read: #stage('Bake').hasSucceeded
        "hasSucceeded": stage.status == Status.SUCCEEDED,
        "hasFailed": stage.status in (Status.TERMINAL, Status.FAILED_CONTINUE),
    }


# Keys of a stage's definition that are not part of its context.
_STRUCTURAL_KEYS = frozenset({"refId", "type", "name", "requisiteStageRefIds"})
# Orca's helpers that need deployments or manifests: refused, saying why, rather than reported unknown.
_NOT_YET = {
    name: f"#{name}(...) needs {what}, which this platform does not deploy yet"
    for name, what in (
        ("deployedServerGroups", "the server groups deploy stages create"),
        ("manifestLabelValue", "the manifests deployManifest stages deploy"),
    )
}


def ancestors_in_order(stage: StageExecution, by_ref: dict[str, StageExecution]) -> list[StageExecution]:
    """Every stage upstream of ``stage``, farthest first, so nearer ancestors' outputs win."""
    seen: dict[str, int] = {}

    def visit(ref_id: str, depth: int) -> None:
        if seen.get(ref_id, -1) >= depth:
            return
        seen[ref_id] = depth
        for requisite in by_ref[ref_id].requisite_ref_ids:
            if requisite in by_ref:
                visit(requisite, depth + 1)

    for requisite in stage.requisite_ref_ids:
        if requisite in by_ref:
            visit(requisite, 1)
    return [by_ref[ref] for ref, _ in sorted(seen.items(), key=lambda item: -item[1])]


class ExpressionScope:
    """Variables and functions for evaluating the expressions of one stage of one execution."""

    def __init__(
        self,
        execution: Execution,
        stages: list[StageExecution] | None = None,
        stage: StageExecution | None = None,
        secrets: dict[str, str] | None = None,
    ):
        self.execution = execution
        self._stages = stages
        self.stage = stage
        # One budget (CPU time, sizes) for every expression evaluated through this scope: a stage's start,
        # or one step of its task. Made on first use.
        self._budget: Budget | None = None
        # The values #secret('name') gives; None (everywhere but a stage using them) keeps the reference as text.
        self._secrets = secrets
        self._urls = UrlFunctions()

    def with_secrets(self, values: dict[str, str]) -> ExpressionScope:
        """The same scope, where ``#secret('name')`` gives the value (only in the worker, just before use)."""
        return ExpressionScope(self.execution, self._stages, self.stage, secrets=values)

    @property
    def stages(self) -> list[StageExecution]:
        # Loaded on first use: most task steps never evaluate an expression.
        if self._stages is None:
            self._stages = list(self.execution.stages.all())
        return self._stages

    def variables(self) -> dict[str, Any]:
        by_ref = {stage.ref_id: stage for stage in self.stages}
        variables: dict[str, Any] = {}
        if self.stage is not None:
            # Spinnaker lets a stage read its ancestors' outputs, and its own context, by bare name.
            for ancestor in ancestors_in_order(self.stage, by_ref):
                variables.update(ancestor.outputs)
            definition = self.stage.definition if isinstance(self.stage.definition, dict) else {}
            variables.update({key: value for key, value in definition.items() if key not in _STRUCTURAL_KEYS})
            variables.update(self.stage.context or {})
        execution = self.execution
        variables.update(
            {
                "trigger": execution.trigger,
                "parameters": execution.parameters,
                "execution": {
                    "id": str(execution.id),
                    "application": execution.application.name,
                    "name": execution.name,
                    "status": execution.status,
                    "startTime": epoch_millis(execution.start_time),
                    "trigger": execution.trigger,
                    "parameters": execution.parameters,
                    "stages": [stage_summary(stage) for stage in self.stages],
                },
            }
        )
        return variables

    def functions(self) -> dict[str, Any]:
        return {
            **{name: functools.partial(_refuse, reason) for name, reason in _NOT_YET.items()},
            **self._urls.table(),
            "stage": self.stage_by_name,
            "stageExists": self.stage_exists,
            "stageByRefId": self.stage_by_ref_id,
            "currentStage": self.current_stage,
            "judgment": self.judgment,
            "judgement": self.judgment,
            "pipelineId": self.pipeline_id,
            "pipelineIdOrNull": lambda name: self.pipeline_id(name, required=False),
            "pipelineIdInApplication": lambda name, application: self.pipeline_id(name, application),
            "triggerResolvedArtifact": lambda name: self.resolved_artifact("name", name),
            "triggerResolvedArtifactByType": lambda kind: self.resolved_artifact("type", kind),
            "secret": self.secret,
        }

    def secret(self, name: str) -> str:
        """A secret's value when the scope holds it; otherwise its reference, so what is stored never has the value."""
        if self._secrets is None:
            return reference_text(str(name))
        if name not in self._secrets:
            raise LookupError(f"secret {name!r} was not loaded for this stage")
        return self._secrets[name]

    def _find(self, name_or_id: Any) -> StageExecution | None:
        for stage in self.stages:
            if name_or_id is not None and name_or_id in (stage.name, str(stage.id)):
                return stage
        return None

    def stage_by_name(self, name_or_id: str) -> dict:
        """Orca's ``#stage``: the first stage with this name, or with this id."""
        stage = self._find(name_or_id)
        if stage is None:
            raise LookupError(f"no stage named {name_or_id!r} (nor with that id) in this execution")
        return stage_summary(stage)

    def stage_exists(self, name_or_id: str) -> bool:
        return self._find(name_or_id) is not None

    def stage_by_ref_id(self, ref_id: str) -> dict:
        for stage in self.stages:
            if stage.ref_id == str(ref_id):
                return stage_summary(stage)
        raise LookupError(f"no stage with refId {ref_id!r} in this execution")

    def current_stage(self) -> dict:
        if self.stage is None:
            raise LookupError("#currentStage() is only available in a stage's expressions")
        return stage_summary(self.stage)

    def judgment(self, name: str) -> Any:
        """The input chosen in the manual judgment stage called ``name`` (Spinnaker's ``#judgment``).

        Like Orca, it looks only at manualJudgment stages that have an input, so another stage of the same
        name does not hide it.
        """
        for stage in self.stages:
            context = stage.context or {}
            if stage.name == name and stage.type == "manualJudgment" and context.get("judgmentInput") is not None:
                return context["judgmentInput"]
        raise LookupError(f"no manualJudgment stage named {name!r} with a judgment input in this execution")

    def pipeline_id(self, name: str, application: str | None = None, required: bool = True) -> str | None:
        """``#pipelineId('name')``: the id of a pipeline of this application (or ``application``) by its name.

        A pipeline of another application is found only when the identity the execution acts as may read that
        application; otherwise it is not there, as for a name no pipeline has.
        """
        own = self.execution.application.name
        application = application or own
        found = Pipeline.objects.filter(application__name__iexact=application, name=name).select_related(
            "application").first()
        if found is not None and application.lower() != own.lower() and not self._may_read(found.application):
            found = None
        if found is None and required:
            raise LookupError(f"no pipeline named {name!r} in application {application!r}")
        return None if found is None else found.spinnaker_id

    def _may_read(self, application) -> bool:
        """Whether the identity this execution acts as may read ``application`` (an operator's start may)."""
        execution = self.execution
        if execution.run_as_system:
            return True
        user = execution.run_as if execution.run_as_id else None
        return user is not None and user.is_active and can(user, READ, application)

    def resolved_artifact(self, key: str, wanted: str) -> dict:
        """``#triggerResolvedArtifact(name)`` / ``ByType(type)``: the first artifact the trigger bound with it."""
        for expected in (self.execution.trigger or {}).get("resolvedExpectedArtifacts") or []:
            bound = expected.get("boundArtifact") if isinstance(expected, dict) else None
            if isinstance(bound, dict) and bound.get(key) == wanted:
                return bound
        raise LookupError(f"no artifact with {key} {wanted!r} was resolved by this execution's trigger")

    def evaluate(
        self, value: Any, extra_variables: dict | None = None, field: str = "", summary: Summary | None = None
    ) -> Any:
        """Evaluate every ``${...}`` in ``value``; raises ExpressionError (naming ``field`` and below).

        With a ``summary``, Orca's rules: a failed expression stays as text, recorded in the summary (see
        ``expressions.evaluate``). All the evaluations of one scope share one budget (``expressions.budget``).
        """
        if not has_expressions(value):
            # Building the variables reads every stage: skip it when nothing needs them.
            return value

        variables = self.variables()
        if extra_variables:
            variables.update(extra_variables)
        if self._budget is None:
            self._budget = Budget()
        return evaluate(value, variables, self.functions(), self._budget, field, summary)

    def evaluate_context(self, context: dict) -> dict:
        """A stage's context evaluated as Orca does: what cannot be resolved stays as written, and is listed
        under ``expressionEvaluationSummary``; the stage fails for it (ExpressionError) only when the context
        sets ``failOnFailedExpressions: true``."""
        summary = Summary()
        evaluated = self.evaluate(context, summary=summary)
        if not summary:
            return evaluated
        if context.get("failOnFailedExpressions") is True:
            raise ExpressionError(summary.describe(), "failOnFailedExpressions is set", whole_string=True)
        return {**evaluated, SUMMARY_KEY: summary.as_context()}


def _refuse(reason: str, *arguments: Any) -> Any:
    raise LookupError(reason)
