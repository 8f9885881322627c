"""Regular expressions as Spinnaker's documents use them (a trigger's branch, tag and payload constraints, an
expected artifact's ``matchArtifact`` fields): whole-value matches, run on RE2, so a pattern takes linear time
whatever the input, checked when the document is saved.
"""

from __future__ import annotations

from typing import Any

import re2

from apps.pipelines.problems import Problem

MAX_PATTERN_LENGTH = 1000


def pattern_problem(pattern: Any, where: str) -> list[Problem]:
    """A regex field: a string RE2 compiles (Java's backreferences and lookaround are not RE2)."""
    if pattern in (None, ""):
        return []
    if not isinstance(pattern, str):
        return [Problem(where, "must be a string (a regular expression)")]
    if len(pattern) > MAX_PATTERN_LENGTH:
        return [Problem(where, f"must be at most {MAX_PATTERN_LENGTH} characters long")]
    try:
        compiled(pattern)
    except re2.error as error:
        return [Problem(where, f"is not a regular expression RE2 accepts: {error}")]
    return []


_COMPILED: dict[str, Any] = {}


def compiled(pattern: str):
    """The pattern compiled once per process (a handful per trigger, read on every event)."""
    found = _COMPILED.get(pattern)
    if found is None:
        if len(_COMPILED) > 10_000:
            _COMPILED.clear()
        found = _COMPILED[pattern] = re2.compile(pattern)
    return found


def matches_pattern(pattern: Any, value: Any) -> bool:
    """Whether ``value`` matches the whole of ``pattern`` (empty or absent: anything), as Spinnaker's triggers do."""
    if pattern in (None, ""):
        return True
    try:
        return compiled(str(pattern)).fullmatch(str(value if value is not None else "")) is not None
    except re2.error:
        return False
