"""The engine's queue and the functions that put its messages on it.

Jobs are named by dotted path (``apps.pipelines.jobs.run_stage``), not by
function object: the engine enqueues its next messages without importing
``jobs.py``, which imports the engine to run them. RQ records the same
function name either way, so jobs already waiting in Redis keep working.

All engine jobs go to the ``default`` queue, so django-rq's plain
``manage.py rqworker --with-scheduler`` serves them; delayed jobs (polls,
waits) need the worker's scheduler.

The two messages the sweeper recovers have job ids of their own, one per
message: ``run_stage-<stage id>-<run token>`` and ``start_execution-<execution
id>``. Queueing one is a no-op while RQ holds a job under its id, so the
same message queued twice is one job; and :func:`held_messages` asks RQ
which messages it still holds, so the sweeper re-queues only those it lost
(see ``engine/sweeper.py``).
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

import django_rq
import redis
from django.conf import settings
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import ScheduledJobRegistry
from rq.utils import now, utcformat

from cdplatform.lua import LuaScript

logger = logging.getLogger(__name__)

QUEUE_NAME = "default"
# Results of engine jobs are never read: keeping none saves Redis work on every step.
JOB_OPTIONS = {"result_ttl": 0, "job_timeout": 600}

# The RQ entry points (apps/pipelines/jobs.py), by the names RQ records for them.
START_EXECUTION = "apps.pipelines.jobs.start_execution"
RUN_STAGE = "apps.pipelines.jobs.run_stage"
WAKE_STAGE = "apps.pipelines.jobs.wake_stage"
START_WAITING = "apps.pipelines.jobs.start_waiting"
RUN_CANCEL_HOOK = "apps.pipelines.jobs.run_cancel_hook"

_queues: dict[str, Queue] = {}


def engine_queue() -> Queue:
    """The engine's queue, one per Redis URL per process.

    django-rq builds a new Redis connection pool on every ``get_queue`` call;
    reusing one saves a connection handshake on every engine step.
    """
    url = str(settings.RQ_QUEUES[QUEUE_NAME]["URL"])
    queue = _queues.get(url)
    if queue is None:
        queue = _queues[url] = django_rq.get_queue(QUEUE_NAME)
    return queue


def run_stage_job_id(stage_id, token: int) -> str:
    """The RQ job id of one step of a stage: one message per stage and run token."""
    return f"run_stage-{stage_id}-{token}"


def start_execution_job_id(execution_id) -> str:
    """The RQ job id of an execution's start message."""
    return f"start_execution-{execution_id}"


def enqueue_run_stage(stage_id: str, token: int, delay: float = 0.0, pipeline=None) -> None:
    """Queue one step of a stage, now or after ``delay`` seconds; on ``pipeline`` when given (sent by the caller).

    A no-op while RQ holds the step's job already (:func:`enqueue_once`).
    """
    enqueue_once(RUN_STAGE, (str(stage_id), token), run_stage_job_id(stage_id, token), delay, pipeline)


def enqueue_cancel_hook(stage_id: str, pipeline=None) -> None:
    """Queue the cancel hook of a canceled stage."""
    engine_queue().enqueue(RUN_CANCEL_HOOK, str(stage_id), pipeline=pipeline, **JOB_OPTIONS)


def enqueue_wake_stage(stage_id: str, pipeline=None) -> None:
    """Queue a waiting stage's task to run now (its child execution ended)."""
    engine_queue().enqueue(WAKE_STAGE, str(stage_id), pipeline=pipeline, **JOB_OPTIONS)


def enqueue_start_waiting(pipeline_id: str, pipeline=None) -> None:
    """Queue the start of a pipeline's next waiting (BUFFERED) execution."""
    engine_queue().enqueue(START_WAITING, str(pipeline_id), pipeline=pipeline, **JOB_OPTIONS)


def enqueue_start_execution(execution_id) -> bool:
    """Queue an execution's start (called after the commit that created it); False if RQ held it already.

    With Redis unreachable the execution stays NOT_STARTED in the database and
    the sweeper starts it later; the request that created it does not fail.
    """
    try:
        return _enqueue_start(execution_id)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        logger.warning("Redis unreachable: execution %s will be started by the sweeper", execution_id)
        return False


def _enqueue_start(execution_id) -> bool:
    return bool(enqueue_once(START_EXECUTION, (str(execution_id),), start_execution_job_id(execution_id)))


# Saves the job and puts it on the queue (or the scheduled registry) in one step, unless a job with its id
# exists: RQ's own ``unique=True`` does the same, but outside the caller's pipeline. Called by its SHA1:
# every step of the engine queues its next one with it.
_ENQUEUE_ONCE = LuaScript("""
-- KEYS: the job's hash, the queue (a list) or the scheduled registry (a sorted set), the set of queues
-- ARGV: the job id, its scheduled time ('' to queue it now), the queue's key, then the hash's fields and values
if redis.call('EXISTS', KEYS[1]) == 1 then
    return 0
end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('SADD', KEYS[3], ARGV[3])
if ARGV[2] == '' then
    redis.call('RPUSH', KEYS[2], ARGV[1])
else
    redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
end
return 1
""")


def enqueue_once(func: str, args: tuple, job_id: str, delay: float = 0.0, pipeline=None) -> int | None:
    """Queue the job ``job_id`` (after ``delay`` seconds), unless a job with that id exists in Redis.

    The job is the one ``Queue.enqueue`` (or ``enqueue_in``) would save; on
    ``pipeline`` it goes to Redis with the caller's other commands, in the
    same round trip (and None is returned; send the pipeline with
    :func:`cdplatform.lua.execute`); else 1 if it was queued, 0 if not.
    """
    queue = engine_queue()
    scheduled = delay > 0
    job = queue.create_job(
        func, args=args, job_id=job_id, result_ttl=JOB_OPTIONS["result_ttl"], timeout=JOB_OPTIONS["job_timeout"],
        status=JobStatus.SCHEDULED if scheduled else JobStatus.QUEUED,
    )
    job.origin = queue.name
    if scheduled:
        target = ScheduledJobRegistry(queue=queue).key
        score = str(calendar.timegm((now() + timedelta(seconds=delay)).utctimetuple()))
    else:
        job.enqueued_at = now()
        target, score = queue.key, ""
    fields = [item for key, value in job.to_dict().items() if value is not None for item in (key, value)]
    keys, argv = (job.key, target, queue.redis_queues_keys), (job.id, score, queue.key, *fields)
    if pipeline is not None:
        _ENQUEUE_ONCE.queue(pipeline, keys, argv)
        return None
    return int(_ENQUEUE_ONCE(queue.connection, keys, argv))


class Held(Enum):
    """What RQ holds of one message, as :func:`held_messages` reads it."""

    WAITING = "waiting"  # queued, scheduled, deferred, or started less than a lease ago: it will run
    GONE = "gone"  # no job under its id: never queued, deleted, or Redis lost it
    # Says queued but is on no queue: a worker has just taken it (and will say started in a moment),
    # or took it and died before it could.
    TAKEN = "taken"
    # A job that will not run: failed, started more than a lease ago (its worker died mid-job), or
    # scheduled to run more than a lease ago and never moved to the queue (no scheduler runs).
    DEAD = "dead"


# Reads every message of a batch in one step, so no job moves between two of its reads. A queued
# job is looked for on the queue and on its intermediate queue (where a worker takes it first);
# the queue's ids are read once, and only when a job says it is queued. Only what may not be
# waiting comes back, after a count of the messages found on a queue: in a backlog of thousands,
# every queued message is found on the queue here, and sending back each one's fields cost more
# than looking.
_HELD = LuaScript("""
-- KEYS: the queue, its intermediate queue, the scheduled registry, then one job hash per message
-- ARGV: the earliest scheduled time that is not overdue (epoch seconds), then the job ids, in the
--       order of their hashes
-- Returns, flat: how many messages are queued on a queue; then, for each message that is not
-- queued on a queue, deferred, or scheduled on time: its position in ARGV less one, its status
-- and started_at
local scheduled_before = tonumber(ARGV[1])
local on_queue = nil
local queued = 0
local result = {0}
for index = 2, #ARGV do
    local job_id = ARGV[index]
    local fields = redis.call('HMGET', KEYS[2 + index], 'status', 'started_at')
    local status = fields[1] or ''
    local waiting = status == 'deferred'
    if status == 'queued' then
        if on_queue == nil then
            on_queue = {}
            for _, key in ipairs({KEYS[1], KEYS[2]}) do
                for _, queued_id in ipairs(redis.call('LRANGE', key, 0, -1)) do
                    on_queue[queued_id] = true
                end
            end
        end
        waiting = on_queue[job_id] == true
        if waiting then
            queued = queued + 1
        end
    elseif status == 'scheduled' then
        local score = redis.call('ZSCORE', KEYS[3], job_id)
        waiting = score ~= false and tonumber(score) >= scheduled_before
    end
    if not waiting then
        table.insert(result, index - 1)
        table.insert(result, status)
        table.insert(result, fields[2] or '')
    end
end
result[1] = queued
return result
""")


@dataclass(frozen=True)
class HeldPage:
    """What RQ holds of each of a page of messages, and how many of them wait on a queue for a worker."""

    held: dict[str, Held]
    on_queue: int

    @property
    def all_on_queue(self) -> bool:
        """Every message waits on the queue: each will run in its turn, as will whatever was queued after."""
        return self.on_queue == len(self.held)


def held_messages(job_ids: list[str], lease_start: datetime) -> dict[str, Held]:
    """What RQ holds under each of ``job_ids``, in one round trip; raises if Redis is unreachable."""
    return held_page(job_ids, lease_start).held


def held_page(job_ids: list[str], lease_start: datetime) -> HeldPage:
    """What RQ holds under each of ``job_ids``, in one round trip; raises if Redis is unreachable.

    ``lease_start`` is now less a lease: a job started before it, or
    scheduled to run before it, is taken for dead (its worker, or every
    scheduler, is gone). A job that says it is queued but is on no queue
    is :attr:`Held.TAKEN`.
    """
    if not job_ids:
        return HeldPage({}, 0)
    queue = engine_queue()
    keys = [queue.key, queue.intermediate_queue_key, ScheduledJobRegistry(queue=queue).key]
    keys += [Job.key_for(job_id) for job_id in job_ids]
    scheduled_before = calendar.timegm(lease_start.utctimetuple())
    on_queue, *rows = _HELD(queue.connection, keys, [scheduled_before, *job_ids])
    held = dict.fromkeys(job_ids, Held.WAITING)
    started_before = utcformat(lease_start)
    for offset in range(0, len(rows), 3):
        position, status, started_at = rows[offset:offset + 3]
        held[job_ids[int(position) - 1]] = _not_waiting(_text(status), _text(started_at), started_before)
    return HeldPage(held, int(on_queue))


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _not_waiting(status: str, started_at: str, started_before: str) -> Held:
    """What a message the script did not find waiting (queued on a queue, deferred, scheduled on time) is."""
    if not status:
        return Held.GONE
    if status == JobStatus.QUEUED:
        return Held.TAKEN  # on neither queue
    if status == JobStatus.STARTED:
        # RQ's timestamps have one fixed format, so they sort as text.
        return Held.WAITING if started_at >= started_before else Held.DEAD
    return Held.DEAD  # failed, stopped, canceled, finished, or scheduled and overdue


def discard(job_id: str) -> None:
    """Delete what RQ keeps of a dead job (its hash, its place in RQ's registries), so its id can be queued again."""
    queue = engine_queue()
    try:
        job = Job.fetch(job_id, connection=queue.connection, serializer=queue.serializer)
    except Exception:  # noqa: BLE001  (NoSuchJobError, or a hash RQ cannot read: delete the hash alone)
        queue.connection.delete(Job.key_for(job_id))
        return
    job.delete()
