"""The ``wait`` stage: waits ``waitTime`` seconds (none given: 0, as in Orca) without holding a worker.

A person may skip it.
"""

from django.utils import timezone

from apps.pipelines.problems import Problem
from apps.pipelines.stages.base import StageField, StageType, TaskResult, register


def _is_expression(value) -> bool:
    return isinstance(value, str) and "${" in value


@register
class WaitStage(StageType):
    type_name = "wait"
    label = "Wait"
    description = "Waits a number of seconds; a person may skip the rest of the wait."
    # Orca waits 0 s when waitTime is missing.
    fields = (
        StageField("waitTime", "integer", label="Wait time (seconds)", default=0,
                   help="Whole seconds, or an expression such as ${parameters.delay}; none waits 0 s."),
    )
    skippable = True

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        wait_time = stage.get("waitTime")
        if wait_time is None or _is_expression(wait_time):
            return []
        if _as_seconds(wait_time) is None:
            return [Problem(f"{pointer}/waitTime", "must be a whole number of seconds, 0 or more")]
        return []

    def run(self, stage, scope, runtime) -> TaskResult:
        if stage.context.get("skipRemainingWait"):
            return TaskResult.succeeded(context={"waitSkipped": True})
        wait_time = stage.context.get("waitTime")
        seconds = 0 if wait_time is None else _as_seconds(wait_time)
        if seconds is None:
            return TaskResult.failed(f"waitTime {stage.context.get('waitTime')!r} is not a whole number of seconds")
        # Time the execution spent paused does not count towards the wait.
        waited = (timezone.now() - stage.start_time).total_seconds()
        remaining = seconds - waited + stage.execution.paused_seconds_since(stage.start_time)
        if remaining <= 0:
            return TaskResult.succeeded()
        return TaskResult.running(retry_after=remaining)


def _as_seconds(value) -> int | None:
    """Read waitTime as Spinnaker does: an integer number of seconds, possibly written as a string."""
    if isinstance(value, bool):
        return None
    try:
        number = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    if not number.is_integer():
        return None
    seconds = int(number)
    return seconds if seconds >= 0 else None
