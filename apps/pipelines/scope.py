"""What a stage's expressions can see: trigger, parameters, execution, #stage('Name') and upstream outputs.

``#secret('name')`` gives its own reference text, except in the scope a stage
gets from :meth:`ExpressionScope.with_secrets` just before it uses the values
(``apps/pipelines/secrets/resolution.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apps.pipelines.expressions import Budget, evaluate, has_expressions
from apps.pipelines.models import epoch_millis
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
            # Spinnaker lets a stage read its ancestors' outputs by bare name.
            for ancestor in ancestors_in_order(self.stage, by_ref):
                variables.update(ancestor.outputs)
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
            "stage": self.stage_by_name,
            "stageByRefId": self.stage_by_ref_id,
            "judgment": self.judgment,
            "secret": self.secret,
        }

    def secret(self, name: str) -> str:
        """A secret's value when the scope holds it; otherwise its reference, so what is stored never has the value."""
        if self._secrets is None:
            return reference_text(str(name))
        if name not in self._secrets:
            raise LookupError(f"secret {name!r} was not loaded for this stage")
        return self._secrets[name]

    def stage_by_name(self, name: str) -> dict:
        for stage in self.stages:
            if stage.name == name:
                return stage_summary(stage)
        raise LookupError(f"no stage named {name!r} in this execution")

    def stage_by_ref_id(self, ref_id: str) -> dict:
        for stage in self.stages:
            if stage.ref_id == str(ref_id):
                return stage_summary(stage)
        raise LookupError(f"no stage with refId {ref_id!r} in this execution")

    def judgment(self, name: str) -> Any:
        """The input chosen in the manual judgment stage called ``name`` (Spinnaker's ``#judgment``)."""
        stage = self.stage_by_name(name)
        if stage["type"] != "manualJudgment":
            raise LookupError(f"stage {name!r} is not a manualJudgment stage")
        return stage["context"].get("judgmentInput")

    def evaluate(self, value: Any, extra_variables: dict | None = None, field: str = "") -> Any:
        """Evaluate every ``${...}`` in ``value``; raises ExpressionError (naming ``field`` and below).

        All the evaluations of one scope share one budget (see ``expressions.budget``).
        """
        if not has_expressions(value):
            # Building the variables reads every stage: skip it when nothing needs them.
            return value

        variables = self.variables()
        if extra_variables:
            variables.update(extra_variables)
        if self._budget is None:
            self._budget = Budget()
        return evaluate(value, variables, self.functions(), self._budget, field)
