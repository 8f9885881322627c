"""Sandboxed evaluation of Spinnaker-style ``${...}`` expressions written in a subset of SpEL.

Stage contexts carry strings such as ``"v${trigger.buildNumber}"`` or ``"${parameters.env == 'prod'}"``.
Pipeline authors write them, so they never reach Python's ``eval``. Instead:

1. a scanner finds each ``${...}`` in a string, skipping braces inside string literals and inline maps;
2. a tokenizer and a recursive-descent parser translate the SpEL text into a Python expression string
   made only of literals, names, plain operators and a few ``spel_*`` helper calls for the constructs
   whose SpEL meaning differs from Python's (``+`` on strings, integer ``/``, ``?:``, ``?.``, ``matches``);
   SpEL functions ``#name(...)`` become calls to ``fn_name(...)``;
3. a subclass of ``simpleeval.EvalWithCompoundTypes`` evaluates that string. simpleeval parses it with
   ``ast`` and walks only the node types it knows, with its size limits on strings and powers; the
   subclass narrows it further: only the node types the translator emits are accepted, a property
   (``a.b``) is a map key and never a Python attribute, and ``x.method()`` is looked up in fixed tables
   of Java-style methods for strings, lists, maps and numbers. No Python attribute of any value is read.

A string that is exactly one ``${expr}`` evaluates to the value with its type; a string mixing text and
expressions gets each value rendered as text (see ``evaluate``). Every failure is an ``ExpressionError``.

The package, in the order an expression goes through it: ``scanner`` (1), ``tokens`` and ``translator``
(2), ``evaluator`` (3), with ``values`` (SpEL's operators and how values show as text), ``methods`` (the
Java-style method tables) and ``functions`` (the built-in ``#functions``). Callers import only from here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apps.pipelines.expressions.budget import Budget, Limits, OverBudget, expression_too_long, limits
from apps.pipelines.expressions.errors import ExpressionError, Refusal, describe_exception
from apps.pipelines.expressions.evaluator import SpelEvaluator
from apps.pipelines.expressions.functions import BUILTIN_FUNCTIONS
from apps.pipelines.expressions.scanner import scan
from apps.pipelines.expressions.summary import SUMMARY_KEY, Summary
from apps.pipelines.expressions.translator import compile_expression
from apps.pipelines.expressions.values import is_truthy, plain, to_text

__all__ = [
    "BUILTIN_FUNCTIONS",
    "Budget",
    "Limits",
    "OverBudget",
    "ExpressionError",
    "SUMMARY_KEY",
    "Summary",
    "evaluate",
    "expression_syntax_errors",
    "expression_texts",
    "has_expressions",
    "is_truthy",
]


def evaluate(
    value: Any,
    variables: dict[str, Any],
    functions: dict[str, Callable[..., Any]] | None = None,
    budget: Budget | None = None,
    field: str = "",
    summary: Summary | None = None,
) -> Any:
    """Evaluate every ``${...}`` in ``value`` and return a new structure; the input is never changed.

    Dict values and list items are walked recursively (dict keys are kept as they are) and values that are
    not strings come back unchanged. A string without ``${`` comes back as it is. A string that is exactly
    one ``${expr}``, give or take surrounding whitespace, becomes the expression's value with its type
    (dict, list, int, bool, None...). Otherwise each ``${expr}`` is replaced by its value as text: strings
    as they are, None as an empty string, booleans as ``true``/``false``, dicts and lists as compact JSON,
    numbers with ``str()``.

    Bare names in expressions come from ``variables``; ``#name(...)`` calls ``functions['name']``, where
    ``functions`` is merged over ``BUILTIN_FUNCTIONS``. Raises ExpressionError on any failure.

    Every expression evaluated with one ``budget`` shares its limits (``budget``: CPU time, value sizes,
    integer sizes); without one, this call gets a fresh budget from the settings. An expression over
    budget raises ExpressionError saying which limit it passed.

    With a ``summary``, evaluation follows Orca's rules for a stage's context instead of raising: an
    expression that fails, or whose value is null, is left as the text it was (``${...}`` included) and
    the failure is recorded in the summary. Going over budget still raises: it is a limit, not a mistake.
    """
    evaluator = SpelEvaluator(variables, {**BUILTIN_FUNCTIONS, **(functions or {})}, budget)
    return _walk(value, evaluator, field, summary)


def expression_syntax_errors(text: str) -> list[str]:
    """One message per malformed ``${...}`` in ``text`` (unterminated, unparsable, unsupported); [] when fine.

    Only the syntax is checked, so no variables are needed: an unknown variable or function is not reported.
    """
    if not isinstance(text, str) or "${" not in text:
        return []
    spans, unterminated = scan(text)
    errors = []
    max_length = limits().max_length
    for span in spans:
        if len(span.expression) > max_length:
            reason = expression_too_long(len(span.expression), max_length)
            errors.append(str(ExpressionError(span.expression[:40] + "...", reason)))
            continue
        try:
            compile_expression(span.expression)
        except Refusal as refusal:
            errors.append(str(ExpressionError(span.expression, str(refusal))))
    if unterminated is not None:
        errors.append(str(unterminated))
    return errors


def expression_texts(text: str) -> list[str]:
    """The text inside each well-formed ``${...}`` of ``text``, in order (an unterminated one is left out)."""
    if not isinstance(text, str) or "${" not in text:
        return []
    spans, _ = scan(text)
    return [span.expression for span in spans]


def has_expressions(value: Any) -> bool:
    """Whether any string inside ``value`` (dict values, list items) contains ``${``."""
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, dict):
        return any(has_expressions(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(has_expressions(item) for item in value)
    return False


def _walk(value: Any, evaluator: SpelEvaluator, field: str, summary: Summary | None) -> Any:
    if isinstance(value, str):
        try:
            return _evaluate_string(value, evaluator, summary)
        except ExpressionError as error:
            error.field = error.field or field or None
            raise
    if isinstance(value, dict):
        return {key: _walk(item, evaluator, _join(field, str(key)), summary) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, evaluator, f"{field}[{index}]", summary) for index, item in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(_walk(item, evaluator, f"{field}[{index}]", summary) for index, item in enumerate(value))
    return value


def _join(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def _evaluate_string(text: str, evaluator: SpelEvaluator, summary: Summary | None) -> Any:
    if "${" not in text:
        return text
    spans, unterminated = scan(text)
    if unterminated is not None:
        if summary is None:
            raise unterminated
        summary.failed(text, unterminated.reason, field=unterminated.field)
        return text
    first = spans[0]
    if len(spans) == 1 and not text[: first.start].strip() and not text[first.end :].strip():
        value = _evaluate_expression(first.expression, evaluator, summary)
        return text if value is _LEFT_AS_TEXT else value
    pieces, position, length = [], 0, len(text)
    for span in spans:
        value = _evaluate_expression(span.expression, evaluator, summary)
        piece = text[span.start : span.end] if value is _LEFT_AS_TEXT else "" if value is None else to_text(value)
        length += len(piece)
        limit = evaluator.budget.limits.max_value_size
        if length > limit:
            reason = f"the string it is part of would be {length:,} characters long, more than {limit:,}"
            raise ExpressionError(span.expression, f"{reason} (EXPRESSION_MAX_VALUE_SIZE)")
        pieces += [text[position : span.start], piece]
        position = span.end
    pieces.append(text[position:])
    return "".join(pieces)


# What a failed expression gives under a summary: the caller keeps the expression's own text.
_LEFT_AS_TEXT = object()


def _evaluate_expression(expression: str, evaluator: SpelEvaluator, summary: Summary | None = None) -> Any:
    try:
        result = _run(expression, evaluator)
    except ExpressionError as error:
        if summary is None or error.over_budget:
            raise
        summary.failed(expression, error.reason)
        return _LEFT_AS_TEXT
    if result is None and summary is not None:
        summary.not_found(expression)
        return _LEFT_AS_TEXT
    # A typed result may be a structure shared with the variables: plain() hands out a copy the caller may
    # change, with Java values (dates, UUIDs) as their text.
    return plain(result)


def _run(expression: str, evaluator: SpelEvaluator) -> Any:
    try:
        evaluator.budget.check_length(expression)
        return evaluator.eval(expression, previously_parsed=compile_expression(expression))
    except ExpressionError as error:  # raised by a caller's function evaluating expressions of its own
        raise ExpressionError(expression, error.reason, over_budget=error.over_budget) from error
    except OverBudget as refusal:
        raise ExpressionError(expression, str(refusal), over_budget=True) from refusal
    except Refusal as refusal:
        raise ExpressionError(expression, str(refusal)) from refusal
    except Exception as error:  # noqa: BLE001  (whatever went wrong, callers only have to handle ExpressionError)
        raise ExpressionError(expression, describe_exception(error)) from error
