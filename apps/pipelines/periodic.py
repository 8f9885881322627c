"""Periodic jobs: declared by the apps in one registry, each due run done once however many workers run.

An app registers a job by name with an interval in seconds or a cron
expression (:func:`register_periodic`, typically in ``AppConfig.ready()``);
registering the same job again is harmless, registering another under the
same name is an error. The workers call :func:`run_due` between jobs and when
idle, at most once a second each (``cdplatform/workers.py``).

Exactly once per tick. Each job has a :class:`~apps.pipelines.models.PeriodicJob`
row whose ``next_run_at`` is the run that is due. A worker that finds it due
claims that run with a compare-and-set,
``UPDATE ... SET next_run_at = <next> WHERE name = <name> AND next_run_at = <due>``;
of several workers that saw the same due run, only one updates a row, and
only that one runs it (as Healthchecks claims its checks). Redis plays no
part, so a Redis outage neither doubles nor loses a run. The next run is
counted from when this one was claimed (an interval) or is the cron
expression's next time after it, so a platform that was down for a while
runs a job once, not once per missed tick.

One run at a time. A run is not claimed while the job's previous run is
still going (started, not finished, less than :data:`ABANDONED_AFTER` ago:
after that its worker is taken for dead), and an interval job's next run is
never sooner than its interval after the last one ended. A run that takes
longer than its interval (a sweep of a large backlog) is followed by a pause,
not by another worker starting the same work at once.

Failures. A job that raises is logged, its error and the count of failures
in a row are kept on its row, and it runs again at its next tick; the worker
goes on. A job must bound its own time and batch sizes: it runs inside a
worker, between engine jobs.

Cron. Expressions are read by croniter, in UTC: five fields, or six or seven
with seconds first (and a year last), as Quartz writes them — ``?``, ranges,
steps, names (``MON-FRI``), ``L`` and ``#`` included. What Quartz has and
croniter lacks: Quartz numbers days of the week 1-7 from Sunday (croniter:
0-6, or names) and has ``W`` (nearest weekday); a Quartz trigger's
expression needs those translated before it is registered.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import croniter
from django.core.exceptions import ImproperlyConfigured
from django.db.models import F, Q
from django.db.models.functions import Greatest
from django.utils import timezone

from apps.pipelines.models import PeriodicJob

logger = logging.getLogger(__name__)

# A run started this long ago and never recorded as finished is taken for abandoned (its worker died).
ABANDONED_AFTER = timedelta(minutes=5)


@dataclass(frozen=True)
class PeriodicTask:
    """A job the workers run on a schedule: every ``every`` seconds, or at the times of ``cron``."""

    name: str
    func: Callable[[], object]
    every: float | None = None
    cron: str | None = None

    @property
    def schedule(self) -> str:
        """The schedule as people read it, kept on the job's row."""
        return f"every {self.every:g} s" if self.every is not None else self.cron

    def next_run(self, after: datetime) -> datetime:
        """When the job is due next, the last run having been claimed at ``after``."""
        if self.every is not None:
            return after + timedelta(seconds=self.every)
        return croniter(self.cron, after, second_at_beginning=_has_seconds(self.cron)).get_next(datetime)

    def first_run(self, now: datetime) -> datetime:
        """When a job never run before is due: an interval job at once, a cron job at its next time."""
        return now if self.every is not None else self.next_run(now)


TASKS: dict[str, PeriodicTask] = {}


def _has_seconds(expression: str) -> bool:
    return len(expression.split()) >= 6


def register_periodic(
    name: str, func: Callable[[], object], *, every: float | None = None, cron: str | None = None
) -> PeriodicTask:
    """Declare a periodic job; the same name, function and schedule again is harmless, anything else an error."""
    if (every is None) == (cron is None):
        raise ImproperlyConfigured(f"periodic job {name!r}: give an interval (every=seconds) or a cron expression")
    if every is not None and every <= 0:
        raise ImproperlyConfigured(f"periodic job {name!r}: the interval must be positive, not {every}")
    if cron is not None and not croniter.is_valid(cron, second_at_beginning=_has_seconds(cron)):
        raise ImproperlyConfigured(f"periodic job {name!r}: {cron!r} is not a cron expression")
    if len(name) > PeriodicJob._meta.get_field("name").max_length:
        raise ImproperlyConfigured(f"periodic job {name!r}: the name is too long")
    task = PeriodicTask(name, func, every, cron)
    existing = TASKS.get(name)
    if existing is not None and existing != task:
        raise ImproperlyConfigured(f"periodic job {name!r} is already registered with another function or schedule")
    TASKS[name] = task
    return task


def run_due(now: datetime | None = None) -> list[str]:
    """Run every registered job that is due and that this process wins the claim of; returns their names.

    Costs one query when nothing is due (two the first time a job is seen).
    """
    if not TASKS:
        return []
    now = now or timezone.now()
    due_at = dict(PeriodicJob.objects.filter(name__in=TASKS).values_list("name", "next_run_at"))
    missing = [name for name in TASKS if name not in due_at]
    if missing:
        rows = [PeriodicJob(name=n, schedule=TASKS[n].schedule, next_run_at=TASKS[n].first_run(now)) for n in missing]
        PeriodicJob.objects.bulk_create(rows, ignore_conflicts=True)
        due_at.update(PeriodicJob.objects.filter(name__in=missing).values_list("name", "next_run_at"))
    ran = []
    for name, due in sorted(due_at.items(), key=lambda item: item[1]):
        if due <= now and _claim(TASKS[name], due, now):
            _run(TASKS[name], now)
            ran.append(name)
    return ran


def _claim(task: PeriodicTask, due: datetime, now: datetime) -> bool:
    """Take the run due at ``due``: True for exactly one of the processes that try."""
    not_running = (Q(last_started_at__isnull=True) | Q(last_finished_at__gte=F("last_started_at"))
                   | Q(last_started_at__lt=now - ABANDONED_AFTER))
    claimed = PeriodicJob.objects.filter(not_running, name=task.name, next_run_at=due).update(
        next_run_at=task.next_run(now), schedule=task.schedule, last_started_at=now, runs=F("runs") + 1
    )
    return claimed == 1


def _run(task: PeriodicTask, started: datetime) -> None:
    """Run a claimed job; record how it ended on its row. Never raises: the worker must go on."""
    clock = time.monotonic()
    try:
        task.func()
    except Exception as error:  # noqa: BLE001  (a failed run is kept on its row and retried next tick)
        logger.exception("periodic job %s failed", task.name)
        error_text = f"{type(error).__name__}: {error}"[:2000]
    else:
        error_text = ""
    # On the clock the run was claimed by (run_due's ``now``), so that the times on the row compare.
    _finish(task, error_text, started + timedelta(seconds=time.monotonic() - clock))


def _finish(task: PeriodicTask, error: str, finished: datetime) -> None:
    failures = F("failures") + 1 if error else 0
    changes = {"last_finished_at": finished, "last_error": error, "failures": failures}
    if task.every is not None:
        changes["next_run_at"] = Greatest(F("next_run_at"), finished + timedelta(seconds=task.every))
    try:
        PeriodicJob.objects.filter(name=task.name).update(**changes)
    except Exception:  # noqa: BLE001  (the database itself may be what failed)
        logger.exception("could not record how periodic job %s ended", task.name)
