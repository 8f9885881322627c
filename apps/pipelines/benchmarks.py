"""Jobs used by ``manage.py bench_engine`` as the bare-RQ baseline the engine is measured against."""

from apps.pipelines.jobs import JOB_OPTIONS, engine_queue


def noop_chain(remaining: int, done_key: str) -> None:
    """A do-nothing job that enqueues the next link of its chain, or counts the chain done at its end.

    It enqueues exactly as the engine does (same queue object, same options),
    so the difference between the two is the engine's own work.
    """
    queue = engine_queue()
    if remaining > 1:
        queue.enqueue(noop_chain, remaining - 1, done_key, **JOB_OPTIONS)
    else:
        queue.connection.incr(done_key)
