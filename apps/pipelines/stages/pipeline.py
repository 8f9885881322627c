"""The ``pipeline`` stage: starts another pipeline (of this or another application) and waits for it.

The child links back through ``trigger.parentExecution`` and
``parentExecution`` in its JSON; the parent stage's context holds
``executionId``. When the child ends, it wakes the parent stage at once; a
slow poll remains only as a safety net. Canceling the parent cancels the child.
It starts, reads and cancels the child through the :class:`StageRuntime` it is given.
The child acts as the parent does now — whoever last started, restarted or
resumed it — and is authorized as that identity when it starts.
"""

from __future__ import annotations

import logging

from apps.pipelines.choices import COMPLETE, Status
from apps.pipelines.problems import ActionRefused, InvalidDocument, Problem
from apps.pipelines.stages.base import StageField, StageType, TaskResult, register
from apps.pipelines.stages.runtime import ExecutionSummary, StageRuntime

logger = logging.getLogger(__name__)

# The child's end wakes the parent stage; this poll only covers a lost wake-up.
SAFETY_POLL_SECONDS = 30
MAX_DEPTH = 10


@register
class PipelineStage(StageType):
    type_name = "pipeline"
    label = "Pipeline"
    description = "Starts another pipeline and, by default, waits for it to end."
    fields = (
        StageField("application", label="Application", help="The child's application; empty: this one."),
        StageField("pipeline", label="Pipeline", required=True, help="The child pipeline's name or id."),
        StageField("pipelineParameters", "object", label="Parameters", help="The child's parameters by name."),
        StageField("waitForCompletion", "boolean", label="Wait for completion", default=True),
    )

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        """The child's application and pipeline are strings, its parameters an object."""
        problems = []
        for key in ("application", "pipeline"):
            if stage.get(key) is not None and not isinstance(stage[key], str):
                problems.append(Problem(f"{pointer}/{key}", "must be a string"))
        parameters = stage.get("pipelineParameters")
        if parameters is not None and not isinstance(parameters, dict):
            problems.append(Problem(f"{pointer}/pipelineParameters", "must be an object of parameter names to values"))
        if stage.get("waitForCompletion") is not None and not isinstance(stage["waitForCompletion"], bool):
            problems.append(Problem(f"{pointer}/waitForCompletion", "must be true or false"))
        return problems

    def run(self, stage, scope, runtime: StageRuntime) -> TaskResult:
        """Start the child on the first step; afterwards, finish when the child has ended."""
        child_id = stage.context.get("executionId")
        if child_id is None:
            return self._start_child(stage, runtime)
        child = runtime.get_execution(child_id)
        if child is None:
            return TaskResult.failed(f"child execution {child_id} no longer exists")
        if child.status not in COMPLETE:
            return TaskResult.running(retry_after=SAFETY_POLL_SECONDS, context={"status": child.status})
        return self._finished(child, runtime)

    def _start_child(self, stage, runtime: StageRuntime) -> TaskResult:
        parent = stage.execution
        application = stage.context.get("application") or parent.application.name
        reference = str(stage.context["pipeline"])
        child_pipeline = runtime.find_pipeline(application, reference)
        if child_pipeline is None:
            return TaskResult.failed(f"no pipeline {reference!r} in application {application!r}")
        refusal = runtime.run_as_refusal(parent, child_pipeline)
        if refusal:
            return TaskResult.failed(refusal)
        depth = int((parent.trigger.get("parentExecution") or {}).get("depth", 0)) + 1
        if depth > MAX_DEPTH:
            return TaskResult.failed(f"pipeline stages nest deeper than {MAX_DEPTH} levels")
        trigger = {
            "type": "pipeline",
            "parentExecution": {
                "id": str(parent.id), "application": parent.application.name, "name": parent.name, "depth": depth,
            },
            "parentPipelineStageId": str(stage.id),
        }
        try:
            child = runtime.start_child_execution(
                child_pipeline,
                parameters=stage.context.get("pipelineParameters") or {},
                trigger=trigger,
                parent_stage=stage,
            )
        except InvalidDocument as invalid:
            return TaskResult.failed(f"child pipeline refused its parameters: {invalid}")
        except ActionRefused as refused:
            return TaskResult.failed(str(refused))
        context = {"executionId": str(child.id), "executionName": child.name, "application": application}
        if stage.context.get("waitForCompletion") is False:
            return TaskResult.succeeded(context=context)
        return TaskResult.running(retry_after=SAFETY_POLL_SECONDS, context=context)

    def _finished(self, child: ExecutionSummary, runtime: StageRuntime) -> TaskResult:
        context = {"status": child.status}
        if child.status == Status.SUCCEEDED:
            # Later stages read the child's results as this stage's outputs.
            outputs: dict = {}
            for child_outputs in runtime.stage_outputs(child.id):
                outputs.update(child_outputs)
            return TaskResult.succeeded(outputs=outputs, context=context)
        if child.status == Status.CANCELED:
            return TaskResult(Status.CANCELED, context=context, error=f"child pipeline {child.name!r} was canceled")
        return TaskResult.failed(f"child pipeline {child.name!r} ended {child.status}", context=context)

    def cancel(self, stage, runtime: StageRuntime) -> None:
        """Cancel the child execution, if one was started and it is still running."""
        child_id = stage.context.get("executionId")
        if not child_id:
            return
        try:
            runtime.cancel_execution(
                child_id, user=stage.execution.canceled_by or "system", reason="parent execution ended"
            )
        except ActionRefused:
            pass  # the child had already ended
