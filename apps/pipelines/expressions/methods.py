"""Java-style methods, looked up by the evaluator for ``x.method(...)`` calls, and the member-name rule."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import simpleeval

from apps.pipelines.expressions.errors import Refusal
from apps.pipelines.expressions.java_types import METHOD_NAMES as JAVA_METHOD_NAMES
from apps.pipelines.expressions.java_types import instance_methods
from apps.pipelines.expressions.regex import compile_regex
from apps.pipelines.expressions.values import JavaValue, is_integer, matches, to_java_string, type_name


def check_member_name(name: str) -> None:
    """Refuse a property or method name that could reach Python internals; raises Refusal."""
    # simpleeval's own attribute rules (no "_" or "func_" prefixes, no format/mro...), applied to every
    # property and method name, even though properties are only ever map keys here.
    # (``format`` is one of them, and also SimpleDateFormat's method: only that table's entry is ever called.)
    if name.startswith(tuple(simpleeval.DISALLOW_PREFIXES)) or (
        name in simpleeval.DISALLOW_METHODS and name not in JAVA_METHOD_NAMES
    ):
        raise Refusal(f"access to '{name}' is not allowed")


def _checked_index(items: Any, index: Any, method: str) -> Any:
    if not is_integer(index) or not 0 <= index < len(items):
        raise Refusal(f"{method}({index!r}) is out of range for a {type_name(items)} of size {len(items)}")
    return items[index]


def _substring(text: str, start: int, end: int | None = None) -> str:
    end = len(text) if end is None else end
    if not (is_integer(start) and is_integer(end) and 0 <= start <= end <= len(text)):
        raise Refusal(f"substring({start!r}, {end!r}) is out of range for a string of length {len(text)}")
    return text[start:end]


def _replace(text: str, old: str, new: str) -> str:
    occurrences = text.count(old) if old else len(text) + 1
    # Checked before building the result, so a small expression cannot allocate a huge string.
    if occurrences * max(len(new) - len(old), 0) > simpleeval.MAX_STRING_LENGTH:
        raise Refusal("the result of replace() would be too long")
    return text.replace(old, new)


_JAVA_REPLACEMENT = re.compile(r"\\(.)|\$(\d+)|\$\{([A-Za-z][A-Za-z0-9]*)\}|([^\\$]+)|(.)", re.DOTALL)


def _replace_regex(text: str, pattern: str, replacement: str, count: int) -> str:
    """Java's replaceAll/replaceFirst: ``$1`` and ``${name}`` insert groups, a backslash quotes a character."""
    budget = simpleeval.MAX_STRING_LENGTH

    def substitute(match: Any) -> str:
        nonlocal budget
        pieces = []
        for quoted, number, name, literal, other in _JAVA_REPLACEMENT.findall(replacement):
            if number or name:
                pieces.append(match.group(int(number) if number else name) or "")
            else:
                pieces.append(quoted or literal or other)
        piece = "".join(pieces)
        budget -= len(piece)
        if budget < 0:
            raise Refusal("the result of the replacement would be too long")
        return piece

    return compile_regex(pattern).sub(substitute, text, count=count)


def _split(text: str, pattern: str) -> list[str]:
    """Java's String.split(regex): no empty string for a zero-width match at the start, none at the end."""
    parts, position = [], 0
    for match in compile_regex(pattern).finditer(text):
        if match.end() == 0:
            continue
        parts.append(text[position : match.start()])
        position = match.end()
    if not parts:
        return [text]
    parts.append(text[position:])
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def _index_of(items: list | tuple, item: Any) -> int:
    return items.index(item) if item in items else -1


_COMMON_METHODS: dict[str, Callable[..., Any]] = {
    "equals": lambda value, other: value == other,
    "toString": lambda value: to_java_string(value),
}
_STRING_METHODS: dict[str, Callable[..., Any]] = {
    **_COMMON_METHODS,
    "charAt": lambda text, index: _checked_index(text, index, "charAt"),
    "contains": lambda text, part: part in text,
    "endsWith": lambda text, suffix: text.endswith(suffix),
    "equalsIgnoreCase": lambda text, other: isinstance(other, str) and text.casefold() == other.casefold(),
    "indexOf": lambda text, part: text.find(part),
    "isEmpty": lambda text: not text,
    "lastIndexOf": lambda text, part: text.rfind(part),
    "length": lambda text: len(text),
    "matches": lambda text, pattern: matches(text, pattern),
    "replace": _replace,
    "replaceAll": lambda text, pattern, replacement: _replace_regex(text, pattern, replacement, 0),
    "replaceFirst": lambda text, pattern, replacement: _replace_regex(text, pattern, replacement, 1),
    "split": _split,
    "startsWith": lambda text, prefix: text.startswith(prefix),
    "substring": _substring,
    "toLowerCase": lambda text: text.lower(),
    "toUpperCase": lambda text: text.upper(),
    "trim": lambda text: text.strip(),
}
_LIST_METHODS: dict[str, Callable[..., Any]] = {
    **_COMMON_METHODS,
    "contains": lambda items, item: item in items,
    "get": lambda items, index: _checked_index(items, index, "get"),
    "indexOf": _index_of,
    "isEmpty": lambda items: not items,
    "size": lambda items: len(items),
}
_MAP_METHODS: dict[str, Callable[..., Any]] = {
    **_COMMON_METHODS,
    "containsKey": lambda mapping, key: key in mapping,
    "containsValue": lambda mapping, value: value in mapping.values(),
    "get": lambda mapping, key: mapping.get(key),  # like Java's Map.get: null for a missing key
    "isEmpty": lambda mapping: not mapping,
    "keySet": lambda mapping: list(mapping),
    "size": lambda mapping: len(mapping),
    "values": lambda mapping: list(mapping.values()),
}
ALL_METHOD_NAMES = frozenset({*_STRING_METHODS, *_LIST_METHODS, *_MAP_METHODS, *JAVA_METHOD_NAMES})


def java_method(receiver: Any, name: str, path: str) -> Callable[..., Any]:
    """The Java-style method ``name`` for ``receiver`` (named ``path`` in errors); raises Refusal if none."""
    if receiver is None:
        raise Refusal(f"{path} is null; cannot call {name}()")
    if isinstance(receiver, str):
        table = _STRING_METHODS
    elif isinstance(receiver, Mapping):
        table = _MAP_METHODS
    elif isinstance(receiver, list | tuple):
        table = _LIST_METHODS
    elif isinstance(receiver, int | float):
        table = _COMMON_METHODS
    elif isinstance(receiver, JavaValue):
        table = {**_COMMON_METHODS, **instance_methods(receiver)}
    else:
        table = {}
    if name not in table:
        raise Refusal(f"{name}() is not available on {path} (a {type_name(receiver)})")
    return table[name]
