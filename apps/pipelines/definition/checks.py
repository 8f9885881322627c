"""The small checks every part of a pipeline document shares: types, required text, lists, expressions."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from apps.pipelines.expressions import expression_syntax_errors
from apps.pipelines.problems import Problem, pointer_join

EXPECTED: dict[type, str] = {
    bool: "must be true or false",
    str: "must be a string",
    list: "must be a list",
    dict: "must be an object",
}


def describe(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    names = {bool: "true or false", int: "a number", float: "a number", str: "a string", list: "a list"}
    return names.get(type(value), f"a {type(value).__name__}")


def required_text(container: dict, key: str, pointer: str, max_length: int | None = None) -> list[Problem]:
    """A required, non-blank string, of at most ``max_length`` characters when given."""
    where = pointer_join(pointer, key)
    value = container.get(key)
    if value is None:
        return [Problem(where, "is required")]
    if not isinstance(value, str):
        hint = f' (write "{value}")' if isinstance(value, int | float) and not isinstance(value, bool) else ""
        return [Problem(where, EXPECTED[str] + hint)]
    if not value.strip():
        return [Problem(where, "must not be empty")]
    if max_length is not None and len(value) > max_length:
        return [Problem(where, f"must be at most {max_length} characters long (it has {len(value)})")]
    return []


def unstorable_text(text: str) -> str | None:
    """Why a string cannot be stored, or None: no database text holds NUL, and lone surrogates are not text."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which cannot be stored"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (\\ud800-\\udfff), which is not text"
    return None


def optional_types(container: dict, pointer: str, expected: dict[str, type]) -> list[Problem]:
    """Problems for keys that are present (and not null) but of the wrong JSON type."""
    return [
        Problem(pointer_join(pointer, key), EXPECTED[kind])
        for key, kind in expected.items()
        if container.get(key) is not None and not isinstance(container[key], kind)
    ]


def list_of_objects(value: Any, pointer: str) -> tuple[list[Problem], list[tuple[int, dict]]]:
    """Check an optional list of objects; return its problems and the (index, object) items to check further."""
    if value is None:
        return [], []
    if not isinstance(value, list):
        return [Problem(pointer, EXPECTED[list])], []
    problems = [
        Problem(pointer_join(pointer, i), EXPECTED[dict]) for i, item in enumerate(value) if not isinstance(item, dict)
    ]
    return problems, [(i, item) for i, item in enumerate(value) if isinstance(item, dict)]


def _strings(value: Any, pointer: str) -> Iterator[tuple[str, str]]:
    """Every string inside a JSON value with its pointer, without recursion (documents may nest deeply)."""
    pending = [(value, pointer)]
    while pending:
        node, where = pending.pop()
        if isinstance(node, str):
            yield where, node
        elif isinstance(node, dict):
            pending.extend((item, pointer_join(where, key)) for key, item in reversed(node.items()))
        elif isinstance(node, list):
            pending.extend((item, pointer_join(where, index)) for index, item in reversed(list(enumerate(node))))


def expression_problems(value: Any, pointer: str) -> list[Problem]:
    """A problem for each malformed ``${...}`` in any string inside ``value``, at that string's pointer."""
    enabled_pointer = pointer_join(pointer, "stageEnabled", "expression")
    problems = []
    for where, text in _strings(value, pointer):
        if where == enabled_pointer and "${" not in text:
            # The engine runs a bare stageEnabled expression as if it were written "${...}".
            text = "${" + text + "}"
        problems += [Problem(where, message) for message in expression_syntax_errors(text)]
    return problems
