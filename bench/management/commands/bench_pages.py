"""``manage.py bench_pages``: the application page on the large database that ``bench_api`` fills.

Run ``bench_api`` first (``--executions 1000000`` for the million): this command reads its applications
(``bench-api-*``) and measures, in this process with Django's test ``Client`` signed in as bench_api's
group reader (DEBUG off), ``GET /applications/<name>/`` for applications picked at random: median, p95, max
(goal: p95 under 100 ms, max under 150 ms), queries per request, and full garbage collections.

Then, for the same applications, the query that picks each pipeline's newest executions
(``newest_execution_ids``) against the way it was picked before, a window function ranking every execution of
the application (the baseline, measured in the same run): median milliseconds of each and their ratio.
"""

import gc
import random
import statistics
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.test import Client
from django.test.utils import override_settings

from apps.pipelines.models import Application, Execution, Pipeline
from apps.pipelines.views.applications import RECENT_EXECUTIONS, newest_execution_ids
from bench.management.commands.bench_api import PREFIX, READER, _full_collections, _percentile, _QueryTimer
from cdplatform.startup import freeze_start_up_objects

GOAL_P95_MS, GOAL_MAX_MS = 100.0, 150.0


def ranked_by_window(application: Application) -> list:
    """The baseline: every execution of the application ranked per pipeline, the newest ten of each kept."""
    ranked = Execution.objects.filter(application=application, pipeline__isnull=False).annotate(
        rank=Window(RowNumber(), partition_by=[F("pipeline_id")], order_by=F("created_at").desc()))
    return list(ranked.filter(rank__lte=RECENT_EXECUTIONS).values_list("id", flat=True))


def _timed(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return (time.perf_counter() - started) * 1000


class Command(BaseCommand):
    help = "Measure the application page on bench_api's large database, and its executions query vs a baseline."

    def add_arguments(self, parser):
        parser.add_argument("--requests", type=int, default=100, help="timed page requests")
        parser.add_argument("--warmup", type=int, default=10, help="unmeasured requests first")
        parser.add_argument("--seed", type=int, default=1, help="random seed (which applications)")

    def handle(self, *args, **options):
        applications = list(Application.objects.filter(name__startswith=PREFIX).order_by("name"))
        reader = get_user_model().objects.filter(username=READER).first()
        if not applications or reader is None:
            raise CommandError("no bench data: run `manage.py bench_api` first (it fills the database)")
        rng = random.Random(options["seed"])
        executions = Execution.objects.filter(application__name__startswith=PREFIX).count()
        self.stdout.write(f"data: {executions} executions in {len(applications)} applications")
        freeze_start_up_objects()  # as the web process does before its first request (cdplatform/asgi.py)
        client = Client(HTTP_HOST="localhost")
        client.force_login(reader)
        picks = [rng.choice(applications) for _ in range(options["warmup"] + options["requests"])]
        for application in picks[:options["warmup"]]:
            self._get(client, application)
        times, counts = [], []
        gc.collect()
        with override_settings(DEBUG=False), _full_collections() as full_gcs:
            for application in picks[options["warmup"]:]:
                queries: list = []
                with connection.execute_wrapper(_QueryTimer(queries)):
                    times.append(_timed(self._get, client, application))
                counts.append(len(queries))
        p95, worst = _percentile(times, 0.95), max(times)
        self.stdout.write(
            f"application page: median {statistics.median(times):.1f} ms, p95 {p95:.1f} ms, max {worst:.1f} ms, "
            f"queries {min(counts)}-{max(counts)}, full GCs {len(full_gcs)} ({sum(full_gcs):.0f} ms)")
        met = p95 < GOAL_P95_MS and worst < GOAL_MAX_MS
        self.stdout.write(f"goal p95 < {GOAL_P95_MS:.0f} ms, max < {GOAL_MAX_MS:.0f} ms: {'met' if met else 'NOT MET'}")
        self._compare(picks[options["warmup"]:][:30])

    def _get(self, client: Client, application: Application) -> None:
        response = client.get(f"/applications/{application.name}/")
        if response.status_code != 200:
            raise CommandError(f"GET /applications/{application.name}/: {response.status_code}")

    def _compare(self, applications: list[Application]) -> None:
        new, old = [], []
        for application in applications:
            pipeline_ids = list(Pipeline.objects.filter(application=application).values_list("id", flat=True))
            new.append(_timed(newest_execution_ids, Execution.objects.all(), pipeline_ids))
            old.append(_timed(ranked_by_window, application))
        new_ms, old_ms = statistics.median(new), statistics.median(old)
        self.stdout.write(
            f"ids of the newest {RECENT_EXECUTIONS} per pipeline: median {new_ms:.1f} ms; baseline, a window ranking "
            f"all of the application's executions: median {old_ms:.1f} ms; ratio {new_ms / old_ms:.2f}")
