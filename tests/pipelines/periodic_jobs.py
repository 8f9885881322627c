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


if os.environ.get(COUNT_FILE):
    register_periodic("tests.count", count_run, every=1)
    register_periodic("tests.count", count_run, every=1)
if os.environ.get(CRASH_FILE):
    register_periodic("tests.crash", crash_first_run, every=1)
