"""What keeps a step's round trips few: events sent with the row's UPDATE, the stage lock compiled once."""

import pytest
from django.db import connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext

from apps.pipelines.choices import Status
from apps.pipelines.engine.compiled import CompiledQuery
from apps.pipelines.engine.locking import _stage_and_startable_next, lock_stage
from apps.pipelines.eventlog import EventBuffer
from apps.pipelines.models import Event, StageExecution
from tests.pipelines.test_eventlog import make_execution


def _log() -> list[tuple[str, str, str, str]]:
    return [(e.kind, e.stage_ref_id, e.previous_status, e.status) for e in Event.objects.order_by("xact", "id")]


@pytest.mark.django_db
def test_a_row_saved_through_the_buffer_carries_the_events_in_its_update(postgresql):
    execution, stage = make_execution()
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        buffer = EventBuffer()
        buffer.note("execution.resumed", execution, actor="alice")
        execution.status = Status.RUNNING
        buffer.track(execution)
        buffer.save(execution, ["status"])
        stage.status = Status.RUNNING
        buffer.track(execution, stage)
        buffer.save(stage, ["status"])
        assert buffer.write() == 0  # nothing left for an INSERT of its own

    statements = [q["sql"] for q in queries if q["sql"] not in ("BEGIN", "COMMIT")]
    assert len(statements) == 2
    assert all(sql.startswith('WITH logged_events AS (INSERT INTO "pipelines_event"') for sql in statements)
    assert _log() == [
        ("execution.resumed", "", "", ""),
        ("execution.status", "", "NOT_STARTED", "RUNNING"),
        ("stage.status", "1", "NOT_STARTED", "RUNNING"),
    ]
    assert StageExecution.objects.get(id=stage.id).status == Status.RUNNING


@pytest.mark.django_db
def test_a_move_on_a_row_not_yet_tracked_keeps_every_event_for_the_last_insert_in_order(postgresql):
    execution, stage = make_execution()
    with transaction.atomic():
        buffer = EventBuffer()
        stage.status = Status.RUNNING  # moved first, tracked only later
        stage.save(update_fields=["status"])
        execution.status = Status.RUNNING
        buffer.track(execution)
        with CaptureQueriesContext(connection) as queries:
            buffer.save(execution, ["status"])
        assert queries[0]["sql"].startswith("UPDATE")  # the events wait: written now, they would come first
        buffer.track(execution, stage)
        assert buffer.write() == 2

    assert _log() == [
        ("stage.status", "1", "NOT_STARTED", "RUNNING"),
        ("execution.status", "", "NOT_STARTED", "RUNNING"),
    ]


@pytest.mark.django_db
def test_saving_nothing_through_the_buffer_still_writes_the_events(postgresql):
    execution, stage = make_execution()
    with transaction.atomic():
        buffer = EventBuffer()
        stage.status = Status.RUNNING
        buffer.track(execution, stage)
        buffer.save(stage, [])  # Django sends no UPDATE for no fields
    assert _log() == [("stage.status", "1", "NOT_STARTED", "RUNNING")]


@pytest.mark.django_db
def test_the_compiled_stage_lock_gives_what_the_queryset_gives():
    execution, stage = make_execution()
    StageExecution.objects.create(
        execution=execution, ref_id="2", type="wait", name="Next", definition={}, requisite_ref_ids=["1"], position=1
    )
    StageExecution.objects.filter(id=stage.id).update(next_ref_ids=["2"])
    with transaction.atomic():
        expected = list(_stage_and_startable_next(stage.id))
        first = CompiledQuery(_stage_and_startable_next, locks=True)
        compiled, again = first.run(stage.id), first.run(stage.id)
        locked = lock_stage(str(stage.id))

    def shape(rows):
        return [
            (row.id, row.ref_id, row.context, row.requisite_ref_ids, row.get_deferred_fields(),
             row.execution.id, row.execution.name, row.execution.get_deferred_fields(), row.execution.application.name)
            for row in rows
        ]

    assert shape(compiled) == shape(again) == shape(expected)
    assert [row.ref_id for row in expected] == (["1", "2"] if connection.vendor == "postgresql" else ["1"])
    assert locked is not None and locked.id == stage.id and locked.execution.application.name == "shop"
    assert not locked._state.adding


@pytest.mark.django_db(transaction=True)
def test_the_compiled_stage_lock_is_refused_outside_a_transaction():
    _, stage = make_execution()
    with pytest.raises(TransactionManagementError):
        CompiledQuery(_stage_and_startable_next, locks=True).run(stage.id)


@pytest.mark.django_db
def test_the_stage_lock_reads_stages_by_index_not_by_scanning_every_stage_of_the_database(postgresql):
    _, stage = make_execution()
    with transaction.atomic(), connection.cursor() as cursor:
        sql, params = _stage_and_startable_next(stage.id).query.sql_with_params()
        # Whatever the table's size: a plan that can only read the whole table is still chosen with scans off.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0][0]["Plan"]

    def scans(node):
        if node.get("Relation Name") == StageExecution._meta.db_table:
            yield node
        for child in node.get("Plans", ()):
            yield from scans(child)

    stage_scans = list(scans(plan))
    assert len(stage_scans) == 3  # the stage, the stage it was reached from, the stages after it
    # Each reads only rows its index condition finds: none walks every stage row filtering as it goes.
    assert all("Index Cond" in scan or "Recheck Cond" in scan for scan in stage_scans), stage_scans
