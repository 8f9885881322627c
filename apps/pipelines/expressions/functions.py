"""The built-in ``#functions`` every expression may call (``#toJson``, ``#fromBase64``, ...)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any

from apps.pipelines.expressions.values import to_json, type_name


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


# Merged under the functions a caller passes to evaluate(). There is deliberately no #jsonFromUrl:
# expressions never reach the network.
BUILTIN_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "alphanumerical": lambda value: re.sub(r"[^A-Za-z0-9]", "", _require_text(value)),
    "fromBase64": lambda value: base64.b64decode(_require_text(value), validate=True).decode("utf-8"),
    "fromJson": lambda value: json.loads(_require_text(value)),
    "readJson": lambda value: json.loads(_require_text(value)),
    "toBase64": lambda value: base64.b64encode(_require_text(value).encode("utf-8")).decode("ascii"),
    "toBoolean": _to_boolean,
    "toFloat": _to_float,
    "toInt": _to_int,
    "toJson": to_json,
}
