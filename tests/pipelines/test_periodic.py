"""Periodic jobs: one registry, each due run claimed by exactly one process, failures retried next tick."""

import signal
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.pipelines import periodic
from apps.pipelines.models import PeriodicJob
from apps.pipelines.periodic import PeriodicTask, register_periodic, run_due
from tests.pipelines.periodic_jobs import COUNT_FILE, CRASH_FILE, SLOW_FILE

T0 = datetime(2026, 12, 2, 8, 0, 0, tzinfo=UTC)


@pytest.fixture
def only_these_jobs(monkeypatch):
    """The registry holding only what the test registers (the apps' own jobs set aside)."""
    monkeypatch.setattr(periodic, "TASKS", {})
    return periodic.TASKS


def test_registering_the_same_job_twice_is_harmless_and_another_under_its_name_is_refused(only_these_jobs):
    def job():
        pass

    first = register_periodic("reports", job, every=60)
    assert register_periodic("reports", job, every=60) == first
    with pytest.raises(ImproperlyConfigured, match="already registered"):
        register_periodic("reports", job, every=30)
    with pytest.raises(ImproperlyConfigured, match="already registered"):
        register_periodic("reports", lambda: None, every=60)
    assert only_these_jobs == {"reports": first}


def test_a_schedule_is_an_interval_or_a_valid_cron_expression(only_these_jobs):
    with pytest.raises(ImproperlyConfigured, match="interval .* or a cron"):
        register_periodic("neither", print)
    with pytest.raises(ImproperlyConfigured, match="interval .* or a cron"):
        register_periodic("both", print, every=1, cron="* * * * *")
    with pytest.raises(ImproperlyConfigured, match="not a cron expression"):
        register_periodic("bad", print, cron="every tuesday")
    with pytest.raises(ImproperlyConfigured, match="positive"):
        register_periodic("zero", print, every=0)


def test_cron_expressions_with_and_without_seconds_as_quartz_writes_them():
    hourly = PeriodicTask("hourly", print, cron="17 * * * *")
    assert hourly.next_run(T0) == T0.replace(minute=17)
    every_ten_seconds = PeriodicTask("quartz", print, cron="*/10 * * * * ?")
    assert every_ten_seconds.next_run(T0 + timedelta(seconds=3)) == T0 + timedelta(seconds=10)
    weekdays_at_noon = PeriodicTask("noon", print, cron="0 0 12 ? * MON-FRI *")
    assert weekdays_at_noon.next_run(T0) == T0.replace(hour=12)  # 2026-12-02 is a Wednesday
    assert PeriodicTask("interval", print, every=90).next_run(T0) == T0 + timedelta(seconds=90)


@pytest.mark.django_db
def test_a_due_run_is_claimed_once_and_the_next_counts_from_when_it_ended(only_these_jobs):
    runs = []
    register_periodic("tick", lambda: runs.append(1), every=10)

    assert run_due(T0) == ["tick"]  # a new interval job is due at once
    assert run_due(T0) == [] and run_due(T0 + timedelta(seconds=9)) == []
    assert run_due(T0 + timedelta(seconds=25)) == ["tick"]  # late: one run, not one per missed tick
    assert run_due(T0 + timedelta(seconds=30)) == []
    row = PeriodicJob.objects.get(name="tick")
    assert (len(runs), row.runs, row.schedule) == (2, 2, "every 10 s")
    # The run took a moment: the next is its interval after that.
    assert T0 + timedelta(seconds=35) <= row.next_run_at < T0 + timedelta(seconds=36)


@pytest.mark.django_db
def test_two_processes_that_saw_the_same_due_run_cannot_both_claim_it(only_these_jobs):
    task = register_periodic("tick", print, every=10)
    PeriodicJob.objects.create(name="tick", schedule=task.schedule, next_run_at=T0)

    assert periodic._claim(task, T0, T0) is True
    assert periodic._claim(task, T0, T0) is False  # the second saw the same row before the first moved it


@pytest.mark.django_db
def test_a_crashing_run_is_recorded_on_its_row_and_runs_again_at_the_next_tick(only_these_jobs):
    outcomes = iter([RuntimeError("disk full"), None])

    def flaky():
        error = next(outcomes)
        if error:
            raise error

    register_periodic("flaky", flaky, every=5)
    assert run_due(T0) == ["flaky"]
    row = PeriodicJob.objects.get(name="flaky")
    assert (row.failures, row.last_error) == (1, "RuntimeError: disk full")
    assert T0 + timedelta(seconds=5) <= row.next_run_at < T0 + timedelta(seconds=6)

    assert run_due(T0 + timedelta(seconds=6)) == ["flaky"]
    row.refresh_from_db()
    assert (row.failures, row.last_error, row.runs) == (0, "", 2)


@pytest.mark.django_db
def test_a_run_still_going_is_not_claimed_again_and_the_next_waits_an_interval_after_it_ends(only_these_jobs):
    """A sweep of a large backlog can outlast its interval: another worker must not start the same work
    meanwhile, nor the next run start the moment this one ends."""
    task = register_periodic("sweep", print, every=1)
    PeriodicJob.objects.create(name="sweep", schedule=task.schedule, next_run_at=T0)
    assert periodic._claim(task, T0, T0) is True
    # Its next tick comes due while it runs: not claimed, even past the due time.
    later = T0 + timedelta(seconds=3)
    assert periodic._claim(task, T0 + timedelta(seconds=1), later) is False
    # It ends after 3 s: the next run is due its interval after that, not at the tick it missed.
    periodic._finish(task, "", later)
    row = PeriodicJob.objects.get(name="sweep")
    assert row.next_run_at == later + timedelta(seconds=1)
    assert run_due(later + timedelta(seconds=0.5)) == [] and run_due(later + timedelta(seconds=1)) == ["sweep"]


@pytest.mark.django_db
def test_a_run_whose_worker_died_is_taken_for_abandoned_and_the_job_runs_again(only_these_jobs):
    task = register_periodic("sweep", print, every=1)
    PeriodicJob.objects.create(name="sweep", schedule=task.schedule, next_run_at=T0)
    assert periodic._claim(task, T0, T0) is True  # and never finishes
    due = T0 + timedelta(seconds=1)
    assert periodic._claim(task, due, T0 + periodic.ABANDONED_AFTER - timedelta(seconds=1)) is False
    assert periodic._claim(task, due, T0 + periodic.ABANDONED_AFTER + timedelta(seconds=1)) is True


def _runs(path) -> list[tuple[float, int]]:
    if not path.exists():
        return []
    return [(float(when), int(pid)) for when, pid in (line.split() for line in path.read_text().splitlines())]


def test_a_job_registered_twice_runs_once_per_tick_with_three_workers(workers, tmp_path):
    runs_file = tmp_path / "runs.txt"
    workers.start(3, preload="tests.pipelines.periodic_jobs", **{COUNT_FILE: str(runs_file)})
    _wait_for(lambda: len(_runs(runs_file)) >= 6, timeout=30)

    runs = _runs(runs_file)
    times = sorted(when for when, _ in runs)
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    # Every 1 s: three workers each running every tick would leave gaps of a few milliseconds.
    assert min(gaps) > 0.9, f"a tick ran more than once: {gaps}"
    assert PeriodicJob.objects.get(name="tests.count").runs >= len(runs)
    assert len({pid for _, pid in runs}) >= 1


def test_a_crashing_periodic_job_is_retried_at_the_next_tick_and_the_worker_survives(workers, tmp_path):
    runs_file = tmp_path / "crash.txt"
    workers.start(3, preload="tests.pipelines.periodic_jobs", **{CRASH_FILE: str(runs_file)})

    def lines():
        return runs_file.read_text().splitlines() if runs_file.exists() else []

    _wait_for(lambda: len(lines()) >= 3, timeout=30)
    outcomes = [line.split()[0] for line in lines()]
    assert outcomes[0] == "crash" and set(outcomes[1:]) == {"ok"}
    first_retry = float(lines()[1].split()[1]) - float(lines()[0].split()[1])
    assert 0.9 < first_retry < 5, f"the retry came {first_retry:.1f} s after the crash"
    row = PeriodicJob.objects.get(name="tests.crash")
    assert row.failures == 0 and row.last_error == ""
    assert all(process.poll() is None for process in workers.processes), "a worker died"


def _wait_for(predicate, timeout: float) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_worker_told_to_stop_while_a_periodic_job_runs_stops_once_it_is_done(workers, tmp_path):
    runs_file = tmp_path / "slow-runs"
    workers.start(1, preload="tests.pipelines.periodic_jobs", **{SLOW_FILE: str(runs_file)})
    deadline = time.monotonic() + 30
    while not (runs_file.exists() and "started" in runs_file.read_text()):
        assert time.monotonic() < deadline, "the slow periodic job never started"
        time.sleep(0.05)
    worker = workers.processes[0]

    worker.send_signal(signal.SIGTERM)  # in the middle of the job, which swallows whatever is raised in it

    assert worker.wait(15) == 0
    assert runs_file.read_text().count("started") == 1, "it went on to run the job again"
