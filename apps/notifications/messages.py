"""What a notification says: one summary of an execution at a moment, which each transport lays out its own way.

Short and readable: application, pipeline, status, what started it (person,
commit, tag), how long it ran, the failed stage and its error, and a link to
the execution page (``PUBLIC_URL``). A waiting judgment says what is asked and
links straight to the stage. A subscription's own ``message`` text for the
moment (``{"pipeline.failed": {"text": "..."}}``) is evaluated with the
execution's expressions and shown first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from apps.pipelines.choices import COMPLETE, HALTED, Status
from apps.pipelines.expressions import ExpressionError, evaluate
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.stages.manual_judgment import judgment_options

HEADLINES = {
    "pipeline.starting": "started", "pipeline.complete": "succeeded", "pipeline.failed": "failed",
    "stage.starting": "stage {stage} started", "stage.complete": "stage {stage} succeeded",
    "stage.failed": "stage {stage} failed", "manualJudgment": "awaits a judgment at {stage}",
    "manualJudgmentContinue": "{stage} was judged: continue", "manualJudgmentStop": "{stage} was judged: stop",
}
MAX_ERROR_CHARS = 500


@dataclass
class Judgment:
    """A manual judgment waiting for someone: what is asked, the choices, where to make it."""

    stage_id: str
    ref_id: str
    name: str
    instructions: str
    options: list[str]
    url: str
    judged_by: str = ""
    decision: str = ""
    judgment_input: str = ""


@dataclass
class Summary:
    """An execution as a notification shows it."""

    moment: str
    title: str
    application: str
    pipeline: str
    status: str
    url: str
    execution_id: str
    started_by: str = ""
    trigger: str = ""
    duration: str = ""
    failed_stage: str = ""
    error: str = ""
    custom_text: str = ""
    judgment: Judgment | None = None
    facts: list[tuple[str, str]] = field(default_factory=list)
    headline: str = ""  # the title without the application and pipeline ("stage Deploy failed")

    @property
    def text(self) -> str:
        """The summary as plain text lines (e-mail, Google Chat, the fallback text of rich messages)."""
        lines = [self.custom_text] if self.custom_text else []
        lines.append(self.title)
        lines += [f"{name}: {value}" for name, value in self.facts]
        if self.judgment is not None and not self.judgment.decision:
            lines.append(f"Asked: {self.judgment.instructions or 'continue?'}")
            lines.append(f"Judge it: {self.judgment.url}")
        lines.append(f"Execution: {self.url}")
        return "\n".join(lines)


def absolute(path: str) -> str:
    """A path of the platform as a link people can follow (``PUBLIC_URL``)."""
    return settings.PUBLIC_URL + path


def _duration(execution: Execution) -> str:
    if execution.start_time is None:
        return ""
    end = execution.end_time or timezone.now()
    seconds = int(max((end - execution.start_time).total_seconds(), 0))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


def _trigger_words(trigger: dict) -> str:
    kind = str(trigger.get("type") or "manual")
    parts = [kind]
    for key, label in (("user", "by"), ("hash", "commit"), ("tag", "tag"), ("branch", "branch")):
        value = trigger.get(key)
        if isinstance(value, str | int) and str(value):
            parts.append(f"{label} {str(value)[:12] if key == 'hash' else value}")
    return ", ".join(parts)


def _failure(stages: list[StageExecution]) -> tuple[str, str]:
    for stage in stages:
        if stage.status in HALTED or stage.status == Status.FAILED_CONTINUE:
            context = stage.context or {}
            error = context.get("exception") or context.get("error") or context.get("failureMessage") or ""
            if isinstance(error, dict):  # Spinnaker's shape: {"details": {"error": ..., "errors": [...]}}
                details = error.get("details") if isinstance(error.get("details"), dict) else {}
                error = details.get("error") or error.get("message") or ""
            return stage.name, str(error)[:MAX_ERROR_CHARS]
    return "", ""


def judgment_of(execution: Execution, stages: list[StageExecution]) -> Judgment | None:
    """The execution's manual judgment that is waiting, or the last one decided; None when it has none."""
    judgments = [stage for stage in stages if stage.type == "manualJudgment" and stage.status != Status.NOT_STARTED]
    waiting = [stage for stage in judgments
               if stage.status == Status.RUNNING and not stage.context.get("judgmentStatus")]
    stage = (waiting or judgments or [None])[-1]
    if stage is None:
        return None
    context = stage.context or {}
    return Judgment(
        stage_id=str(stage.id), ref_id=stage.ref_id, name=stage.name,
        instructions=str(context.get("instructions") or ""), options=judgment_options(context),
        url=absolute(reverse("pipelines:execution", args=[execution.id]) + f"#stage-{stage.ref_id}"),
        judged_by=str(context.get("lastModifiedBy") or "") if context.get("judgmentStatus") else "",
        decision=str(context.get("judgmentStatus") or ""), judgment_input=str(context.get("judgmentInput") or ""),
    )


def custom_text(target: dict, moment: str, execution: Execution) -> str:
    """The subscription's own text for the moment, its expressions evaluated (an error shows as such)."""
    message = target.get("message")
    entry = message.get(moment) if isinstance(message, dict) else None
    text = entry.get("text") if isinstance(entry, dict) else None
    if not isinstance(text, str) or not text.strip():
        return ""
    variables = {"execution": {"id": str(execution.id), "name": execution.name, "status": execution.status,
                               "application": execution.application.name},
                 "trigger": execution.trigger, "parameters": execution.parameters}
    try:
        return str(evaluate(text, variables))[:2000]
    except ExpressionError as error:
        return f"{text} (expression error: {error})"[:2000]


def summarize(execution: Execution, moment: str, target: dict, stage_name: str = "") -> Summary:
    """The summary of ``execution`` (its application loaded) for a delivery at ``moment``."""
    stages = list(execution.stages.filter(parent__isnull=True).order_by("position"))
    failed_stage, error = _failure(stages) if execution.status in COMPLETE or moment.endswith("failed") else ("", "")
    headline = HEADLINES.get(moment, moment).format(stage=stage_name or "a stage")
    summary = Summary(
        moment=moment, title=f"{execution.application.name} / {execution.name} {headline}",
        application=execution.application.name, pipeline=execution.name, status=execution.status,
        url=absolute(reverse("pipelines:execution", args=[execution.id])), execution_id=str(execution.id),
        started_by=execution.started_by, trigger=_trigger_words(execution.trigger or {}),
        duration=_duration(execution), failed_stage=failed_stage, error=error,
        custom_text=custom_text(target, moment, execution), judgment=judgment_of(execution, stages),
        headline=headline,
    )
    summary.facts = [(name, value) for name, value in (
        ("Status", summary.status), ("Trigger", summary.trigger), ("Duration", summary.duration),
        ("Failed stage", summary.failed_stage), ("Error", summary.error),
    ) if value]
    return summary
