"""What every kind of trigger shares: a normalised event, the kind's class, the registry, and field checks.

A kind (``git``, ``webhook``, ``jenkins``, ``docker``, ``cron``, ``pipeline``)
is one module with one :class:`TriggerKind` subclass, registered by its
Spinnaker ``type``. It says how a saved trigger is indexed (:meth:`key`: the
value an event of that kind is looked up by, so matching reads only the rows of
that key), how it is checked when the pipeline is saved, how the editor says it
in words, and whether a trigger of the key matches an event in its other fields
(branch and tag regexes, payload constraints...). The sources that turn a
request or an event into an :class:`Event` live beside it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from apps.pipelines.definition.trigger_types import TriggerType, register_trigger_type
from apps.pipelines.problems import Problem, pointer_join
from apps.pipelines.stages.base import StageField


@dataclass
class Event:
    """An inbound event as the matcher sees it: its kind, its lookup key and what it tells a trigger.

    ``fields`` go into the execution's ``trigger`` (``${trigger.branch}``...),
    ``parameters`` become the execution's parameters, ``artifacts`` its
    ``trigger.artifacts`` (Spinnaker artifacts: type, name, reference, version).
    """

    type: str
    key: str
    fields: dict[str, Any] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    # Other keys triggers of this event may be indexed under (a docker trigger naming only its registry).
    aliases: list[str] = field(default_factory=list)


class TriggerKind:
    """One kind of trigger; subclasses set ``type`` and override what differs."""

    type: ClassVar[str] = ""
    secret_fields: ClassVar[tuple[str, ...]] = ()
    # The kind's fields for the editor's trigger form (Spinnaker's names), as a stage type declares its own.
    fields: ClassVar[tuple[StageField, ...]] = ()

    def is_placeholder(self, trigger: dict) -> bool:
        """None of the kind's fields filled in: what Deck saves when "Add trigger" is clicked and left there.

        As in Spinnaker, such a trigger loads (an exported document keeps it) and never fires: it is not checked
        and not indexed, and the editor says what it lacks."""
        return bool(self.fields) and all(trigger.get(field.name) in (None, "") for field in self.fields)

    def lookup_key(self, trigger: dict) -> str | None:
        """The key the trigger is indexed under, None for a placeholder or a trigger that cannot fire."""
        return None if self.is_placeholder(trigger) else self.key(trigger)

    def checked(self, trigger: dict, pointer: str) -> list[Problem]:
        return [] if self.is_placeholder(trigger) else self.check(trigger, pointer)

    def described(self, trigger: dict) -> str:
        if self.is_placeholder(trigger):
            needed = ", ".join(field.name for field in self.fields if field.required) or "its fields"
            return f"Never runs: a {self.type} trigger with nothing filled in yet (it needs {needed})"
        return self.describe(trigger)

    def key(self, trigger: dict) -> str | None:
        """The lookup key of a saved trigger (None: it cannot fire, e.g. a required field is missing)."""
        return ""

    def check(self, trigger: dict, pointer: str) -> list[Problem]:
        """Problems with one trigger of this kind, at its JSON pointer."""
        return []

    def describe(self, trigger: dict) -> str:
        """The trigger in plain words, for the editor."""
        return f"Runs on a {self.type} trigger"

    def mismatch(self, trigger: dict, event: Event) -> str | None:
        """Why a trigger of the event's key does not match it (None: it matches)."""
        return None

    def check_saver(self, user, trigger: dict, pointer: str) -> None:
        """Refuse (PermissionRefused) a person saving a trigger naming what they may not use; nothing by default."""


KINDS: dict[str, TriggerKind] = {}


def register_kind(kind: TriggerKind) -> TriggerKind:
    """Register a kind here and with pipeline validation and the editor."""
    KINDS[kind.type] = kind
    register_trigger_type(TriggerType(kind.type, kind.checked, kind.described, kind.secret_fields,
                                      kind.check_saver, kind.fields))
    return kind


def get_kind(name: Any) -> TriggerKind | None:
    return KINDS.get(name) if isinstance(name, str) else None


# --- Checks the kinds share -------------------------------------------------------------------------


def text_field(trigger: dict, name: str, pointer: str, *, required: bool = False) -> list[Problem]:
    """A string field (required: present and not blank)."""
    value = trigger.get(name)
    where = pointer_join(pointer, name)
    if value is None:
        return [Problem(where, "is required")] if required else []
    if not isinstance(value, str):
        return [Problem(where, "must be a string")]
    if required and not value.strip():
        return [Problem(where, "must not be empty")]
    return []


def secret_problem(trigger: dict, pointer: str) -> list[Problem]:
    """A ``secret`` is a reference to an application secret, ``${#secret('name')}``, or plain text as Spinnaker
    exports it, which saving moves into the application's secrets (every reader reads the document)."""
    from apps.pipelines.secrets.references import mentions_secret
    from apps.pipelines.secrets.services import MAX_VALUE_LENGTH, MIN_VALUE_LENGTH

    value = trigger.get("secret")
    if value in (None, ""):
        return []
    where = pointer_join(pointer, "secret")
    if not isinstance(value, str):
        return [Problem(where, "must be a string")]
    if not mentions_secret(value) and not MIN_VALUE_LENGTH <= len(value) <= MAX_VALUE_LENGTH:
        return [Problem(where, f"must be {MIN_VALUE_LENGTH} to {MAX_VALUE_LENGTH} characters long, or a reference "
                               "to an application secret, ${#secret('name')}")]
    return []


def words(value: Any, default: str = "any") -> str:
    if isinstance(value, list):
        return ", ".join(str(item) for item in value) or default
    return str(value) if value not in (None, "") else default
