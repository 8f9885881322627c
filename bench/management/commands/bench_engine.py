"""``manage.py bench_engine``: the engine's per-stage overhead against bare RQ jobs, alone and under load.

Starts its own workers (``manage.py rqworker --with-scheduler``, the worker
class from settings), fresh for each worker count, and in one run measures:

* baseline, on ``--workers`` W workers: E (``--executions``) chains of S
  (``--stages``) bare no-op RQ jobs, each job enqueueing the next;
* engine, on the same workers: E executions of a pipeline of S no-op stages
  (``wait`` 0 s) in a chain, all queued at once;
* under load, on the same workers: N (``--load-executions``) executions
  created in one transaction, so their start jobs land in the queue together;
* alone, on one worker: ``--single-runs`` executions run one after another,
  each with nothing else queued (one worker, so that exactly one is busy);
* throughput: ``--throughput-executions`` executions queued at once, on
  fresh workers for each count of ``--throughput-workers`` (default 1 and 2).

Wall time runs from just before the commit (or the Redis round trip) that
queues the work to the end time recorded by the last execution (or chain) to
end, so how often the command polls does not count. (It stops before the
last job's work after its final commit, such as publishing events and RQ's
bookkeeping: for one execution alone that work is left out, under load it
delays the next job and counts.) From it:

* worker time per stage = wall time x workers / stages completed: what a
  worker pays per stage while every worker is busy (baseline, engine, under
  load);
* wall time per stage alone = median wall time of one execution / S, on
  one worker: what that worker pays per stage when nothing competes with it;
* per-stage overhead under load / alone = worker time per stage under load /
  wall time per stage alone (goal: at most 1.20);
* throughput = stage transitions (stages completed) per second of wall time.

Beside them (Linux, from /proc) it prints the CPU this command's workers
used per stage and how many of the machine's CPUs were busy (by anything,
other programs included) while the work was in flight: a saturated or shared
machine shows there, and under load the workers share the CPUs with
PostgreSQL and Redis. (A run may outlast ENGINE_STAGE_LEASE_SECONDS: the
sweeper re-queues no stage still waiting in the queue, see
``bench_engine_backlog``.)

The ratio engine / bare RQ is the other figure to watch; the jobs the workers
ran per stage are printed beside each run. ``--inline-seconds`` sets the
workers' ENGINE_INLINE_SECONDS (0: one job per stage step). Run it on
PostgreSQL and Redis (DATABASE_URL, REDIS_URL); it refuses a Redis queue that
has work in it. At the end, also on error, Ctrl-C or SIGTERM, it stops its
workers (SIGTERM, then SIGKILL to each worker's process group after
WORKER_STOP_SECONDS) and deletes the bench application, its executions, their
Redis keys and any of its jobs still queued.
"""

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Max
from rq import Worker
from rq.worker import WorkerStatus

from apps.pipelines import jobs
from apps.pipelines.choices import COMPLETE, Status
from apps.pipelines.enqueue import JOB_OPTIONS, QUEUE_NAME, engine_queue
from apps.pipelines.events import SEQUENCE_KEY
from apps.pipelines.models import Application, Execution, Pipeline, StageExecution
from apps.pipelines.services import do_save_pipeline, do_start_execution
from bench.jobs import end_key, noop_chain

BENCH_APPLICATION = "bench-engine"
DONE_KEY_PREFIX = "bench-engine:"
WORKER_START_SECONDS = 60
WORKER_STOP_SECONDS = 10
SETTLE_SECONDS = 10
# Executions end about in the order they were queued: each poll looks at the oldest ones still pending.
POLL_BATCH = 50


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    """Send ``signum`` to the process group the worker ``process`` leads (it was started in a session of its own)."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass  # the whole group has exited


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _func_name(func: Callable) -> str:
    return f"{func.__module__}.{func.__qualname__}"


@dataclass(frozen=True)
class Cpu:
    """CPU seconds used during a window of ``seconds``: by the whole machine (busy) and by this command's workers."""

    seconds: float
    machine: float
    workers: float

    def __add__(self, other: "Cpu") -> "Cpu":
        return Cpu(self.seconds + other.seconds, self.machine + other.machine, self.workers + other.workers)


def _cpu_seconds(pids: list[int]) -> tuple[float, float] | None:
    """(busy CPU seconds of the machine since boot, CPU seconds of ``pids``), from /proc; None without it."""
    try:
        with open("/proc/stat") as stat:
            user, nice, system, idle, iowait, irq, softirq, steal = map(int, stat.readline().split()[1:9])
        machine = user + nice + system + irq + softirq + steal
        workers = 0
        for pid in pids:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            workers += int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, ValueError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return machine / tick, workers / tick


@dataclass(frozen=True)
class Run:
    """One measured run: ``count`` executions (or bare chains) of ``stages`` steps on ``workers`` workers."""

    count: int
    stages: int
    workers: int
    elapsed: float
    jobs: int
    cpu: Cpu | None = None

    @property
    def steps(self) -> int:
        return self.count * self.stages

    @property
    def worker_ms(self) -> float:
        """Worker time per stage in ms: wall time x workers / stages completed."""
        return self.elapsed * self.workers / self.steps * 1000

    @property
    def per_second(self) -> float:
        """Stage transitions (stages completed) per second."""
        return self.steps / self.elapsed

    @property
    def jobs_per_stage(self) -> float:
        return self.jobs / self.steps


class Command(BaseCommand):
    help = "Measure the engine's per-stage overhead against bare RQ jobs, alone and under load, and its throughput."

    # Settings (environment variables) the workers start with, beside ENGINE_INLINE_SECONDS.
    worker_env: dict[str, str] = {}

    def add_arguments(self, parser):
        parser.add_argument("--executions", type=int, default=200, help="executions (and bare chains) compared")
        parser.add_argument("--stages", type=int, default=10, help="stages per execution (jobs per bare chain)")
        parser.add_argument("--workers", type=int, default=2, help="workers for the comparison, alone and under load")
        parser.add_argument("--timeout", type=float, default=600, help="seconds each run may take")
        parser.add_argument("--inline-seconds", type=float, default=None, help="ENGINE_INLINE_SECONDS for the workers")
        parser.add_argument("--single-runs", type=int, default=7, help="executions run alone, one after another")
        parser.add_argument("--load-executions", type=int, default=1000, help="executions queued at once under load")
        parser.add_argument("--throughput-executions", type=int, default=500, help="executions per throughput run")
        parser.add_argument(
            "--throughput-workers", type=int, nargs="+", default=[1, 2], help="worker counts to measure throughput on"
        )

    def handle(self, *args, **options):
        self.queue = engine_queue()
        if self.queue.count:
            raise CommandError(f"queue {QUEUE_NAME!r} has {self.queue.count} jobs waiting; run on an idle Redis")
        sizes = ("executions", "stages", "workers", "single_runs", "load_executions", "throughput_executions")
        if any(options[size] < 1 for size in sizes) or min(options["throughput_workers"]) < 1:
            raise CommandError(f"{', '.join(sizes)} and throughput workers must be at least 1")
        self.stages = options["stages"]
        self.timeout = options["timeout"]
        inline_seconds = options["inline_seconds"]
        self.inline = settings.ENGINE_INLINE_SECONDS if inline_seconds is None else inline_seconds
        self.execution_ids: list[str] = []
        self.done_keys: list[str] = []
        self.processes: list[subprocess.Popen] = []
        self._print_header(options)
        previous = signal.signal(signal.SIGTERM, _interrupt)  # clean up on SIGTERM as on Ctrl-C
        try:
            self._bench(options)
        except KeyboardInterrupt:
            raise CommandError("interrupted; workers stopped and bench data deleted") from None
        finally:
            signal.signal(signal.SIGTERM, previous)
            self._clean_up()

    def _bench(self, options: dict) -> None:
        """Every measurement, each worker count on fresh workers of its own, printing each result as it comes."""
        workers, counts = options["workers"], list(dict.fromkeys(options["throughput_workers"]))
        self.pipeline = self._save_pipeline()
        with self._workers(workers):
            baseline = self._run(options["executions"], workers, bare=True)
            engine = self._run(options["executions"], workers)
            self._print_comparison(baseline, engine)
            load = self._run(options["load_executions"], workers)
        with self._workers(1):
            # One worker, so that exactly one is ever busy: with more, the next job of the
            # chain would start on another worker while the last one finishes its bookkeeping.
            singles = [self._run(1, 1) for _ in range(options["single_runs"])]
            self._print_load(singles, load)
            if 1 in counts:
                self._print_throughput(self._run(options["throughput_executions"], 1))
        for count in counts:
            if count != 1:
                with self._workers(count):
                    self._print_throughput(self._run(options["throughput_executions"], count))

    # --- Runs ---------------------------------------------------------------------------------------

    def _run(self, count: int, workers: int, *, bare: bool = False) -> Run:
        """Run ``count`` executions (or bare RQ chains) on the ``workers`` running workers: wall time and jobs done."""
        before = self._jobs_done()
        elapsed, cpu = self._bare_chains(count) if bare else self._executions(count)
        self._settle()
        return Run(count, self.stages, workers, elapsed, self._jobs_done() - before, cpu)

    def _bare_chains(self, count: int) -> tuple[float, Cpu | None]:
        """Queue ``count`` chains of bare RQ jobs in one round trip; seconds until the last one ended, and CPU used."""
        connection = self.queue.connection
        done_key = f"{DONE_KEY_PREFIX}{uuid.uuid4()}"
        self.done_keys.append(done_key)
        with connection.pipeline() as pipe:
            for _ in range(count):
                self.queue.enqueue(noop_chain, self.stages, done_key, pipeline=pipe, **JOB_OPTIONS)
            started, window = time.time(), self._cpu_window()
            pipe.execute()
        self._wait(lambda: int(connection.get(done_key) or 0) >= count, "bare RQ chains", poll=0.25)
        cpu = window()
        return connection.zscore(end_key(done_key), "end") - started, cpu

    def _executions(self, count: int) -> tuple[float, Cpu | None]:
        """Create ``count`` executions in one transaction (their start jobs land together); seconds to the last end.

        Also returns the CPU used from the commit until the command saw the last one end.
        """
        with transaction.atomic():
            ids = [do_start_execution(self.pipeline, user="bench").id for _ in range(count)]
            self.execution_ids.extend(str(execution_id) for execution_id in ids)
            started, window = time.time(), self._cpu_window()
        pending = list(ids)

        def all_ended() -> bool:
            oldest = pending[:POLL_BATCH]
            ended = set(Execution.objects.filter(id__in=oldest, status__in=COMPLETE).values_list("id", flat=True))
            pending[: len(oldest)] = [execution_id for execution_id in oldest if execution_id not in ended]
            return not pending

        self._wait(all_ended, "engine run", poll=0.02 if count == 1 else 0.25)
        cpu = window()
        executions = Execution.objects.filter(id__in=ids)
        failed = executions.exclude(status=Status.SUCCEEDED).count()
        if failed:
            raise CommandError(f"{failed} executions did not succeed")
        return executions.aggregate(end=Max("end_time"))["end"].timestamp() - started, cpu

    def _cpu_window(self) -> Callable[[], Cpu | None]:
        """Start measuring CPU; the returned function ends the window and returns what was used (None without /proc)."""
        pids = [process.pid for process in self.processes]
        started, before = time.perf_counter(), _cpu_seconds(pids)

        def end() -> Cpu | None:
            after = _cpu_seconds(pids)
            if before is None or after is None:
                return None
            return Cpu(time.perf_counter() - started, after[0] - before[0], after[1] - before[1])

        return end

    def _wait(self, done: Callable[[], bool], what: str, poll: float) -> None:
        deadline = time.monotonic() + self.timeout
        while not done():
            if time.monotonic() > deadline:
                raise CommandError(f"{what} did not finish in {self.timeout:g} s")
            if any(process.poll() is not None for process in self.processes):
                raise CommandError(f"a worker exited during the {what}")
            time.sleep(poll)

    def _settle(self) -> None:
        """Wait until the queue is empty and every worker idle (twice in a row), so job counts include the last jobs."""
        deadline = time.monotonic() + SETTLE_SECONDS
        quiet = 0
        while quiet < 2 and time.monotonic() < deadline:
            idle = not self.queue.count and all(
                worker.get_state() == WorkerStatus.IDLE for worker in self._own_workers()
            )
            quiet = quiet + 1 if idle else 0
            time.sleep(0.02)

    def _jobs_done(self) -> int:
        return sum(worker.successful_job_count for worker in self._own_workers())

    def _own_workers(self) -> list[Worker]:
        """The RQ workers registered by this command's worker processes (not other workers on the same Redis)."""
        pids, host = {process.pid for process in self.processes}, socket.gethostname()
        return [
            worker
            for worker in Worker.all(connection=self.queue.connection)
            if worker.pid in pids and worker.hostname == host
        ]

    def _save_pipeline(self) -> Pipeline:
        stages = [
            {"refId": str(i), "name": f"noop {i}", "type": "wait", "waitTime": 0,
             "requisiteStageRefIds": [str(i - 1)] if i > 1 else []}
            for i in range(1, self.stages + 1)
        ]
        pipeline, _ = do_save_pipeline({"application": BENCH_APPLICATION, "name": "noop-chain", "stages": stages})
        return pipeline

    # --- Workers and cleaning up --------------------------------------------------------------------

    @contextmanager
    def _workers(self, count: int) -> Iterator[None]:
        """``count`` fresh workers for the block, stopped when it ends, however it ends."""
        env = {**os.environ, "ENGINE_INLINE_SECONDS": str(self.inline), **self.worker_env}
        command = [sys.executable, "manage.py", "rqworker", "--with-scheduler", "--verbosity", "0"]
        processes = self.processes = []
        try:
            for _ in range(count):
                processes.append(subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, start_new_session=True))
            deadline = time.monotonic() + WORKER_START_SECONDS
            while len(self._own_workers()) < count:
                if time.monotonic() > deadline or any(process.poll() is not None for process in processes):
                    raise CommandError("workers did not start")
                time.sleep(0.1)
            yield
        finally:
            self.processes = []
            self._stop(processes)

    def _stop(self, processes: list[subprocess.Popen]) -> None:
        """Ask each worker to stop after its current job, then kill what is left of its process group.

        Each worker leads a process group of its own (its scheduler runs in a
        child process), so killing the group takes down any child a worker
        left behind, and nothing else.
        """
        for process in processes:
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + WORKER_STOP_SECONDS
        for process in processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"worker {process.pid} did not stop on SIGTERM; killing it")
        for process in processes:
            _signal_group(process, signal.SIGKILL)
            process.wait()

    def _clean_up(self) -> None:
        """Delete the bench application, its executions and Redis keys, and its jobs still queued.

        Each step runs even when an earlier one failed; a failure is reported, not raised, so that
        the error that ended the run (if any) stays the one shown.
        """
        for step in (self._delete_application, self._delete_keys, self._drop_leftover_jobs):
            try:
                step()
            except Exception as error:  # noqa: BLE001  (report it and go on cleaning)
                self.stderr.write(f"clean-up: {step.__name__.strip('_')} failed: {type(error).__name__}: {error}")

    def _delete_application(self) -> None:
        Application.objects.filter(name=BENCH_APPLICATION).delete()

    def _delete_keys(self) -> None:
        keys = [SEQUENCE_KEY.format(execution_id) for execution_id in self.execution_ids]
        keys += self.done_keys + [end_key(done_key) for done_key in self.done_keys]
        for start in range(0, len(keys), 1000):
            self.queue.connection.delete(*keys[start : start + 1000])

    def _drop_leftover_jobs(self) -> None:
        """Remove the queued jobs of this run (left by an error or Ctrl-C), so the next run finds an idle queue.

        Runs after the bench executions are deleted: a ``run_stage`` job whose
        stage no longer exists would do nothing anyway.
        """
        if not self.queue.count:
            return
        names = {_func_name(function): function for function in (noop_chain, jobs.start_execution, jobs.run_stage)}
        queued = [job for job in self.queue.get_jobs() if job.func_name in names]
        stage_ids = [job.args[0] for job in queued if job.func_name == _func_name(jobs.run_stage)]
        alive = {str(pk) for pk in StageExecution.objects.filter(id__in=stage_ids).values_list("id", flat=True)}
        executions, done_keys = set(self.execution_ids), set(self.done_keys)
        for job in queued:
            function = names[job.func_name]
            if (
                (function is noop_chain and job.args[1] in done_keys)
                or (function is jobs.start_execution and job.args[0] in executions)
                or (function is jobs.run_stage and job.args[0] not in alive)
            ):
                job.delete()

    # --- Printing -----------------------------------------------------------------------------------

    def _print_header(self, options: dict) -> None:
        engine = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        self.stdout.write(
            f"database={engine} redis={settings.REDIS_URL} worker_class={settings.RQ['WORKER_CLASS']} "
            f"workers={options['workers']} executions={options['executions']} stages={self.stages} "
            f"inline_seconds={self.inline:g}"
        )
        self.stdout.write(
            f"single_runs={options['single_runs']} load_executions={options['load_executions']} "
            f"throughput_executions={options['throughput_executions']} "
            f"throughput_workers={','.join(map(str, options['throughput_workers']))}"
        )

    def _print_comparison(self, baseline: Run, engine: Run) -> None:
        self.stdout.write(
            f"bare RQ chain: {baseline.elapsed:.2f} s, {baseline.worker_ms:.2f} ms worker time per job "
            f"({baseline.jobs_per_stage:.2f} jobs per link)"
        )
        self.stdout.write(
            f"engine:        {engine.elapsed:.2f} s, {engine.worker_ms:.2f} ms worker time per stage "
            f"({engine.jobs_per_stage:.2f} jobs per stage)"
        )
        self.stdout.write(f"engine transitions/s: {engine.per_second:.0f} (stages completed per second)")
        self.stdout.write(f"ratio engine / bare RQ: {engine.worker_ms / baseline.worker_ms:.2f}")

    def _print_load(self, singles: list[Run], load: Run) -> None:
        times = [run.elapsed for run in singles]
        alone_ms = statistics.median(times) / self.stages * 1000
        self.stdout.write(
            f"alone:      median of {len(singles)} single executions {statistics.median(times) * 1000:.1f} ms "
            f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}), {alone_ms:.2f} ms wall time per stage "
            f"(wall / {self.stages} stages; 1 worker)"
        )
        self._print_cpu(singles)
        self.stdout.write(
            f"under load: {load.count} executions queued at once, {load.elapsed:.2f} s, {load.worker_ms:.2f} ms "
            f"worker time per stage (wall x {load.workers} workers / {load.steps} stages; "
            f"{load.jobs_per_stage:.2f} jobs per stage)"
        )
        self._print_cpu([load])
        self.stdout.write(f"per-stage overhead under load / alone: {load.worker_ms / alone_ms:.2f} (goal <= 1.20)")

    def _print_throughput(self, run: Run) -> None:
        label = f"{run.workers} worker{'s' if run.workers != 1 else ''}:"
        self.stdout.write(
            f"throughput, {label:<11}{run.count} executions x {self.stages} stages in {run.elapsed:.2f} s, "
            f"{run.per_second:.0f} stage transitions/s ({run.jobs_per_stage:.2f} jobs per stage)"
        )
        self._print_cpu([run])

    def _print_cpu(self, runs: list[Run]) -> None:
        """The workers' CPU per stage and the machine's busy CPUs while ``runs`` were in flight."""
        indent = " " * 12
        if any(run.cpu is None for run in runs):
            return
        cpu = sum((run.cpu for run in runs[1:]), runs[0].cpu)
        steps = sum(run.steps for run in runs)
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        self.stdout.write(
            f"{indent}cpu: workers {cpu.workers / steps * 1000:.2f} ms per stage; "
            f"machine {cpu.machine / cpu.seconds:.2f} of {cpus} CPUs busy, "
            f"{cpu.workers / cpu.seconds:.2f} of them this command's workers"
        )
