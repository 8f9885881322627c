"""Composite stage types for the tests only, registered in worker processes through STAGE_TYPE_MODULES.

The test process registers them with the ``composite_types`` fixture, which
removes them afterwards. Files named in a stage's context let a test steer
and observe the workers: ``releaseFile`` (a held stage goes on once it
exists), ``gateFile`` (a gate passes once it exists) and ``hookLog`` (each
cancel hook appends a line naming its stage).
"""

from contextlib import contextmanager
from pathlib import Path

from apps.pipelines.stages import StageType, Task, TaskResult, register, unregister


def _log_cancel(stage) -> None:
    log = stage.context.get("hookLog")
    if log:
        with open(log, "a") as handle:
            handle.write(f"{stage.ref_id}\n")


class RecordTask(Task):
    """Succeeds at once, unless the stage's ``failTask`` names it; its outputs say that it ran."""

    def __init__(self, name: str):
        self.name = name

    def run(self, stage, scope, runtime) -> TaskResult:
        if stage.context.get("failTask") == self.name:
            return TaskResult.failed(f"task {self.name} failed as asked")
        return TaskResult.succeeded(outputs={f"ran_{self.name}": True})


@register
class CompositeStage(StageType):
    """Two before stages (a composite one, then a wait), two tasks, one after stage; options add a gate or a hold."""

    type_name = "testComposite"

    def task_graph(self, stage):
        return [RecordTask("first"), RecordTask("second")]

    def before_stages(self, stage):
        befores = [{"type": "testNested", "name": "Prepare", "hookLog": stage.context.get("hookLog")}]
        if stage.context.get("gateFile"):
            befores.append({"type": "testGate", "name": "Gate", "gateFile": stage.context["gateFile"]})
        if stage.context.get("releaseFile"):
            befores.append({"type": "testHold", "name": "Hold", "releaseFile": stage.context["releaseFile"],
                            "hookLog": stage.context.get("hookLog")})
        befores.append({"type": "wait", "name": "Settle", "waitTime": 0})
        return befores

    def after_stages(self, stage):
        return [{"type": "evaluateVariables", "name": "Tidy",
                 "variables": [{"key": "settled", "value": "${#stage('Settle').status}"}]}]

    def cancel(self, stage, runtime) -> None:
        _log_cancel(stage)


@register
class NestedStage(StageType):
    """A composite stage inside a composite stage: one before stage, then its own run()."""

    type_name = "testNested"

    def before_stages(self, stage):
        return [{"type": "wait", "name": "Nested wait", "waitTime": 0}]

    def run(self, stage, scope, runtime) -> TaskResult:
        return TaskResult.succeeded(outputs={"nested": "done"})

    def cancel(self, stage, runtime) -> None:
        _log_cancel(stage)


@register
class GateStage(StageType):
    """Fails unless ``gateFile`` exists: a failure a person can fix, then restart."""

    type_name = "testGate"

    def run(self, stage, scope, runtime) -> TaskResult:
        if Path(stage.context["gateFile"]).exists():
            return TaskResult.succeeded()
        return TaskResult.failed("the gate is closed")


@register
class HoldStage(StageType):
    """Runs until ``releaseFile`` exists, polling every 0.2 s."""

    type_name = "testHold"

    def run(self, stage, scope, runtime) -> TaskResult:
        if Path(stage.context["releaseFile"]).exists():
            return TaskResult.succeeded()
        return TaskResult.running(retry_after=0.2)

    def cancel(self, stage, runtime) -> None:
        _log_cancel(stage)


@register
class BadPlanStage(StageType):
    """Plans a synthetic stage of a type that does not exist."""

    type_name = "testBadPlan"

    def before_stages(self, stage):
        return [{"type": "noSuchType", "name": "Nowhere"}]

    def run(self, stage, scope, runtime) -> TaskResult:
        return TaskResult.succeeded()


@register
class TooDeepStage(StageType):
    """Plans itself before itself, for ever: nesting must stop at the bound."""

    type_name = "testTooDeep"

    def before_stages(self, stage):
        return [{"type": "testTooDeep", "name": f"Deeper {stage.ref_id}"}]

    def run(self, stage, scope, runtime) -> TaskResult:
        return TaskResult.succeeded()


STAGE_TYPES = (CompositeStage, NestedStage, GateStage, HoldStage, BadPlanStage, TooDeepStage)


@contextmanager
def registered():
    """The test-only stage types, registered in this process for the duration (a test's fixture)."""
    for cls in STAGE_TYPES:
        register(cls)
    try:
        yield
    finally:
        for cls in STAGE_TYPES:
            unregister(cls.type_name)
