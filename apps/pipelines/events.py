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

One round trip. :func:`queue_publishes` puts on the caller's pipeline, for
each change, one call of a Lua script that takes the next sequence number
and publishes the message carrying it: the message is serialized with a
marker where the number goes (a fixed-width msgpack integer), and the script
writes the number over it. The sequence numbers of an execution therefore
reach its groups in order. Should the layer's serializer hide the marker
(encryption, a random prefix), the numbers are taken first, in a round trip
of their own (:func:`next_sequences`), and the messages published as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from channels.layers import get_channel_layer

from apps.pipelines.models import epoch_millis
from cdplatform.live import group_channel
from cdplatform.lua import LuaScript

SEQUENCE_KEY = "cdplatform:execution-events:{}"
SEQUENCE_TTL_SECONDS = 7 * 24 * 3600
# Serialized in place of a message's sequence number: msgpack writes it as 0xcf and eight bytes, a width
# any sequence number also fits in, and no text of a message (UTF-8) holds the byte 0xff.
SEQUENCE_MARK = 2**64 - 2
_MARK_BYTES = b"\xcf" + SEQUENCE_MARK.to_bytes(8, "big")


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


# Takes an execution's next sequence number and publishes the message carrying it, in one step.
_PUBLISH_CHANGE = LuaScript("""
-- KEYS: the execution's sequence counter
-- ARGV: the counter's time to live, the message before its sequence number, the message after it,
-- then the channels to publish it on (none without a channel layer: the number is taken all the same)
local sequence = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
local bytes, rest = {}, sequence
for index = 8, 1, -1 do
    bytes[index] = rest % 256
    rest = math.floor(rest / 256)
end
local message = ARGV[2] .. string.char(0xcf, unpack(bytes)) .. ARGV[3]
for index = 4, #ARGV do
    redis.call('PUBLISH', ARGV[index], message)
end
return sequence
""")


def queue_publishes(connection, pipe, changes: list[ExecutionChange]) -> None:
    """Queue on a Redis pipeline each change's next sequence number and its PUBLISH to its execution's and
    application's groups: no round trip of its own (see the module docstring); send the pipeline with
    :func:`cdplatform.lua.execute`."""
    layer = get_channel_layer()
    splits = [_split_message(layer, change) for change in changes]
    if any(split is None for split in splits):  # the serializer hides the marker
        add_publishes(pipe, changes, next_sequences(connection, [change.execution_id for change in changes]))
        return
    for change, split in zip(changes, splits, strict=True):
        assert split is not None
        head, tail = split
        channels = _channels(change) if layer is not None else []
        key = SEQUENCE_KEY.format(change.execution_id)
        _PUBLISH_CHANGE.queue(pipe, [key], [SEQUENCE_TTL_SECONDS, head, tail, *channels])


def _split_message(layer, change: ExecutionChange) -> tuple[bytes, bytes] | None:
    """The serialized message before and after its sequence number; None unless the marker shows exactly once.

    With no channel layer nothing is published: the number is taken all the same.
    """
    if layer is None:
        return b"", b""
    payload = layer.serialize(change.message(SEQUENCE_MARK))
    if not isinstance(payload, bytes) or payload.count(_MARK_BYTES) != 1:
        return None
    head, _, tail = payload.partition(_MARK_BYTES)
    return head, tail


def _channels(change: ExecutionChange) -> list[str]:
    """The Redis channels of the change's execution and application groups."""
    return [group_channel(execution_group(change.execution_id)), group_channel(application_group(change.application))]


def add_publishes(pipe, changes: list[ExecutionChange], sequences: dict[str, int]) -> None:
    """Queue a PUBLISH of each change to its execution's and application's groups on a Redis pipeline."""
    layer = get_channel_layer()
    if layer is None:
        return
    for change in changes:
        payload = layer.serialize(change.message(sequences[change.execution_id]))
        pipe.publish(group_channel(execution_group(change.execution_id)), payload)
        pipe.publish(group_channel(application_group(change.application)), payload)
