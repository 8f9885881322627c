"""``manage.py bench_expressions``: a simple pipeline's time alone, and while another application attacks.

The attacker (application ``bench-expr-attacker``) runs, in a loop, one execution after another of a
pipeline made of the worst expressions known — the ten-billion-item repetition, the 4000000^4000000
power, the catastrophic ``(a+)+$`` regex, an expression that uses up its whole CPU budget
(``EXPRESSION_TIME_LIMIT_MS``) — and a large but valid document (a stage with thousands of
expressions). Every one of those stages fails or finishes within its budget.

The victim (application ``bench-expr-victim``) is a simple pipeline: a chain of an
``evaluateVariables``, a ``checkPreconditions`` and ``wait`` 0 s stages. It runs ``--runs`` times alone,
then ``--runs`` times while the attacker's loop runs, one execution at a time, each timed from its start
to the end time it records. The command prints the median and the worst of each, and the ratio of the
medians (goal: at most 2).

It starts ``--workers`` workers of its own (``manage.py rqworker --with-scheduler``), refuses a Redis
queue that has work in it, and deletes both applications, their executions and their jobs at the end,
also on error or Ctrl-C.
"""

import signal
import statistics
import threading
import time

from django.conf import settings
from django.core.management.base import CommandError

from apps.pipelines.choices import COMPLETE
from apps.pipelines.enqueue import QUEUE_NAME, engine_queue
from apps.pipelines.models import Application, Execution, Pipeline
from apps.pipelines.services import do_save_pipeline, do_start_execution
from bench.management.commands import bench_engine

VICTIM = "bench-expr-victim"
ATTACKER = "bench-expr-attacker"
POLL_SECONDS = 0.005
# Within every size limit (it builds nothing but a list of 400 booleans), and twice the CPU budget if let run:
# each item matches a regex against a million-character string built once before.
_BURNER = "${ {" + ", ".join(["s matches '(x+x+)+y'"] * 400) + "} }"


def _chain(stages: list[dict]) -> list[dict]:
    return [
        {"refId": str(index), "name": f"stage {index}", "requisiteStageRefIds": [str(index - 1)] if index > 1 else [],
         **stage}
        for index, stage in enumerate(stages, start=1)
    ]


def attacker_stages(document_items: int) -> list[dict]:
    """The worst expressions, each in a stage that goes on after it (failPipeline false), and a large document."""
    go_on = {"continuePipeline": True}
    return _chain([
        {"type": "evaluateVariables", "variables": [{"key": "big", "value": "${ { {1}*100000 }*100000 }"}], **go_on},
        {"type": "wait", "waitTime": "${4000000^4000000 > 1 ? 0 : 0}", **go_on},
        {"type": "checkPreconditions", **go_on, "preconditions": [
            {"type": "expression", "context": {"expression": "'aaaaaaaaaaaaaaaaaaaaaaaa!' matches '(a+)+$'"}}]},
        {"type": "evaluateVariables", **go_on,
         "variables": [{"key": "s", "value": "${'x' * 1000000}"}, {"key": "burn", "value": _BURNER}]},
        {"type": "wait", "waitTime": 0, "payload": [f"${{'item-{n}-' + execution.id}}" for n in range(document_items)],
         **go_on},
    ])


VICTIM_STAGES = _chain([
    {"type": "evaluateVariables", "variables": [{"key": "target", "value": "${'eu-' + execution.application}"}]},
    {"type": "checkPreconditions",
     "preconditions": [{"type": "expression", "context": {"expression": "${target.startsWith('eu-')}"}}]},
    {"type": "wait", "waitTime": 0},
])


class Command(bench_engine.Command):
    help = "Time a simple pipeline alone and while another application runs the worst expressions in a loop."

    def add_arguments(self, parser):
        parser.add_argument("--runs", type=int, default=15, help="victim executions, alone and under attack")
        parser.add_argument("--workers", type=int, default=2, help="workers serving both applications")
        parser.add_argument("--document-items", type=int, default=3000, help="expressions in the large document")
        parser.add_argument("--timeout", type=float, default=120, help="seconds one execution may take")

    def handle(self, *args, **options):
        self.queue = engine_queue()
        if self.queue.count:
            raise CommandError(f"queue {QUEUE_NAME!r} has {self.queue.count} jobs waiting; run on an idle Redis")
        if options["runs"] < 1 or options["workers"] < 1 or options["document_items"] < 0:
            raise CommandError("--runs and --workers must be at least 1, --document-items at least 0")
        self.timeout, self.inline = options["timeout"], settings.ENGINE_INLINE_SECONDS
        self.execution_ids: list[str] = []
        self.done_keys: list[str] = []
        self.processes = []
        previous = signal.signal(signal.SIGTERM, bench_engine._interrupt)
        try:
            self._bench_attack(options)
        except KeyboardInterrupt:
            raise CommandError("interrupted; workers stopped and bench data deleted") from None
        finally:
            signal.signal(signal.SIGTERM, previous)
            self._clean_up()

    def _bench_attack(self, options: dict) -> None:
        victim, _ = do_save_pipeline({"application": VICTIM, "name": "simple", "stages": VICTIM_STAGES})
        attacker, _ = do_save_pipeline(
            {"application": ATTACKER, "name": "worst", "stages": attacker_stages(options["document_items"])}
        )
        runs = options["runs"]
        self.stdout.write(f"bench_expressions: {options['workers']} workers, {runs} victim runs each way, "
                          f"attacker document of {options['document_items']} expressions")
        with self._workers(options["workers"]):
            self._time_one(victim)  # warm the workers up
            alone = [self._time_one(victim) for _ in range(runs)]
            self._report("alone", alone)
            stop = threading.Event()
            loop = _AttackLoop(self, attacker, stop)
            loop.start()
            try:
                attacked = [self._time_one(victim) for _ in range(runs)]
            finally:
                stop.set()
                loop.join(self.timeout)
            self._report("under attack", attacked)
            self.stdout.write(f"  attacker executions completed meanwhile: {loop.completed} "
                              f"(median {statistics.median(loop.seconds or [0]) * 1000:.0f} ms each)")
            if loop.error:
                raise CommandError(f"the attack loop failed: {loop.error}")
            self._print_attacker_stages(attacker)
        ratio = statistics.median(attacked) / statistics.median(alone)
        verdict = "within" if ratio <= 2 else "OVER"
        self.stdout.write(f"  ratio under attack / alone (medians): {ratio:.2f} ({verdict} the goal of 2.00)")

    def _time_one(self, pipeline: Pipeline) -> float:
        """Start one execution and wait for it; seconds from just before its start to its recorded end time."""
        started = time.time()
        execution = do_start_execution(pipeline)
        self.execution_ids.append(str(execution.id))
        deadline = time.monotonic() + self.timeout
        while True:
            row = Execution.objects.filter(id=execution.id).values("status", "end_time").first()
            if row and row["status"] in COMPLETE and row["end_time"] is not None:
                return row["end_time"].timestamp() - started
            if time.monotonic() > deadline:
                raise CommandError(f"execution {execution.id} of {pipeline.name} did not finish in {self.timeout:g} s")
            if any(process.poll() is not None for process in self.processes):
                raise CommandError("a worker exited during the run")
            time.sleep(POLL_SECONDS)

    def _report(self, label: str, seconds: list[float]) -> None:
        self.stdout.write(f"  victim {label}: median {statistics.median(seconds) * 1000:.0f} ms, "
                          f"worst {max(seconds) * 1000:.0f} ms ({len(seconds)} runs)")

    def _print_attacker_stages(self, attacker: Pipeline) -> None:
        """How each stage of the attacker's last execution ended, and why: every one within its budget."""
        last = Execution.objects.filter(pipeline=attacker, status__in=COMPLETE).order_by("-end_time").first()
        if last is None:
            return
        for stage in last.stages.order_by("position"):
            error = ((stage.context.get("exception") or {}).get("details") or {}).get("error", "")
            seconds = (stage.end_time - stage.start_time).total_seconds() if stage.end_time and stage.start_time else 0
            ended = f"{stage.status} in {seconds * 1000:.0f} ms" + (f": {error[:110]}" if error else "")
            self.stdout.write(f"    attacker stage {stage.ref_id} {stage.type}: {ended}")

    def _delete_application(self) -> None:
        Application.objects.filter(name__in=[VICTIM, ATTACKER]).delete()


class _AttackLoop(threading.Thread):
    """Runs the attacker's pipeline again and again, one execution at a time, until told to stop."""

    def __init__(self, command: Command, pipeline: Pipeline, stop: threading.Event):
        super().__init__(daemon=True)
        self.command, self.pipeline, self.stop = command, pipeline, stop
        self.completed = 0
        self.seconds: list[float] = []
        self.error: Exception | None = None

    def run(self) -> None:
        from django.db import connection

        try:
            while not self.stop.is_set():
                self.seconds.append(self.command._time_one(self.pipeline))
                self.completed += 1
        except Exception as error:  # noqa: BLE001  (reported by the command once the victim's runs end)
            self.error = error
        finally:
            connection.close()
