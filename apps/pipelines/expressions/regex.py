"""Regular expressions of ``matches``, ``split``, ``replaceAll`` and ``replaceFirst``, on RE2.

Java's engine, like Python's ``re``, backtracks: ``'aaaaaaaaaaaaaaaaaaaaaaaa!' matches '(a+)+$'`` takes
time doubling with each character, and one such expression would hold a worker for hours. RE2 matches in
time linear in the input, whatever the pattern. It does not have the features that need backtracking —
backreferences (``\\1``), lookahead and lookbehind (``(?=``, ``(?!``, ``(?<=``, ``(?<!``), atomic groups
and possessive quantifiers (``(?>``, ``a*+``) — and a pattern using them is refused with a message saying
so. Compiled patterns are cached; RE2's memory for one pattern is bounded (a pattern needing more is refused).
"""

from __future__ import annotations

import functools
from typing import Any

import re2

from apps.pipelines.expressions.errors import Refusal

# RE2's memory budget for one compiled pattern (its default is 8 MiB).
_MAX_PATTERN_MEMORY = 8 << 20
# How RE2 words its refusal of the features only a backtracking engine has.
_BACKTRACKING_ONLY = ("invalid perl operator", "invalid escape sequence", "bad repetition operator")
_UNSUPPORTED = (
    "RE2 is used, which has no backreferences, lookahead or lookbehind, atomic groups or possessive quantifiers"
)


@functools.lru_cache(maxsize=512)
def compile_regex(pattern: str) -> Any:
    """The compiled RE2 pattern; raises Refusal naming the problem for a pattern RE2 cannot run."""
    options = re2.Options()
    options.log_errors = False
    options.max_mem = _MAX_PATTERN_MEMORY
    try:
        return re2.compile(pattern, options)
    except re2.error as error:
        detail = error.args[0] if error.args else ""
        reason = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(error)
        if any(word in reason for word in _BACKTRACKING_ONLY):
            reason = f"{reason} ({_UNSUPPORTED})"
        raise Refusal(f"invalid regular expression {pattern!r}: {reason}") from None
