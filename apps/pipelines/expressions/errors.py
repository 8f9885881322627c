"""The errors of the expression language: the one callers see, and the one raised inside it."""

from __future__ import annotations

import re


class ExpressionError(Exception):
    """An expression that could not be parsed or evaluated.

    ``expression`` is the text inside ``${}``, or the whole string when no expression could be delimited
    (``whole_string`` is then True); ``reason`` is a plain message meant for the pipeline author;
    ``field``, when known, where the string holding the expression sits (``variables[0].value``): the
    message then starts with it.
    """

    def __init__(
        self, expression: str, reason: str, whole_string: bool = False, field: str | None = None,
        over_budget: bool = False,
    ):
        super().__init__(expression, reason, whole_string)
        self.expression = expression
        self.reason = reason
        self.whole_string = whole_string
        self.field = field
        # Passed a time or size limit (budget.OverBudget): never left as text, always a failure.
        self.over_budget = over_budget

    def __str__(self) -> str:
        shown = self.expression if self.whole_string else "${" + self.expression + "}"
        return f"{self.field}: {shown}: {self.reason}" if self.field else f"{shown}: {self.reason}"


class Refusal(Exception):
    """A plain-language failure raised while translating or evaluating; wrapped into ExpressionError."""


def describe_exception(error: Exception) -> str:
    """A plain message for an exception raised by Python code an expression ran (an operator, a function)."""
    if isinstance(error, ZeroDivisionError):
        return "division by zero"
    if isinstance(error, re.error):
        return f"invalid regular expression: {error}"
    return str(error) or type(error).__name__
