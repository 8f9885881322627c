"""``pipeline`` triggers: another pipeline's execution ended with one of ``status``; read from the durable event log.

A trigger names the upstream ``application`` and ``pipeline`` (its id, as
Spinnaker writes it, or its name) and ``status``: any of ``successful``,
``failed``, ``canceled`` (default: successful). The consumer
``triggers.pipeline-completion`` reads ``execution.status`` events with its
own cursor; its writes (the inbound event, the executions it starts) commit
with the cursor, so a worker killed mid-batch neither loses nor doubles a
chained start. The execution sees the upstream execution as
``${trigger.parentExecution}`` (Spinnaker's execution JSON). A chain of
pipeline triggers stops at MAX_CHAIN_DEPTH, so two pipelines triggering each
other do not run forever.
"""

from __future__ import annotations

import uuid

from apps.pipelines.choices import Status
from apps.pipelines.documents import execution_document
from apps.pipelines.eventlog import register_consumer
from apps.pipelines.models import Event as LogEvent
from apps.pipelines.models import Execution
from apps.pipelines.problems import Problem, pointer_join
from apps.triggers.kinds.base import Event, TriggerKind, register_kind, text_field, words

STATUS_WORDS = {Status.SUCCEEDED: "successful", Status.TERMINAL: "failed", Status.CANCELED: "canceled"}
MAX_CHAIN_DEPTH = 10
CONSUMER = "triggers.pipeline-completion"


def _by_name(application: str, name: str) -> str:
    return f"{application}/{name}"


class PipelineKind(TriggerKind):
    type = "pipeline"

    def key(self, trigger: dict) -> str | None:
        application, pipeline = trigger.get("application"), trigger.get("pipeline")
        if not isinstance(application, str) or not isinstance(pipeline, str) or not pipeline:
            return None
        try:
            return str(uuid.UUID(pipeline))
        except ValueError:
            return _by_name(application, pipeline)

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


def _event_of(logged: LogEvent, parent: Execution) -> Event:
    depth = int(parent.trigger.get("chainDepth") or 0) + 1 if parent.trigger.get("type") == "pipeline" else 1
    summary = {"application": logged.application_name, "pipeline": logged.pipeline_name,
               "execution": str(logged.execution_id), "status": STATUS_WORDS[logged.status]}
    fields = {"parentExecution": execution_document(parent), "parentPipelineId": str(logged.pipeline_id),
              "parentPipelineName": logged.pipeline_name, "parentPipelineApplication": logged.application_name,
              "parentStatus": logged.status, "chainDepth": depth}
    return Event("pipeline", str(logged.pipeline_id), fields=fields, summary=summary)


def on_events(events: list[LogEvent]) -> None:
    """The consumer: each execution that ended as a pipeline trigger waits for starts the triggered pipelines."""
    from apps.triggers.services import Inbound, candidates, do_fire

    for logged in events:
        if logged.kind != "execution.status" or logged.status not in STATUS_WORDS or logged.pipeline_id is None:
            continue
        rows = candidates("pipeline", [str(logged.pipeline_id), _by_name(logged.application_name,
                                                                           logged.pipeline_name)])
        if not rows:
            continue
        parent = Execution.objects.select_related("application").filter(id=logged.execution_id).first()
        if parent is None:
            continue
        event = _event_of(logged, parent)
        inbound = Inbound(source="pipeline", delivery_id=f"event-{logged.pk}")
        if event.fields["chainDepth"] > MAX_CHAIN_DEPTH:
            from apps.triggers.services import do_refuse

            do_refuse(inbound, 409, f"a chain of more than {MAX_CHAIN_DEPTH} pipeline triggers stops here", rows)
            continue
        do_fire(inbound, event, rows)


register_consumer(CONSUMER, on_events, batch_size=100)
