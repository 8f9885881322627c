"""``manage.py bench_live``: how long a stage's change takes from its commit to the clients that show it live.

Starts the ASGI web process itself (uvicorn on a free loopback port, as
``manage.py runplatform`` starts it), on the configured database and Redis
(with no ``REDIS_URL``, the embedded Redis, started here if it is not
running). It creates application ``bench-live`` with one execution of two
RUNNING stages, as rows only (no worker runs, so nothing but this command
changes them), and a user who may read it, then subscribes ``--clients``
WebSocket clients to that execution with the user's session cookie:

* one headless Chromium page (Debian's ``/usr/bin/chromium``, driven by
  Playwright, which downloads no browser) on the execution page, running
  static/js/live.js;
* the others lightweight Python clients (the ``websockets`` package), all in
  one child process of their own.

Then it makes ``--changes`` state changes of one stage (RUNNING and SUCCEEDED
in turn), ``--interval`` seconds apart, each as the engine makes one: the
stage row is updated in a transaction and the change is published by
``engine.Dispatch`` once that commits. Each change also gives the stage a
start time of its own, so every client can tell which change reached it.
``--warmup`` changes first are not counted.

Times are wall-clock epoch times on this one machine: the commit time is
taken by the first on-commit callback, before the publish; the browser's is
when a MutationObserver sees live.js set the stage row's attribute
(``performance.timeOrigin + performance.now()``); a Python client's is when
its frame arrives. It prints the median, p95 and maximum of (seen - committed)
in ms for the page, for the Python clients, and for the slowest of all the
clients at each change. Goal: p95 under 100 ms, and no spikes: it also
lists when the changes came that some client saw only after 100 ms (evenly
spaced times would be a periodic stall). On a busy machine these
depend on what else runs, so it also prints the CPU time the web process
used per change and per delivery received (from ``/proc``, on Linux), which
depends less on it — unless the web process falls behind: then it is given
less CPU than it needs, and the deliveries missing say so.

At the end, also on error or Ctrl-C, it closes the browser, stops the client
process and the web process (and the embedded Redis if it started it), and
deletes the bench application, user, session and Redis key.
"""

from __future__ import annotations

import asyncio
import gc
import json
import multiprocessing
import os
import platform
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model, load_backend
from django.contrib.sessions.backends.db import SessionStore
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.accounts.services import do_grant
from apps.pipelines.choices import Status
from apps.pipelines.engine import Dispatch
from apps.pipelines.enqueue import engine_queue
from apps.pipelines.events import SEQUENCE_KEY
from apps.pipelines.models import Application, Execution, StageExecution, epoch_millis
from apps.pipelines.services import do_save_pipeline
from cdplatform import embedded_redis
from cdplatform.webprocess import free_port, http_status, web_command

BENCH_APPLICATION = "bench-live"
BENCH_USER = "bench-live-reader"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
START_SECONDS = 30
# How long, after the last change, the clients may take to report the changes they were sent.
DELIVERY_SECONDS = 10
GOAL_P95_MS = 100.0
# Each client holds a socket in this process's child and one in the web process (1,024 descriptors by default).
MAX_CLIENTS = 900

# Installed on the execution page once it is live: when live.js sets a new start time on the stage's
# row (with its status, from a WebSocket event), remember the start time and the moment it was set.
WATCH_ROW = """(stageId) => {
  window.__benchSeen = [];
  new MutationObserver((records) => {
    const now = performance.timeOrigin + performance.now();
    for (const record of records) {
      if (record.target.matches("tr[data-stage-id]") && record.target.dataset.stageId === stageId) {
        window.__benchSeen.push([Number(record.target.getAttribute("data-start-time")), now]);
      }
    }
  }).observe(document.body, {subtree: true, attributes: true, attributeFilter: ["data-start-time"]});
}"""


# --- The Python clients (a child process) ----------------------------------------------------------


def run_python_clients(url: str, headers: dict, origin: str, count: int, expected: int, conn) -> None:
    """In a child process: ``count`` WebSocket clients; report to ``conn`` when they are subscribed, then
    what each received (client, the stage's start time, receive time) once all of ``expected`` messages
    reached every one of them or the parent says stop, and wait for the parent's stop."""
    # Ctrl-C is the parent's to handle: it stops this process; SIGTERM ends it at once (not the parent's handler).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        asyncio.run(_python_clients(url, headers, origin, count, expected, conn))
    except Exception as error:  # noqa: BLE001  (reported to the parent, which fails with it)
        conn.send(("error", f"{type(error).__name__}: {error}"))


async def _python_clients(url: str, headers: dict, origin: str, count: int, expected: int, conn) -> None:
    from websockets.asyncio.client import connect

    received: list[tuple[int, int, float]] = []
    complete = asyncio.Event()

    async def listen(index: int, client) -> None:
        async for frame in client:
            now = time.time()
            message = json.loads(frame)
            if message.get("type") == "execution.changed":
                received.append((index, message["stages"][0]["startTime"], now))
                if len(received) >= count * expected:
                    complete.set()

    opening = [
        connect(url, origin=origin, additional_headers=headers, proxy=None, open_timeout=30) for _ in range(count)
    ]
    clients = await asyncio.gather(*opening)
    try:
        for client in clients:
            hello = json.loads(await asyncio.wait_for(client.recv(), START_SECONDS))
            if hello.get("type") != "hello":
                raise RuntimeError(f"expected a hello, got {hello}")
        listeners = [asyncio.create_task(listen(index, client)) for index, client in enumerate(clients)]
        # These clients stand for as many browsers, each with a heap of its own: a full collection here,
        # walking every client's objects at once (and the growing list of what they received), would stall
        # them all together, which no browser does.
        gc.disable()
        conn.send(("ready", None))
        stop = asyncio.get_running_loop().run_in_executor(None, conn.recv)
        await asyncio.wait([asyncio.create_task(complete.wait()), stop], return_when=asyncio.FIRST_COMPLETED)
        for listener in listeners:
            listener.cancel()
        conn.send(("done", received))
        await stop
    finally:
        await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)


# --- Figures -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Latencies:
    """Latencies in ms of one kind of client, with how many deliveries never came."""

    name: str
    values: list[float]
    missing: int

    def row(self) -> str:
        if not self.values:
            return f"  {self.name:<46} {0:>8} {self.missing:>8} {'-':>9} {'-':>9} {'-':>9} {'-':>9}"
        return (
            f"  {self.name:<46} {len(self.values):>8} {self.missing:>8} {min(self.values):>9.1f}"
            f" {statistics.median(self.values):>9.1f} {self.p95:>9.1f} {max(self.values):>9.1f}"
        )

    @property
    def p95(self) -> float:
        if len(self.values) < 2:
            return self.values[0] if self.values else float("nan")
        return statistics.quantiles(self.values, n=100, method="inclusive")[94]


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used, in seconds (Linux's /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def session_backend() -> str:
    """The first authentication backend that can load a session's user: the first one configured may only
    check sign-ins (axes' lockout backend has no ``get_user``, and a session naming it loads nobody)."""
    for path in settings.AUTHENTICATION_BACKENDS:
        if hasattr(load_backend(path), "get_user"):
            return path
    raise CommandError("no configured authentication backend loads users (get_user)")


# Loopback only: no proxy from the environment.
def _interrupt(signum, frame):
    """SIGTERM stops the bench as Ctrl-C does: cleaning up on the way out."""
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Measure the time from a stage change's commit to a browser page and WebSocket clients showing it."

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=50, help="WebSocket clients in all: 1 page + N-1 Python")
        parser.add_argument("--changes", type=int, default=200, help="state changes measured")
        parser.add_argument("--warmup", type=int, default=5, help="state changes made first and not counted")
        parser.add_argument("--interval", type=float, default=0.1, help="seconds between two changes")

    def handle(self, *args, clients: int, changes: int, warmup: int, interval: float, **options):
        if clients < 1 or changes < 1 or warmup < 0 or interval < 0:
            raise CommandError("--clients and --changes must be at least 1, --warmup and --interval at least 0")
        if clients > MAX_CLIENTS:
            raise CommandError(f"--clients may be at most {MAX_CLIENTS}: each needs a file descriptor per process")
        try:
            from playwright.sync_api import sync_playwright
        except ImportError:
            raise CommandError("Playwright is not installed: pip install -r requirements-dev.txt") from None
        if not CHROMIUM.exists():
            raise CommandError(f"Chromium is not installed at {CHROMIUM}: apt-get install -y chromium")
        migrations = MigrationExecutor(connection)
        if migrations.migration_plan(migrations.loader.graph.leaf_nodes()):
            raise CommandError("the database has unapplied migrations: run `python manage.py migrate` first")
        self.clients, self.changes, self.warmup, self.interval = clients, changes, warmup, interval
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            with ExitStack() as cleanup:
                self._measure(cleanup, sync_playwright)
        except KeyboardInterrupt:
            raise CommandError("interrupted; processes stopped and bench data deleted") from None
        finally:
            signal.signal(signal.SIGTERM, previous)

    def _measure(self, cleanup: ExitStack, sync_playwright) -> None:
        self._start_redis(cleanup)
        stage, session_key = self._prepare(cleanup)
        base = self._start_web(cleanup)
        cookie = f"{settings.SESSION_COOKIE_NAME}={session_key}"
        python = self._start_python_clients(cleanup, base, stage.execution_id, cookie)
        playwright = cleanup.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        cleanup.callback(browser.close)
        page = self._open_page(browser, base, stage, session_key)
        self._wait_for(python, "ready")
        self._print_header(base, browser.version)

        # In a thread of its own: Playwright's sync API keeps an asyncio loop running in this one, under which
        # Django refuses database queries.
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=1) as thread:
            try:
                cpu_before = cpu_seconds(self.web_pid)
                committed = thread.submit(self._make_changes, stage, stop).result()
            finally:
                stop.set()  # on Ctrl-C, the thread stops at its next change
        measured = list(committed)[self.warmup :]
        self._wait_until_page_saw(page, len(committed))
        seen = {int(start): at for start, at in page.evaluate("window.__benchSeen")}
        received = self._collect(python)
        cpu_used = cpu_seconds(self.web_pid) - cpu_before

        page_ms = [seen[key] - committed[key] * 1000 for key in measured if key in seen]
        python_ms, slowest = [], []
        by_change: dict[int, list[float]] = {}
        for _, key, at in received:
            by_change.setdefault(key, []).append(at)
        slow_changes: list[tuple[float, float]] = []  # (seconds into the run, ms) of changes over the goal
        for key in measured:
            times = by_change.get(key, [])
            python_ms.extend((at - committed[key]) * 1000 for at in times)
            if len(times) == self.clients - 1 and key in seen:
                slowest.append(max([*(at * 1000 for at in times), seen[key]]) - committed[key] * 1000)
                if slowest[-1] >= GOAL_P95_MS:
                    slow_changes.append((committed[key] - committed[measured[0]], slowest[-1]))
        self._print_cpu(cpu_used, len(committed), len(received) + len(seen))
        self._print_results(
            [
                Latencies("Chromium page: live.js set the DOM attribute", page_ms, len(measured) - len(page_ms)),
                Latencies(
                    f"{self.clients - 1} Python clients: frame received",
                    python_ms,
                    len(measured) * (self.clients - 1) - len(python_ms),
                ),
                Latencies(f"slowest of all {self.clients} clients, per change", slowest, len(measured) - len(slowest)),
            ]
        )
        self._print_slow_changes(slow_changes, len(slowest))

    # --- Setting up -------------------------------------------------------------------------------

    def _start_redis(self, cleanup: ExitStack) -> None:
        """With no REDIS_URL, the embedded Redis: reused if it runs, else started here and stopped at the end."""
        if not settings.EMBEDDED_REDIS:
            return
        process = embedded_redis.start_embedded_redis(settings.EMBEDDED_REDIS_PORT, Path(settings.VAR_DIR) / "redis")
        if process is not None:
            cleanup.callback(embedded_redis.stop, process)

    def _prepare(self, cleanup: ExitStack) -> tuple[StageExecution, str]:
        """The bench execution (rows only, two RUNNING stages) and a signed-in reader's session key."""
        self._delete_data()
        cleanup.callback(self._delete_data)
        stages = [
            {"refId": "1", "name": "Flip", "type": "wait", "waitTime": 3600},
            {"refId": "2", "name": "Hold", "type": "wait", "waitTime": 3600},
        ]
        pipeline, _ = do_save_pipeline(
            {"application": BENCH_APPLICATION, "name": "latency", "stages": stages}, user="bench"
        )
        now = timezone.now()
        execution = Execution.objects.create(
            application=pipeline.application, pipeline=pipeline, name=pipeline.name, definition=pipeline.definition,
            trigger={"type": "manual", "user": "bench"}, status=Status.RUNNING, start_time=now, started_by="bench",
        )  # fmt: skip
        # No next_run_at: the sweeper of any worker on this database leaves them alone, and "Hold" stays
        # RUNNING so that the execution never looks finished to it.
        flip, _ = StageExecution.objects.bulk_create(
            StageExecution(
                execution=execution,
                ref_id=stage["refId"],
                position=position,
                type=stage["type"],
                name=stage["name"],
                definition=stage,
                status=Status.RUNNING,
                start_time=now,
            )
            for position, stage in enumerate(stages)
        )
        user = get_user_model().objects.create_user(BENCH_USER)
        do_grant(pipeline.application, user, "read", actor="bench")
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = session_backend()
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        cleanup.callback(SessionStore(session.session_key).delete)
        cleanup.callback(engine_queue().connection.delete, SEQUENCE_KEY.format(execution.id))
        return StageExecution.objects.select_related("execution__application").get(id=flip.id), session.session_key

    def _delete_data(self) -> None:
        Application.objects.filter(name=BENCH_APPLICATION).delete()
        get_user_model().objects.filter(username=BENCH_USER).delete()

    def _start_web(self, cleanup: ExitStack) -> str:
        """The ASGI web process on a free loopback port, on this command's database and Redis; returns its URL."""
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": settings.DATABASE_URL,
            "REDIS_URL": settings.REDIS_URL,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "PYTHONUNBUFFERED": "1",
        }
        log = cleanup.enter_context(tempfile.NamedTemporaryFile(prefix="bench-live-web-", suffix=".log"))
        process = subprocess.Popen(
            web_command("127.0.0.1", port),
            # Its own process group: Ctrl-C reaches only this command, which stops it.
            cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, process_group=0,
        )  # fmt: skip
        cleanup.callback(self._stop, process)
        self.web_pid = process.pid
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_SECONDS
        while http_status(f"{base}/login/") != 200:
            if process.poll() is not None or time.monotonic() > deadline:
                raise CommandError(f"the web process did not start; its log:\n{Path(log.name).read_text()[-3000:]}")
            time.sleep(0.1)
        if http_status(f"{base}/static/js/live.js") != 200:
            raise CommandError("the web process serves no /static/js/live.js: the page would have no live updates")
        return base

    def _start_python_clients(self, cleanup: ExitStack, base: str, execution_id, cookie: str):
        """Fork the process of the Python clients (before the browser starts: nothing but this thread runs yet)."""
        count = self.clients - 1
        if count == 0:
            return None
        connections.close_all()  # the child uses no database connection; the parent opens new ones
        ours, theirs = multiprocessing.Pipe()
        url = base.replace("http://", "ws://") + f"/ws/executions/{execution_id}/"
        process = multiprocessing.get_context("fork").Process(
            target=run_python_clients,
            args=(url, {"Cookie": cookie}, base, count, self.warmup + self.changes, theirs),
            daemon=True,
        )
        process.start()
        cleanup.callback(self._stop_clients, process, ours)
        return ours

    def _open_page(self, browser, base: str, stage: StageExecution, session_key: str):
        """The execution page in Chromium, signed in with the session cookie, live, watching the stage's row."""
        context = browser.new_context()
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session_key, "url": base}])
        page = context.new_page()
        page.goto(f"{base}/executions/{stage.execution_id}/")
        page.wait_for_selector("#live-status[data-live-state=open]", timeout=START_SECONDS * 1000)
        page.wait_for_load_state("networkidle")  # the re-read that follows the socket's hello
        page.evaluate(WATCH_ROW, str(stage.id))
        return page

    # --- Measuring ----------------------------------------------------------------------------------

    def _make_changes(self, stage: StageExecution, stop: threading.Event) -> dict[int, float]:
        """Change the stage ``warmup + changes`` times as the engine does, until ``stop`` is set; each change's
        start time (epoch ms, its key) with the epoch time its transaction committed, in order."""
        committed: dict[int, float] = {}
        base = timezone.now().replace(microsecond=0) - timedelta(hours=1)
        started = time.monotonic()
        try:
            for index in range(self.warmup + self.changes):
                if stop.wait(max(0.0, started + index * self.interval - time.monotonic())):
                    break
                start_time = base + timedelta(milliseconds=index)
                key = epoch_millis(start_time)
                with transaction.atomic():
                    locked = (
                        StageExecution.objects.select_for_update(of=("self",))
                        .select_related("execution__application")
                        .get(id=stage.id)
                    )
                    locked.status = Status.SUCCEEDED if locked.status == Status.RUNNING else Status.RUNNING
                    locked.start_time = start_time
                    locked.end_time = timezone.now() if locked.status == Status.SUCCEEDED else None
                    locked.save(update_fields=["status", "start_time", "end_time"])
                    # Registered first, so it runs first after the commit: before the publish.
                    transaction.on_commit(lambda key=key: committed.__setitem__(key, time.time()))
                    dispatch = Dispatch()
                    dispatch.changed(locked.execution, locked)
                    dispatch.send_on_commit()
        finally:
            connection.close()  # this thread's own connection
        return committed

    @staticmethod
    def _wait_until_page_saw(page, count: int) -> None:
        """Wait until the page has shown ``count`` changes, for up to DELIVERY_SECONDS (then some are missing)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            page.wait_for_function(f"window.__benchSeen.length >= {count}", timeout=DELIVERY_SECONDS * 1000)
        except PlaywrightTimeout:
            pass  # counted as missing deliveries

    def _wait_for(self, conn, kind: str):
        if conn is None:
            return None
        if not conn.poll(START_SECONDS):
            raise CommandError(f"the Python clients did not report {kind!r} within {START_SECONDS} s")
        got, data = conn.recv()
        if got != kind:
            raise CommandError(f"the Python clients failed: {data}")
        return data

    def _collect(self, conn) -> list[tuple[int, int, float]]:
        """What the Python clients received: once all of it arrived, or what did within DELIVERY_SECONDS."""
        if conn is None:
            return []
        if not conn.poll(DELIVERY_SECONDS):
            conn.send("stop")
        received = self._wait_for(conn, "done")
        conn.send("stop")
        return received

    # --- Stopping -----------------------------------------------------------------------------------

    @staticmethod
    def _stop(process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    @staticmethod
    def _stop_clients(process, conn) -> None:
        try:
            conn.send("stop")  # what it waits for at the end; harmless if it has gone
        except OSError:
            pass
        process.join(5)
        if process.is_alive():
            process.terminate()
            process.join(5)
        if process.is_alive():
            process.kill()
            process.join()
        conn.close()

    # --- Output ---------------------------------------------------------------------------------------

    def _print_header(self, base: str, chromium_version: str) -> None:
        import websockets

        db = connection.settings_dict
        where = f"{db['HOST']}:{db['PORT']}/{db['NAME']}" if db.get("HOST") else db["NAME"]
        redis_url = settings.REDIS_URL + (" (embedded)" if settings.EMBEDDED_REDIS else "")
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        self.stdout.write("Live-update latency: a stage change's commit -> a client showing it (same machine, clock)")
        self.stdout.write(f"  machine   {cpus} CPUs, Python {platform.python_version()}")
        self.stdout.write(f"  web       uvicorn cdplatform.asgi:application at {base} (one process)")
        self.stdout.write(f"  database  {connection.vendor} {where}")
        self.stdout.write(f"  redis     {redis_url}")
        self.stdout.write(
            f"  clients   {self.clients} WebSocket subscribers of one execution: 1 Chromium {chromium_version} page"
            f" + {self.clients - 1} Python clients (websockets {websockets.__version__}, one process)"
        )
        self.stdout.write(
            f"  changes   {self.changes} measured (after {self.warmup} not counted), one every"
            f" {self.interval * 1000:.0f} ms: a committed stage update, published by engine.Dispatch"
        )
        self.stdout.flush()

    def _print_cpu(self, seconds: float, changes: int, delivered: int) -> None:
        """The web process's CPU time from the first change to the last delivery (or DELIVERY_SECONDS after)."""
        if seconds != seconds or not changes:  # NaN: no /proc here
            return
        per_delivery = f"{seconds * 1e6 / delivered:.0f} us" if delivered else "-"
        self.stdout.write(
            f"  web CPU   {seconds:.1f} s for {changes} changes: {seconds * 1000 / changes:.1f} ms per change,"
            f" {per_delivery} per delivery received ({delivered} of {changes * self.clients})"
        )

    def _print_slow_changes(self, slow: list[tuple[float, float]], changes: int) -> None:
        """When the changes that some client saw only after the goal came: spikes at a steady period (a
        periodic job, a re-check) show as evenly spaced times."""
        shown = ", ".join(f"{at:.1f} s ({ms:.0f} ms)" for at, ms in slow[:20])
        more = f", and {len(slow) - 20} more" if len(slow) > 20 else ""
        self.stdout.write(
            f"changes some client saw {GOAL_P95_MS:.0f} ms or more after the commit: {len(slow)} of {changes}"
            f"{f', at {shown}{more} into the run' if slow else ''}"
        )

    def _print_results(self, rows: list[Latencies]) -> None:
        self.stdout.write("")
        self.stdout.write(
            f"  {'latency from commit, ms':<46} {'samples':>8} {'missing':>8} {'min':>9} {'median':>9}"
            f" {'p95':>9} {'max':>9}"
        )
        for row in rows:
            self.stdout.write(row.row())
        self.stdout.write("")
        worst = max((row.p95 for row in rows if row.values), default=float("nan"))
        missing = sum(row.missing for row in rows[:2])
        met = worst < GOAL_P95_MS and missing == 0
        verdict = self.style.SUCCESS("met") if met else self.style.ERROR("NOT met")
        self.stdout.write(
            f"Goal p95 < {GOAL_P95_MS:.0f} ms for every client: {verdict} (worst p95 {worst:.1f} ms"
            f"{f', {missing} deliveries missing' if missing else ''})"
        )
