"""Jayway-style JSON paths (``$.a.b[0]['c d']``), as webhook stages use them to read a status from a response."""

from __future__ import annotations

import re
from typing import Any


class JsonPathError(ValueError):
    """A JSON path this resolver does not understand."""


MISSING = object()

_SEGMENT = re.compile(
    r"""\.(?P<name>[^.\[\]]+)|\[\s*(?P<index>-?\d+)\s*\]|\[\s*'(?P<single>[^']*)'\s*\]|\[\s*"(?P<double>[^"]*)"\s*\]"""
)


def parse_json_path(path: str) -> list[str | int]:
    """The steps of a JSON path: Jayway's ``$.a.b[0]['c d']`` or plain ``a.b[0]``.

    Wildcards, deep scans (``..``), filters and functions are not supported.
    """
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    elif text and not text.startswith((".", "[")):
        text = "." + text
    if not path.strip():
        raise JsonPathError("a JSON path must not be empty")
    steps: list[str | int] = []
    position = 0
    while position < len(text):
        match = _SEGMENT.match(text, position)
        if match is None or match["name"] == "*":
            raise JsonPathError(f"unsupported JSON path {path!r} at {text[position:]!r} (use $.a.b[0] or $['a'])")
        if match["index"] is not None:
            steps.append(int(match["index"]))
        else:
            steps.append(
                next(group for group in (match["name"], match["single"], match["double"]) if group is not None)
            )
        position = match.end()
    return steps


def read_json_path(document: Any, path: str) -> Any:
    """The value at ``path`` in ``document``, or :data:`MISSING`; raises JsonPathError for a bad path."""
    value = document
    for step in parse_json_path(path):
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return MISSING
        elif not isinstance(value, dict) or step not in value:
            return MISSING
        value = value[step]
    return value
