"""Jobs used by ``manage.py bench_engine`` as the bare-RQ baseline the engine is measured against."""

import time

from apps.pipelines.enqueue import JOB_OPTIONS, engine_queue


def end_key(done_key: str) -> str:
    """The Redis sorted set holding the time (epoch seconds) the last chain counted on ``done_key`` ended."""
    return f"{done_key}:end"


def noop_chain(remaining: int, done_key: str) -> None:
    """A do-nothing job that enqueues the next link of its chain, or counts the chain done at its end.

    It enqueues exactly as the engine does (same queue object, same options),
    so the difference between the two is the engine's own work. The last link
    also records when it ended (the latest end wins), so the benchmark's wall
    time does not depend on how often it polls.
    """
    queue = engine_queue()
    if remaining > 1:
        queue.enqueue(noop_chain, remaining - 1, done_key, **JOB_OPTIONS)
        return
    with queue.connection.pipeline(transaction=False) as pipe:
        pipe.incr(done_key)
        pipe.zadd(end_key(done_key), {"end": time.time()}, gt=True)
        pipe.execute()
