"""What went wrong while evaluating a stage's context, kept as Orca keeps it: ``expressionEvaluationSummary``.

Orca does not fail a stage for an expression it cannot resolve: it leaves the text as written and records
why under the stage context's ``expressionEvaluationSummary``, one list of results per expression (``ERROR``
when evaluating raised, ``INFO`` when the value was null). The stage fails for it only when its context
sets ``failOnFailedExpressions: true``.
"""

from __future__ import annotations

SUMMARY_KEY = "expressionEvaluationSummary"


class Summary:
    """The failures of one evaluation, by expression text (without its ``${}``)."""

    def __init__(self) -> None:
        self.results: dict[str, list[dict]] = {}

    def __bool__(self) -> bool:
        return bool(self.results)

    def failed(self, expression: str, reason: str, field: str | None = None) -> None:
        where = f"{field}: " if field else ""
        self._add(expression, "ERROR", f"Failed to evaluate {where}{reason}")

    def not_found(self, expression: str) -> None:
        self._add(expression, "INFO", f"Failed to evaluate: {expression.strip()} not found")

    def _add(self, expression: str, level: str, description: str) -> None:
        # "${" in a description would be evaluated again as an expression the next time the context is.
        entry = {"level": level, "description": description.replace("${", "$ {")}
        results = self.results.setdefault(expression.strip().replace("${", "$ {"), [])
        if entry not in results:
            results.append(entry)

    def as_context(self) -> dict[str, list[dict]]:
        """The ``expressionEvaluationSummary`` value for a stage's context."""
        return {expression: list(results) for expression, results in self.results.items()}

    def describe(self) -> str:
        """One line naming every failed expression and why (for a stage that fails on them)."""
        return "; ".join(
            f"${{{expression}}}: {results[-1]['description']}" for expression, results in self.results.items()
        )
