"""``manage.py bench_engine_work``: how much work the engine does per stage, counted, not timed.

On a shared or busy machine the timings of ``bench_engine`` swing by half
from one run to the next. This command counts instead: it queues
``--executions`` executions of a chain of ``--stages`` ``evaluateVariables``
stages, runs them in this process on one burst worker under cProfile, and
prints the Python function calls, the SQL statements and the Redis round
trips (commands or pipelines sent) the worker made per stage. All three are
the same from run to run for the same code (with ENGINE_INLINE_SECONDS=0
exactly; with the default inline budget nearly, since how many steps run
inline follows the clock), so comparing two trees (run the command in each,
on a database of its own) shows what a change costs the engine even when the
machine is noisy. The pipeline, its executions and their events are deleted
afterwards.

The worker runs no periodic jobs during the burst: they run by the clock (at
most once a second), so how many ran would follow how slow the machine was,
and on a loaded one the sweeper would even re-queue steps it took for lost.
Delivering the run's events to the registered consumers (notifications,
triggers, ...) is then counted on its own line, after the burst, until they
have all been taken.
"""

from __future__ import annotations

import cProfile
import math
import pstats
import time

from django.core.management.base import BaseCommand
from django.db import connection
from django.test.utils import CaptureQueriesContext
from redis.connection import AbstractConnection

from apps.pipelines import eventlog
from apps.pipelines.enqueue import engine_queue
from apps.pipelines.models import Application, Event
from apps.pipelines.services import do_save_pipeline, do_start_execution
from cdplatform.workers import EngineWorker

APPLICATION = "bench-engine-work"


class Command(BaseCommand):
    help = "Count the engine's Python calls and SQL statements per stage (deterministic, unlike timings)."

    def add_arguments(self, parser):
        parser.add_argument("--executions", type=int, default=60, help="executions queued before the worker runs")
        parser.add_argument("--stages", type=int, default=10, help="stages per execution (a chain)")

    def handle(self, *args, executions: int, stages: int, **options):
        queue = engine_queue()
        if queue.count:
            self.stderr.write(f"the engine's queue holds {queue.count} jobs: use a Redis database of its own")
            return
        pipeline, _ = do_save_pipeline({"application": APPLICATION, "name": "chain", "stages": _chain(stages)})
        try:
            for _ in range(executions):
                do_start_execution(pipeline)
            calls, statements, round_trips = _count(queue)
            delivery = _count_delivery()
        finally:
            Application.objects.filter(name=APPLICATION).delete()
            Event.objects.filter(application_name=APPLICATION).delete()
        total = executions * stages
        self.stdout.write(f"{executions} executions x {stages} stages on one burst worker")
        self.stdout.write(f"python calls:   {calls:,} ({calls / total:,.0f} per stage)")
        self.stdout.write(f"sql statements: {statements:,} ({statements / total:.2f} per stage)")
        self.stdout.write(f"redis round trips: {round_trips:,} ({round_trips / total:.2f} per stage)")
        if delivery is None:
            self.stdout.write("event delivery: not counted (the run's events did not become final within 60 s)")
            return
        events, calls, statements = delivery
        self.stdout.write(
            f"event delivery to {len(eventlog.CONSUMERS)} consumers afterwards ({events:,} events): "
            f"{calls / total:,.0f} python calls and {statements / total:.2f} sql statements per stage"
        )


def _chain(count: int) -> list[dict]:
    return [
        {
            "refId": str(index),
            "name": f"Step {index}",
            "type": "evaluateVariables",
            "variables": [{"key": f"v{index}", "value": index}],
            "requisiteStageRefIds": [str(index - 1)] if index > 1 else [],
        }
        for index in range(1, count + 1)
    ]


def _count(queue) -> tuple[int, int, int]:
    """Run the queue dry on one burst worker in this process; its Python calls, SQL statements and Redis
    round trips."""
    worker = EngineWorker([queue], connection=queue.connection)
    worker._next_periodic_check = math.inf  # no periodic jobs in the burst (see the module docstring)
    profile = cProfile.Profile()
    with CaptureQueriesContext(connection) as queries:
        profile.enable()
        worker.work(burst=True, logging_level="WARNING")
        profile.disable()
    stats = pstats.Stats(profile)
    return stats.total_calls, len(queries.captured_queries), _round_trips(stats)


def _round_trips(stats: pstats.Stats) -> int:
    """How often a Redis connection sent something (a command, or a pipeline's commands together)."""
    code = AbstractConnection.send_packed_command.__code__
    entry = stats.stats.get((code.co_filename, code.co_firstlineno, code.co_name))  # type: ignore[attr-defined]
    return entry[1] if entry else 0


def _count_delivery(timeout: float = 60.0) -> tuple[int, int, int] | None:
    """Deliver the run's events to every registered consumer; how many, and the Python calls and SQL it took.

    None when the events did not become final (readable) in time: a long
    transaction elsewhere on the server holds them back (see eventlog.py).
    """
    written = Event.objects.filter(application_name=APPLICATION).count()
    deadline = time.monotonic() + timeout
    while not eventlog.read_after(*_last_event(), 1):
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)
    profile = cProfile.Profile()
    with CaptureQueriesContext(connection) as queries:
        profile.enable()
        while eventlog.run_consumers(budget_seconds=60.0):
            pass
        profile.disable()
    return written, pstats.Stats(profile).total_calls, len(queries.captured_queries)


def _last_event() -> tuple[int, int]:
    """The cursor just before the run's last event."""
    last = Event.objects.filter(application_name=APPLICATION).order_by("-xact", "-id").values_list("xact", "id")[0]
    return last[0], last[1] - 1
