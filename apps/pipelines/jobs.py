"""RQ entry points of the engine. Each job carries only ids; the database holds the state.

``enqueue.py`` queues these by dotted path (``apps.pipelines.jobs.run_stage``)
so the engine can queue its next messages without importing this module.
Here the stage runtime is built and handed to the engine: the one place
that joins the engine to the services its stage types may call.
"""

from apps.pipelines import engine
from apps.pipelines.stage_runtime import ServiceRuntime

RUNTIME = ServiceRuntime()


def start_execution(execution_id: str) -> None:
    """Start a new execution (or leave it waiting its turn), and run its first steps that follow at once."""
    engine.start_execution_job(execution_id, RUNTIME)


def run_stage(stage_id: str, token: int) -> None:
    """Run one step of a stage, and the steps that follow at once."""
    engine.run_stage_job(stage_id, token, RUNTIME)


def wake_stage(stage_id: str) -> None:
    """Run a waiting stage's task now."""
    engine.wake_stage(stage_id)


def start_waiting(pipeline_id: str) -> None:
    """Start a pipeline's next waiting execution."""
    engine.start_waiting(pipeline_id)


def run_cancel_hook(stage_id: str) -> None:
    """Run a canceled stage's cancel hook."""
    engine.run_cancel_hook(stage_id, RUNTIME)
