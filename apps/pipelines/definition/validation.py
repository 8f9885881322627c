"""Validating a whole pipeline document: every problem at once, each at its JSON pointer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apps.pipelines.definition.checks import (
    EXPECTED,
    describe,
    expression_problems,
    list_of_objects,
    optional_types,
    required_text,
    unstorable_text,
)
from apps.pipelines.definition.parameters import parameter_config_problems
from apps.pipelines.definition.stage_checks import stages_problems
from apps.pipelines.definition.trigger_types import document_problems, get_trigger_type, trigger_secret_fields
from apps.pipelines.problems import InvalidDocument, Problem, pointer_join
from apps.pipelines.secrets.references import reference_problems
from apps.pipelines.stages import get_stage_type

# The database column the name ends up in (Pipeline.name).
MAX_PIPELINE_NAME_LENGTH = 200

PIPELINE_FLAGS = ("limitConcurrent", "keepWaitingPipelines", "disabled")

# Checks other apps add for the parts of a document they act on (notifications: its subscriptions),
# registered from their ``ready()``; each returns its problems with their pointers.
DOCUMENT_CHECKS: list[Callable[[dict], list[Problem]]] = []


def register_document_check(check: Callable[[dict], list[Problem]]) -> None:
    """Add a check every pipeline document goes through (registering the same one twice is harmless)."""
    if check not in DOCUMENT_CHECKS:
        DOCUMENT_CHECKS.append(check)


def validate_pipeline(doc: dict) -> list[Problem]:
    """Return every problem with a pipeline document (an empty list when it is valid).

    Each problem carries the JSON pointer of the offending value. Keys not
    checked here are accepted as they are. A key whose value is null counts as
    absent, as it does for Spinnaker.
    """
    if not isinstance(doc, dict):
        return [Problem("", f"must be an object (a pipeline), not {describe(doc)}")]
    problems = _application_problems(doc.get("application"))
    problems += required_text(doc, "name", "", MAX_PIPELINE_NAME_LENGTH)
    problems += optional_types(
        doc, "", dict.fromkeys(PIPELINE_FLAGS, bool) | {"description": str, "spelEvaluator": str}
    )
    problems += stages_problems(doc.get("stages"))
    problems += _triggers_problems(doc.get("triggers"))
    problems += document_problems(doc)
    problems += _notifications_problems(doc.get("notifications"))
    problems += parameter_config_problems(doc.get("parameterConfig"))
    problems += _unstorable_text_problems(doc)
    problems += reference_problems(doc, _secret_fields, trigger_secret_fields)
    for check in DOCUMENT_CHECKS:
        problems += check(doc)
    return problems


def _secret_fields(type_name: str) -> tuple[str, ...]:
    kind = get_stage_type(type_name)
    return kind.secret_fields if kind is not None else ()


def check_pipeline(doc: dict) -> dict:
    """Return the document unchanged if it is valid; otherwise raise InvalidDocument with every problem."""
    problems = validate_pipeline(doc)
    if problems:
        raise InvalidDocument(problems)
    return doc


def _application_problems(application: Any) -> list[Problem]:
    # Imported here: the models module needs Django's app registry; nothing else in these checks does.
    from django.core.exceptions import ValidationError

    from apps.pipelines.models import application_name_validator

    if application in (None, ""):
        return [Problem("/application", "is required")]
    if not isinstance(application, str):
        return [Problem("/application", EXPECTED[str])]
    try:
        application_name_validator(application)
    except ValidationError as error:
        return [Problem("/application", message) for message in error.messages]
    return []


def _unstorable_text_problems(doc: dict) -> list[Problem]:
    """A problem for each string or key anywhere in the document that cannot be stored (without recursion)."""
    problems = []
    pending: list[tuple[Any, str]] = [(doc, "")]
    while pending:
        node, pointer = pending.pop()
        if isinstance(node, str):
            reason = unstorable_text(node)
            if reason:
                problems.append(Problem(pointer, reason))
        elif isinstance(node, dict):
            for key in node:
                reason = unstorable_text(key) if isinstance(key, str) else None
                if reason:
                    problems.append(Problem(pointer_join(pointer, key), f"is a key that {reason}"))
            pending.extend((value, pointer_join(pointer, key)) for key, value in reversed(node.items()))
        elif isinstance(node, list):
            pending.extend((item, pointer_join(pointer, index)) for index, item in reversed(list(enumerate(node))))
    return problems


def _triggers_problems(triggers: Any) -> list[Problem]:
    problems, items = list_of_objects(triggers, "/triggers")
    for index, trigger in items:
        pointer = pointer_join("/triggers", index)
        kind = trigger.get("type")
        if kind in (None, ""):
            problems.append(Problem(pointer_join(pointer, "type"), "is required"))
        elif not isinstance(kind, str):
            problems.append(Problem(pointer_join(pointer, "type"), EXPECTED[str]))
        problems += optional_types(trigger, pointer, {"enabled": bool, "runAsUser": str})
        problems += expression_problems(trigger, pointer)
        trigger_type = get_trigger_type(kind)
        if trigger_type is not None:
            problems += trigger_type.check(trigger, pointer)
    return problems


def _notifications_problems(notifications: Any) -> list[Problem]:
    problems, items = list_of_objects(notifications, "/notifications")
    for index, notification in items:
        problems += expression_problems(notification, pointer_join("/notifications", index))
    return problems
