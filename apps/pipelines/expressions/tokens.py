"""Splitting the text of one SpEL expression into tokens."""

from __future__ import annotations

import re
from dataclasses import dataclass

from apps.pipelines.expressions.errors import Refusal

_TOKEN_PATTERN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<number>(?:\d+\.\d+|\d+)(?:[eE][+-]?\d+)?)
    | (?P<string>'(?:[^']|'')*'|"(?:[^"]|"")*")
    | (?P<function>\#[A-Za-z_]\w*)
    | (?P<name>[A-Za-z_]\w*)
    | (?P<symbol>\?\.|\?:|==|!=|<=|>=|&&|\|\||[-+*/%^<>!?:.,()\[\]{}$])
    """,
    re.VERBOSE | re.ASCII,
)


@dataclass(frozen=True)
class Token:
    """One token of a SpEL expression, with its position for error messages."""

    kind: str  # "number", "string", "function", "name", "symbol" or "end"
    text: str
    position: int

    @property
    def key(self) -> str:
        """What the parser matches: symbols as written, words in lower case (SpEL's ``AND`` is ``and``)."""
        if self.kind == "symbol":
            return self.text
        return self.text.lower() if self.kind == "name" else ""

    def describe(self) -> str:
        """The token as an error message names it."""
        return "the end of the expression" if self.kind == "end" else f"'{self.text}' at position {self.position}"


def tokenize(expression: str) -> list[Token]:
    """The tokens of ``expression``, ending with an ``end`` token; raises Refusal on a character SpEL lacks."""
    tokens = []
    position = 0
    while position < len(expression):
        match = _TOKEN_PATTERN.match(expression, position)
        if match is None:
            raise Refusal(_bad_character(expression, position))
        if match.lastgroup != "space":
            tokens.append(Token(match.lastgroup or "", match.group(), position))
        position = match.end()
    tokens.append(Token("end", "", position))
    return tokens


def _bad_character(expression: str, position: int) -> str:
    char = expression[position]
    if char == "=":
        return "assignment (=) is not supported; use == to compare"
    if char in "'\"":
        return "unterminated string literal"
    if char == "@":
        return "bean references (@name) are not supported"
    return f"unexpected character {char!r} at position {position}"
