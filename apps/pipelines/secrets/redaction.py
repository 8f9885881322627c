"""Keeping secret values out of what is stored, raised and logged: each is replaced by ``***``.

A value is redacted as written and in the forms a request or a response may
carry it in: URL-encoded (``quote``, ``quote_plus``) and escaped inside a
JSON string. While a stage uses secrets (:func:`active`), every log record
the process writes is redacted by :class:`RedactSecrets`, the filter the
console handler carries (``LOGGING`` in the settings).
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "***"

_active: contextvars.ContextVar[tuple[Redactor, ...]] = contextvars.ContextVar("active_secret_redactors", default=())


class Redactor:
    """Replaces the given secret values (and their encoded forms) in strings and JSON-shaped structures."""

    def __init__(self, values: Iterable[str]):
        forms: set[str] = set()
        for value in values:
            if value:
                forms |= {value, quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
        # Longest first, so a form containing another is replaced whole.
        self.forms = sorted(forms, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.forms)

    def text(self, text: str) -> str:
        for form in self.forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def value(self, value: Any) -> Any:
        """``value`` with every string (dict keys included) redacted; other values as they are."""
        if not self.forms:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(key): self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.value(item) for item in value)
        return value

    def contains(self, text: str) -> bool:
        return any(form in text for form in self.forms)


@contextmanager
def active(redactor: Redactor) -> Iterator[Redactor]:
    """Redact the redactor's values from every log record written inside the block (in this context)."""
    token = _active.set((*_active.get(), redactor))
    try:
        yield redactor
    finally:
        _active.reset(token)


def redact_text(text: str) -> str:
    """``text`` with the values of every active redactor replaced."""
    for redactor in _active.get():
        text = redactor.text(text)
    return text


class RedactSecrets(logging.Filter):
    """A handler filter: a record written while secrets are in use has them replaced by ``***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _active.get():
            return True
        record.msg, record.args = redact_text(record.getMessage()), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
