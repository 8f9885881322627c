"""Values as SpEL shows them, and the SpEL operators whose meaning differs from Python's."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from apps.pipelines.expressions.errors import Refusal
from apps.pipelines.expressions.regex import compile_regex


def is_truthy(value: Any) -> bool:
    """Read a ``stageEnabled`` or precondition result: Python truthiness, except for strings.

    The strings ``"false"``, ``"0"`` and ``""`` (any case, surrounding whitespace ignored) are false; every
    other string, ``"true"`` included, is true.
    """
    if isinstance(value, str):
        return value.strip().lower() not in ("", "false", "0")
    return bool(value)


class JavaValue:
    """A value of one of the Java types expressions may use (``java_types``); shown as Java's toString()."""

    def java_string(self) -> str:
        raise NotImplementedError


def to_text(value: Any) -> str:
    """How SpEL shows a value inside a string: as is for strings, true/false, null, JSON for maps and lists."""
    if isinstance(value, str):
        return value
    if isinstance(value, JavaValue):
        return value.java_string()
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return to_json(value)
    return str(value)


def to_json(value: Any) -> str:
    """Compact JSON, as ``#toJson`` and text rendering of maps and lists produce it."""
    return json.dumps(plain(value), separators=(",", ":"), ensure_ascii=False, default=str)


def to_java_string(value: Any) -> str:
    """Java's ``toString()``: ``{key=value, ...}`` for a map, ``[a, b]`` for a list, ``1.0`` for a double."""
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{to_java_string(key)}={to_java_string(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(to_java_string(item) for item in value) + "]"
    if isinstance(value, float) and math.isfinite(value) and value == int(value) and abs(value) < 1e7:
        return f"{value:.1f}"
    return to_text(value)


def plain(value: Any) -> Any:
    """``value`` with every Java value in it replaced by its text, so results are plain JSON data."""
    if isinstance(value, JavaValue):
        return value.java_string()
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def type_name(value: Any) -> str:
    """The SpEL-side name of a value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, list | tuple):
        return "list"
    return type(value).__name__


def is_integer(value: Any) -> bool:
    """Whether ``value`` is an integer in SpEL's sense: Python's ``bool`` is not one."""
    return isinstance(value, int) and not isinstance(value, bool)


def add(left: Any, right: Any) -> Any:
    """SpEL ``+``: when either side is a string, the other is converted to text and the two are joined.

    The evaluator sizes the result first (``budget.concatenate``).
    """
    if isinstance(left, str) or isinstance(right, str):
        return to_text(left) + to_text(right)
    return left + right


def _divide(left: Any, right: Any) -> Any:
    """SpEL ``/``: integer division truncating toward zero (as in Java) when both sides are integers."""
    if is_integer(left) and is_integer(right):
        quotient = abs(left) // abs(right)
        return quotient if (left < 0) == (right < 0) else -quotient
    return left / right


def _modulo(left: Any, right: Any) -> Any:
    """SpEL ``%``: the remainder takes the sign of the dividend, as in Java (Python's follows the divisor)."""
    if right == 0:
        raise ZeroDivisionError
    if is_integer(left) and is_integer(right):
        return left - right * _divide(left, right)
    return math.fmod(left, right)


def matches(value: Any, pattern: Any) -> bool:
    """SpEL ``matches``: the whole value must match the regular expression, as with Java's String.matches.

    The regular expression runs on RE2 (linear time, see ``regex``), never on a backtracking engine.
    """
    if value is None:
        raise Refusal("'matches' cannot test null")
    if not isinstance(pattern, str):
        raise Refusal("the right side of 'matches' must be a string")
    return compile_regex(pattern).fullmatch(to_text(value)) is not None


# The spel_* calls the translator emits, by the name it gives them.
HELPERS: dict[str, Callable[..., Any]] = {
    "spel_truth": is_truthy,
    "spel_div": _divide,
    "spel_mod": _modulo,
    "spel_matches": matches,
}
