"""``manage.py bench_api``: latency of the executions API on a realistically large database.

Fills the configured database (once; ``--refill`` redoes it, ``--cleanup``
deletes it) with ``--executions`` executions (default 100,000) of
``--pipelines`` pipelines (default 200) in ``--applications`` applications
(default 20), each execution with ``--stages-per-execution`` stages (default
4): created over the last 90 days, inserted oldest first as a live system
would, some pipelines busier than others; mostly SUCCEEDED, some TERMINAL or
CANCELED, the most recent ones partly RUNNING (each waiting on a manual
judgment, so a sweeper on the same database leaves them alone); a small
trigger and parameters, stages with a few hundred bytes of context and
outputs. Rows go in with ``bulk_create`` in batches, then the tables are
vacuumed and analyzed (PostgreSQL), as autovacuum would do on a live system.

Then it measures, in this process with Django's test ``Client`` (the whole
middleware, authentication, DRF and JSON rendering stack; no network, no
web server), with an API token (``Authorization: Bearer``), two requests:

* list: ``GET /api/executions/?pipeline=<id>&page_size=50``, a pipeline's
  latest executions (the first page of the cursor-paginated list), for
  pipelines picked at random;
* detail: ``GET /api/executions/<id>/``, the whole execution document, for
  executions picked at random among all of them (old ones included);

each as a user who reads the applications through a group grant (not a
superuser: the realistic path, where every query is filtered by the
permission subqueries) and, for comparison, as a superuser (no filter).
Every case runs ``--warmup`` requests first, unmeasured, then ``--requests``
timed requests, with DEBUG off (no query log, as in production). For each
it prints, in milliseconds:

* median, p95 and max of the wall time of ``client.get()`` (goal: p95 under
  50 ms);
* cpu/req: the median CPU time this process spent per request (Python:
  Django, DRF, serializing; PostgreSQL's own CPU is not in it);
* sql/req: the median time per request spent inside ``cursor.execute``
  (round trip and PostgreSQL's work), and the number of SQL queries per
  request, both from an execute wrapper on the connection (no debug cursor);
* busy CPUs: how many of the machine's CPUs were busy during the case, by
  anything (from /proc/stat). The command is CPU-bound: on a shared machine
  whose CPUs are all busy, wall times grow while cpu/req and sql/req barely
  move, so read the three together;
* full GCs: Python's full garbage collections during the timed requests and
  their total time: each one stalls the request it lands in (the tail).

``--explain`` also prints EXPLAIN (ANALYZE, BUFFERS on PostgreSQL) of every
SELECT of the slowest timed request of each case.
"""

import gc
import os
import random
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.db.models import Count
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone

from apps.accounts.models import ApiToken, AuditEvent
from apps.accounts.permissions import READ
from apps.accounts.services import do_create_token, do_grant
from apps.pipelines.choices import Status
from apps.pipelines.governance import GRANTED_AS
from apps.pipelines.models import Application, ApplicationGroupPermission, Execution, Pipeline, StageExecution
from cdplatform.startup import freeze_start_up_objects

PREFIX = "bench-api-"
ACTOR = "bench_api"
READER, ADMIN, GROUP = "bench-api-reader", "bench-api-admin", "bench-api-readers"
TOKEN_NAME = "bench_api"
GOAL_MS = 50.0
DAYS = 90
RUNNING_WINDOW = timedelta(hours=2)
DELETE_BATCH = 5000
STAGE_KINDS = ("evaluateVariables", "deploy", "wait", "manualJudgment", "deploy", "checkPreconditions")
TRIGGERS = (("manual", 0.45), ("webhook", 0.30), ("git", 0.15), ("cron", 0.10))
ENDED = (("SUCCEEDED", 0.88), ("TERMINAL", 0.08), ("CANCELED", 0.04))
PEOPLE = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
REGIONS = ("eu-west-1", "eu-central-1", "us-east-1", "us-west-2")


def _percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` percentile by linear interpolation between the closest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * fraction
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _machine_busy_seconds() -> tuple[float, float] | None:
    """(busy CPU seconds of the whole machine since boot, seconds since boot), from /proc; None without it."""
    try:
        with open("/proc/stat") as stat:
            user, nice, system, idle, iowait, irq, softirq, steal = map(int, stat.readline().split()[1:9])
        with open("/proc/uptime") as uptime:
            since_boot = float(uptime.read().split()[0])
    except (OSError, ValueError):
        return None
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"), since_boot


class _QueryTimer:
    """An execute wrapper that appends (sql, params, milliseconds in cursor.execute) of each query to a list."""

    def __init__(self, queries: list):
        self.queries = queries

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append((sql, params, (time.perf_counter() - started) * 1000))


@contextmanager
def _full_collections() -> Iterator[list[float]]:
    """Record the duration in ms of each full (generation 2) garbage collection during the block."""
    durations: list[float] = []
    started = [0.0]

    def callback(phase: str, info: dict) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            durations.append((time.perf_counter() - started[0]) * 1000)

    gc.callbacks.append(callback)
    try:
        yield durations
    finally:
        gc.callbacks.remove(callback)


@contextmanager
def _explicit_created_at() -> Iterator[None]:
    """Let ``bulk_create`` keep the ``created_at`` we set (auto_now_add would overwrite it with now)."""
    field = Execution._meta.get_field("created_at")
    field.auto_now_add = False
    try:
        yield
    finally:
        field.auto_now_add = True


class Filler:
    """Builds the bench rows: plausible executions and stages, ``stages`` per execution."""

    def __init__(self, rng: random.Random, stages: int):
        self.rng = rng
        self.stages = stages

    def pipeline_definition(self, application: str, name: str, pipeline_id: uuid.UUID) -> dict:
        stages = [
            {
                "refId": str(i + 1),
                "name": f"{STAGE_KINDS[i % len(STAGE_KINDS)]} {i + 1}",
                "type": STAGE_KINDS[i % len(STAGE_KINDS)],
                "requisiteStageRefIds": [str(i)] if i else [],
            }
            for i in range(self.stages)
        ]
        return {
            "id": str(pipeline_id),
            "application": application,
            "name": name,
            "keepWaitingPipelines": False,
            "limitConcurrent": False,
            "parameterConfig": [{"name": "version", "default": "1.0.0", "required": True}, {"name": "region"}],
            "triggers": [{"type": "git", "branch": "main", "enabled": True}],
            "stages": stages,
        }

    def execution(self, pipeline: Pipeline, created_at, now) -> tuple[Execution, list[StageExecution]]:
        rng = self.rng
        trigger_type = rng.choices([t for t, _ in TRIGGERS], [w for _, w in TRIGGERS])[0]
        user = rng.choice(PEOPLE) if trigger_type == "manual" else f"{trigger_type}-bot"
        version = f"{rng.randint(1, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 200)}"
        parameters = {"version": version, "region": rng.choice(REGIONS)}
        trigger = {"type": trigger_type, "user": user, "parameters": parameters}
        if trigger_type in ("git", "webhook"):
            trigger["hash"] = f"{rng.getrandbits(160):040x}"
        if now - created_at < RUNNING_WINDOW and rng.random() < 0.6:
            status = Status.RUNNING
        else:
            status = rng.choices([s for s, _ in ENDED], [w for _, w in ENDED])[0]
        start = created_at + timedelta(milliseconds=rng.randint(50, 2000))
        execution = Execution(
            id=uuid.uuid4(), application_id=pipeline.application_id, pipeline_id=pipeline.id, name=pipeline.name,
            status=status, definition=pipeline.definition, trigger=trigger, parameters=parameters,
            created_at=created_at, start_time=start, started_by=user,
        )
        if status == Status.CANCELED:
            execution.canceled_by = rng.choice(PEOPLE)
            execution.cancel_reason = "superseded by a newer build"
        stages, moment = [], start
        stop_at = self.stages if status == Status.SUCCEEDED else rng.randrange(self.stages)
        for position, stage_definition in enumerate(pipeline.definition["stages"]):
            stage = self._stage(execution, position, stage_definition, parameters)
            if position < stop_at:
                stage.status, stage.start_time = Status.SUCCEEDED, moment
                moment += timedelta(seconds=rng.randint(5, 300))
                stage.end_time = moment
            elif position == stop_at:
                stage.status, stage.start_time = status, moment
                if status == Status.RUNNING:
                    stage.type, stage.context["judgmentStatus"] = "manualJudgment", None
                else:
                    moment += timedelta(seconds=rng.randint(5, 120))
                    stage.end_time = moment
            stages.append(stage)
        if status != Status.RUNNING:
            execution.end_time = moment
        return execution, stages

    def _stage(self, execution: Execution, position: int, definition: dict, parameters: dict) -> StageExecution:
        rng = self.rng
        application = execution.definition["application"]
        build = rng.randint(1, 999)
        context = {
            "account": f"prod-{parameters['region']}",
            "region": parameters["region"],
            "cluster": f"{application}-main",
            "image": f"registry.local/{application}:{parameters['version']}",
            "strategy": rng.choice(("redblack", "highlander", "canary")),
            "capacity": {"min": 2, "max": 6, "desired": rng.randint(2, 6)},
            "tasks": [{"name": "monitor", "status": "SUCCEEDED", "attempts": rng.randint(1, 3)}],
        }
        outputs = {
            "deployedServerGroups": [f"{application}-main-v{build:03d}"],
            "commit": f"{rng.getrandbits(160):040x}",
            "artifacts": [{"type": "docker/image", "reference": context["image"]}],
        }
        return StageExecution(
            id=uuid.uuid4(), execution=execution, ref_id=definition["refId"], position=position,
            type=definition["type"], name=definition["name"], status=Status.NOT_STARTED,
            requisite_ref_ids=definition["requisiteStageRefIds"],
            next_ref_ids=[str(position + 2)] if position + 1 < self.stages else [],
            definition=definition, context=context, outputs=outputs,
        )


class Command(BaseCommand):
    help = "Fill the database with many executions and measure the latency of the executions API (list, detail)."

    def add_arguments(self, parser):
        parser.add_argument("--executions", type=int, default=100_000, help="executions to create")
        parser.add_argument("--pipelines", type=int, default=200, help="pipelines they belong to")
        parser.add_argument("--applications", type=int, default=20, help="applications the pipelines are spread over")
        parser.add_argument("--stages-per-execution", type=int, default=4, help="stages of each execution")
        parser.add_argument("--batch-size", type=int, default=2000, help="executions per bulk insert")
        parser.add_argument("--requests", type=int, default=200, help="timed requests per case")
        parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests before each case")
        parser.add_argument("--page-size", type=int, default=50, help="page_size of the list requests")
        parser.add_argument("--seed", type=int, default=1, help="random seed (data and request targets)")
        parser.add_argument("--refill", action="store_true", help="delete the bench data and fill it again")
        parser.add_argument("--cleanup", action="store_true", help="delete the bench data and users, then stop")
        parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the queries of the slowest request")

    def handle(self, *args, **options):
        sizes = ("executions", "pipelines", "applications", "stages_per_execution", "batch_size", "requests")
        if any(options[size] < 1 for size in sizes):
            raise CommandError(f"{', '.join(sizes)} must be at least 1")
        if options["pipelines"] < options["applications"]:
            raise CommandError("need at least one pipeline per application")
        if options["cleanup"]:
            self._cleanup()
            return
        self.rng = random.Random(options["seed"])
        self._print_header(options)
        self._ensure_data(options)
        reader, admin = self._ensure_users()
        freeze_start_up_objects()  # as the web process does before its first request (cdplatform/asgi.py)
        self._measure(options, [("reader (group read)", reader), ("superuser", admin)])

    # --- Data ---------------------------------------------------------------------------------------

    def _marker(self, options: dict) -> str:
        return (
            f"bench_api data: applications={options['applications']} pipelines={options['pipelines']} "
            f"executions={options['executions']} stages={options['stages_per_execution']}"
        )

    def _ensure_data(self, options: dict) -> None:
        marker = self._marker(options)
        applications = Application.objects.filter(name__startswith=PREFIX)
        markers = set(applications.values_list("description", flat=True))
        if not options["refill"] and markers == {marker} and applications.count() == options["applications"]:
            self.stdout.write(f"data: exists ({marker}); fill skipped (--refill to redo)")
        else:
            if markers:
                reason = "--refill" if options["refill"] else "incomplete or of other sizes"
                self.stdout.write(f"data: deleting the existing bench data ({reason})")
                self._delete_data()
            self._fill(options, marker)
        self._print_data_summary()

    def _fill(self, options: dict, marker: str) -> None:
        started = time.perf_counter()
        rng, now = self.rng, timezone.now()
        filler = Filler(rng, options["stages_per_execution"])
        width = len(str(options["applications"] - 1))
        applications = Application.objects.bulk_create(
            Application(name=f"{PREFIX}{i:0{width}d}", owner=f"team-{i % 7}@example.com", description="filling")
            for i in range(options["applications"])
        )
        pipelines = []
        for i in range(options["pipelines"]):
            application = applications[i % len(applications)]
            name, pipeline_id = f"service-{i:03d}-deliver", uuid.uuid4()
            pipelines.append(Pipeline(
                id=pipeline_id, application=application, name=name, updated_by=ACTOR,
                definition=filler.pipeline_definition(application.name, name, pipeline_id),
            ))
        Pipeline.objects.bulk_create(pipelines)
        # Some pipelines run far more often than others (weights 1 .. 1/sqrt(n)).
        weights = [1 / (rank + 1) ** 0.5 for rank in range(len(pipelines))]
        rng.shuffle(weights)
        total, batch = options["executions"], options["batch_size"]
        span = DAYS * 86400
        moments = sorted(now - timedelta(seconds=rng.uniform(0, span)) for _ in range(total))
        owners = rng.choices(pipelines, weights, k=total)
        with _explicit_created_at():
            for first in range(0, total, batch):
                executions, stages = [], []
                chunk = zip(owners[first : first + batch], moments[first : first + batch], strict=True)
                for pipeline, created_at in chunk:
                    execution, its_stages = filler.execution(pipeline, created_at, now)
                    executions.append(execution)
                    stages.extend(its_stages)
                with transaction.atomic():
                    Execution.objects.bulk_create(executions)
                    StageExecution.objects.bulk_create(stages)
                done = first + len(executions)
                if done % (batch * 10) == 0 or done == total:
                    elapsed = time.perf_counter() - started
                    self.stdout.write(f"  filled {done}/{total} executions, {elapsed:.0f} s ({done / elapsed:.0f}/s)")
        Application.objects.filter(id__in=[a.id for a in applications]).update(description=marker)
        self._grant_reader_group()
        filled = time.perf_counter()
        self._vacuum_analyze()
        vacuumed = time.perf_counter()
        vacuum = "VACUUM (ANALYZE)" if connection.vendor == "postgresql" else "ANALYZE"
        self.stdout.write(f"data: filled in {filled - started:.1f} s, then {vacuum} in {vacuumed - filled:.1f} s")

    def _vacuum_analyze(self) -> None:
        tables = [model._meta.db_table for model in (Application, Pipeline, Execution, StageExecution)]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"VACUUM (ANALYZE) {', '.join(tables)}")
            else:
                cursor.execute("ANALYZE")

    def _print_data_summary(self) -> None:
        executions = Execution.objects.filter(application__name__startswith=PREFIX)
        per_pipeline = sorted(
            row["n"] for row in executions.values("pipeline_id").annotate(n=Count("id")).order_by()
        )
        statuses = dict(executions.values_list("status").annotate(n=Count("id")).order_by())
        stages = StageExecution.objects.filter(execution__application__name__startswith=PREFIX).count()
        self.stdout.write(
            f"data: {Application.objects.filter(name__startswith=PREFIX).count()} applications, "
            f"{len(per_pipeline)} pipelines, {sum(per_pipeline)} executions (per pipeline min {per_pipeline[0]}, "
            f"median {statistics.median(per_pipeline):.0f}, max {per_pipeline[-1]}), {stages} stages"
        )
        shown = ", ".join(f"{status} {count}" for status, count in sorted(statuses.items(), key=lambda kv: -kv[1]))
        self.stdout.write(f"      statuses: {shown}")
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                sizes = []
                for model in (Execution, StageExecution):
                    table = model._meta.db_table
                    cursor.execute(
                        "SELECT pg_size_pretty(pg_table_size(%s)), pg_size_pretty(pg_indexes_size(%s))", [table, table]
                    )
                    heap, indexes = cursor.fetchone()
                    sizes.append(f"{table} {heap} (+ indexes {indexes})")
            self.stdout.write(f"      table sizes: {'; '.join(sizes)}")

    def _delete_data(self) -> None:
        """Delete the bench applications and everything under them, executions in batches (bounded memory)."""
        executions = Execution.objects.filter(application__name__startswith=PREFIX)
        while True:
            ids = list(executions.values_list("id", flat=True)[:DELETE_BATCH])
            if not ids:
                break
            with transaction.atomic():
                Execution.objects.filter(id__in=ids).only("id").delete()
        Application.objects.filter(name__startswith=PREFIX).delete()
        AuditEvent.objects.filter(actor=ACTOR, application_name__startswith=PREFIX).delete()
        self._vacuum_analyze()  # so that a refill reuses the space instead of doubling the tables

    def _cleanup(self) -> None:
        started = time.perf_counter()
        self._delete_data()
        get_user_model().objects.filter(username__in=[READER, ADMIN]).delete()
        Group.objects.filter(name=GROUP).delete()
        self.stdout.write(f"cleanup: bench data, users and group deleted in {time.perf_counter() - started:.1f} s")

    # --- Users --------------------------------------------------------------------------------------

    def _grant_reader_group(self) -> None:
        """Read on every bench application for the readers' group (a team), through the permission service."""
        group, _ = Group.objects.get_or_create(name=GROUP)
        granted = set(
            ApplicationGroupPermission.objects.filter(
                group=group, permission__codename=GRANTED_AS[READ]
            ).values_list("content_object_id", flat=True)
        )
        for application in Application.objects.filter(name__startswith=PREFIX).exclude(id__in=granted):
            do_grant(application, group, READ, actor=ACTOR)

    def _ensure_users(self):
        """The reader (in the group, not staff, not superuser) and a superuser, each with a fresh API token."""
        user_model = get_user_model()
        reader, _ = user_model.objects.get_or_create(username=READER, defaults={"email": "reader@example.com"})
        admin, created = user_model.objects.get_or_create(
            username=ADMIN, defaults={"email": "admin@example.com", "is_superuser": True, "is_staff": True}
        )
        if reader.is_superuser or reader.is_staff or not admin.is_superuser:
            raise CommandError(f"users {READER} and {ADMIN} exist with other roles; run --cleanup first")
        self._grant_reader_group()
        reader.groups.add(Group.objects.get(name=GROUP))
        ApiToken.objects.filter(user__in=[reader, admin], name=TOKEN_NAME).delete()
        for user in (reader, admin):
            _, user.bench_token = do_create_token(user, TOKEN_NAME)
        return reader, admin

    # --- Measuring ----------------------------------------------------------------------------------

    def _measure(self, options: dict, users: list) -> None:
        rng, count, warmup = random.Random(options["seed"] + 1), options["requests"], options["warmup"]
        # As strings: 100,000 UUID objects would be scanned by every full garbage collection during the requests.
        pipelines = Pipeline.objects.filter(application__name__startswith=PREFIX)
        pipeline_ids = [str(pk) for pk in pipelines.values_list("id", flat=True)]
        executions = Execution.objects.filter(application__name__startswith=PREFIX)
        execution_ids = [str(pk) for pk in executions.values_list("id", flat=True)]
        page = options["page_size"]
        cases = [
            ("list", lambda: f"/api/executions/?pipeline={rng.choice(pipeline_ids)}&page_size={page}"),
            ("detail", lambda: f"/api/executions/{rng.choice(execution_ids)}/"),
        ]
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        load = f", load average {os.getloadavg()[0]:.2f} on {cpus} CPUs" if hasattr(os, "getloadavg") else ""
        self.stdout.write(
            f"requests: {count} timed per case after {warmup} warm-up, in-process (django.test.Client), "
            f"Bearer token, DEBUG off{load}"
        )
        self.stdout.write(f"  list   = GET /api/executions/?pipeline=<random pipeline>&page_size={page}")
        self.stdout.write("  detail = GET /api/executions/<random execution>/")
        header = (
            f"{'case':<8}{'user':<21}{'median':>8}{'p95':>8}{'max':>8}{'cpu/req':>9}{'sql/req':>9}"
            f"{'queries':>9}{'busy CPUs':>11}{'full GCs':>14}"
        )
        self.stdout.write(header)
        self.stdout.write("-" * len(header))
        results = []
        for label, user in users:
            client = Client(
                HTTP_HOST="localhost", HTTP_ACCEPT="application/json", HTTP_AUTHORIZATION=f"Bearer {user.bench_token}"
            )
            for name, make_url in cases:
                urls = [make_url() for _ in range(warmup + count)]
                result = self._run_case(client, urls[:warmup], urls[warmup:], page if name == "list" else None)
                results.append((name, label, result))
                queries = result["queries"]
                query_range = str(queries[0]) if queries[0] == queries[-1] else f"{queries[0]}-{queries[-1]}"
                busy = "?" if result["busy"] is None else f"{result['busy']:.2f}/{cpus}"
                full_gcs = f"{len(result['gc'])} {sum(result['gc']):.0f}ms" if result["gc"] else "0"
                self.stdout.write(
                    f"{name:<8}{label:<21}{result['median']:>6.1f}ms{result['p95']:>6.1f}ms{result['max']:>6.1f}ms"
                    f"{result['cpu_ms']:>7.1f}ms{result['sql_ms']:>7.1f}ms{query_range:>9}{busy:>11}{full_gcs:>14}"
                )
        self.stdout.write("-" * len(header))
        self.stdout.write(
            "median/p95/max: wall time of client.get(); cpu/req: median CPU time of this process per request "
            "(Python: Django, DRF, JSON; not PostgreSQL's);"
        )
        self.stdout.write(
            "sql/req: median time per request inside cursor.execute (round trip + PostgreSQL); queries: SQL queries "
            "per request (min-max); busy CPUs: the whole machine's, during the case (other programs included);"
        )
        self.stdout.write(
            "full GCs: Python's full (generation 2) garbage collections during the timed requests, and their total time"
        )
        over = [(name, label, r["p95"]) for name, label, r in results if r["p95"] >= GOAL_MS]
        if over:
            shown = "; ".join(f"{name} as {label}: p95 {p95:.1f} ms" for name, label, p95 in over)
            self.stdout.write(f"goal p95 < {GOAL_MS:.0f} ms: NOT MET ({shown})")
        else:
            self.stdout.write(f"goal p95 < {GOAL_MS:.0f} ms: met by every case")
        if options["explain"]:
            for name, label, result in results:
                self._explain(f"{name} as {label}", result["slowest"])

    def _run_case(self, client: Client, warmup: list[str], urls: list[str], page: int | None) -> dict:
        """Time ``urls`` one by one after the ``warmup`` ones: wall and CPU time, and each request's queries."""
        with override_settings(API_RATE_LIMIT_CLIENT="1000000/minute"):
            for url in warmup:
                self._get(client, url, page)
        times, cpu_times, sql_ms, counts = [], [], [], []
        slowest, slowest_ms = [], -1.0
        gc.collect()  # start each case with no garbage left by the previous one
        machine_before = _machine_busy_seconds()
        # DEBUG off as in production; the per-token rate limit lifted (the bench's one token sends every request).
        with override_settings(DEBUG=False, API_RATE_LIMIT_CLIENT="1000000/minute"), _full_collections() as full_gcs:
            for url in urls:
                queries = []
                with connection.execute_wrapper(_QueryTimer(queries)):
                    cpu_started, started = time.process_time(), time.perf_counter()
                    response = client.get(url)
                    elapsed = (time.perf_counter() - started) * 1000
                    cpu_times.append((time.process_time() - cpu_started) * 1000)
                times.append(elapsed)
                sql_ms.append(sum(query[2] for query in queries))
                counts.append(len(queries))
                if elapsed > slowest_ms:
                    slowest, slowest_ms = queries, elapsed
                self._check(url, response, page)
        machine_after = _machine_busy_seconds()
        busy = None
        if machine_before is not None and machine_after is not None:
            busy = (machine_after[0] - machine_before[0]) / (machine_after[1] - machine_before[1])
        return {
            "median": statistics.median(times), "p95": _percentile(times, 0.95), "max": max(times),
            "cpu_ms": statistics.median(cpu_times), "sql_ms": statistics.median(sql_ms), "queries": sorted(counts),
            "busy": busy, "gc": full_gcs, "slowest": slowest,
        }

    def _get(self, client: Client, url: str, page: int | None) -> None:
        self._check(url, client.get(url), page)

    def _check(self, url: str, response, page: int | None) -> None:
        if response.status_code != 200:
            raise CommandError(f"GET {url}: {response.status_code} {response.content[:300]!r}")
        if page is not None and not response.json()["results"]:
            raise CommandError(f"GET {url}: no executions listed")

    def _explain(self, title: str, queries: list[dict]) -> None:
        postgres = connection.vendor == "postgresql"
        prefix = "EXPLAIN (ANALYZE, BUFFERS)" if postgres else connection.ops.explain_query_prefix()
        self.stdout.write(f"\n=== EXPLAIN: {title} (the slowest timed request) ===")
        for number, (sql, params, milliseconds) in enumerate(queries, 1):
            self.stdout.write(f"\n-- query {number} ({milliseconds:.2f} ms in cursor.execute): {sql} -- {params!r}")
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            with connection.cursor() as cursor:
                cursor.execute(f"{prefix} {sql}", params)
                for row in cursor.fetchall():
                    self.stdout.write("   " + " | ".join(str(column) for column in row))

    # --- Printing -----------------------------------------------------------------------------------

    def _print_header(self, options: dict) -> None:
        engine = connection.settings_dict["ENGINE"].rsplit(".", 1)[-1]
        version = ""
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SHOW server_version")
                version = f" {cursor.fetchone()[0]}"
        self.stdout.write(
            f"bench_api: database={engine}{version} name={connection.settings_dict['NAME']} "
            f"applications={options['applications']} pipelines={options['pipelines']} "
            f"executions={options['executions']} stages_per_execution={options['stages_per_execution']} "
            f"seed={options['seed']}"
        )
