"""A stage type for the tests only whose step holds its stage's lock until told to go on.

Registered in worker processes through STAGE_TYPE_MODULES, and in the test
process by :func:`registered`. Files named in the stage's context steer and
observe it: ``heldFile`` is created when a step starts holding, and the step
goes on (succeeds) once ``releaseFile`` exists, or after ``HOLD_SECONDS``.
"""

import time
from contextlib import contextmanager
from pathlib import Path

from apps.pipelines.stages import StageType, TaskResult, register, unregister

HOLD_SECONDS = 30.0


class HeldStage(StageType):
    """Holds its step, inside the step's transaction, until ``releaseFile`` exists; then succeeds."""

    type_name = "testHeldInStep"

    def run(self, stage, scope, runtime) -> TaskResult:
        Path(stage.context["heldFile"]).touch()
        release = Path(stage.context["releaseFile"])
        deadline = time.monotonic() + HOLD_SECONDS
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return TaskResult.succeeded()


register(HeldStage)


@contextmanager
def registered():
    """The stage type registered in this process for the duration (a test's fixture)."""
    register(HeldStage)
    try:
        yield
    finally:
        unregister(HeldStage.type_name)
