"""``pipeline`` triggers: another pipeline's execution ended with one of ``status``; read from the durable event log.

A trigger names the upstream ``application`` and ``pipeline`` (its id, as
Spinnaker writes it, or its name) and ``status``: any of ``successful``,
``failed``, ``canceled`` (default: successful). ``apps/triggers/completion.py``
reads the ends from the durable event log. The execution sees the upstream
execution as ``${trigger.parentExecution}`` (Spinnaker's execution JSON).
"""

from __future__ import annotations

import uuid

from apps.pipelines.choices import Status
from apps.pipelines.problems import Problem, pointer_join
from apps.pipelines.stages.base import StageField
from apps.triggers.kinds.base import Event, TriggerKind, register_kind, text_field, words

STATUS_WORDS = {Status.SUCCEEDED: "successful", Status.TERMINAL: "failed", Status.CANCELED: "canceled"}


def by_name(application: str, name: str) -> str:
    return f"{application}/{name}"


class PipelineKind(TriggerKind):
    type = "pipeline"
    fields = (
        StageField("application", label="Application", required=True),
        StageField("pipeline", label="Pipeline", required=True, help="The pipeline's id"),
        StageField("status", "list", "When it ends", help="successful, failed, canceled; default successful"),
    )

    def key(self, trigger: dict) -> str | None:
        application, pipeline = trigger.get("application"), trigger.get("pipeline")
        if not isinstance(application, str) or not isinstance(pipeline, str) or not pipeline:
            return None
        try:
            return str(uuid.UUID(pipeline))
        except ValueError:
            return by_name(application, pipeline)

    def check(self, trigger: dict, pointer: str) -> list[Problem]:
        problems = text_field(trigger, "application", pointer, required=True)
        problems += text_field(trigger, "pipeline", pointer, required=True)
        status = trigger.get("status")
        if status is not None and (not isinstance(status, list) or any(s not in STATUS_WORDS.values() for s in status)):
            problems.append(Problem(pointer_join(pointer, "status"),
                                    f"must be a list of: {', '.join(STATUS_WORDS.values())}"))
        return problems

    def describe(self, trigger: dict) -> str:
        return (f"Runs when pipeline {words(trigger.get('pipeline'))} of application "
                f"{words(trigger.get('application'))} ends {words(trigger.get('status'), 'successful')}")

    def mismatch(self, trigger: dict, event: Event) -> str | None:
        wanted = trigger.get("status") or ["successful"]
        if event.summary["status"] not in wanted:
            return f"the upstream execution ended {event.summary['status']}, not {', '.join(wanted)}"
        if trigger.get("application") != event.summary["application"]:
            return f"the upstream pipeline is of application {event.summary['application']!r}"
        return None


PIPELINE = register_kind(PipelineKind())
