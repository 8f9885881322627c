"""``manage.py bench_notifications``: 1,000 executions with notifications against the same without.

It starts a receiver of its own on 127.0.0.1 (an HTTP server counting each
POST by its Idempotency-Key) and its own workers (``manage.py rqworker
--with-scheduler``, allowed to reach 127.0.0.1 only), then runs two rounds of
``--executions`` executions of a one-stage pipeline (``wait`` 0 s), each
round created in one transaction so that every start job lands in the queue
at once:

* without: the pipeline has no notifications;
* with: the pipeline notifies a generic webhook (the receiver) when it starts
  and when it completes — two messages per execution.

For each round it prints the wall time from the commit to the last
execution's end, and the median and 95th percentile of the executions' own
durations (their recorded start to end), and the ratios with / without (goal:
at most 1.0 plus noise: a pipeline is no slower with notifications, since they
are sent from jobs after the fact). For the round with notifications it then
waits for every delivery to be final and prints how many messages the
receiver got, how many distinct, duplicates and missing (goal: exactly two per
execution, none twice), and how long after the last execution ended the last
message arrived. At the end, also on error or Ctrl-C, it stops its workers
and deletes the bench application, its executions and deliveries.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.core.management.base import CommandError
from django.db import transaction

from apps.notifications.choices import DeliveryStatus
from apps.notifications.models import Delivery
from apps.pipelines.choices import COMPLETE
from apps.pipelines.enqueue import QUEUE_NAME, engine_queue
from apps.pipelines.models import Application, Execution
from apps.pipelines.services import do_save_pipeline, do_start_execution
from bench.management.commands import bench_engine

BENCH_APPLICATION = "bench-notifications"
STAGES = [{"refId": "1", "name": "noop", "type": "wait", "waitTime": 0}]


class Receiver:
    """An HTTP server on 127.0.0.1 that answers 200 and counts each POST by its Idempotency-Key."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: list[str] = []
        self.last_at = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's name)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.keys.append(self.headers.get("Idempotency-Key", ""))
                    receiver.last_at = time.time()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


class Command(bench_engine.Command):
    help = "Run 1,000 executions with webhook notifications and without; count the messages at a local receiver."

    def add_arguments(self, parser):
        parser.add_argument("--executions", type=int, default=1000, help="executions per round")
        parser.add_argument("--workers", type=int, default=2, help="workers")
        parser.add_argument("--timeout", type=float, default=600, help="seconds each round may take")

    def handle(self, *args, **options):
        self.queue = engine_queue()
        if self.queue.count:
            raise CommandError(f"queue {QUEUE_NAME!r} has {self.queue.count} jobs waiting; run on an idle Redis")
        if options["executions"] < 1 or options["workers"] < 1:
            raise CommandError("--executions and --workers must be at least 1")
        self.timeout, self.inline = options["timeout"], bench_engine.settings.ENGINE_INLINE_SECONDS
        self.execution_ids, self.done_keys, self.processes = [], [], []
        receiver = Receiver()
        receiver.thread.start()
        # The workers inherit this process's environment: they may reach the receiver, and only it.
        os.environ["OUTBOUND_URL_ALLOWED_NETWORKS"] = "127.0.0.1/32"
        try:
            self._bench(options, receiver)
        except KeyboardInterrupt:
            raise CommandError("interrupted; workers stopped and bench data deleted") from None
        finally:
            receiver.httpd.shutdown()
            self._clean_up()

    def _bench(self, options: dict, receiver: Receiver) -> None:
        count = options["executions"]
        plain, _ = do_save_pipeline({"application": BENCH_APPLICATION, "name": "plain", "stages": STAGES})
        notify = {"type": "webhook", "address": receiver.url, "when": ["pipeline.starting", "pipeline.complete"]}
        notified, _ = do_save_pipeline({"application": BENCH_APPLICATION, "name": "notified", "stages": STAGES,
                                        "notifications": [notify]})
        self.stdout.write(f"bench_notifications: {count} executions per round, {options['workers']} workers")
        with self._workers(options["workers"]):
            self._round(plain, 20)  # warm the workers up
            without = self._round(plain, count)
            self._report("without notifications", without)
            with_them = self._round(notified, count)
            self._report("with notifications", with_them)
            self._count_messages(with_them, receiver, count)
        for name, index in (("wall time", 0), ("median duration", 1), ("p95 duration", 2)):
            self.stdout.write(f"  ratio with / without, {name}: {with_them[index] / without[index]:.2f}")

    def _round(self, pipeline, count: int) -> tuple[float, float, float, list[str]]:
        """Start ``count`` executions in one transaction; wall time to the last end, median and p95 durations."""
        started = time.time()
        with transaction.atomic():
            ids = [str(do_start_execution(pipeline).id) for _ in range(count)]
        self.execution_ids += ids
        rows = Execution.objects.filter(id__in=ids)
        self._wait(lambda: rows.filter(status__in=COMPLETE, end_time__isnull=False).count() == count,
                   "round", 0.2)
        times = list(rows.values_list("start_time", "end_time"))
        durations = [(end - start).total_seconds() for start, end in times]
        wall = max(end for _, end in times).timestamp() - started
        return wall, statistics.median(durations), _percentile(durations, 0.95), ids

    def _report(self, name: str, result) -> None:
        wall, median, p95, ids = result
        self.stdout.write(f"  {name}: {len(ids)} executions in {wall:.2f} s wall; duration median "
                          f"{median * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")

    def _count_messages(self, result, receiver: Receiver, count: int) -> None:
        ids = result[3]
        last_end = max(Execution.objects.filter(id__in=ids).values_list("end_time", flat=True)).timestamp()
        deliveries = Delivery.objects.filter(execution_id__in=ids)
        final = (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED)
        self._wait(lambda: deliveries.filter(status__in=final).count() >= 2 * count, "deliveries", 0.2)
        time.sleep(1)  # a duplicate, if any, would come from a retry or a second claim: give it a moment
        with receiver.lock:
            keys = list(receiver.keys)
        expected = set(deliveries.values_list("key", flat=True))
        distinct = set(keys) & expected
        failed = deliveries.filter(status=DeliveryStatus.FAILED).count()
        self.stdout.write(
            f"  messages: expected {2 * count}, received {len(keys)}, distinct {len(distinct)}, "
            f"duplicates {len(keys) - len(set(keys))}, missing {len(expected - distinct)}, failed deliveries {failed}; "
            f"last message {receiver.last_at - last_end:.2f} s after the last execution ended"
        )

    def _delete_application(self) -> None:
        Application.objects.filter(name=BENCH_APPLICATION).delete()
