"""Parsing a pipeline document written as JSON or YAML into the dict that JSON would give."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import yaml
from django.conf import settings

from apps.pipelines.definition.checks import describe
from apps.pipelines.problems import InvalidDocument, Problem, pointer_join

# Values in a document once YAML aliases are expanded; guards against alias bombs.
MAX_VALUES = 250_000

# libyaml's parser when PyYAML has it (the wheels do): several times faster than the pure-Python one.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _YamlLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """A SafeLoader whose results map onto JSON: dates stay text and duplicate keys are refused."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[str] = set()
        for key_node, _value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == "tag:yaml.org,2002:str":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)


# Without this, `updateTs: 2024-05-01` would load as a datetime, which JSON cannot hold.
_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _SafeLoader.yaml_implicit_resolvers.items()
}


def parse_document(text: str | bytes) -> dict:
    """Parse a pipeline document written as JSON or YAML and return it as a dict.

    JSON is tried first so that a broken JSON document is reported with
    JSON's line and column; YAML (a superset) is tried next. Raises
    :class:`InvalidDocument` for empty input, a syntax error, a top level that
    is not an object, and values JSON cannot hold (YAML dates, sets, binary,
    non-string keys, NaN), duplicate keys, and documents that YAML aliases
    make larger than ``PIPELINE_DOCUMENT_MAX_BYTES`` (as JSON) or
    ``MAX_VALUES`` values.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise InvalidDocument([Problem("", f"is not UTF-8 text (bad byte at offset {error.start})")]) from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise InvalidDocument([Problem("", "is empty; expected a pipeline as a JSON or YAML object")])
    duplicates: dict[int, tuple[dict, list[str]]] = {}
    try:
        document = _load(text, duplicates)
        if not isinstance(document, dict):
            raise InvalidDocument([Problem("", f"must be an object (a pipeline), not {describe(document)}")])
        problems = _json_value_problems(document, duplicates)
    except RecursionError:
        raise InvalidDocument([Problem("", "is nested too deeply")]) from None
    if problems:
        raise InvalidDocument(problems)
    return document


def _load(text: str, duplicates: dict[int, tuple[dict, list[str]]]) -> Any:
    """JSON, else YAML; on failure report the error of the syntax the text looks like."""

    def note_duplicates(pairs: list[tuple[str, Any]]) -> dict:
        result = dict(pairs)
        if len(result) < len(pairs):
            # One pass over the keys: a mapping of 60,000 keys must not cost 60,000² comparisons.
            repeated = sorted(key for key, count in Counter(key for key, _ in pairs).items() if count > 1)
            # Holding ``result`` keeps its id from being reused by another object.
            duplicates[id(result)] = (result, repeated)
        return result

    try:
        return json.loads(text, object_pairs_hook=note_duplicates)
    except json.JSONDecodeError as json_error:
        try:
            return yaml.load(text, Loader=_YamlLoader)  # a SafeLoader subclass: builds no Python objects
        except yaml.YAMLError as yaml_error:
            if text.lstrip()[0] in "{[":
                where = f"line {json_error.lineno}, column {json_error.colno}"
                message = f"is not valid JSON: {json_error.msg} at {where}"
            else:
                message = f"is not valid YAML: {_yaml_error_text(yaml_error)}"
            raise InvalidDocument([Problem("", message)]) from None


def _yaml_error_text(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is None or problem is None:
        return str(error)
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"


def _json_value_problems(document: dict, duplicates: dict[int, tuple[dict, list[str]]]) -> list[Problem]:
    """Problems with values that JSON cannot hold, duplicate JSON keys, and documents too large."""
    problems: list[Problem] = []
    # YAML aliases make one container (or string) appear in several places, or inside itself: each
    # is walked once and its size remembered — values, and bytes as JSON — so an alias bomb costs no time.
    sizes: dict[int, tuple[int, int]] = {}
    on_path: set[int] = set()

    def walk(node: Any, pointer: str) -> tuple[int, int]:
        if not isinstance(node, dict | list):
            return 1, _scalar_bytes(node, pointer, problems, sizes)
        if id(node) in on_path:
            problems.append(Problem(pointer, "contains itself (a recursive YAML alias)"))
            return 1, 0
        if id(node) in sizes:
            return sizes[id(node)]
        on_path.add(id(node))
        values, size = 1, 2 + max(len(node) - 1, 0)  # the brackets and the commas
        if isinstance(node, dict):
            for key in duplicates.get(id(node), ({}, []))[1]:
                problems.append(
                    Problem(pointer_join(pointer, key), "is a duplicate key; only the last value would be kept")
                )
            for key, value in node.items():
                if not isinstance(key, str):
                    problems.append(Problem(pointer, f"has the key {key!r}, which is not a string; quote it"))
                child_values, child_bytes = walk(value, pointer_join(pointer, str(key)))
                values += child_values
                size += child_bytes + len(str(key).encode("utf-8", "surrogatepass")) + 3  # "key":
        else:
            for index, value in enumerate(node):
                child_values, child_bytes = walk(value, pointer_join(pointer, index))
                values += child_values
                size += child_bytes
        on_path.discard(id(node))
        sizes[id(node)] = (values, size)
        return values, size

    total, size = walk(document, "")
    if total > MAX_VALUES:
        problems.append(Problem("", f"has {total} values once YAML aliases are expanded; the limit is {MAX_VALUES}"))
    limit = settings.PIPELINE_DOCUMENT_MAX_BYTES
    if total <= MAX_VALUES and size > limit:
        problems.append(
            Problem("", f"is {size} bytes as JSON once YAML aliases are expanded; the limit is {limit} bytes "
                    "(PIPELINE_DOCUMENT_MAX_BYTES)")
        )
    return problems


def _scalar_bytes(node: Any, pointer: str, problems: list[Problem], sizes: dict[int, tuple[int, int]]) -> int:
    """The bytes ``node`` takes as JSON (at least: escapes are not counted), noting a value JSON cannot hold."""
    if isinstance(node, str):
        # An aliased string is one object in many places: measure it once.
        if id(node) not in sizes:
            sizes[id(node)] = (1, len(node.encode("utf-8", "surrogatepass")) + 2)
        return sizes[id(node)][1]
    if node is None or isinstance(node, bool):
        return 5
    if isinstance(node, float) and not math.isfinite(node):
        problems.append(Problem(pointer, "must be a finite number"))
        return 1
    if isinstance(node, int | float):
        return len(repr(node))
    problems.append(Problem(pointer, f"is a YAML {type(node).__name__} value, which JSON cannot hold"))
    return 1
