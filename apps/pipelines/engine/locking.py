"""Locking one stage row for a step, and what a step does with a stage whose execution is not running.

A step locks only its stage row (so parallel branches really run in
parallel), and when the stages after it wait on it alone, the same
statement locks those too on PostgreSQL, in ``position`` order, so the step
can start them under its own lock (:func:`lock_stage`). Lock order as in
:mod:`.graph`: a step never takes an execution's lock while it holds a stage's.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL

from apps.pipelines.choices import COMPLETE, Status
from apps.pipelines.engine.compiled import CompiledQuery
from apps.pipelines.engine.dispatch import Dispatch
from apps.pipelines.engine.graph import cancel_stage
from apps.pipelines.models import Execution, StageExecution


def lock_stage(stage_id) -> StageExecution | None:
    """Lock the stage (its execution and application loaded); on PostgreSQL also the stages it alone may start.

    One round trip instead of two per completed step: the same
    ``SELECT ... FOR UPDATE`` locks the NOT_STARTED stages that wait on this
    stage alone, in ``position`` order (this stage first, as a restart locks
    them), and keeps them on ``stage.startable_next`` for the step's
    ``_continue_chain``. Nothing but this stage's step starts them, so the
    extra locks contend with nobody else's step. The subquery reads the
    statement's snapshot; the rows locked are the latest versions, which
    ``_continue_chain`` checks again. Elsewhere the downstream stages are
    read when needed. The query is compiled once (:mod:`.compiled`).
    """
    stage_id = StageExecution._meta.pk.to_python(stage_id)
    rows = _LOCK_STAGE.run(stage_id)
    stage = next((row for row in rows if row.id == stage_id), None)
    if stage is not None and connection.vendor == "postgresql":
        stage.startable_next = [row for row in rows if row is not stage]  # type: ignore[attr-defined]
    return stage


def _stage_and_startable_next(stage_id) -> QuerySet[StageExecution]:
    # One IN list holding the stage and those it starts, read by the primary key: as ``id = %s OR id IN
    # (...)`` the planner could use no index and scanned every stage row of the database on every step.
    wanted = Q(id=stage_id)
    if connection.vendor == "postgresql":
        wanted = Q(id__in=RawSQL(_STAGE_AND_STARTABLE_NEXT_SQL, [stage_id, stage_id, Status.NOT_STARTED]))
    return (
        StageExecution.objects.select_for_update(of=("self",))
        .select_related("execution__application")
        .defer("execution__definition", "execution__trigger", "execution__parameters")
        .filter(wanted)
        .order_by("position")
    )


# Stage %s, then the NOT_STARTED stages of the same execution that wait on it alone. A list column
# that holds something else (a corrupt row) matches nothing here: the step then fails where it reads it.
_STAGE_AND_STARTABLE_NEXT_SQL = f"""
    SELECT %s::uuid
    UNION ALL
    SELECT down.id FROM {StageExecution._meta.db_table} down
    JOIN {StageExecution._meta.db_table} up ON down.execution_id = up.execution_id
    WHERE up.id = %s AND down.status = %s
    AND CASE WHEN jsonb_typeof(down.requisite_ref_ids) = 'array' THEN jsonb_array_length(down.requisite_ref_ids) END = 1
    AND down.ref_id IN (SELECT jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(up.next_ref_ids) = 'array' THEN up.next_ref_ids ELSE '[]'::jsonb END))
"""


# Built and compiled once (per thread): every step of the engine runs it.
_LOCK_STAGE: CompiledQuery[StageExecution] = CompiledQuery(_stage_and_startable_next, locks=True)


def hold_stage(execution: Execution, stage: StageExecution, dispatch: Dispatch) -> None:
    """A step for a stage whose execution is not running: it waits (paused) or will never run (ended)."""
    if execution.status in COMPLETE:
        cancel_stage(stage, dispatch)
    elif execution.status == Status.PAUSED:
        # Started as the pause committed; resume runs it again.
        stage.status = Status.PAUSED
        stage.save(update_fields=["status"])
    else:
        return
    dispatch.changed(execution, stage)
    dispatch.send_on_commit()
