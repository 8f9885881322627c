"""The one emitter of live execution changes, used only after a transaction commits.

Changes go to two Channels groups — the execution's and its application's —
through the pub/sub channel layer (``channels_redis.pubsub``), where a group
message is a single Redis PUBLISH. The engine sends them from synchronous
worker code in the same Redis pipeline as the jobs that follow, so a live
update costs no extra round trip; :func:`group_channel` and the layer's own
serializer keep the messages exactly what Channels consumers receive.

Each event carries a per-execution sequence number (a Redis counter), so a
browser can tell that it missed events and re-read the state. The database
stays the truth: losing Redis loses events, never state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from channels.layers import get_channel_layer

from apps.pipelines.models import epoch_millis
from cdplatform.live import group_channel

SEQUENCE_KEY = "cdplatform:execution-events:{}"
SEQUENCE_TTL_SECONDS = 7 * 24 * 3600


def execution_group(execution_id) -> str:
    return f"execution.{execution_id}"


def application_group(application_name: str) -> str:
    return f"application.{application_name}"


@dataclass
class ExecutionChange:
    """What changed in one execution during one transaction."""

    execution_id: str
    application: str
    status: str
    stages: dict[str, dict] = field(default_factory=dict)

    def message(self, sequence: int) -> dict:
        return {
            "type": "execution.changed",
            "executionId": self.execution_id,
            "application": self.application,
            "status": self.status,
            "sequence": sequence,
            "stages": list(self.stages.values()),
        }


def stage_change(stage) -> dict:
    """The part of a stage that a live page redraws."""
    return {
        "id": str(stage.id),
        "refId": stage.ref_id,
        "status": stage.status,
        "startTime": epoch_millis(stage.start_time),
        "endTime": epoch_millis(stage.end_time),
    }


def next_sequences(connection, execution_ids: list[str]) -> dict[str, int]:
    """Take the next sequence number of each execution, in one round trip."""
    with connection.pipeline(transaction=False) as pipe:
        for execution_id in execution_ids:
            key = SEQUENCE_KEY.format(execution_id)
            pipe.incr(key)
            pipe.expire(key, SEQUENCE_TTL_SECONDS)
        replies = pipe.execute()
    return {execution_id: replies[index * 2] for index, execution_id in enumerate(execution_ids)}


def current_sequence(connection, execution_id) -> int | None:
    """The sequence number of the execution's latest event, or None when it has had none."""
    value = connection.get(SEQUENCE_KEY.format(execution_id))
    return int(value) if value is not None else None


def add_publishes(pipe, changes: list[ExecutionChange], sequences: dict[str, int]) -> None:
    """Queue a PUBLISH of each change to its execution's and application's groups on a Redis pipeline."""
    layer = get_channel_layer()
    if layer is None:
        return
    for change in changes:
        payload = layer.serialize(change.message(sequences[change.execution_id]))
        pipe.publish(group_channel(execution_group(change.execution_id)), payload)
        pipe.publish(group_channel(application_group(change.application)), payload)
