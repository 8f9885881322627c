"""The stage-type contract and the registry of stage types by name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from apps.pipelines.choices import Status
from apps.pipelines.problems import Problem, pointer_join

if TYPE_CHECKING:
    from apps.pipelines.models import StageExecution
    from apps.pipelines.scope import ExpressionScope
    from apps.pipelines.stages.runtime import StageRuntime


@dataclass
class TaskResult:
    """What one run of a stage's task decided.

    ``status`` RUNNING means "not done yet": the engine runs the task again
    after ``retry_after`` seconds, or, when ``retry_after`` is None, only when
    someone acts on the stage (a judgment, a skip) or its timeout comes.
    Any other status completes the stage. ``context`` is merged into the
    stage's context (task state that must survive between polls); ``outputs``
    into its outputs (what later stages read through expressions).
    """

    status: Status
    context: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    retry_after: float | None = None
    error: str | None = None

    @classmethod
    def succeeded(cls, outputs: dict | None = None, context: dict | None = None) -> TaskResult:
        return cls(Status.SUCCEEDED, context=context or {}, outputs=outputs or {})

    @classmethod
    def running(cls, retry_after: float | None, context: dict | None = None) -> TaskResult:
        return cls(Status.RUNNING, context=context or {}, retry_after=retry_after)

    @classmethod
    def failed(cls, error: str, status: Status = Status.TERMINAL, context: dict | None = None) -> TaskResult:
        return cls(status, context=context or {}, error=error)


# The kinds of value a stage field holds, for the stage editor's forms and the API's stage-type list.
FIELD_KINDS = ("string", "text", "integer", "number", "boolean", "choice", "list", "object", "duration")
SCALAR_ITEM_KINDS = ("string", "integer", "number")


@dataclass(frozen=True)
class StageField:
    """One field of a stage type's definition, declared by the type for the editor and the docs.

    ``name`` is the key in the stage definition (``waitTime``); ``kind`` one of
    FIELD_KINDS; ``choices`` the allowed values of a ``choice``; ``default`` the
    value the stage type uses when the key is absent. A field may hold an
    expression (``${...}``) wherever its kind allows text.
    """

    name: str
    kind: str = "string"
    label: str = ""
    help: str = ""
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    # A ``list`` of objects declares the fields of each item (``judgmentInputs``: ``value``); a list of
    # plain values says what kind each one is (``item_kind``: string, integer or number).
    items: tuple[StageField, ...] = ()
    item_kind: str = "string"

    def __post_init__(self) -> None:
        if self.kind not in FIELD_KINDS:
            raise ValueError(f"stage field {self.name!r}: kind {self.kind!r} is not one of {', '.join(FIELD_KINDS)}")
        if self.item_kind not in SCALAR_ITEM_KINDS:
            raise ValueError(f"stage field {self.name!r}: item_kind must be one of {', '.join(SCALAR_ITEM_KINDS)}")
        if self.kind == "choice" and not self.choices:
            raise ValueError(f"stage field {self.name!r}: a choice needs its choices")

    def describe(self) -> dict[str, Any]:
        """The field as the API's stage-type list and the editor read it (JSON names, camelCase)."""
        described: dict[str, Any] = {
            "name": self.name, "kind": self.kind, "label": self.label or self.name, "help": self.help,
            "required": self.required, "default": self.default, "choices": list(self.choices),
        }
        if self.kind == "list":
            described["items"] = [item.describe() for item in self.items]
            described["itemKind"] = self.item_kind
        return described


class Task:
    """One task of a stage type that runs several in order (Orca's ``taskGraph``).

    ``run`` has the contract of :meth:`StageType.run`: it returns a
    :class:`TaskResult`, RUNNING to be called again later. When it succeeds
    the stage's next task runs; when it fails the stage fails.
    """

    name: ClassVar[str] = ""
    # As StageType.performs_io and StageType.evaluates_expressions, for this task alone.
    performs_io: ClassVar[bool] = False
    evaluates_expressions: ClassVar[bool] = False

    def run(self, stage: StageExecution, scope: ExpressionScope, runtime: StageRuntime) -> TaskResult:
        """One step of the task."""
        raise NotImplementedError

    def runs_unlocked(self, stage: StageExecution) -> bool:
        """Whether this step of ``stage`` runs with no lock held (see StageType.runs_unlocked)."""
        return self.performs_io or self.evaluates_expressions

    @property
    def implementing_class(self) -> str:
        """The task's class by dotted path, as Orca names it in a stage's ``tasks``."""
        return f"{type(self).__module__}.{type(self).__qualname__}"


class StageType:
    """Base class of a stage type. Subclasses set ``type_name`` and implement :meth:`run`.

    A composite stage type instead (or as well) overrides :meth:`task_graph`
    (its tasks, run in order) and :meth:`before_stages` / :meth:`after_stages`
    (synthetic stages, planned when the stage starts).

    ``run`` receives the stage with its context already evaluated and must not
    block waiting for the outside world: it returns ``TaskResult.running`` and
    is called again later. Both ``run`` and ``cancel`` receive a
    :class:`~apps.pipelines.stages.runtime.StageRuntime`: what the stage may
    do beyond its own stage (start or read another execution).
    """

    type_name: ClassVar[str]
    label: ClassVar[str] = ""
    # One sentence on what the stage does, for the editor's "add stage" menu and the API.
    description: ClassVar[str] = ""
    # The fields of the stage's definition, in the order the editor shows them.
    fields: ClassVar[tuple[StageField, ...]] = ()
    # Keys that must be present (and not null) in the stage definition; by
    # default the names of the ``fields`` declared required.
    required_fields: ClassVar[tuple[str, ...]] = ()
    # Keys whose expressions the engine leaves alone when the stage starts,
    # because the stage evaluates them itself (in order, or later).
    lazy_fields: ClassVar[tuple[str, ...]] = ()
    # Keys where the stage may use ``${#secret('name')}``: the stage resolves
    # them itself, in the worker, just before it uses them (apps/pipelines/secrets/).
    secret_fields: ClassVar[tuple[str, ...]] = ()
    # True when a person may skip the stage while it runs (a wait).
    skippable: ClassVar[bool] = False
    # True for a stage type only the engine plans (a synthetic stage): the editor does not offer it.
    internal: ClassVar[bool] = False
    # True when run() calls the outside world (HTTP, a cluster): the engine
    # then runs it with no transaction open and the stage row unlocked.
    performs_io: ClassVar[bool] = False
    # True when run() evaluates expressions itself (its lazy_fields): like a
    # call out, that may take up to the expression budget, so the engine runs
    # it the same way, with no lock held that a cancel or the sweeper waits for.
    evaluates_expressions: ClassVar[bool] = False
    # A template the execution page's stage panel includes for a stage of this type (a report, charts),
    # with what :meth:`panel_context` gives; none by default.
    panel_template: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "required_fields" not in cls.__dict__ and "fields" in cls.__dict__:
            cls.required_fields = tuple(field.name for field in cls.fields if field.required)

    def runs_unlocked(self, stage: StageExecution) -> bool:
        """Whether this step of ``stage`` runs with no lock held: it calls out, or evaluates expressions.

        A type whose expressions are all in known fields may answer for the
        stage at hand, so a stage with nothing to evaluate keeps the cheaper
        locked path (one transaction for the step).
        """
        return self.performs_io or self.evaluates_expressions

    def describe(self) -> dict[str, Any]:
        """The stage type as the API's stage-type list and the editor's forms read it."""
        return {"type": self.type_name, "label": self.label or self.type_name, "description": self.description,
                "skippable": self.skippable, "fields": [field.describe() for field in self.fields]}

    def panel_context(self, stage: StageExecution) -> dict[str, Any]:
        """What ``panel_template`` draws for ``stage`` (a bounded number of queries); nothing by default."""
        return {}

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        """Return problems with a stage definition beyond missing required fields."""
        return []

    def unavailable(self, stage: dict) -> str | None:
        """Why this stage, as written, cannot run on this platform, or None when it can.

        A stage for a cloud provider this platform has not built (``cloudProvider: gce``) is one: its
        document loads as Spinnaker's does (the type's own field checks, written for the providers it
        serves, are not applied), and the stage fails when it starts, with this message.
        """
        return None

    def unevaluated_fields(self, stage: dict) -> tuple[str, ...]:
        """Keys of ``stage`` this type never evaluates as expressions (a ``${`` in them is text, so it is not checked
        as an expression); none by default. Spinnaker's ``skipExpressionEvaluation`` is one way a stage says so."""
        return ()

    def missing_fields(self, stage: dict, pointer: str) -> list[Problem]:
        return [
            Problem(pointer_join(pointer, name), f"is required for a {self.type_name} stage")
            for name in self.required_fields
            if stage.get(name) in (None, "")
        ]

    def run(self, stage: StageExecution, scope: ExpressionScope, runtime: StageRuntime) -> TaskResult:
        """One step of the stage's task."""
        raise NotImplementedError

    def cancel(self, stage: StageExecution, runtime: StageRuntime) -> None:
        """Undo or stop outside work when the stage is canceled; nothing by default. Runs in a job of its own."""

    def task_graph(self, stage: StageExecution) -> Sequence[Task]:
        """The stage's tasks, in order; empty (the default) when :meth:`run` is its one task.

        Read when the stage starts (its context evaluated) and at each step,
        so it must give the same tasks for the same stage while it runs.
        """
        return ()

    def before_stages(self, stage: StageExecution) -> list[dict]:
        """Synthetic stages to run before the stage's own tasks, planned when it starts from its evaluated context.

        Each is a stage definition as in a pipeline document (``type``,
        ``name``, options); ``refId`` and ``requisiteStageRefIds`` are
        optional and local to the list: when no definition names
        requisites, the list runs as a chain in its order.
        """
        return []

    def after_stages(self, stage: StageExecution) -> list[dict]:
        """Synthetic stages to run once the stage's own tasks have succeeded (see :meth:`before_stages`)."""
        return []


_REGISTRY: dict[str, StageType] = {}


def register(cls: type[StageType]) -> type[StageType]:
    """Class decorator: make a stage type available under its ``type_name``."""
    existing = _REGISTRY.get(cls.type_name)
    if existing is not None and type(existing) is not cls:
        raise ValueError(f"stage type {cls.type_name!r} is already registered by {type(existing).__name__}")
    _REGISTRY[cls.type_name] = cls()
    return cls


def unregister(type_name: str) -> None:
    """Remove a stage type from the registry (test-only stage types, once their tests are done)."""
    _REGISTRY.pop(type_name, None)


def get_stage_type(type_name: str) -> StageType | None:
    """Return the registered stage type for a Spinnaker ``type`` name, or None."""
    return _REGISTRY.get(type_name)


def all_stage_types() -> dict[str, StageType]:
    return dict(_REGISTRY)


def offered_stage_types() -> list[StageType]:
    """The stage types a person may write in a pipeline (not the engine's internal ones), by label."""
    return sorted((kind for kind in _REGISTRY.values() if not kind.internal), key=lambda kind: kind.describe()["label"])
