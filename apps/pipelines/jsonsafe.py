"""Making a stage's outputs and context storable as JSON, or refusing them with the key path at fault.

A stage type's result is merged into JSON columns. Values JSON has no type
for are converted when the conversion is unambiguous:

* ``datetime``, ``date``, ``time`` → ISO 8601 strings (``isoformat()``);
* ``Decimal`` → an int when integral, a float when the float reads back as
  the same number, else its string (``"3.14159265358979323846"``, ``"NaN"``);
* ``bytes`` → the text when it is UTF-8, else ``"base64:"`` and the base64;
* ``UUID`` → its string; tuples, sets and frozensets → lists (sets sorted
  when their items sort);
* dict keys that are ints, finite floats, bools, None, UUIDs or dates →
  strings as ``json.dumps`` writes them, unless two keys would then collide.

Anything else — an arbitrary object, a NaN or infinite float (not JSON), a
string holding NUL (PostgreSQL cannot store it) — raises
:class:`NotJsonSafe` naming where it is
(``outputs.report.generatedBy: object of type Foo is not JSON-serializable``).

Plain JSON values are returned as they are, not copied: the walk costs a type
check per value, and the path is only built when something is refused.
"""

from __future__ import annotations

import binascii
import math
import uuid
from datetime import date, datetime, time
from decimal import Decimal
from itertools import islice
from typing import Any


class NotJsonSafe(TypeError):
    """A value that cannot be stored as JSON; the message names its key path."""

    # The message says all (the engine shows it as it is, without the type's name).
    engine_message = True

    def __init__(self, reason: str, segments: list[str] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.segments = segments or []

    def inside(self, segment: str) -> NotJsonSafe:
        """The same refusal, one level further out (the path is built while unwinding)."""
        self.segments.insert(0, segment)
        return self

    def at(self, root: str) -> NotJsonSafe:
        """The finished error, its message prefixed with the path from ``root``."""
        return NotJsonSafe(f"{root}{''.join(self.segments)}: {self.reason}", [root, *self.segments])


def json_safe(value: Any, root: str) -> Any:
    """``value`` made JSON-safe (see the module docstring), or :class:`NotJsonSafe` naming ``root.path``."""
    try:
        return _safe(value)
    except NotJsonSafe as refused:
        raise refused.at(root) from None


def _safe(value: Any) -> Any:
    kind = type(value)
    if kind is str:
        if "\x00" in value:
            raise NotJsonSafe("text containing a NUL character (\\u0000) cannot be stored")
        return value
    if kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return _safe_dict(value)
    if kind is list:
        return _safe_list(value)
    if kind is float:
        if not math.isfinite(value):
            raise NotJsonSafe(f"{value} is not a JSON number")
        return value
    return _convert(value)


def _safe_dict(value: dict) -> dict:
    out: dict | None = None
    for index, (key, item) in enumerate(value.items()):
        try:
            safe = _safe(item)
            safe_key = key if type(key) is str else _safe_key(key, value)
        except NotJsonSafe as refused:
            raise refused.inside(f".{key}") from None
        if out is None:
            if safe is item and safe_key is key:
                continue
            out = dict(islice(value.items(), index))  # the unchanged items before this one
        out[safe_key] = safe
    return value if out is None else out


def _safe_list(value: list) -> list:
    out: list | None = None
    for index, item in enumerate(value):
        try:
            safe = _safe(item)
        except NotJsonSafe as refused:
            raise refused.inside(f"[{index}]") from None
        if out is None:
            if safe is item:
                continue
            out = value[:index]
        out.append(safe)
    return value if out is None else out


def _safe_key(key: Any, owner: dict) -> str:
    """A non-string key as ``json.dumps`` would write it, refused when that string is already a key."""
    if isinstance(key, bool) or key is None:
        text = {True: "true", False: "false", None: "null"}[key]
    elif isinstance(key, int) or (isinstance(key, float) and math.isfinite(key)):
        text = str(key)
    elif isinstance(key, str):
        text = str.__str__(key)
    elif isinstance(key, uuid.UUID | date | time):
        text = str(key) if isinstance(key, uuid.UUID) else key.isoformat()
    else:
        raise NotJsonSafe(f"key {key!r} of type {type(key).__name__} is not a string")
    if text in owner:
        raise NotJsonSafe(f"key {key!r} would become {text!r}, which is already a key")
    return text


def _convert(value: Any) -> Any:
    """The slow path: JSON-like subclasses and the types converted as the module docstring says."""
    if isinstance(value, str):
        return _safe(str.__str__(value))
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return _safe(float(value))
    if isinstance(value, dict):
        return _safe_dict(dict(value))
    if isinstance(value, list | tuple):
        return _safe_list(list(value))
    if isinstance(value, set | frozenset):
        return _safe_list(_sorted_if_possible(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return _decimal(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return _bytes(bytes(value))
    if isinstance(value, uuid.UUID):
        return str(value)
    raise NotJsonSafe(f"object of type {type(value).__name__} is not JSON-serializable")


def _sorted_if_possible(items: set | frozenset) -> list:
    try:
        return sorted(items)
    except TypeError:
        return list(items)


def _decimal(value: Decimal) -> int | float | str:
    """An int when integral, a float when it reads back as the same number, else the exact string."""
    if not value.is_finite():
        return str(value)
    if value == value.to_integral_value():
        return int(value)
    as_float = float(value)
    return as_float if Decimal(repr(as_float)) == value else str(value)


def _bytes(value: bytes) -> str:
    """The text when the bytes are UTF-8 (and storable), else ``base64:`` and their base64."""
    try:
        return _safe(value.decode("utf-8"))
    except (UnicodeDecodeError, NotJsonSafe):
        return "base64:" + binascii.b2a_base64(value, newline=False).decode("ascii")

