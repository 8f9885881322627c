"""Trigger types: what an app that fires triggers tells pipeline validation and the editor about each kind.

A pipeline's ``triggers`` are Spinnaker's (``type``, ``enabled`` and each
type's fields). The app that fires them (``apps/triggers``) registers each
type it knows from its ``AppConfig.ready()``: how to check one trigger of that
type (problems at JSON pointers, as the rest of validation reports them),
which of its fields may hold a ``${#secret('name')}`` reference, and how the
editor says it in words. Validation and the editor ask this registry, so this
app never imports the one that fires them; an unregistered type is kept as it
is, as Spinnaker's unknown keys are.

The editor also shows, per trigger, when it last fired and why the last event
was refused: :func:`register_trigger_status` names the function that reads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apps.pipelines.problems import Problem
from apps.pipelines.stages.base import StageField


@dataclass(frozen=True)
class TriggerType:
    """One kind of trigger: ``check(trigger, pointer)`` returns its problems, ``describe(trigger)`` its words."""

    name: str
    check: Callable[[dict, str], list[Problem]]
    describe: Callable[[dict], str]
    secret_fields: tuple[str, ...] = ()
    # check_saver(user, trigger, pointer): raise PermissionRefused when the person saving may not use what the
    # trigger names (a registry account they may not read); operators are not checked.
    check_saver: Callable[[Any, dict, str], None] | None = None
    # The type's own fields (beside ``type``, ``enabled`` and ``runAsUser``), declared as a stage type's are,
    # for the editor's trigger forms.
    fields: tuple[StageField, ...] = ()


TRIGGER_TYPES: dict[str, TriggerType] = {}
# Checks of what triggers read from the whole document (``expectedArtifacts``), registered with the types.
DOCUMENT_CHECKS: list[Callable[[dict], list[Problem]]] = []
# pipeline -> {position in its triggers list: when that trigger last fired, its last refusal}.
_status_reader: list[Callable[[Any], dict[int, str]]] = []


def register_trigger_type(trigger_type: TriggerType) -> TriggerType:
    """Register (or register again, harmlessly) a trigger type by its Spinnaker ``type`` name."""
    TRIGGER_TYPES[trigger_type.name] = trigger_type
    return trigger_type


def register_document_check(check: Callable[[dict], list[Problem]]) -> None:
    """Add a check of the whole document (once; registering it again is harmless)."""
    if check not in DOCUMENT_CHECKS:
        DOCUMENT_CHECKS.append(check)


def document_problems(document: dict) -> list[Problem]:
    """What the registered document checks find."""
    return [problem for check in DOCUMENT_CHECKS for problem in check(document)]


def get_trigger_type(name: Any) -> TriggerType | None:
    """The registered type of that name, or None."""
    return TRIGGER_TYPES.get(name) if isinstance(name, str) else None


def trigger_secret_fields(name: Any) -> tuple[str, ...]:
    """The fields of a trigger of type ``name`` that may hold a secret reference (none for an unknown type)."""
    kind = get_trigger_type(name)
    return kind.secret_fields if kind is not None else ()


def trigger_type_fields() -> dict[str, list[dict]]:
    """Each registered type's fields as the editor's forms read them, by type name."""
    return {name: [field.describe() for field in kind.fields] for name, kind in sorted(TRIGGER_TYPES.items())}


def register_trigger_status(reader: Callable[[Any], dict[int, str]]) -> None:
    """Name the function that says, per trigger of a pipeline, when it last fired and the last refusal."""
    _status_reader[:] = [reader]


def trigger_status(pipeline) -> dict[int, str]:
    """A line per trigger of the saved pipeline, by position (empty when no app reads it)."""
    return _status_reader[0](pipeline) if _status_reader else {}
