"""Expressions evaluated as a stage starts hold no row lock: a cancel, a pause and the sweeper never wait for them.

Each test gives its stages an expression function, ``#slow(value)``, that stands for an expression
taking its whole CPU budget: while it runs, the test looks at the locks (or acts on the execution
from another connection), then it gives ``value``. The workers run in this process (burst).
"""

import threading
from pathlib import Path

import pytest
from django.db import connection
from rq import SimpleWorker

from apps.pipelines.choices import Status
from apps.pipelines.engine.graph import evaluates_at_start
from apps.pipelines.enqueue import engine_queue
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.scope import ExpressionScope
from apps.pipelines.services import (
    do_cancel_execution,
    do_pause_execution,
    do_restart_stage,
    do_resume_execution,
    do_start_execution,
)
from tests.pipelines import composite_stages
from tests.scenarios import row_lock_free, save, stages_of, wait

needs_row_locks = pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")


class SlowExpression:
    """``#slow(value)``: records whether the stage's and the execution's rows are free, runs ``during``, gives value."""

    def __init__(self):
        self.seen: list[tuple[str, bool, bool]] = []
        self.during = None  # called with the execution's id on the first evaluation only

    def __call__(self, scope: ExpressionScope, value):
        stage, execution = scope.stage, scope.execution
        free = row_lock_free(StageExecution, stage.id), row_lock_free(Execution, execution.id)
        self.seen.append((stage.ref_id, *free))
        if self.during is not None:
            during, self.during = self.during, None
            during(execution.id)
        return value


@pytest.fixture
def slow(transactional_db, clean_redis, monkeypatch):
    probe = SlowExpression()
    original = ExpressionScope.functions

    def functions(self):
        return {**original(self), "slow": lambda value=True: probe(self, value)}

    monkeypatch.setattr(ExpressionScope, "functions", functions)
    return probe


def run_workers() -> None:
    queue = engine_queue()
    SimpleWorker([queue], connection=queue.connection).work(burst=True)


def in_another_connection(action, timeout: float = 10.0) -> bool:
    """Run ``action`` in a thread of its own; whether it finished within ``timeout`` (it was not blocked).

    A blocked action is left to go on once the lock it waits for is let go (joining it here would wait
    for the very lock the caller holds).
    """
    thread = threading.Thread(target=lambda: (action(), connection.close()), daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive()


@needs_row_locks
def test_a_stage_evaluating_its_context_as_it_starts_holds_no_row_lock(slow):
    # Stage 1 starts with the execution (under its lock, before); stage 2 in a chain (under stage 1's).
    pipeline = save([wait("1", "${#slow(0)}"), wait("2", "${#slow(1) - 1}", ["1"])], name="locks")
    execution = do_start_execution(pipeline)

    run_workers()

    execution.refresh_from_db()
    stages = stages_of(execution)
    assert execution.status == Status.SUCCEEDED
    assert slow.seen == [("1", True, True), ("2", True, True)]
    assert stages["1"].context["waitTime"] == 0 and stages["2"].context["waitTime"] == 0
    assert not any(stage.awaiting_evaluation for stage in stages.values())


@needs_row_locks
def test_a_cancel_during_a_slow_start_evaluation_wins(slow):
    canceled_at_once = []
    slow.during = lambda execution_id: canceled_at_once.append(
        in_another_connection(lambda: do_cancel_execution(execution_id, user="bob", reason="stop"))
    )
    pipeline = save([wait("1", "${#slow(0)}"), wait("2", 0, ["1"])], name="cancel")
    execution = do_start_execution(pipeline)

    run_workers()

    execution.refresh_from_db()
    stages = stages_of(execution)
    assert canceled_at_once == [True], "the cancel waited for the evaluation"
    assert execution.status == Status.CANCELED and execution.cancel_reason == "stop"
    assert stages["1"].status == Status.CANCELED
    assert "waitTime" not in stages["1"].context, "the evaluation finished after the cancel was applied"
    assert stages["2"].status == Status.NOT_STARTED


@needs_row_locks
def test_a_stage_whose_stage_enabled_is_a_slow_false_expression_is_skipped(slow):
    pipeline = save(
        [
            wait("1", 0, stageEnabled={"type": "expression", "expression": "#slow(false)"}),
            wait("2", 0, ["1"]),
        ],
        name="skip",
    )
    execution = do_start_execution(pipeline)

    run_workers()

    execution.refresh_from_db()
    stages = stages_of(execution)
    assert execution.status == Status.SUCCEEDED
    assert stages["1"].status == Status.SKIPPED and stages["2"].status == Status.SUCCEEDED
    assert slow.seen == [("1", True, True)]


@needs_row_locks
def test_restarting_a_stage_evaluates_its_context_again(slow):
    pipeline = save([wait("1", "${#slow(0)}")], name="restart")
    execution = do_start_execution(pipeline)
    run_workers()
    assert stages_of(execution)["1"].status == Status.SUCCEEDED

    do_restart_stage(execution.id, "1", user="bob")
    run_workers()

    execution.refresh_from_db()
    stage = stages_of(execution)["1"]
    assert execution.status == Status.SUCCEEDED and stage.status == Status.SUCCEEDED
    assert [ref for ref, _, _ in slow.seen] == ["1", "1"]
    assert stage.context["waitTime"] == 0 and stage.context["restartDetails"]["restartedBy"] == "bob"


@needs_row_locks
def test_a_pause_during_a_slow_start_evaluation_holds_the_stage_and_resume_evaluates_it_again(slow):
    paused_at_once = []
    slow.during = lambda execution_id: paused_at_once.append(
        in_another_connection(lambda: do_pause_execution(execution_id, user="bob"))
    )
    execution = do_start_execution(save([wait("1", "${#slow(0)}")], name="pause"))

    run_workers()

    execution.refresh_from_db()
    stage = stages_of(execution)["1"]
    assert paused_at_once == [True], "the pause waited for the evaluation"
    assert execution.status == Status.PAUSED and stage.status == Status.PAUSED
    assert stage.awaiting_evaluation and "waitTime" not in stage.context

    do_resume_execution(execution.id, user="bob")
    run_workers()

    execution.refresh_from_db()
    assert execution.status == Status.SUCCEEDED
    assert stages_of(execution)["1"].context["waitTime"] == 0
    assert len(slow.seen) == 2


@needs_row_locks
def test_a_composite_stage_plans_its_synthetic_stages_from_its_evaluated_context(slow, tmp_path):
    gate = tmp_path / "open"
    gate.touch()
    with composite_stages.registered():
        pipeline = save([{"refId": "1", "name": "Deploy", "type": "testComposite",
                          "gateFile": "${#slow('" + str(gate) + "')}"}], name="composite")
        execution = do_start_execution(pipeline)
        run_workers()

    execution.refresh_from_db()
    stages = {stage.name: stage for stage in stages_of(execution).values()}
    assert execution.status == Status.SUCCEEDED, {name: s.status for name, s in stages.items()}
    assert stages["Gate"].definition["gateFile"] == str(gate) and Path(stages["Gate"].context["gateFile"]).exists()
    assert slow.seen == [("1", True, True)]


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ({"type": "wait", "waitTime": 5}, False),
        ({"type": "wait", "waitTime": "${parameters.seconds}"}, True),
        ({"type": "wait", "waitTime": 5, "notes": ["a", {"deep": "${1}"}]}, True),
        ({"type": "wait", "waitTime": 5, "stageEnabled": {"type": "expression", "expression": "true"}}, True),
        # evaluateVariables evaluates its variables itself, in its own (unlocked) step.
        ({"type": "evaluateVariables", "variables": [{"key": "k", "value": "${1}"}]}, False),
    ],
)
def test_only_a_stage_with_expressions_to_evaluate_starts_in_two_steps(definition, expected):
    stage = StageExecution(type=definition["type"], definition={"refId": "1", "name": "S", **definition})

    assert evaluates_at_start(stage) is expected
