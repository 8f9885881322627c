"""A step can never wedge the engine: crashes in any phase end the stage, outputs are made JSON-safe or refused.

The stage types here exist only in this module (registered for each test and
removed after), so the jobs run in this process, drained from the real queue
by an in-process RQ worker, exactly as a worker would run them.
"""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.test import override_settings
from rq import SimpleWorker

from apps.pipelines import enqueue, jobs
from apps.pipelines.choices import Status
from apps.pipelines.documents import execution_document
from apps.pipelines.engine import sweep
from apps.pipelines.enqueue import engine_queue
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.services import do_cancel_execution, do_save_pipeline, do_start_execution
from apps.pipelines.stages import StageType, TaskResult
from apps.pipelines.stages.base import _REGISTRY


class Opaque:
    """Something JSON has no type for."""


VALUES = {
    "datetime": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    "decimal": Decimal("12.50"),
    "bytes": b"hello",
    "binary": b"\xff\xfe",
    "uuid": uuid.UUID(int=7),
    "object": Opaque(),
}


class EmitStage(StageType):
    """Outputs ``{"report": {"value": VALUES[kind]}}`` for the stage's ``kind``."""

    type_name = "testEmit"

    def run(self, stage, scope, runtime):
        return TaskResult.succeeded(outputs={"report": {"value": VALUES[stage.context["kind"]]}})


class CrashStage(StageType):
    """Raises in ``run``, or returns outputs that are not a mapping (which breaks recording)."""

    type_name = "testCrash"

    def run(self, stage, scope, runtime):
        if stage.context.get("crash") == "record":
            return TaskResult(Status.SUCCEEDED, outputs=["not", "a", "mapping"])
        raise RuntimeError("the task blew up")


class CrashAtStartStage(StageType):
    """A stage type whose hook, read as the stage starts, raises."""

    type_name = "testCrashAtStart"

    @property
    def lazy_fields(self):
        raise LookupError("no lazy fields today")


class NeverDoneStage(StageType):
    """Asks to be polled again far in the future (its step is then lost by hand)."""

    type_name = "testNeverDone"

    def run(self, stage, scope, runtime):
        return TaskResult.running(retry_after=3600)


class PassStage(StageType):
    """Succeeds at once, reading nothing of its execution."""

    type_name = "testPass"

    def run(self, stage, scope, runtime):
        return TaskResult.succeeded()


TEST_TYPES = (EmitStage, CrashStage, CrashAtStartStage, NeverDoneStage, PassStage)


@pytest.fixture
def engine(transactional_db, clean_redis):
    """The test stage types registered, and a function that runs every queued job in this process."""
    for cls in TEST_TYPES:
        _REGISTRY[cls.type_name] = cls()
    queue = engine_queue()

    def drain():
        SimpleWorker([queue], connection=queue.connection).work(burst=True)

    yield drain
    for cls in TEST_TYPES:
        _REGISTRY.pop(cls.type_name, None)


def stage(ref_id, type_name, requisites=(), **options):
    return {"refId": ref_id, "name": f"S{ref_id}", "type": type_name, "requisiteStageRefIds": list(requisites),
            **options}


def run(drain, stages):
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "robust", "stages": stages})
    execution = do_start_execution(pipeline)
    drain()
    return Execution.objects.select_related("application").get(id=execution.id)


def by_ref(execution):
    return {s.ref_id: s for s in StageExecution.objects.filter(execution=execution)}


def details(stage_row):
    return stage_row.context["exception"]["details"]


def assert_nothing_left_to_sweep(execution):
    with override_settings(ENGINE_STAGE_LEASE_SECONDS=0):
        assert sweep() == {"starts": 0, "stages": 0, "executions": 0, "waiting": 0}
    assert not StageExecution.objects.filter(execution=execution, status=Status.RUNNING).exists()


@pytest.mark.parametrize(
    ("kind", "stored"),
    [
        ("datetime", "2026-01-02T03:04:05+00:00"),
        ("decimal", 12.5),
        ("bytes", "hello"),
        ("binary", "base64://4="),
        ("uuid", "00000000-0000-0000-0000-000000000007"),
    ],
)
def test_outputs_json_lacks_a_type_for_are_converted_and_the_pipeline_goes_on(engine, kind, stored):
    execution = run(engine, [stage("1", "testEmit", kind=kind), stage("2", "wait", ["1"], waitTime=0)])

    stages = by_ref(execution)
    assert execution.status == Status.SUCCEEDED
    assert stages["1"].outputs == {"report": {"value": stored}}
    assert stages["2"].status == Status.SUCCEEDED


def test_an_output_json_cannot_hold_ends_the_stage_terminal_naming_its_key_path(engine):
    execution = run(engine, [stage("1", "testEmit", kind="object"), stage("2", "wait", ["1"], waitTime=0)])

    stages = by_ref(execution)
    assert execution.status == Status.TERMINAL
    assert stages["1"].status == Status.TERMINAL
    assert details(stages["1"])["error"] == "outputs.report.value: object of type Opaque is not JSON-serializable"
    assert details(stages["1"])["phase"] == "record"
    assert stages["2"].status == Status.NOT_STARTED
    assert_nothing_left_to_sweep(execution)


def corrupt_pauses(execution_id):
    # Pauses are [[paused_at, resumed_at]]: one that is not makes the timeout computation raise.
    Execution.objects.filter(id=execution_id).update(pauses=[["not a time", None]])


def corrupt_next_refs(execution_id):
    # The stages that follow are a list of refIds: a number makes continuing the chain raise.
    StageExecution.objects.filter(execution_id=execution_id, ref_id="1").update(next_ref_ids=5)


PHASES = {
    "start": (stage("1", "testCrashAtStart"), None, "LookupError: no lazy fields today"),
    "window": (
        stage("1", "wait", waitTime=0, restrictExecutionDuringTimeWindow=True,
              restrictedExecutionWindow={"whitelist": [{"startHour": 0, "startMin": 0, "endHour": 24, "endMin": 0}]}),
        None, "ZoneInfoNotFoundError",
    ),
    "timeout": (stage("1", "wait", waitTime=0, stageTimeoutMs=60000), corrupt_pauses, "TypeError"),
    "run": (stage("1", "testCrash"), None, "RuntimeError: the task blew up"),
    "record": (stage("1", "testCrash", crash="record"), None, "TypeError"),
    "advance": (stage("1", "wait", waitTime=0), corrupt_next_refs, "TypeError"),
}


def start_with(drain, first, corrupt, **options):
    """Start a pipeline whose stage 1 crashes, stage 2 following it, stage 3 beside it; corrupt, then run."""
    stages = [{**first, **options}, stage("2", "testPass", ["1"]), stage("3", "testPass")]
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "robust", "stages": stages})
    with override_settings(ENGINE_INLINE_SECONDS=0):  # stage 1's first step waits in the queue
        execution = do_start_execution(pipeline)
        queue = engine_queue()
        SimpleWorker([queue], connection=queue.connection).work(burst=True, max_jobs=1)  # the start
        if corrupt is not None:
            corrupt(execution.id)
        drain()
    return Execution.objects.select_related("application").get(id=execution.id)


@pytest.fixture
def unknown_time_zone():
    # As a time zone removed from the machine's database after start would.
    with override_settings(EXECUTION_WINDOW_TIME_ZONE="Mars/Olympus_Mons"):
        yield


@pytest.mark.parametrize("phase", list(PHASES))
def test_a_crash_in_each_phase_ends_the_stage_terminal_with_the_error_and_phase(engine, phase, unknown_time_zone):
    first, corrupt, error = PHASES[phase]

    execution = start_with(engine, first, corrupt)

    stages = by_ref(execution)
    assert execution.status == Status.TERMINAL
    assert stages["1"].status == Status.TERMINAL
    document = {s["refId"]: s for s in execution_document(execution)["stages"]}
    exception = document["1"]["context"]["exception"]
    assert exception["details"]["phase"] == phase
    assert exception["details"]["error"].startswith(error)
    assert exception["details"]["errors"] == [exception["details"]["error"]]
    assert exception["exceptionType"] == error.split(":")[0]
    assert stages["2"].status == Status.NOT_STARTED
    assert_nothing_left_to_sweep(execution)


@pytest.mark.parametrize("phase", list(PHASES))
def test_continue_pipeline_lets_the_pipeline_go_on_after_a_crash(engine, phase, unknown_time_zone):
    first, corrupt, _ = PHASES[phase]

    execution = start_with(engine, first, corrupt, continuePipeline=True)

    stages = by_ref(execution)
    assert stages["1"].status == Status.FAILED_CONTINUE
    assert details(stages["1"])["phase"] == phase
    assert stages["2"].status == Status.SUCCEEDED
    assert execution.status == Status.SUCCEEDED


@pytest.mark.parametrize("phase", list(PHASES))
def test_fail_pipeline_false_stops_only_the_crashed_branch(engine, phase, unknown_time_zone):
    first, corrupt, _ = PHASES[phase]

    execution = start_with(engine, first, corrupt, failPipeline=False)

    stages = by_ref(execution)
    assert stages["1"].status == Status.STOPPED
    assert details(stages["1"])["phase"] == phase
    assert stages["2"].status == Status.NOT_STARTED
    assert stages["3"].status == Status.SUCCEEDED
    assert execution.status == Status.SUCCEEDED
    assert_nothing_left_to_sweep(execution)


def test_a_late_duplicate_of_a_crashed_step_does_nothing(engine):
    execution = run(engine, [stage("1", "testCrash")])
    crashed = by_ref(execution)["1"]

    jobs.run_stage(str(crashed.id), crashed.run_token - 1)  # the token the crashed step held

    again = StageExecution.objects.get(id=crashed.id)
    assert (again.status, again.run_token, again.context) == (crashed.status, crashed.run_token, crashed.context)


def test_an_execution_whose_reconciliation_raises_ends_terminal_with_the_error(engine):
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "robust", "stages": [stage("1", "testNeverDone")]})
    execution = do_start_execution(pipeline)
    engine()
    # Requisites that are not a list make every reconciliation of the execution raise.
    StageExecution.objects.filter(execution=execution).update(status=Status.NOT_STARTED, requisite_ref_ids=7)

    with override_settings(ENGINE_STAGE_LEASE_SECONDS=0):
        sweep()  # finds it stalled and advances it

    execution = Execution.objects.select_related("application").get(id=execution.id)
    assert execution.status == Status.TERMINAL
    document = execution_document(execution)
    assert document["exception"]["details"]["phase"] == "advance"
    assert document["exception"]["exceptionType"] == "TypeError"
    assert_nothing_left_to_sweep(execution)


def test_an_execution_whose_start_raises_ends_terminal_with_the_error(engine):
    pipeline, _ = do_save_pipeline({"application": "shop", "name": "robust", "stages": [stage("1", "testPass")]})
    execution = do_start_execution(pipeline)
    engine_queue().empty()
    # A definition that is not a document makes deciding whether it must wait its turn raise.
    Execution.objects.filter(id=execution.id).update(limit_concurrent=True, definition=["not", "a", "pipeline"])

    jobs.start_execution(str(execution.id))

    execution = Execution.objects.get(id=execution.id)
    assert execution.status == Status.TERMINAL
    assert execution.exception["details"]["phase"] == "start"
    assert execution.exception["exceptionType"] == "AttributeError"
    assert_nothing_left_to_sweep(execution)


def lose_the_step(stage_row):
    """As a worker killed mid-step would: its job is gone, and the step is overdue past its lease."""
    token = StageExecution.objects.get(id=stage_row.id).run_token
    enqueue.discard(enqueue.run_stage_job_id(stage_row.id, token))
    StageExecution.objects.filter(id=stage_row.id).update(next_run_at=datetime(2000, 1, 1, tzinfo=UTC))


@override_settings(ENGINE_MAX_STEP_ATTEMPTS=3)
def test_a_step_lost_n_times_in_a_row_fails_its_stage(engine):
    execution = run(engine, [stage("1", "testNeverDone")])
    running = by_ref(execution)["1"]
    counts = []
    for _ in range(3):
        lose_the_step(running)
        sweep()
        counts.append(StageExecution.objects.get(id=running.id).step_failures)

    lost = StageExecution.objects.get(id=running.id)
    assert counts == [1, 2, 3]
    assert lost.status == Status.TERMINAL
    assert details(lost)["error"].startswith("the step was lost 3 times in a row")
    assert details(lost)["phase"] == "lost"
    assert Execution.objects.get(id=execution.id).status == Status.TERMINAL
    assert_nothing_left_to_sweep(execution)


@override_settings(ENGINE_MAX_STEP_ATTEMPTS=3)
def test_a_step_lost_fewer_times_recovers_and_its_count_starts_again(engine):
    execution = run(engine, [stage("1", "testNeverDone")])
    running = by_ref(execution)["1"]
    for _ in range(2):
        lose_the_step(running)
        sweep()
    assert StageExecution.objects.get(id=running.id).step_failures == 2

    engine()  # the re-queued step runs and records normally

    recovered = StageExecution.objects.get(id=running.id)
    assert recovered.status == Status.RUNNING
    assert recovered.step_failures == 0


def test_a_step_waiting_in_a_backlogged_queue_is_neither_re_queued_nor_counted_as_lost(engine):
    execution = run(engine, [stage("1", "testNeverDone")])
    running = by_ref(execution)["1"]
    lose_the_step(running)
    enqueue.enqueue_run_stage(str(running.id), running.run_token)  # queued again, then waiting for ages
    queue = engine_queue()
    queue.connection.hset(enqueue.Job.key_for(enqueue.run_stage_job_id(running.id, running.run_token)),
                          "enqueued_at", "2000-01-01T00:00:00.000000Z")

    assert sweep()["stages"] == 0

    waiting = StageExecution.objects.get(id=running.id)
    assert (waiting.step_failures, waiting.run_token) == (0, running.run_token)
    assert queue.get_job_ids() == [enqueue.run_stage_job_id(running.id, running.run_token)]


def test_a_failing_cancel_hook_is_shown_on_its_stage_and_the_cancel_stands(engine, monkeypatch):
    execution = run(engine, [stage("1", "testNeverDone")])
    monkeypatch.setattr(NeverDoneStage, "cancel", lambda self, s, runtime: 1 / 0)
    do_cancel_execution(execution.id, user="alice")
    engine()

    canceled = by_ref(execution)["1"]
    assert canceled.status == Status.CANCELED
    assert details(canceled)["phase"] == "cancel"
    assert details(canceled)["error"] == "ZeroDivisionError: division by zero"
    assert Execution.objects.get(id=execution.id).status == Status.CANCELED

