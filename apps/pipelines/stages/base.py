"""The stage-type contract and the registry of stage types by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

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


class StageType:
    """Base class of a stage type. Subclasses set ``type_name`` and implement :meth:`run`.

    ``run`` receives the stage with its context already evaluated and must not
    block waiting for the outside world: it returns ``TaskResult.running`` and
    is called again later. Both ``run`` and ``cancel`` receive a
    :class:`~apps.pipelines.stages.runtime.StageRuntime`: what the stage may
    do beyond its own stage (start or read another execution).
    """

    type_name: ClassVar[str]
    label: ClassVar[str] = ""
    # Keys that must be present (and not null) in the stage definition.
    required_fields: ClassVar[tuple[str, ...]] = ()
    # Keys whose expressions the engine leaves alone when the stage starts,
    # because the stage evaluates them itself (in order, or later).
    lazy_fields: ClassVar[tuple[str, ...]] = ()
    # True when a person may skip the stage while it runs (a wait).
    skippable: ClassVar[bool] = False
    # True when run() calls the outside world (HTTP, a cluster): the engine
    # then runs it with no transaction open and the stage row unlocked.
    performs_io: ClassVar[bool] = False

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        """Return problems with a stage definition beyond missing required fields."""
        return []

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


_REGISTRY: dict[str, StageType] = {}


def register(cls: type[StageType]) -> type[StageType]:
    """Class decorator: make a stage type available under its ``type_name``."""
    existing = _REGISTRY.get(cls.type_name)
    if existing is not None and type(existing) is not cls:
        raise ValueError(f"stage type {cls.type_name!r} is already registered by {type(existing).__name__}")
    _REGISTRY[cls.type_name] = cls()
    return cls


def get_stage_type(type_name: str) -> StageType | None:
    """Return the registered stage type for a Spinnaker ``type`` name, or None."""
    return _REGISTRY.get(type_name)


def all_stage_types() -> dict[str, StageType]:
    return dict(_REGISTRY)
