"""A worker's helper processes die with it: the scheduler that ``rqworker --with-scheduler`` forks."""

import os
import signal
import time
from pathlib import Path

import pytest

SCHEDULER_LOCK = "rq:scheduler-lock:default"


def process_state(pid: int) -> tuple[str, int] | None:
    """The state letter and parent pid of a process, or None once it is gone (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    state, parent = stat.rsplit(")", 1)[1].split()[:2]
    return None if state in ("Z", "X") else (state, int(parent))


def wait_for_scheduler(client, timeout: float = 30.0) -> int:
    """The pid of the scheduler process that registered in Redis, once one has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for key in client.scan_iter("rq:scheduler:*"):
            pid = int(client.hget(key, "pid") or 0)
            if pid:
                return pid
        time.sleep(0.1)
    pytest.fail(f"no scheduler registered within {timeout} s")


@pytest.fixture
def linux():
    if not Path("/proc/self/stat").exists():
        pytest.skip("reads processes from /proc (Linux)")


def test_the_scheduler_of_a_worker_killed_with_sigkill_stops_within_seconds(linux, workers, clean_redis):
    workers.start(1)
    worker = workers.processes[0]
    scheduler = wait_for_scheduler(clean_redis)
    assert process_state(scheduler)[1] == worker.pid  # the worker's own child

    os.kill(worker.pid, signal.SIGKILL)  # the worker alone, as the OOM killer or `kill -9 <pid>` would
    worker.wait(10)
    deadline = time.monotonic() + 5
    while process_state(scheduler) is not None and time.monotonic() < deadline:
        time.sleep(0.1)

    assert process_state(scheduler) is None, "the scheduler outlived its worker"
    # It stopped cleanly: the lock is free for the next worker's scheduler at once, not in a minute.
    assert not clean_redis.exists(SCHEDULER_LOCK)
    workers.start(1)
    assert wait_for_scheduler(clean_redis, timeout=10) != scheduler


def test_another_workers_scheduler_takes_over_within_seconds_when_the_one_running_it_stops(linux, workers,
                                                                                         clean_redis):
    workers.start(2)
    first = wait_for_scheduler(clean_redis)
    holder = next(worker for worker in workers.processes if process_state(first)[1] == worker.pid)

    holder.send_signal(signal.SIGTERM)  # a clean stop: its scheduler goes and frees the lock
    holder.wait(30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pids = [int(clean_redis.hget(key, "pid") or 0) for key in clean_redis.scan_iter("rq:scheduler:*")]
        if any(pid and pid != first and process_state(pid) for pid in pids):
            break
        time.sleep(0.2)
    else:
        pytest.fail("no other worker's scheduler started within 15 s (RQ alone waits for its 10-minute maintenance)")
    assert clean_redis.exists(SCHEDULER_LOCK)
