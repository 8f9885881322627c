"""Cron triggers: Quartz expressions translated or refused, fired at the right second once, however many schedulers."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from apps.pipelines.problems import InvalidDocument
from apps.pipelines.services import do_save_pipeline
from apps.triggers import schedule
from apps.triggers.kinds import cron
from apps.triggers.models import TriggerIndex
from tests.triggers.helpers import WAIT, executions_of


def save_cron(expression, **extra):
    trigger = {"type": "cron", "enabled": True, "cronExpression": expression, **extra}
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "nightly", "stages": [WAIT],
                                    "triggers": [trigger]})
    return pipeline


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("quartz", "after", "expected"), [
    ("0 0/5 * * * ?", "2026-12-02T16:01:07", "2026-12-02T16:05:00"),
    ("30 15 10 ? * MON-FRI", "2026-12-05T00:00:00", "2026-12-07T10:15:30"),  # Saturday -> Monday
    ("0 0 12 ? * 2-6", "2026-12-05T13:00:00", "2026-12-07T12:00:00"),  # Quartz 2-6 is Monday-Friday
    ("0 0 12 ? * 1", "2026-12-02T13:00:00", "2026-12-06T12:00:00"),  # 1 is Sunday
    ("0 0 12 ? * 6L", "2026-12-02T13:00:00", "2026-12-25T12:00:00"),  # the last Friday
    ("0 0 12 ? * 2#1", "2026-12-08T00:00:00", "2027-01-04T12:00:00"),  # the first Monday
    ("0 0 12 L * ?", "2026-12-02T13:00:00", "2026-12-31T12:00:00"),  # the last day of the month
    ("0 0 12 1 1 ? 2028", "2026-12-02T13:00:00", "2028-01-01T12:00:00"),  # with a year
    ("*/15 * * * *", "2026-12-02T16:01:07", "2026-12-02T16:15:00"),  # standard five fields
])
def test_quartz_expressions_are_read_as_quartz_means_them(quartz, after, expected):
    assert cron.next_time({"cronExpression": quartz}, at(after)) == at(expected)


def test_a_time_zone_is_honoured():
    due = cron.next_time({"cronExpression": "0 0 9 * * ?", "timeZone": "Europe/Paris"}, at("2026-12-02T10:00:00"))
    assert due == at("2026-12-03T08:00:00")


@pytest.mark.django_db
@pytest.mark.parametrize(("quartz", "words"), [
    ("0 0 12 15W * ?", "W (the nearest weekday)"),
    ("0 0 12 L-3 * ?", "L-n"),
    ("0 0 12 ? * 8", "not 1-7"),
    ("0 0 12", "has 3 fields"),
    ("0 0 99 * * ?", "is not a cron expression"),
])
def test_what_cannot_run_is_refused_at_save_with_the_reason(quartz, words):
    with pytest.raises(InvalidDocument) as refused:
        save_cron(quartz)
    [problem] = refused.value.problems
    assert problem.pointer == "/triggers/0/cronExpression"
    assert words in problem.message


@pytest.mark.django_db
def test_a_bad_time_zone_is_refused_at_its_field():
    with pytest.raises(InvalidDocument) as refused:
        save_cron("0 0 12 * * ?", timeZone="Mars/Olympus")
    assert refused.value.problems[0].pointer == "/triggers/0/timeZone"


@pytest.mark.django_db
def test_the_editor_says_when_it_runs_next_and_when_it_last_ran(client):
    from django.contrib.auth.models import User

    pipeline = save_cron("0 0/5 * * * ?")
    client.force_login(User.objects.create_superuser("root"))
    page = client.get(f"/pipelines/{pipeline.id}/edit/").content.decode()
    assert "Runs on the schedule 0 0/5 * * * ?" in page
    assert "Runs on the schedule 0 9 * * * in Europe/Paris" == cron.CRON.describe(
        {"cronExpression": "0 9 * * *", "timeZone": "Europe/Paris"})
    assert "next run" in page and "never fired" in page


def _schedulers(now: datetime, count: int = 2) -> list[int]:
    """``count`` schedulers, each on its own database connection, looking for due triggers at the same moment."""
    results, barrier = [], threading.Barrier(count)

    def scheduler():
        try:
            barrier.wait()
            results.append(schedule.fire_due(now))
        finally:
            connection.close()

    threads = [threading.Thread(target=scheduler) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_a_cron_trigger_fires_at_its_second_once_with_two_schedulers_running(transactional_db, clean_redis):
    pipeline = save_cron("0 0/5 * * * ?")
    row = TriggerIndex.objects.get(pipeline=pipeline)
    due = row.next_fire_at
    assert due.second == 0 and due.minute % 5 == 0

    assert _schedulers(due - timedelta(seconds=1)) == [0, 0]
    assert executions_of(pipeline) == []

    assert sorted(_schedulers(due)) == [0, 1]
    [execution] = executions_of(pipeline)
    assert execution.trigger["type"] == "cron"
    assert execution.trigger["scheduledTime"] == int(due.timestamp() * 1000)
    assert TriggerIndex.objects.get(pk=row.pk).next_fire_at == due + timedelta(minutes=5)


def test_times_missed_while_every_worker_was_down_fire_once_on_recovery(transactional_db, clean_redis):
    pipeline = save_cron("0 0/5 * * * ?")
    due = TriggerIndex.objects.get(pipeline=pipeline).next_fire_at
    recovery = due + timedelta(hours=2, seconds=7)

    assert schedule.fire_due(recovery) == 1
    assert schedule.fire_due(recovery + timedelta(seconds=1)) == 0
    assert len(executions_of(pipeline)) == 1
    assert TriggerIndex.objects.get(pipeline=pipeline).next_fire_at > recovery


@pytest.mark.django_db
def test_resaving_an_unchanged_cron_trigger_keeps_its_schedule_and_history():
    pipeline = save_cron("0 0/5 * * * ?")
    before = TriggerIndex.objects.get(pipeline=pipeline)
    TriggerIndex.objects.filter(pk=before.pk).update(last_fired_at=before.next_fire_at)
    do_save_pipeline({**pipeline.definition, "description": "nightly build"})
    after = TriggerIndex.objects.get(pipeline=pipeline)
    assert (after.pk, after.next_fire_at, after.last_fired_at) == (before.pk, before.next_fire_at, before.next_fire_at)
