"""Periodic jobs of the periodic-job tests, loaded into real workers (``tests/worker.py``).

Each job appends a line to the file its environment variable names, so the
test counts runs across processes; the counting job is registered twice, as
two apps declaring the same job would.
"""

import os
import time

from apps.pipelines.periodic import register_periodic

COUNT_FILE = "TEST_PERIODIC_COUNT_FILE"
CRASH_FILE = "TEST_PERIODIC_CRASH_FILE"
SLOW_FILE = "TEST_PERIODIC_SLOW_FILE"


def count_run() -> None:
    """Record one run: when, and by which process."""
    with open(os.environ[COUNT_FILE], "a") as runs:
        runs.write(f"{time.time()} {os.getpid()}\n")


def crash_first_run() -> None:
    """Fail the first run (no file yet), then record each later run."""
    path = os.environ[CRASH_FILE]
    first = not os.path.exists(path)
    with open(path, "a") as runs:
        runs.write(f"{'crash' if first else 'ok'} {time.time()} {os.getpid()}\n")
    if first:
        raise RuntimeError("the first run crashes")


def slow_run() -> None:
    """Say it started, then take 3 s, catching whatever comes meanwhile as a careless job would."""
    with open(os.environ[SLOW_FILE], "a") as runs:
        runs.write(f"started {os.getpid()}\n")
    try:
        time.sleep(3)
    except Exception:  # noqa: BLE001, S110  (the point: a job that swallows everything)
        pass


if os.environ.get(COUNT_FILE):
    register_periodic("tests.count", count_run, every=1)
    register_periodic("tests.count", count_run, every=1)
if os.environ.get(CRASH_FILE):
    register_periodic("tests.crash", crash_first_run, every=1)
if os.environ.get(SLOW_FILE):
    register_periodic("tests.slow", slow_run, every=1)
