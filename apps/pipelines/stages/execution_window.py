"""The ``restrictExecutionDuringTimeWindow`` stage: a composite stage's execution window, as its first before stage.

As in Orca, a composite stage with ``restrictExecutionDuringTimeWindow``
waits for its window in a synthetic stage planned before all its other
before stages, so nothing of the composite starts outside the window. The
engine holds any stage so marked until its window opens (and lets a person
skip it); this stage has nothing else to do.
"""

from apps.pipelines.stages.base import StageType, TaskResult, register

WINDOW_KEYS = ("restrictExecutionDuringTimeWindow", "restrictedExecutionWindow")


@register
class ExecutionWindowStage(StageType):
    type_name = "restrictExecutionDuringTimeWindow"
    label = "Execution window"
    internal = True

    def run(self, stage, scope, runtime) -> TaskResult:
        return TaskResult.succeeded()


def window_definition(context: dict) -> dict:
    """The synthetic stage that waits for the window the parent's ``context`` restricts it to."""
    return {"type": ExecutionWindowStage.type_name, "name": "Restrict execution during time window",
            **{key: context[key] for key in WINDOW_KEYS if key in context}}
