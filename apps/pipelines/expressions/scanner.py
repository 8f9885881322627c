"""Finding each ``${...}`` in a string, skipping braces inside string literals and inline maps."""

from __future__ import annotations

from dataclasses import dataclass

from apps.pipelines.expressions.errors import ExpressionError


@dataclass(frozen=True)
class Span:
    """Where one ``${...}`` sits in a string, and the expression text inside it."""

    start: int  # index of the "$"
    end: int  # index just after the closing "}"
    expression: str  # the text between "${" and "}"


def scan(text: str) -> tuple[list[Span], ExpressionError | None]:
    """The ``${...}`` spans of ``text``, plus the error for an unterminated one (scanning stops there)."""
    spans: list[Span] = []
    start = text.find("${")
    while start != -1:
        end, reason = _closing_brace(text, start + 2)
        if reason is not None:
            return spans, ExpressionError(text, reason, whole_string=True)
        spans.append(Span(start, end + 1, text[start + 2 : end]))
        start = text.find("${", end + 1)
    return spans, None


def _closing_brace(text: str, index: int) -> tuple[int, str | None]:
    """Index of the ``}`` closing an expression body that starts at ``index``, or -1 and the reason."""
    depth = 0  # braces of inline lists and maps opened inside the expression
    while index < len(text):
        char = text[index]
        if char in "'\"":
            index = _string_literal_end(text, index)
            if index < 0:
                return -1, "unterminated string literal inside ${...}"
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return index, None
            depth -= 1
        index += 1
    return -1, "unterminated ${...}: missing the closing '}'"


def _string_literal_end(text: str, start: int) -> int:
    """Index just after the string literal opening at ``start`` (a doubled quote is an escaped quote), or -1."""
    quote = text[start]
    index = start + 1
    while True:
        index = text.find(quote, index)
        if index < 0:
            return -1
        if not text.startswith(quote, index + 1):
            return index + 1
        index += 2
