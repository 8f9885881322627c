"""The ``checkPreconditions`` stage: expression preconditions, each able to fail the pipeline or halt its branch."""

from apps.pipelines.choices import Status
from apps.pipelines.expressions import ExpressionError, has_expressions, is_truthy
from apps.pipelines.problems import Problem
from apps.pipelines.stages.base import StageField, StageType, TaskResult, register

SUPPORTED_PRECONDITION_TYPES = ("expression",)


def _evaluated(expression, scope, field):
    """The precondition's value: ``${...}`` evaluated, and so is a bare expression (Spinnaker accepts
    ``parameters.env == 'prod'`` without ``${}``); true and false are themselves."""
    if has_expressions(expression):
        return scope.evaluate(expression, field=field)
    if isinstance(expression, str) and expression.strip().lower() not in ("true", "false", ""):
        return scope.evaluate("${" + expression + "}", field=field)
    return expression


@register
class CheckPreconditionsStage(StageType):
    type_name = "checkPreconditions"
    label = "Check Preconditions"
    description = "Checks expressions; a false one fails the pipeline or stops this branch."
    fields = (
        StageField("preconditions", "list", label="Preconditions", required=True, items=(
            StageField("type", "choice", label="Type", required=True, choices=SUPPORTED_PRECONDITION_TYPES,
                       default="expression"),
            StageField("context", "object", label="Context", required=True,
                       help='{"expression": "${...}", "failureMessage": "..."}'),
            StageField("failPipeline", "boolean", label="Fail pipeline", default=True,
                       help="Unchecked: only this branch stops."),
        )),
    )
    # run() evaluates each expression itself, so the stage's context keeps the expressions' text (what
    # a person reads in the stage panel) and the results say what each one gave.
    lazy_fields = ("preconditions",)
    evaluates_expressions = True

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        preconditions = stage.get("preconditions")
        if preconditions is None:
            return []
        if not isinstance(preconditions, list) or not preconditions:
            return [Problem(f"{pointer}/preconditions", "must be a non-empty list of preconditions")]
        problems = []
        for index, precondition in enumerate(preconditions):
            where = f"{pointer}/preconditions/{index}"
            if not isinstance(precondition, dict):
                problems.append(Problem(where, "must be an object"))
                continue
            kind = precondition.get("type")
            if kind in (None, ""):
                problems.append(Problem(f"{where}/type", "is required"))
                continue
            if kind not in SUPPORTED_PRECONDITION_TYPES:
                problems.append(Problem(f"{where}/type", f"unknown precondition type {kind!r}; use 'expression'"))
                continue
            context = precondition.get("context")
            if not isinstance(context, dict) or context.get("expression") in (None, ""):
                problems.append(Problem(f"{where}/context/expression", "is required for an expression precondition"))
            if "failPipeline" in precondition and not isinstance(precondition["failPipeline"], bool):
                problems.append(Problem(f"{where}/failPipeline", "must be true or false"))
        return problems

    def run(self, stage, scope, runtime) -> TaskResult:
        results: list[dict] = []
        halt_status = None
        for index, precondition in enumerate(stage.context.get("preconditions") or []):
            context = precondition.get("context") or {}
            field = f"preconditions[{index}].context"
            try:
                passed = is_truthy(_evaluated(context.get("expression"), scope, f"{field}.expression"))
                message = scope.evaluate(context.get("failureMessage"), field=f"{field}.failureMessage")
            except ExpressionError as error:
                return TaskResult.failed(f"precondition {index}: {error}", context={"preconditionResults": results})
            fail_pipeline = precondition.get("failPipeline", True) is not False
            results.append({"type": precondition.get("type"), "expression": context.get("expression"),
                            "passed": passed, "failPipeline": fail_pipeline})
            if not passed:
                message = message or "precondition is false"
                if fail_pipeline:
                    return TaskResult.failed(message, context={"preconditionResults": results})
                halt_status = halt_status or message
        if halt_status:
            # Spinnaker's "fail pipeline" unchecked: this branch stops, the pipeline does not fail.
            return TaskResult.failed(halt_status, status=Status.STOPPED, context={"preconditionResults": results})
        return TaskResult.succeeded(context={"preconditionResults": results})
