"""``manage.py bench_engine``: the engine's per-stage overhead against a chain of bare RQ jobs.

Starts its own workers (``manage.py rqworker``, the worker class from
settings), then in one run:

* baseline: E chains of S bare no-op RQ jobs, each job enqueueing the next;
* engine: E executions of a pipeline of S no-op stages (``wait`` 0 s) in a chain.

Per-stage overhead is worker time per stage: wall time x workers / (E x S).
The ratio engine/baseline is the figure to watch; the jobs the workers ran
per stage are printed beside it. ``--inline-seconds`` sets the workers'
ENGINE_INLINE_SECONDS (0: one job per stage step). Run it on PostgreSQL and
Redis (DATABASE_URL, REDIS_URL); it refuses a Redis queue that has work in it.
"""

import os
import subprocess
import sys
import time
import uuid

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from rq import Worker

from apps.pipelines.benchmarks import noop_chain
from apps.pipelines.choices import COMPLETE, Status
from apps.pipelines.jobs import JOB_OPTIONS, QUEUE_NAME, engine_queue
from apps.pipelines.models import Application, Execution
from apps.pipelines.services import do_save_pipeline, do_start_execution

BENCH_APPLICATION = "bench-engine"


class Command(BaseCommand):
    help = "Measure the engine's per-stage overhead against chained bare RQ jobs on the same workers."

    def add_arguments(self, parser):
        parser.add_argument("--executions", type=int, default=200)
        parser.add_argument("--stages", type=int, default=10)
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--timeout", type=float, default=600)
        parser.add_argument("--inline-seconds", type=float, default=None, help="ENGINE_INLINE_SECONDS for the workers")

    def handle(self, *args, executions, stages, workers, timeout, inline_seconds, **options):
        queue = engine_queue()
        if queue.count:
            raise CommandError(f"queue {QUEUE_NAME!r} has {queue.count} jobs waiting; run on an idle Redis")
        engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        inline = settings.ENGINE_INLINE_SECONDS if inline_seconds is None else inline_seconds
        self.stdout.write(
            f"database={engine} redis={settings.REDIS_URL} worker_class={settings.RQ['WORKER_CLASS']} "
            f"workers={workers} executions={executions} stages={stages} inline_seconds={inline:g}"
        )
        processes = self._start_workers(workers, queue.connection, inline)
        try:
            jobs_before = self._jobs_done(queue.connection)
            baseline = self._baseline(queue, executions, stages, timeout)
            jobs_between = self._jobs_done(queue.connection)
            measured = self._engine(executions, stages, timeout)
            engine_jobs = self._jobs_done(queue.connection) - jobs_between
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(30)
            Application.objects.filter(name=BENCH_APPLICATION).delete()
        total = executions * stages
        base_per_stage = baseline * workers / total * 1000
        engine_per_stage = measured * workers / total * 1000
        self.stdout.write(
            f"bare RQ chain: {baseline:.2f} s, {base_per_stage:.2f} ms worker time per job "
            f"({(jobs_between - jobs_before) / total:.2f} jobs per link)"
        )
        self.stdout.write(
            f"engine:        {measured:.2f} s, {engine_per_stage:.2f} ms worker time per stage "
            f"({engine_jobs / total:.2f} jobs per stage)"
        )
        self.stdout.write(f"engine transitions/s: {total / measured:.0f} (stages completed per second)")
        self.stdout.write(f"ratio engine / bare RQ: {engine_per_stage / base_per_stage:.2f}")

    def _jobs_done(self, connection) -> int:
        # Other workers on the same Redis would count too; the empty-queue check makes that unlikely.
        return sum(worker.successful_job_count for worker in Worker.all(connection=connection))

    def _start_workers(self, count: int, connection, inline_seconds: float) -> list[subprocess.Popen]:
        before = len(Worker.all(connection=connection))
        env = {**os.environ, "ENGINE_INLINE_SECONDS": str(inline_seconds)}
        processes = [
            subprocess.Popen(
                [sys.executable, "manage.py", "rqworker", "--with-scheduler", "--verbosity", "0"],
                cwd=settings.BASE_DIR,
                env=env,
            )
            for _ in range(count)
        ]
        deadline = time.monotonic() + 60
        while len(Worker.all(connection=connection)) < before + count:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise CommandError("workers did not start")
            time.sleep(0.1)
        return processes

    def _baseline(self, queue, chains: int, length: int, timeout: float) -> float:
        done_key = f"bench-engine:{uuid.uuid4()}"
        started = time.perf_counter()
        with queue.connection.pipeline() as pipe:
            for _ in range(chains):
                queue.enqueue(noop_chain, length, done_key, pipeline=pipe, **JOB_OPTIONS)
            pipe.execute()
        deadline = started + timeout
        while int(queue.connection.get(done_key) or 0) < chains:
            if time.perf_counter() > deadline:
                raise CommandError("baseline did not finish in time")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        queue.connection.delete(done_key)
        return elapsed

    def _engine(self, count: int, length: int, timeout: float) -> float:
        stages = [
            {"refId": str(i), "name": f"noop {i}", "type": "wait", "waitTime": 0,
             "requisiteStageRefIds": [str(i - 1)] if i > 1 else []}
            for i in range(1, length + 1)
        ]
        pipeline, _ = do_save_pipeline({"application": BENCH_APPLICATION, "name": "noop-chain", "stages": stages})
        with transaction.atomic():
            ids = [do_start_execution(pipeline, user="bench").id for _ in range(count)]
            started = time.perf_counter()
        deadline = started + timeout
        while Execution.objects.filter(id__in=ids).exclude(status__in=COMPLETE).exists():
            if time.perf_counter() > deadline:
                raise CommandError("engine run did not finish in time")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        failed = Execution.objects.filter(id__in=ids).exclude(status=Status.SUCCEEDED).count()
        if failed:
            raise CommandError(f"{failed} executions did not succeed")
        return elapsed
