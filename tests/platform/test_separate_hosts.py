"""Workers on other machines need nothing but PostgreSQL and Redis (README, "More than one machine").

Each "machine" is a network namespace of its own (``tests/platform/netns.py``)
with a veth link to the test's, and a worker started in it as the README
starts one on another host: ``manage.py rqworker --with-scheduler`` in
production mode, from an environment of its own (``DATABASE_URL``,
``REDIS_URL``, ``SECRET_KEY``, ...), in an empty working directory with its own
``HOME`` and ``TMPDIR``. It reaches PostgreSQL and Redis only through
forwarders on its link, as it would over a network: this machine's loopback,
where they listen, is not its loopback. The test's own process queues the
execution and runs no job.

Needs root and iproute2's ``ip`` (it creates namespaces) and PostgreSQL
(a SQLite file would be a shared disk): without them it skips saying what is
missing, and fails in CI.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from rq import Worker

from apps.pipelines.choices import Status
from apps.pipelines.services import do_save_pipeline, do_skip_wait, do_start_execution
from tests.conftest import ROOT, missing_service, wait_for_execution, wait_for_stage
from tests.platform import netns

SCHEDULER_LOCK = "rq:scheduler-lock:default"
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0

# Handed over between two hosts: what the first runs, the second reads from the database alone.
STAGES = [
    {"refId": "1", "name": "Prepare", "type": "evaluateVariables",
     "variables": [{"key": "release", "value": "build-${6 * 7}"}]},
    {"refId": "2", "name": "Where first", "type": "testWhereAmI", "requisiteStageRefIds": ["1"]},
    # Long enough to outlast any handover: the test skips it once the second machine serves.
    {"refId": "3", "name": "Wait", "type": "wait", "waitTime": 3600, "requisiteStageRefIds": ["2"]},
    {"refId": "4", "name": "Read", "type": "evaluateVariables", "requisiteStageRefIds": ["3"],
     "variables": [{"key": "shipped", "value": "${release}-shipped"}]},
    {"refId": "5", "name": "Where then (a)", "type": "testWhereAmI", "requisiteStageRefIds": ["4"]},
    {"refId": "6", "name": "Where then (b)", "type": "testWhereAmI", "requisiteStageRefIds": ["4"]},
    {"refId": "7", "name": "Join", "type": "wait", "waitTime": 0, "requisiteStageRefIds": ["5", "6"]},
]


@dataclass
class Machine:
    """One other machine: a namespace, forwarders on its link to PostgreSQL and Redis, and its worker."""

    host: netns.NamespacedHost
    home: Path
    log: Path
    database: netns.Forwarder
    redis: netns.Forwarder
    environment: dict[str, str] = field(default_factory=dict)
    worker: subprocess.Popen | None = None

    def start_worker(self) -> None:
        """Start ``manage.py rqworker --with-scheduler`` in the namespace, in its empty home."""
        command = self.host.command([sys.executable, str(ROOT / "manage.py"), "rqworker", "--with-scheduler"])
        with open(self.log, "ab") as log:
            self.worker = subprocess.Popen(command, cwd=self.home, env=self.environment, stdin=subprocess.DEVNULL,
                                           stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def stop_worker(self) -> None:
        """Stop the worker as its machine's service manager would (SIGTERM), and whatever it left running."""
        process, self.worker = self.worker, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        try:
            os.killpg(process.pid, signal.SIGKILL)  # its scheduler, should it outlive it
        except ProcessLookupError:
            pass

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else "(no log)"


def service_target(host: str | None, port: int | str | None, what: str) -> tuple[str, int]:
    """Where a forwarder sends connections to: the service's TCP address as this process reaches it."""
    if not host or host.startswith("/"):
        missing_service(f"needs {what} over TCP (its host is {host or 'a local socket'})")
    return str(host), int(port)


def worker_environment(machine: Machine, redis_url: str) -> dict[str, str]:
    """What a worker host's environment holds (README): the shared services through its link, the shared keys."""
    db = connection.settings_dict  # the test database: the workers must use the one this test writes to
    auth = quote(db.get("USER") or "", safe="") + (f":{quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else "")
    redis_parts = urlsplit(redis_url)
    redis_auth = redis_parts.netloc.rpartition("@")[0]
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(machine.home),
        "TMPDIR": str(machine.home / "tmp"),
        "DATABASE_URL": f"postgres://{auth}{'@' if auth else ''}{machine.host.gateway}:{machine.database.port}/"
                        f"{quote(db['NAME'], safe='')}",
        "REDIS_URL": f"redis://{redis_auth}{'@' if redis_auth else ''}{machine.host.gateway}:{machine.redis.port}"
                     f"{redis_parts.path or '/0'}",
        # Production mode, as on a real worker host: the same SECRET_KEY as every other process.
        "SECRET_KEY": settings.SECRET_KEY,
        "LOAD_BALANCER_STATE_DIR": str(machine.home / "load-balancers"),
        "STAGE_TYPE_MODULES": "tests.platform.host_stages",
        "ENGINE_INLINE_SECONDS": "0",  # every stage step a job of its own: more handed over through Redis
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",  # nothing written next to the code
    }


@pytest.fixture
def where_am_i():
    """The test-only stage type, for saving the pipeline here; imported now, so no other test sees it."""
    from tests.platform import host_stages

    with host_stages.registered():
        yield


@pytest.fixture
def machines(postgresql, clean_redis, redis_url, tmp_path):
    """Two other machines, each linked to this one and with forwarders to PostgreSQL and Redis; removed after."""
    reason = netns.unavailable()
    if reason:
        missing_service(reason)
    db = connection.settings_dict
    database_target = service_target(db.get("HOST"), db.get("PORT") or 5432, "PostgreSQL")
    redis_parts = urlsplit(redis_url)
    redis_target = service_target(redis_parts.hostname, redis_parts.port or 6379, "Redis")
    netns.remove_stale()
    made: list[Machine] = []
    try:
        for number in range(2):
            made.append(new_machine(number, tmp_path, {m.host.subnet for m in made}, database_target, redis_target))
            bring_up(made[-1])
            made[-1].environment = worker_environment(made[-1], redis_url)
        yield made
    finally:
        for machine in made:
            machine.stop_worker()
        for machine in made:
            machine.database.stop()
            machine.redis.stop()
            machine.host.destroy()


def new_machine(number: int, tmp_path: Path, taken: set[int], database_target, redis_target) -> Machine:
    """A machine not made yet: its namespace's name and subnet, its empty home, its forwarders."""
    host = netns.NamespacedHost(f"cdp-{os.getpid()}-{number}", netns.free_subnet(taken))
    home = tmp_path / f"host-{number}"
    (home / "tmp").mkdir(parents=True)
    return Machine(host, home, tmp_path / f"worker-{number}.log",
                   netns.Forwarder(host.gateway, database_target), netns.Forwarder(host.gateway, redis_target))


def bring_up(machine: Machine) -> None:
    """Make the namespace and its link, and start the forwarders on it (the fixture removes them all after)."""
    try:
        machine.host.create()
    except RuntimeError as error:
        missing_service(f"could not create a network namespace: {error}")
    machine.database.start()
    machine.redis.start()


def wait_until_serving(machine: Machine, redis_client) -> Worker:
    """The worker of ``machine`` once it has registered in Redis; fail with its log if it does not."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for worker in Worker.all(connection=redis_client):
            if machine.worker is not None and worker.pid == machine.worker.pid:
                return worker
        if machine.worker is None or machine.worker.poll() is not None:
            pytest.fail(f"the worker in {machine.host.name} exited:\n{machine.log_tail()}")
        time.sleep(0.1)
    pytest.fail(f"the worker in {machine.host.name} did not register in {START_TIMEOUT_SECONDS} s:\n"
                f"{machine.log_tail()}")


def assert_only_workers_of(running: list[Machine], redis_client) -> None:
    """Every worker Redis knows is the worker of one of ``running``, in that machine's namespace."""
    expected = {m.worker.pid: m.host.inode() for m in running if m.worker is not None}
    for worker in Worker.all(connection=redis_client):
        assert worker.pid in expected, f"a worker outside the namespaces serves the queue: {worker.name} {worker.pid}"
        assert netns.netns_of(worker.pid) == expected[worker.pid] != netns.netns_of()


def wait_for_scheduler_lock_free(redis_client) -> None:
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    while redis_client.exists(SCHEDULER_LOCK):
        assert time.monotonic() < deadline, "the stopped worker's scheduler kept its lock"
        time.sleep(0.1)


PROBE = """
import socket
for host, port in [{targets}]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        reached = True
    except OSError:
        reached = False
    print(host, port, "reached" if reached else "unreachable")
"""


def test_a_machine_reaches_postgresql_and_redis_over_its_link_and_not_on_its_loopback(machines):
    machine = machines[0]
    targets = [(*machine.database.target, False), (*machine.redis.target, False),
               (machine.host.gateway, machine.database.port, True), (machine.host.gateway, machine.redis.port, True)]
    probe = PROBE.format(targets=", ".join(repr((host, port)) for host, port, _ in targets))

    result = subprocess.run(machine.host.command([sys.executable, "-c", probe]), capture_output=True, text=True,
                            timeout=30, cwd=machine.home, env=machine.environment)

    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:4] == [
        f"{host} {port} {'reached' if expected else 'unreachable'}" for host, port, expected in targets]
    assert machine.database.peers == machine.redis.peers == {machine.host.address}


def test_an_execution_started_on_one_machine_is_finished_by_another(machines, where_am_i, clean_redis):
    first, second = machines
    execution = do_start_execution(do_save_pipeline({"application": "shop", "name": "hosts", "stages": STAGES})[0])
    first.start_worker()
    wait_until_serving(first, clean_redis)
    assert_only_workers_of([first], clean_redis)

    wait_for_stage(execution.id, "3", {Status.RUNNING}, timeout=30)  # the wait: the first machine goes away
    first.stop_worker()
    wait_for_scheduler_lock_free(clean_redis)
    second.start_worker()
    wait_until_serving(second, clean_redis)
    assert_only_workers_of([second], clean_redis)
    do_skip_wait(execution.id, "3", user=User.objects.create_superuser("root"))

    execution = wait_for_execution(execution.id, timeout=60)
    assert execution.status == Status.SUCCEEDED, second.log_tail()
    outputs = {stage.ref_id: stage.outputs for stage in execution.stages.all()}
    assert outputs["2"]["netns"] == first.host.inode() != netns.netns_of()
    assert outputs["5"]["netns"] == outputs["6"]["netns"] == second.host.inode()
    assert (outputs["2"]["cwd"], outputs["5"]["cwd"]) == (str(first.home), str(second.home))
    assert outputs["4"] == {"shipped": "build-42-shipped"}  # the first machine's variable, read by the second
    for machine in machines:
        assert machine.database.peers == machine.redis.peers == {machine.host.address}
