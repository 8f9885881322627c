"""The built-in ``#functions`` every expression may call (``#toJson``, ``#fromBase64``, ``#readYaml``, ...).

The functions about an execution (``#stage``, ``#judgment``, ``#pipelineId``...) and those that fetch a URL
are the scope's (``apps/pipelines/scope.py``); they are merged over these.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

import yaml

from apps.pipelines.expressions.errors import Refusal
from apps.pipelines.expressions.values import to_json, type_name

# A SafeLoader builds only plain data; libyaml's when PyYAML has it.
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _require_text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got a {type_name(value)}")
    return value


def _to_int(value: Any) -> int:
    return int(value.strip() if isinstance(value, str) else value)


def _to_float(value: Any) -> float:
    return float(value.strip() if isinstance(value, str) else value)


def _to_boolean(value: Any) -> bool:
    """Java's Boolean.parseBoolean: only "true" (any case) is true; booleans pass through."""
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return _require_text(value).strip().lower() == "true"


def read_yaml(text: Any) -> Any:
    """``#readYaml``: one YAML document as plain data (the evaluator sizes the result, aliases expanded)."""
    try:
        return yaml.load(_require_text(text), Loader=_YamlLoader)  # noqa: S506  (a SafeLoader)
    except yaml.YAMLError as error:
        raise Refusal(f"the text is not YAML: {str(error).splitlines()[0]}") from None


def read_all_yaml(text: Any) -> list:
    """``#readAllYaml``: every document of a multi-document YAML text, as a list."""
    try:
        return list(yaml.load_all(_require_text(text), Loader=_YamlLoader))  # noqa: S506  (a SafeLoader)
    except yaml.YAMLError as error:
        raise Refusal(f"the text is not YAML: {str(error).splitlines()[0]}") from None


def read_properties(text: Any) -> dict[str, str]:
    """Java properties text (``key=value`` or ``key: value`` lines, ``#`` and ``!`` comments) as a map."""
    properties: dict[str, str] = {}
    for line in _require_text(text).splitlines():
        line = line.strip()
        if not line or line[0] in "#!":
            continue
        match = re.match(r"([^=:\s]+)\s*[=:\s]\s*(.*)", line)
        key, value = (match.group(1), match.group(2)) if match else (line, "")
        properties[key] = value
    return properties


def _read_json(value: Any) -> Any:
    try:
        return json.loads(_require_text(value))
    except json.JSONDecodeError as error:
        raise Refusal(f"the text is not JSON: {error}") from None


# Merged under the functions a caller passes to evaluate().
BUILTIN_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "alphanumerical": lambda value: re.sub(r"[^A-Za-z0-9]", "", _require_text(value)),
    # Orca's: the text as written, never evaluated (a later stage reads it as text, expressions and all).
    "doNotEval": _require_text,
    "fromBase64": lambda value: base64.b64decode(_require_text(value), validate=True).decode("utf-8"),
    "fromJson": _read_json,
    "readJson": _read_json,
    "readYaml": read_yaml,
    "readAllYaml": read_all_yaml,
    "toBase64": lambda value: base64.b64encode(_require_text(value).encode("utf-8")).decode("ascii"),
    "toBoolean": _to_boolean,
    "toFloat": _to_float,
    "toInt": _to_int,
    "toJson": to_json,
}
# Functions whose result the expression builds (parsed text, fetched documents): counted against the budget.
# Those reading the execution (#stage...) hand out what is already there.
BUILDING_FUNCTIONS = frozenset(
    {*BUILTIN_FUNCTIONS, "fromUrl", "jsonFromUrl", "yamlFromUrl", "propertiesFromUrl"}
)
