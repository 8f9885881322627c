"""Shaping executions by hand for tests that need a state but no worker (API and page tests)."""

from django.utils import timezone

from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.services import do_start_execution


def start(pipeline, **parameters) -> Execution:
    """An execution left NOT_STARTED (no worker runs it), started by alice; `deliver` needs an env."""
    if pipeline.name == "deliver":
        parameters = {"env": "staging", **parameters}
    return do_start_execution(pipeline, parameters=parameters, user="alice")


def set_status(execution: Execution, status: str, **stages: str) -> None:
    """Shape a scenario by hand: the execution's status and, by refId, its stages' statuses."""
    now = timezone.now()
    Execution.objects.filter(id=execution.id).update(status=status, start_time=now)
    for ref_id, stage_status in stages.items():
        StageExecution.objects.filter(execution=execution, ref_id=ref_id).update(status=stage_status, start_time=now)
