"""Jobs used by ``manage.py bench_engine`` as the bare-RQ baseline the engine is measured against."""

import django_rq

from apps.pipelines.jobs import JOB_OPTIONS, QUEUE_NAME


def noop_chain(remaining: int, done_key: str) -> None:
    """A do-nothing job that enqueues the next link of its chain, or counts the chain done at its end."""
    queue = django_rq.get_queue(QUEUE_NAME)
    if remaining > 1:
        queue.enqueue(noop_chain, remaining - 1, done_key, **JOB_OPTIONS)
    else:
        queue.connection.incr(done_key)
