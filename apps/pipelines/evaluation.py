"""Evaluating expressions to debug them: a batch of expressions against given data, or one against an execution.

``manage.py pipeline eval --batch FILE`` and ``POST /api/executions/{id}/evaluate`` come here. Both evaluate
as a stage's context is evaluated (Orca's rules): an expression that cannot be resolved gives its own text
back, with the reason in ``summary``; over a time or size limit it is an error. Each expression gets the
budget of one stage's evaluation (``EXPRESSION_*`` settings).
"""

from __future__ import annotations

import uuid
from typing import Any

from apps.accounts.audit import Actor
from apps.accounts.permissions import EXECUTE
from apps.pipelines.checks import check_permission
from apps.pipelines.expressions import ExpressionError, Summary
from apps.pipelines.models import Application, Execution, StageExecution
from apps.pipelines.problems import InvalidDocument, Problem
from apps.pipelines.scope import ExpressionScope

# What one request may ask for: expressions are bounded by EXPRESSION_MAX_LENGTH on their own.
MAX_BATCH = 1000


class DetachedScope(ExpressionScope):
    """A scope whose root is given (``context``), with stages given as Spinnaker stage objects."""

    def __init__(self, root: dict, stages: list[StageExecution], current: StageExecution | None):
        execution = root.get("execution")
        named = execution.get("application") if isinstance(execution, dict) else None
        application = Application(name=str(named or ""))
        trigger = root.get("trigger")
        trigger = trigger if isinstance(trigger, dict) else {}
        # Detached evaluation is the operator's (``manage.py pipeline eval``): it acts as the system.
        super().__init__(Execution(application=application, trigger=trigger, run_as_system=True), stages, current)
        self._root = {**(current.context if current is not None else {}), **root}

    def variables(self) -> dict[str, Any]:
        return dict(self._root)


def _stage(data: Any, position: int) -> StageExecution:
    """An unsaved stage from a Spinnaker stage object (refId, id, name, type, status, context, outputs)."""
    data = data if isinstance(data, dict) else {}
    stage = StageExecution(
        ref_id=str(data.get("refId", position)), name=str(data.get("name") or ""), type=str(data.get("type") or ""),
        status=str(data.get("status") or "NOT_STARTED"), position=position,
        context=data.get("context") if isinstance(data.get("context"), dict) else {},
        outputs=data.get("outputs") if isinstance(data.get("outputs"), dict) else {},
    )
    stage.id = data.get("id") or uuid.uuid4()  # Spinnaker's stage ids are opaque strings
    return stage


def _outcome(scope: ExpressionScope, expression: Any) -> dict:
    """``{"value": ...}`` (with ``summary`` when something was left as text) or ``{"error": ...}``."""
    if not isinstance(expression, str):
        return {"error": "expression: must be a string"}
    summary = Summary()
    try:
        value = scope.evaluate(expression, summary=summary)
    except ExpressionError as error:
        return {"error": str(error)}
    return {"value": value, "summary": summary.as_context()} if summary else {"value": value}


def evaluate_entry(entry: Any) -> dict:
    """One entry of a batch: ``{"expression", "context", "stages"?, "currentStageContext"?}``."""
    if not isinstance(entry, dict):
        return {"error": "must be an object with expression and context"}
    context = entry.get("context")
    root: dict = context if isinstance(context, dict) else {}
    stages = [_stage(data, index) for index, data in enumerate(entry.get("stages") or [])]
    current = None
    if isinstance(entry.get("currentStageContext"), dict):
        current = _stage({"refId": "current", "name": "current", "status": "RUNNING",
                          "context": entry["currentStageContext"]}, len(stages))
        stages.append(current)
    return _outcome(DetachedScope(root, stages, current), entry.get("expression"))


def evaluate_batch(entries: Any) -> list[dict]:
    """Each entry's outcome, in order (see ``evaluate_entry``)."""
    if not isinstance(entries, list):
        raise InvalidDocument([Problem("", "must be a list of {\"expression\", \"context\"} objects")])
    if len(entries) > MAX_BATCH:
        raise InvalidDocument([Problem("", f"holds {len(entries):,} entries, more than {MAX_BATCH:,}")])
    return [evaluate_entry(entry) for entry in entries]


def check_evaluate_expression(user: Actor, execution: Execution, expression: str, stage_id: str | None) -> dict:
    """Evaluate ``expression`` against a real execution (Gate's evaluateExpression), as of now.

    Needs **execute** on the execution's application: an expression may make the platform fetch URLs
    (``#jsonFromUrl``) and spends a worker's budget, as running a stage does; reading an execution shows what
    its expressions gave, not new evaluations. ``stage_id`` evaluates as that stage's expressions would
    (its context and its ancestors' outputs by bare name, ``#currentStage()``); without it, at the
    execution's level. Refused input is InvalidDocument naming the field.
    """
    check_permission(user, EXECUTE, execution.application)
    stages = list(execution.stages.all())
    stage = None
    if stage_id not in (None, ""):
        stage = next((row for row in stages if str(row.id) == str(stage_id)), None)
        if stage is None:
            raise InvalidDocument([Problem("/stageId", f"no stage {stage_id!r} in this execution")])
    return _outcome(ExpressionScope(execution, stages, stage), expression)
