"""Pipeline triggers fire when an upstream execution ends: read from the durable event log.

The consumer ``triggers.pipeline-completion`` reads ``execution.status``
events with its own cursor; its writes (the inbound event, the executions
it starts) commit with the cursor, so a worker killed mid-batch neither
loses nor doubles a chained start. A chain of pipeline triggers stops after
MAX_CHAIN_DEPTH, so two pipelines triggering each other do not run forever.
Executions' ends that no trigger waits for cost one index lookup and are not
recorded.
"""

from __future__ import annotations

from apps.pipelines.documents import execution_document
from apps.pipelines.eventlog import register_consumer
from apps.pipelines.models import Event as LogEvent
from apps.pipelines.models import Execution
from apps.triggers.kinds.base import Event
from apps.triggers.kinds.pipeline import STATUS_WORDS, by_name
from apps.triggers.services import Inbound, candidates, do_fire, do_refuse

MAX_CHAIN_DEPTH = 10
CONSUMER = "triggers.pipeline-completion"


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
    for logged in events:
        if logged.kind != "execution.status" or logged.status not in STATUS_WORDS or logged.pipeline_id is None:
            continue
        rows = candidates("pipeline", [str(logged.pipeline_id), by_name(logged.application_name,
                                                                           logged.pipeline_name)])
        if not rows:
            continue
        parent = Execution.objects.select_related("application").filter(id=logged.execution_id).first()
        if parent is None:
            continue
        event = _event_of(logged, parent)
        inbound = Inbound(source="pipeline", delivery_id=f"event-{logged.pk}")
        if event.fields["chainDepth"] > MAX_CHAIN_DEPTH:
            do_refuse(inbound, 409, f"a chain of more than {MAX_CHAIN_DEPTH} pipeline triggers stops here", rows)
            continue
        do_fire(inbound, event, rows)


def register() -> None:
    register_consumer(CONSUMER, on_events, batch_size=100)
