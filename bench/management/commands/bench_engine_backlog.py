"""``manage.py bench_engine_backlog``: a backlog far longer than the lease runs every job once.

Queues ``--executions`` executions of a chain of ``--stages`` no-op stages
(``wait`` 0 s) at once, in one transaction, on ``--workers`` workers whose
lease (``--lease-seconds``) is far shorter than the backlog takes to drain,
with the sweeper running every ``--sweep-seconds``. The workers run with
ENGINE_INLINE_SECONDS=0, so every message is one job and the jobs an
execution needs are known: its start and one step per stage. Printed:

* jobs run against jobs expected, and the difference (duplicates: a
  sweeper that re-queued stages only waiting in the queue would show them);
* stages the sweeper counted as lost (``step_failures``), which must be 0;
* the wall time, from the commit that queued the backlog to the end time
  recorded by its last execution;
* per-stage overhead in the backlog against a lone execution measured in
  the same run: worker time per stage in the backlog (wall time x workers /
  stages) over the wall time per stage of one execution alone on one worker
  (the median of ``--single-runs``, each run with nothing else queued).

Workers, cleaning up and the refusal of a busy queue are ``bench_engine``'s.
Run it on PostgreSQL and Redis (DATABASE_URL, REDIS_URL) of its own; the
machine should be idle for the default 10000 executions.
"""

import signal
import statistics

from django.core.management.base import CommandError

from apps.pipelines.enqueue import QUEUE_NAME, engine_queue
from apps.pipelines.models import StageExecution
from bench.management.commands import bench_engine


class Command(bench_engine.Command):
    help = "Queue a backlog far longer than the lease: every job runs once, and what a stage costs in it."

    def add_arguments(self, parser):
        parser.add_argument("--executions", type=int, default=10000, help="executions queued at once")
        parser.add_argument("--stages", type=int, default=3, help="stages per execution (a chain)")
        parser.add_argument("--workers", type=int, default=2, help="workers draining the backlog")
        parser.add_argument("--lease-seconds", type=int, default=5, help="ENGINE_STAGE_LEASE_SECONDS for the workers")
        parser.add_argument("--sweep-seconds", type=int, default=1, help="ENGINE_SWEEP_INTERVAL_SECONDS for them")
        parser.add_argument("--single-runs", type=int, default=7, help="executions run alone, one after another")
        parser.add_argument("--timeout", type=float, default=3600, help="seconds the backlog may take")

    def handle(self, *args, **options):
        self.queue = engine_queue()
        if self.queue.count:
            raise CommandError(f"queue {QUEUE_NAME!r} has {self.queue.count} jobs waiting; run on an idle Redis")
        sizes = ("executions", "stages", "workers", "lease_seconds", "sweep_seconds", "single_runs")
        if any(options[size] < 1 for size in sizes):
            raise CommandError(f"{', '.join(sizes)} must be at least 1")
        self.stages, self.timeout, self.inline = options["stages"], options["timeout"], 0.0
        self.worker_env = {
            "ENGINE_STAGE_LEASE_SECONDS": str(options["lease_seconds"]),
            "ENGINE_SWEEP_INTERVAL_SECONDS": str(options["sweep_seconds"]),
        }
        self.execution_ids: list[str] = []
        self.done_keys: list[str] = []
        self.processes = []
        previous = signal.signal(signal.SIGTERM, bench_engine._interrupt)
        try:
            self._bench_backlog(options)
        except KeyboardInterrupt:
            raise CommandError("interrupted; workers stopped and bench data deleted") from None
        finally:
            signal.signal(signal.SIGTERM, previous)
            self._clean_up()

    def _bench_backlog(self, options: dict) -> None:
        executions, workers, lease = options["executions"], options["workers"], options["lease_seconds"]
        self.stdout.write(
            f"bench_engine_backlog: {executions} executions x {self.stages} stages queued at once on {workers} "
            f"workers; lease {lease} s, sweep every {options['sweep_seconds']} s, inline_seconds 0"
        )
        self.pipeline = self._save_pipeline()
        with self._workers(1):
            singles = [self._run(1, 1) for _ in range(options["single_runs"])]
        with self._workers(workers):
            backlog = self._run(executions, workers)
        expected = executions * (1 + self.stages)  # its start, then one step per stage
        lost = StageExecution.objects.filter(execution_id__in=self.execution_ids, step_failures__gt=0).count()
        alone_ms = statistics.median(run.elapsed for run in singles) / self.stages * 1000
        self.stdout.write(f"jobs run: {backlog.jobs}, expected {expected}, duplicates {backlog.jobs - expected}")
        self.stdout.write(f"stages the sweeper counted lost: {lost}")
        self.stdout.write(
            f"wall time: {backlog.elapsed:.2f} s ({backlog.elapsed / lease:.1f} leases; "
            f"{backlog.per_second:.0f} stage transitions/s)"
        )
        self.stdout.write(
            f"alone: {alone_ms:.2f} ms wall time per stage (median of {len(singles)} single executions, 1 worker)"
        )
        self.stdout.write(
            f"backlog: {backlog.worker_ms:.2f} ms worker time per stage (wall x {workers} workers / "
            f"{backlog.steps} stages)"
        )
        self._print_cpu([backlog])
        self.stdout.write(f"per-stage overhead in the backlog / alone: {backlog.worker_ms / alone_ms:.2f}")
        if backlog.elapsed <= lease:
            self.stdout.write("note: the backlog drained within one lease, so it proves nothing about the sweeper")
