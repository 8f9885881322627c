"""What keeps a step's Redis work small: scripts sent by their SHA1 and loaded only when a server lacks them;
its jobs and live events, with their sequence numbers, in one round trip; a worker's heartbeats few."""

import uuid

import pytest
import redis
import rq
import rq.worker
from channels.layers import get_channel_layer
from cryptography.fernet import MultiFernet

from apps.pipelines import enqueue
from apps.pipelines.engine.dispatch import Dispatch
from apps.pipelines.events import SEQUENCE_KEY, ExecutionChange, current_sequence, execution_group
from cdplatform import lua, workers
from cdplatform.live import group_channel
from cdplatform.lua import LuaScript
from cdplatform.workers import EngineWorker


def fresh_script() -> LuaScript:
    """A script no Redis server has seen yet (its text is new), as after a restart or SCRIPT FLUSH."""
    return LuaScript(f"-- {uuid.uuid4()}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])")


class Sent:
    """Counts what a client sends: each command, or each pipeline of commands, is one round trip."""

    def __init__(self, monkeypatch):
        self.commands: list[str] = []
        # The commands of each round trip, in order (a pipeline's together).
        self.batches: list[list[str]] = []
        self.round_trips = 0
        original = redis.connection.AbstractConnection.send_packed_command

        def spy(connection, command, check_health=True):
            self.round_trips += 1
            return original(connection, command, check_health)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", spy)
        original_pack = redis.connection.AbstractConnection.pack_commands

        def pack_commands(connection, commands):
            self.batches.append([str(args[0]).upper() for args in commands])
            self.commands += self.batches[-1]
            return original_pack(connection, commands)

        monkeypatch.setattr(redis.connection.AbstractConnection, "pack_commands", pack_commands)
        original_one = redis.connection.AbstractConnection.send_command

        def send_command(connection, *args, **kwargs):
            self.commands.append(str(args[0]).upper())
            self.batches.append([self.commands[-1]])
            return original_one(connection, *args, **kwargs)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_command", send_command)


def test_a_script_the_server_lacks_is_loaded_and_run_once(clean_redis):
    script = fresh_script()
    assert script(clean_redis, ["counter"], [2]) == 2
    assert script(clean_redis, ["counter"], [3]) == 5
    assert clean_redis.script_exists(script.sha) == [True]


def test_a_pipeline_runs_again_only_the_script_calls_the_server_lacked(clean_redis):
    script = fresh_script()
    with clean_redis.pipeline(transaction=False) as pipe:
        pipe.incr("other")
        script.queue(pipe, ["counter"], [2])
        pipe.incr("other")
        replies = lua.execute(clean_redis, pipe)
    assert replies == [1, 2, 2]
    assert int(clean_redis.get("counter")) == 2  # run once, not twice
    assert int(clean_redis.get("other")) == 2  # the pipeline's other commands were not sent again


def test_a_pipeline_with_known_scripts_is_one_round_trip(clean_redis, monkeypatch):
    script = fresh_script()
    script(clean_redis, ["counter"], [1])
    sent = Sent(monkeypatch)
    with clean_redis.pipeline(transaction=False) as pipe:
        script.queue(pipe, ["counter"], [1])
        script.queue(pipe, ["counter"], [1])
        assert lua.execute(clean_redis, pipe) == [2, 3]
    assert sent.round_trips == 1
    assert sent.commands == ["EVALSHA", "EVALSHA"]  # no SCRIPT EXISTS first, as register_script's pipelines send


def test_other_errors_in_a_pipeline_are_raised(clean_redis):
    clean_redis.set("text", "not a number")
    with clean_redis.pipeline(transaction=False) as pipe:
        pipe.incr("text")
        with pytest.raises(redis.exceptions.ResponseError):
            lua.execute(clean_redis, pipe)


def test_a_step_is_queued_once_by_its_script_sha(clean_redis, monkeypatch):
    sent = Sent(monkeypatch)
    assert enqueue.enqueue_once(enqueue.RUN_STAGE, ("stage", 1), enqueue.run_stage_job_id("stage", 1)) == 1
    assert enqueue.enqueue_once(enqueue.RUN_STAGE, ("stage", 1), enqueue.run_stage_job_id("stage", 1)) == 0
    assert "EVAL" not in sent.commands
    assert enqueue.engine_queue().job_ids == [enqueue.run_stage_job_id("stage", 1)]


def listen(connection: redis.Redis, execution_id: str):
    """A subscriber of the execution's group, as the pub/sub channel layer subscribes."""
    subscriber = connection.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe(group_channel(execution_group(execution_id)))
    subscriber.get_message(timeout=1)  # the subscription's confirmation
    return subscriber


def received(subscriber, count: int) -> list[dict]:
    """The next ``count`` messages of the subscription, as a Channels consumer receives them."""
    layer = get_channel_layer()
    messages = []
    for _ in range(count):
        message = subscriber.get_message(timeout=5)
        assert message is not None, "no message reached the group"
        messages.append(layer.deserialize(message["data"]))
    return messages


def dispatch_of(execution_id: str, status: str) -> Dispatch:
    """A step's after-commit work: one job to queue and one change of the execution to publish."""
    dispatch = Dispatch()
    dispatch.runs.append((str(uuid.uuid4()), 1, 0.0))
    dispatch.changes[execution_id] = ExecutionChange(execution_id, "shop", status, {"1": {"refId": "1"}})
    return dispatch


def test_a_steps_jobs_and_events_with_their_sequence_numbers_go_in_one_round_trip(clean_redis, monkeypatch):
    execution_id = str(uuid.uuid4())
    subscriber = listen(clean_redis, execution_id)
    dispatch_of(execution_id, "RUNNING").send()  # loads the scripts if this server lacks them
    sent = Sent(monkeypatch)
    dispatch_of(execution_id, "SUCCEEDED").send()
    assert sent.round_trips == 1
    first, second = received(subscriber, 2)
    assert (first["status"], first["sequence"]) == ("RUNNING", 1)
    assert second == {
        "type": "execution.changed",
        "executionId": execution_id,
        "application": "shop",
        "status": "SUCCEEDED",
        "sequence": 2,
        "stages": [{"refId": "1"}],
    }
    assert current_sequence(clean_redis, execution_id) == 2
    assert enqueue.engine_queue().count == 2


def test_a_sequence_number_past_one_byte_reaches_subscribers_whole(clean_redis):
    execution_id = str(uuid.uuid4())
    clean_redis.set(SEQUENCE_KEY.format(execution_id), 2**40 - 1)
    subscriber = listen(clean_redis, execution_id)
    dispatch_of(execution_id, "RUNNING").send()
    assert received(subscriber, 1)[0]["sequence"] == 2**40


def test_an_encrypting_channel_layer_gets_its_sequence_numbers_first(clean_redis, monkeypatch):
    serializer = get_channel_layer()._serializer
    monkeypatch.setattr(serializer, "crypter", MultiFernet([serializer.make_fernet("a key")]))
    execution_id = str(uuid.uuid4())
    subscriber = listen(clean_redis, execution_id)
    sent = Sent(monkeypatch)
    dispatch_of(execution_id, "RUNNING").send()
    assert sent.round_trips == 2  # the marker is hidden: the numbers are taken before the publishes
    assert received(subscriber, 1)[0]["sequence"] == 1


def worker_key_life(worker_key: str) -> int:
    """An RQ job: how long the worker's own key has left to live while the worker runs a job."""
    from rq import get_current_job

    return get_current_job().connection.ttl(worker_key)


def test_a_busy_worker_beats_its_heart_with_its_jobs_and_its_key_never_comes_near_expiring(clean_redis, monkeypatch):
    queue = rq.Queue("heartbeats", connection=clean_redis)
    worker = EngineWorker([queue], connection=clean_redis)
    jobs = [queue.enqueue(worker_key_life, worker.key) for _ in range(20)]
    sent = Sent(monkeypatch)
    worker.work(burst=True, logging_level="WARNING")

    # RQ asks for a lone heartbeat (three commands) two or three times per job, besides the ones it sends
    # with a job's bookkeeping; the worker sends one as it starts listening and leaves out the rest.
    lone_beats = [batch for batch in sent.batches if batch == ["HSET", "EXPIRE", "EXPIRE"]]
    assert len(lone_beats) <= 2
    assert ["EXPIRE"] not in sent.batches  # never a beat's commands one round trip each
    for job in jobs:
        job.refresh()
        assert job.get_status() == "finished"
        assert job.return_value() > 60  # seconds left: the beats left out never let the key run down


def test_a_worker_beats_again_once_the_last_beat_is_old(clean_redis, monkeypatch):
    worker = EngineWorker([rq.Queue("heartbeats", connection=clean_redis)], connection=clean_redis)
    sent = Sent(monkeypatch)
    worker.heartbeat()
    worker.heartbeat()
    assert sent.round_trips == 1  # three commands in one pipeline; the second beat is left out
    assert sent.commands == ["HSET", "EXPIRE", "EXPIRE"]
    monkeypatch.setattr(workers, "HEARTBEAT_SECONDS", 0.0)
    worker.heartbeat()
    assert sent.round_trips == 2
    assert 60 < clean_redis.ttl(worker.key) <= worker.worker_ttl + 60
