"""The stage runtime the workers use: what a stage type may do outside its own stage, done through the services.

Dependency direction: ``jobs.py`` → this module → ``services.py`` →
``engine``. The engine never imports this module (services imports the
engine, so that would be a cycle); ``jobs.py`` builds the runtime and hands
it to the engine, which passes it to each stage type's ``run`` and ``cancel``.
"""

from __future__ import annotations

import uuid

from apps.accounts.permissions import PermissionRefused
from apps.pipelines.checks import child_start_refusal, execution_actor
from apps.pipelines.models import Execution, Pipeline, StageExecution
from apps.pipelines.problems import ActionRefused
from apps.pipelines.services import do_cancel_execution, do_start_execution
from apps.pipelines.stages.runtime import ExecutionSummary, StageRuntime


class ServiceRuntime(StageRuntime):
    """A :class:`StageRuntime` backed by the models and the service functions."""

    def find_pipeline(self, application: str, reference: str) -> Pipeline | None:
        """A pipeline by id (Spinnaker stores the child's id: a UUID, or an export's opaque id) or by name."""
        queryset = Pipeline.objects.select_related("application").filter(application__name__iexact=application)
        try:
            found = queryset.filter(id=uuid.UUID(reference)).first()
        except ValueError:  # not a UUID: an exported pipeline's opaque id, or a name
            found = None
        return found or queryset.filter(definition__id=reference).first() or queryset.filter(name=reference).first()

    def run_as_refusal(self, execution: Execution, pipeline: Pipeline) -> str | None:
        """Why ``execution``'s identity may not start a pipeline of ``pipeline``'s application now (None: it may).

        An execution acts as whoever last started, restarted or resumed it;
        the decision is ``checks.child_start_refusal``'s.
        """
        return child_start_refusal(execution, pipeline)

    def start_child_execution(
        self, pipeline: Pipeline, *, parameters: dict, trigger: dict, parent_stage: StageExecution
    ) -> Execution:
        """Start the child through the same service as any other start, as the parent's identity, checked again."""
        try:
            actor = execution_actor(parent_stage.execution)
            return do_start_execution(
                pipeline, parameters=parameters, trigger=trigger, user=actor, parent_stage=parent_stage
            )
        except PermissionRefused as refused:
            raise ActionRefused(refused.message) from None

    def get_execution(self, execution_id: str) -> ExecutionSummary | None:
        """The execution's status and name, read without its definition."""
        row = Execution.objects.filter(id=execution_id).only("status", "name").first()
        return None if row is None else ExecutionSummary(str(row.id), row.status, row.name)

    def stage_outputs(self, execution_id: str) -> list[dict]:
        """Each stage's outputs, in pipeline order."""
        stages = StageExecution.objects.filter(execution_id=execution_id).order_by("position").only("outputs")
        return [stage.outputs for stage in stages]

    def cancel_execution(self, execution_id: str, *, user: str, reason: str) -> None:
        """Cancel through the same service as a person's cancel (audited, with its cancel hooks)."""
        do_cancel_execution(execution_id, user=user, reason=reason)
