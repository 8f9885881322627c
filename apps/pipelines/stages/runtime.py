"""What a stage type may do outside its own stage, handed to ``run`` and ``cancel`` by the engine.

A stage type acts on its own stage through the stage it receives and its
``TaskResult``. Anything beyond that — starting a child execution, reading
or canceling another execution — goes through a :class:`StageRuntime`, so
stage types import neither the services nor the models of other
executions, and a test can hand a stage type a runtime of its own.

The implementation used by the workers is
:class:`apps.pipelines.stage_runtime.ServiceRuntime`; ``jobs.py`` builds it
and passes it to the engine, which passes it on to the stage type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apps.pipelines.choices import Status
    from apps.pipelines.models import Execution, Pipeline, StageExecution


@dataclass(frozen=True)
class ExecutionSummary:
    """What a stage type may read of another execution."""

    id: str
    status: Status
    name: str


class StageRuntime:
    """The calls a stage type may make beyond its own stage. Every method must be overridden.

    Refusals are raised as :class:`~apps.pipelines.problems.ActionRefused`
    (the state does not allow it) or
    :class:`~apps.pipelines.problems.InvalidDocument` (the input is wrong).
    """

    def find_pipeline(self, application: str, reference: str) -> Pipeline | None:
        """A pipeline of ``application`` by id or, failing that, by name; None when there is none."""
        raise NotImplementedError

    def run_as_refusal(self, execution: Execution, pipeline: Pipeline) -> str | None:
        """Why ``execution``, acting as whoever last started, restarted or resumed it, may not start ``pipeline``."""
        raise NotImplementedError

    def start_child_execution(
        self, pipeline: Pipeline, *, parameters: dict, trigger: dict, parent_stage: StageExecution
    ) -> Execution:
        """Start an execution of ``pipeline``, acting as ``parent_stage``'s execution does, whose end wakes it."""
        raise NotImplementedError

    def get_execution(self, execution_id: str) -> ExecutionSummary | None:
        """Another execution's status and name; None when it no longer exists."""
        raise NotImplementedError

    def stage_outputs(self, execution_id: str) -> list[dict]:
        """The outputs of another execution's stages, in pipeline order."""
        raise NotImplementedError

    def cancel_execution(self, execution_id: str, *, user: str, reason: str) -> None:
        """Cancel another execution; raises ActionRefused when it has already ended."""
        raise NotImplementedError
