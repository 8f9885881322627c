"""The durable event log: written with the change, read in commit order, delivered to consumers exactly as promised."""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils import timezone

from apps.pipelines import eventlog
from apps.pipelines.choices import Status
from apps.pipelines.eventlog import EventBuffer, consume, prune_events, read_after, register_consumer, run_consumers
from apps.pipelines.models import Application, Event, EventCursor, Execution, Pipeline, StageExecution
from tests.conftest import ROOT, worker_database_url
from tests.pipelines.event_sink import BATCH, CONSUMER, SINK_TABLE


@pytest.fixture
def no_consumers(monkeypatch):
    """The consumer registry holding only what the test registers."""
    monkeypatch.setattr(eventlog, "CONSUMERS", {})
    return eventlog.CONSUMERS


@pytest.fixture
def sink():
    """A table a consumer writes what it receives to: test-only, created and dropped here."""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {SINK_TABLE} (event_id BIGINT NOT NULL, pid INTEGER NOT NULL)")
    yield lambda: _sunk()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {SINK_TABLE}")


def _sunk() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT event_id FROM {SINK_TABLE} ORDER BY event_id")
        return [row[0] for row in cursor.fetchall()]


def sink_writer(events) -> None:
    """A handler that writes to the sink in the delivering transaction."""
    with connection.cursor() as cursor:
        for event in events:
            cursor.execute(f"INSERT INTO {SINK_TABLE} (event_id, pid) VALUES (%s, %s)", [event.id, os.getpid()])


def make_execution(name: str = "shop") -> tuple[Execution, StageExecution]:
    """An execution of a pipeline with one stage, loaded as the engine loads it (application included)."""
    application = Application.objects.create(name=name)
    pipeline = Pipeline.objects.create(application=application, name="deliver", definition={})
    execution = Execution.objects.create(application=application, pipeline=pipeline, name="deliver", definition={})
    StageExecution.objects.create(execution=execution, ref_id="1", type="wait", name="Wait", definition={})
    execution = Execution.objects.select_related("application").get(id=execution.id)
    return execution, execution.stages.get()


def note_events(count: int, per_transaction: int = 10) -> list[int]:
    """Commit ``count`` action events; returns their ids in log order."""
    execution, _ = make_execution(f"app-{Event.objects.count()}")
    for start in range(0, count, per_transaction):
        with transaction.atomic():
            buffer = EventBuffer()
            for index in range(start, min(count, start + per_transaction)):
                buffer.note("execution.paused", execution, actor="alice", payload={"n": index})
            buffer.write()
    ids = list(Event.objects.order_by("xact", "id").values_list("id", flat=True))
    wait_until_final(len(ids))
    return ids


def wait_until_final(count: int, timeout: float = 30.0) -> list[Event]:
    """Wait until ``count`` events are readable. On PostgreSQL a committed event is read only once every
    older transaction on the server has ended, and tests of other databases on the same server may hold one."""
    deadline = time.monotonic() + timeout
    while len(events := read_after(0, 0, count + 1)) < count:
        assert time.monotonic() < deadline, f"only {len(events)} of {count} events became readable"
        time.sleep(0.05)
    return events


@pytest.mark.django_db
def test_a_transactions_status_moves_are_written_in_order_with_one_insert(django_assert_num_queries):
    execution, stage = make_execution()
    buffer = EventBuffer()
    buffer.note("execution.resumed", execution, actor="alice", payload={"why": "test"})
    execution.status = Status.RUNNING
    stage.status = Status.RUNNING
    stage.status = Status.SUCCEEDED  # both transitions of one transaction are kept
    execution.status = Status.SUCCEEDED
    buffer.track(execution, stage)
    buffer.track(execution)

    with django_assert_num_queries(1):
        assert buffer.write() == 5
    assert buffer.write() == 0  # written once

    events = list(Event.objects.order_by("id"))
    assert [(e.kind, e.previous_status, e.status) for e in events] == [
        ("execution.resumed", "", ""),
        ("execution.status", "NOT_STARTED", "RUNNING"),
        ("stage.status", "NOT_STARTED", "RUNNING"),
        ("stage.status", "RUNNING", "SUCCEEDED"),
        ("execution.status", "RUNNING", "SUCCEEDED"),
    ]
    first, moved = events[0], events[3]
    assert (first.actor, first.payload, first.stage_id) == ("alice", {"why": "test"}, None)
    assert (moved.execution_id, moved.application_id, moved.application_name) == (
        execution.id, execution.application_id, "shop"
    )
    assert (moved.pipeline_id, moved.pipeline_name) == (execution.pipeline_id, "deliver")
    assert (moved.stage_id, moved.stage_ref_id, moved.stage_name, moved.stage_type) == (stage.id, "1", "Wait", "wait")
    assert events[1].created_at <= events[4].created_at


@pytest.mark.django_db
def test_loading_or_reloading_a_row_is_not_a_move():
    execution, stage = make_execution()
    StageExecution.objects.filter(id=stage.id).update(status=Status.RUNNING)
    stage.refresh_from_db()
    buffer = EventBuffer()
    buffer.track(execution, stage)
    assert buffer.write() == 0
    assert stage.status == Status.RUNNING


@pytest.mark.django_db
def test_registering_a_consumer_twice_is_harmless_and_another_handler_is_refused(no_consumers):
    first = register_consumer("metrics", sink_writer)
    assert register_consumer("metrics", sink_writer) == first
    with pytest.raises(ImproperlyConfigured, match="another handler"):
        register_consumer("metrics", print)


@pytest.mark.django_db(transaction=True)
def test_a_consumer_gets_every_event_once_in_order_and_its_writes_commit_with_its_cursor(no_consumers, sink):
    ids = note_events(25)
    register_consumer("metrics", sink_writer, batch_size=10)

    assert [consume("metrics") for _ in range(4)] == [10, 10, 5, 0]

    assert _sunk() == ids
    cursor = EventCursor.objects.get(name="metrics")
    assert (cursor.event_id, cursor.delivered, cursor.failures) == (ids[-1], 25, 0)
    later = note_events(3)[-3:]
    assert run_consumers() == 3 and _sunk() == ids + later


@pytest.mark.django_db(transaction=True)
def test_a_failing_consumer_is_retried_from_its_cursor_after_a_backoff_and_does_not_block_others(no_consumers, sink):
    ids = note_events(5)
    calls = []

    def flaky(events):
        calls.append([event.id for event in events])
        sink_writer(events)  # written, then rolled back with the failure
        if len(calls) == 1:
            raise ConnectionError("chat service down")

    register_consumer("chat", flaky)
    register_consumer("metrics", lambda events: None)

    assert run_consumers() == 5  # metrics took all five; chat failed
    cursor = EventCursor.objects.get(name="chat")
    assert (cursor.event_id, cursor.failures, cursor.last_error) == (0, 1, "ConnectionError: chat service down")
    assert cursor.retry_at > timezone.now() and _sunk() == []
    assert consume("chat") == 0  # backing off
    EventCursor.objects.filter(name="chat").update(retry_at=timezone.now() - timedelta(seconds=1))

    assert consume("chat") == 5
    assert calls == [ids, ids] and _sunk() == ids
    cursor.refresh_from_db()
    assert (cursor.event_id, cursor.failures, cursor.last_error, cursor.retry_at) == (ids[-1], 0, "", None)


@pytest.mark.django_db(transaction=True)
def test_pruning_removes_only_old_events_that_every_consumer_has_read(no_consumers, settings):
    settings.EVENT_RETENTION_DAYS = 7
    ids = note_events(6)
    Event.objects.filter(id__in=ids[:4]).update(created_at=timezone.now() - timedelta(days=8))
    register_consumer("slow", lambda events: None, batch_size=2)
    assert prune_events() == 0  # "slow" has read nothing yet

    consume("slow")  # it has read the first two
    assert prune_events() == 2
    assert list(Event.objects.order_by("id").values_list("id", flat=True)) == ids[2:]
    consume("slow"), consume("slow")
    assert prune_events() == 2  # the two recent ones stay, read or not
    assert list(Event.objects.order_by("id").values_list("id", flat=True)) == ids[4:]


def _in_thread(target) -> threading.Thread:
    """Run ``target`` on a connection of its own (Django's connections are per thread)."""

    def run():
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_the_reader_never_skips_an_event_whose_transaction_commits_after_a_later_id(postgresql):
    execution, _ = make_execution()
    inserted, release = threading.Event(), threading.Event()

    def slow_writer():
        with transaction.atomic():
            buffer = EventBuffer()
            buffer.note("stage.judged", execution, actor="slow")
            buffer.write()  # takes the lower id
            inserted.set()
            release.wait(10)

    slow = _in_thread(slow_writer)
    assert inserted.wait(10)
    with transaction.atomic():  # a later id, committed first
        buffer = EventBuffer()
        buffer.note("stage.judged", execution, actor="fast")
        buffer.write()
    assert list(Event.objects.values_list("actor", flat=True)) == ["fast"]  # "slow" is not committed yet
    assert read_after(0, 0, 10) == []  # so nothing is final: "slow" may still commit below "fast"

    release.set()
    slow.join(10)
    events = wait_until_final(2)
    assert [event.actor for event in events] == ["slow", "fast"]
    assert events[0].id < events[1].id and events[0].xact < events[1].xact
    assert read_after(events[-1].xact, events[-1].id, 10) == []


def test_one_process_at_a_time_serves_a_consumer(postgresql, no_consumers):
    note_events(3)
    register_consumer("metrics", lambda events: None)
    EventCursor.objects.create(name="metrics")
    locked, release = threading.Event(), threading.Event()

    def other_process():
        with transaction.atomic():
            EventCursor.objects.select_for_update().get(name="metrics")
            locked.set()
            release.wait(10)

    holder = _in_thread(other_process)
    assert locked.wait(10)
    started = time.monotonic()
    assert consume("metrics") == 0  # skipped at once, not waited for
    assert time.monotonic() - started < 1
    release.set()
    holder.join(10)
    assert consume("metrics") == 3


def _start_sink(progress, log):
    env = {**os.environ, "DATABASE_URL": worker_database_url()}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.pipelines.event_sink", str(progress)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )


def _wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_a_consumer_killed_mid_batch_delivers_every_event_after_restart_and_none_twice(
    transactional_db, sink, tmp_path
):
    ids = note_events(3 * BATCH)
    progress = tmp_path / "progress.txt"

    def handled() -> list[int]:
        return [int(line) for line in progress.read_text().split()] if progress.exists() else []

    with open(tmp_path / "sink.log", "ab") as log:
        process = _start_sink(progress, log)
        try:
            _wait_for(lambda: len(handled()) >= BATCH + BATCH // 2, "half of the second batch")
            process.send_signal(signal.SIGKILL)  # inside the second batch's transaction
            process.wait(10)
            assert _sunk() == ids[:BATCH]  # the first batch committed; what the second began did not
            process = _start_sink(progress, log)
            _wait_for(lambda: EventCursor.objects.filter(name=CONSUMER, event_id=ids[-1]).exists(), "the last event")
        finally:
            process.kill()
            process.wait(10)

    assert _sunk() == ids  # every event, each once
    repeated = len(handled()) - len(set(handled()))
    assert repeated >= BATCH // 2, "the kill did not land inside a batch"
