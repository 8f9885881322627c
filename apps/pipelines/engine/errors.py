"""What the engine does with an exception: which ones a retry can cure, and how a crash is shown.

A step is made of phases — ``start`` (evaluating a stage's context as it
starts), ``timeout``, ``window`` (its execution window), ``run`` (its
type's task), ``record`` (saving the result), ``advance`` (starting what
follows) — each wrapped in a :class:`Phase`, so an exception escaping one
becomes a :class:`StepCrash` naming it. The crash is then recorded as the
stage's failure (:mod:`.recovery`), in Spinnaker's error shape::

    "exception": {"exceptionType": "ValueError", "shouldRetry": false, "timestamp": 1700000000000,
                  "details": {"error": "ValueError: boom", "errors": ["ValueError: boom"], "phase": "run"}}

Transient errors — the database or Redis unreachable, a deadlock, a
serialization failure — are not the step's fault: they pass through
unchanged, the job fails, and the sweeper runs the step again after a lease
(counting it: see :mod:`.sweeper`).
"""

from __future__ import annotations

import time
from typing import Literal

import redis
from django.db import InterfaceError, OperationalError

TRANSIENT = (OperationalError, InterfaceError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def is_transient(error: BaseException) -> bool:
    """Whether running the step again later may succeed (an outage, a deadlock), so it must not fail the stage."""
    return isinstance(error, TRANSIENT)


def error_context(message: str) -> dict:
    """Spinnaker's shape for a stage error, which its UI and scripts read."""
    return {"exception": {"details": {"error": message, "errors": [message]}}}


def describe(error: BaseException) -> str:
    """The message shown for an exception: its own when the engine wrote it to be read, else type and text."""
    if getattr(error, "engine_message", False):
        return str(error)
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def crash_context(phase: str, error: BaseException, message: str | None = None) -> dict:
    """Spinnaker's error shape for a crash, with the phase it happened in and the exception's type."""
    message = message or describe(error)
    return {
        "exception": {
            "exceptionType": type(error).__name__,
            "shouldRetry": False,
            "timestamp": int(time.time() * 1000),
            "details": {"error": message, "errors": [message], "phase": phase},
        }
    }


class StepCrash(Exception):
    """An exception escaped a phase of a step; ``token`` is the run token the step held (set when claimed)."""

    def __init__(self, phase: str, error: BaseException, token: int | None = None):
        super().__init__(f"{phase}: {describe(error)}")
        self.phase, self.error, self.token = phase, error, token

    @classmethod
    def of(cls, error: Exception, phase: str, token: int | None = None) -> StepCrash:
        """``error`` as a crash (a crash already keeps its phase); the held token is filled in when missing."""
        crash = error if isinstance(error, StepCrash) else cls(phase, error)
        if crash.token is None:
            crash.token = token
        return crash


class Phase:
    """A context manager for one phase of a step: an exception escaping it becomes a :class:`StepCrash`.

    Stateless, so one instance per phase serves every step; entering it costs
    a method call, nothing is allocated unless something raises.
    """

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> Literal[False]:
        if error is None or isinstance(error, StepCrash) or not isinstance(error, Exception) or is_transient(error):
            return False
        raise StepCrash(self.name, error) from error


START, TIMEOUT, WINDOW, RUN, RECORD, ADVANCE = (
    Phase(name) for name in ("start", "timeout", "window", "run", "record", "advance")
)
