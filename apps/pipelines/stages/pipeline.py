"""The ``pipeline`` stage: starts another pipeline (of this or another application) and waits for it.

The child links back through ``trigger.parentExecution`` and
``parentExecution`` in its JSON; the parent stage's context holds
``executionId``. When the child ends, it wakes the parent stage at once; a
slow poll remains only as a safety net. Canceling the parent cancels the child.
"""

import logging
import uuid

from apps.pipelines.choices import COMPLETE, Status
from apps.pipelines.problems import InvalidDocument, Problem
from apps.pipelines.stages.base import StageType, TaskResult, register

logger = logging.getLogger(__name__)

# The child's end wakes the parent stage; this poll only covers a lost wake-up.
SAFETY_POLL_SECONDS = 30
MAX_DEPTH = 10


@register
class PipelineStage(StageType):
    type_name = "pipeline"
    label = "Pipeline"
    required_fields = ("pipeline",)

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
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

    def run(self, stage, scope) -> TaskResult:
        child_id = stage.context.get("executionId")
        if child_id is None:
            return self._start_child(stage)
        from apps.pipelines.models import Execution

        child = Execution.objects.filter(id=child_id).only("status", "name").first()
        if child is None:
            return TaskResult.failed(f"child execution {child_id} no longer exists")
        if child.status not in COMPLETE:
            return TaskResult.running(retry_after=SAFETY_POLL_SECONDS, context={"status": child.status})
        return self._finished(child)

    def _start_child(self, stage) -> TaskResult:
        from apps.pipelines.models import Pipeline
        from apps.pipelines.services import ActionRefused, do_start_execution

        parent = stage.execution
        application = stage.context.get("application") or parent.application.name
        reference = str(stage.context["pipeline"])
        child_pipeline = _find_pipeline(Pipeline, application, reference)
        if child_pipeline is None:
            return TaskResult.failed(f"no pipeline {reference!r} in application {application!r}")
        refusal = _run_as_refusal(parent.started_by, child_pipeline.application)
        if refusal:
            return TaskResult.failed(refusal)
        depth = int((parent.trigger.get("parentExecution") or {}).get("depth", 0)) + 1
        if depth > MAX_DEPTH:
            return TaskResult.failed(f"pipeline stages nest deeper than {MAX_DEPTH} levels")
        trigger = {
            "type": "pipeline",
            "user": parent.started_by or "anonymous",
            "parentExecution": {
                "id": str(parent.id), "application": parent.application.name, "name": parent.name, "depth": depth,
            },
            "parentPipelineStageId": str(stage.id),
        }
        try:
            child = do_start_execution(
                child_pipeline,
                parameters=stage.context.get("pipelineParameters") or {},
                trigger=trigger,
                user=parent.started_by,
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

    def _finished(self, child) -> TaskResult:
        context = {"status": child.status}
        if child.status == Status.SUCCEEDED:
            # Later stages read the child's results as this stage's outputs.
            outputs: dict = {}
            for child_stage in child.stages.order_by("position").only("outputs"):
                outputs.update(child_stage.outputs)
            return TaskResult.succeeded(outputs=outputs, context=context)
        if child.status == Status.CANCELED:
            return TaskResult(Status.CANCELED, context=context, error=f"child pipeline {child.name!r} was canceled")
        return TaskResult.failed(f"child pipeline {child.name!r} ended {child.status}", context=context)

    def cancel(self, stage) -> None:
        from apps.pipelines.services import ActionRefused, do_cancel_execution

        child_id = stage.context.get("executionId")
        if not child_id:
            return
        try:
            do_cancel_execution(child_id, user=stage.execution.canceled_by or "system", reason="parent execution ended")
        except ActionRefused:
            pass  # the child had already ended


def _find_pipeline(model, application: str, reference: str):
    """A pipeline by id (Spinnaker stores the child's id) or, for hand-written pipelines, by name."""
    queryset = model.objects.select_related("application").filter(application__name=application)
    try:
        found = queryset.filter(id=uuid.UUID(reference)).first()
    except ValueError:  # not an id: a name
        found = None
    return found or queryset.filter(name=reference).first()


def _run_as_refusal(username: str, application) -> str | None:
    """Why the execution's identity may not start a pipeline of ``application`` (None: it may).

    An execution acts as the user that started it (a person, or a trigger's
    service account); one started by the system itself (the command line)
    is not restricted.
    """
    from django.contrib.auth import get_user_model

    from apps.accounts.permissions import EXECUTE, can

    user = get_user_model().objects.filter(username=username).first() if username else None
    if user is None or can(user, EXECUTE, application):
        return None
    return f"{username} may not run pipelines of application {application.name!r}"
