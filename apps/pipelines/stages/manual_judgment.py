"""The ``manualJudgment`` stage: waits for a person to continue or stop the pipeline.

The judgment itself is recorded by ``services.judge_stage`` in the stage's
context, with Spinnaker's keys (``judgmentStatus``, ``judgmentInput``,
``lastModifiedBy``, ``lastModified``), and the stage is run again at once.
"""

from apps.pipelines.problems import Problem
from apps.pipelines.stages.base import StageField, StageType, TaskResult, register

CONTINUE = "continue"
STOP = "stop"


def judgment_options(stage_context: dict) -> list[str]:
    """The values a judge may choose from, from ``judgmentInputs`` ([{"value": ...}] or plain strings)."""
    options = []
    for item in stage_context.get("judgmentInputs") or []:
        value = item.get("value") if isinstance(item, dict) else item
        if value not in (None, ""):
            options.append(str(value))
    return options


@register
class ManualJudgmentStage(StageType):
    type_name = "manualJudgment"
    label = "Manual Judgment"
    description = "Waits for a person to continue or stop the pipeline, optionally choosing an input."
    fields = (
        StageField("instructions", "text", label="Instructions", help="What the judge should check; may use ${...}."),
        StageField("judgmentInputs", "list", label="Judgment inputs", items=(StageField("value", label="Value"),),
                   help="Options the judge chooses from; later stages read the choice as judgmentInput."),
        StageField("selectedStageRoles", "list", label="Judge roles",
                   help="Teams allowed to judge, one per line; empty: anyone who may execute."),
    )

    def validate(self, stage: dict, pointer: str) -> list[Problem]:
        problems = []
        inputs = stage.get("judgmentInputs")
        if inputs is not None and not isinstance(inputs, list):
            problems.append(Problem(f"{pointer}/judgmentInputs", "must be a list of {\"value\": ...} options"))
        elif inputs:
            for index, item in enumerate(inputs):
                if isinstance(item, dict):
                    value, where = item.get("value"), f"{pointer}/judgmentInputs/{index}/value"
                else:
                    value, where = item, f"{pointer}/judgmentInputs/{index}"
                if not isinstance(value, str) or not value:
                    problems.append(Problem(where, "must be a non-empty string"))
        roles = stage.get("selectedStageRoles")
        if roles is not None and not (isinstance(roles, list) and all(isinstance(r, str) for r in roles)):
            problems.append(Problem(f"{pointer}/selectedStageRoles", "must be a list of role names"))
        return problems

    def run(self, stage, scope, runtime) -> TaskResult:
        status = stage.context.get("judgmentStatus")
        if status == CONTINUE:
            return TaskResult.succeeded(
                outputs={"judgmentStatus": CONTINUE, "judgmentInput": stage.context.get("judgmentInput")}
            )
        if status == STOP:
            who = stage.context.get("lastModifiedBy") or "someone"
            return TaskResult.failed(f"Stopped by {who} at manual judgment")
        # Nothing to poll: judge_stage runs the stage again when a person decides.
        return TaskResult.running(retry_after=None)


def judge_roles(stage) -> list[str]:
    """The roles (groups) allowed to judge the stage: ``selectedStageRoles`` of its context, else of its definition."""
    roles = stage.context.get("selectedStageRoles")
    if roles is None:
        roles = stage.definition.get("selectedStageRoles")
    if isinstance(roles, str):
        return [roles]
    return [str(role) for role in roles] if isinstance(roles, list) else []
