"""The ``evaluateVariables`` stage: named values, evaluated in order, that later stages read by name."""

from apps.pipelines.expressions import SUMMARY_KEY, ExpressionError, Summary, has_expressions
from apps.pipelines.problems import Problem
from apps.pipelines.stages.base import StageField, StageType, TaskResult, register


@register
class EvaluateVariablesStage(StageType):
    type_name = "evaluateVariables"
    label = "Evaluate Variables"
    description = "Evaluates named values in order; later stages read them by name."
    fields = (
        StageField("variables", "list", label="Variables", required=True, items=(
            StageField("key", label="Name", required=True),
            StageField("value", label="Value", required=True, help="Text or an expression; may use earlier names."),
        )),
    )
    # Each variable may use the ones before it, so they are evaluated here, in order.
    lazy_fields = ("variables",)
    evaluates_expressions = True

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        variables = stage.get("variables")
        if variables is None:
            return []
        if not isinstance(variables, list) or not variables:
            return [Problem(f"{pointer}/variables", "must be a non-empty list of {\"key\": ..., \"value\": ...}")]
        problems = []
        seen = set()
        for index, variable in enumerate(variables):
            where = f"{pointer}/variables/{index}"
            if not isinstance(variable, dict):
                problems.append(Problem(where, "must be an object with key and value"))
                continue
            key = variable.get("key")
            if not isinstance(key, str) or not key.isidentifier():
                problems.append(Problem(f"{where}/key", "must be a name made of letters, digits and underscores"))
            elif key in seen:
                problems.append(Problem(f"{where}/key", f"duplicate variable {key!r}"))
            else:
                seen.add(key)
            if "value" not in variable:
                problems.append(Problem(f"{where}/value", "is required"))
        return problems

    def runs_unlocked(self, stage) -> bool:
        # Literal values (no ${...}) cost nothing to evaluate: no need to let go of the lock.
        return has_expressions(stage.definition.get("variables"))

    def run(self, stage, scope, runtime) -> TaskResult:
        """As Orca: a value that cannot be resolved is kept as written and listed in expressionEvaluationSummary;
        the stage fails for it only with ``failOnFailedExpressions`` (and always over a budget limit)."""
        values: dict = {}
        summary = Summary()
        for index, variable in enumerate(stage.definition.get("variables") or []):
            try:
                field = f"variables[{index}].value"
                values[variable["key"]] = scope.evaluate(
                    variable.get("value"), extra_variables=values, field=field, summary=summary
                )
            except ExpressionError as error:
                return TaskResult.failed(f"variable {variable['key']!r}: {error}")
        evaluated = [{"key": key, "value": value} for key, value in values.items()]
        context: dict = {"variables": evaluated}
        if summary:
            context[SUMMARY_KEY] = summary.as_context()
            if stage.definition.get("failOnFailedExpressions") is True:
                return TaskResult.failed(summary.describe(), context=context)
        return TaskResult.succeeded(outputs=values, context=context)
