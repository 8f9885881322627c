"""The ``checkPreconditions`` stage: preconditions, each able to fail the pipeline or halt its branch.

Orca's precondition types: ``expression`` (a SpEL expression that must be true), ``stageStatus`` (the stage
named ``stageName`` has the status ``stageStatus``) and ``clusterSize`` (the number of server groups of a
cluster). ``clusterSize`` is registered by the app that has clusters (``register_precondition``: the
deployments app); without it a document with one loads, as in Spinnaker, but the check fails when it runs.
An empty list checks nothing and succeeds, as Orca's (which plans one check per precondition) does.
"""

from collections.abc import Callable
from dataclasses import dataclass

from apps.pipelines.choices import Status
from apps.pipelines.expressions import ExpressionError, has_expressions, is_truthy
from apps.pipelines.problems import Problem
from apps.pipelines.stages.base import StageField, StageType, TaskResult, register

SUPPORTED_PRECONDITION_TYPES = ("expression", "stageStatus")
# Orca's precondition types that need what this platform does not have yet, and what that is.
UNAVAILABLE_PRECONDITION_TYPES = {"clusterSize": "deployed clusters to count server groups in"}


@dataclass(frozen=True)
class PreconditionType:
    """A precondition type another app provides: its context's problems (given the context and its pointer), and
    its check (given the context with expressions evaluated, and the stage), which returns whether it holds and
    the message when it does not; it raises LookupError when it cannot check."""

    problems: Callable[[object, str], list[Problem]]
    check: Callable[[dict, object], tuple[bool, str]]


REGISTERED: dict[str, PreconditionType] = {}


def register_precondition(kind: str, precondition: PreconditionType) -> None:
    REGISTERED[kind] = precondition


def _evaluated(expression, scope, field):
    """The precondition's value: ``${...}`` evaluated, and so is a bare expression (Spinnaker accepts
    ``parameters.env == 'prod'`` without ``${}``); true and false are themselves."""
    if has_expressions(expression):
        return scope.evaluate(expression, field=field)
    if isinstance(expression, str) and expression.strip().lower() not in ("true", "false", ""):
        return scope.evaluate("${" + expression + "}", field=field)
    return expression


def _context_problems(kind: str, context, where: str) -> list[Problem]:
    if kind in REGISTERED:
        return REGISTERED[kind].problems(context, f"{where}/context")
    if kind == "expression" and (not isinstance(context, dict) or context.get("expression") in (None, "")):
        return [Problem(f"{where}/context/expression", "is required for an expression precondition")]
    if kind == "stageStatus":
        return [
            Problem(f"{where}/context/{key}", "is required for a stageStatus precondition")
            for key in ("stageName", "stageStatus")
            if not isinstance(context, dict) or context.get(key) in (None, "")
        ]
    return []


def _passes(precondition: dict, index: int, scope, stage) -> tuple[bool, str]:
    """Whether one precondition holds, and why not (empty: its failureMessage says); raises LookupError for a
    type that cannot be checked here."""
    kind = precondition.get("type")
    context = precondition.get("context") or {}
    if kind in REGISTERED:
        evaluated = {key: scope.evaluate(value, field=f"preconditions[{index}].context.{key}")
                     if has_expressions(value) else value for key, value in context.items() if key != "failureMessage"}
        return REGISTERED[kind].check(evaluated, stage)
    if kind in UNAVAILABLE_PRECONDITION_TYPES:
        raise LookupError(f"precondition type {kind!r} needs {UNAVAILABLE_PRECONDITION_TYPES[kind]}, "
                          "which this platform does not have yet")
    if kind == "stageStatus":
        named = [stage for stage in scope.stages if stage.name == context.get("stageName")]
        return bool(named) and named[0].status == str(context.get("stageStatus")).upper(), ""
    field = f"preconditions[{index}].context.expression"
    return is_truthy(_evaluated(context.get("expression"), scope, field)), ""


@register
class CheckPreconditionsStage(StageType):
    type_name = "checkPreconditions"
    label = "Check Preconditions"
    description = "Checks preconditions; a false one fails the pipeline or stops this branch."
    fields = (
        StageField("preconditions", "list", label="Preconditions", items=(
            StageField("type", "choice", label="Type", required=True,
                       choices=(*SUPPORTED_PRECONDITION_TYPES, *UNAVAILABLE_PRECONDITION_TYPES),
                       default="expression"),
            StageField("context", "object", label="Context", required=True,
                       help='{"expression": "${...}", "failureMessage": "..."}, or for stageStatus '
                            '{"stageName": "...", "stageStatus": "SUCCEEDED"}'),
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
        if not isinstance(preconditions, list):
            return [Problem(f"{pointer}/preconditions", "must be a list of preconditions")]
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
            if kind not in SUPPORTED_PRECONDITION_TYPES and kind not in UNAVAILABLE_PRECONDITION_TYPES:
                known = ", ".join(map(repr, (*SUPPORTED_PRECONDITION_TYPES, *UNAVAILABLE_PRECONDITION_TYPES)))
                problems.append(Problem(f"{where}/type", f"unknown precondition type {kind!r}; known types: {known}"))
                continue
            problems += _context_problems(kind, precondition.get("context"), where)
            if "failPipeline" in precondition and not isinstance(precondition["failPipeline"], bool):
                problems.append(Problem(f"{where}/failPipeline", "must be true or false"))
        return problems

    def run(self, stage, scope, runtime) -> TaskResult:
        results: list[dict] = []
        halt_status = None
        for index, precondition in enumerate(stage.context.get("preconditions") or []):
            context = precondition.get("context") or {}
            try:
                passed, reason = _passes(precondition, index, scope, stage)
                message = scope.evaluate(context.get("failureMessage"),
                                         field=f"preconditions[{index}].context.failureMessage")
            except LookupError as error:
                return TaskResult.failed(str(error), context={"preconditionResults": results})
            except ExpressionError as error:
                return TaskResult.failed(f"precondition {index}: {error}", context={"preconditionResults": results})
            fail_pipeline = precondition.get("failPipeline", True) is not False
            results.append({"type": precondition.get("type"), "expression": context.get("expression"),
                            "passed": passed, "failPipeline": fail_pipeline})
            if not passed:
                message = message or reason or "precondition is false"
                if fail_pipeline:
                    return TaskResult.failed(message, context={"preconditionResults": results})
                halt_status = halt_status or message
        if halt_status:
            # Spinnaker's "fail pipeline" unchecked: this branch stops, the pipeline does not fail.
            return TaskResult.failed(halt_status, status=Status.STOPPED, context={"preconditionResults": results})
        return TaskResult.succeeded(context={"preconditionResults": results})
