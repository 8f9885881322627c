"""The sweeper tells a lost message from a queued one: a backlog of any length re-queues nothing.

Each engine message has a job id of its own, so the sweeper asks RQ what it
holds of each overdue step and start, and re-queues only what RQ lost: a
job deleted from Redis, one whose worker died mid-job, one taken off the
queue by a worker that died before starting it. Real Redis and real RQ
throughout: jobs drained by an in-process worker, or run by real worker
processes (which run the sweeper themselves).
"""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from django.test import override_settings
from django.utils import timezone
from rq import SimpleWorker, Worker
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.utils import utcformat

from apps.pipelines import enqueue
from apps.pipelines.choices import COMPLETE, Status
from apps.pipelines.engine import sweep, sweeper
from apps.pipelines.enqueue import Held, engine_queue, held_messages, held_page
from apps.pipelines.models import Execution, StageExecution
from apps.pipelines.services import do_save_pipeline, do_start_execution
from apps.pipelines.stages import StageType, TaskResult
from apps.pipelines.stages.base import _REGISTRY
from tests.conftest import wait_for_execution
from tests.pipelines import held_stages

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
NOTHING_SWEPT = {"starts": 0, "stages": 0, "executions": 0, "waiting": 0}


class PollForEverStage(StageType):
    """Asks to be polled again in an hour: its step's job waits in the scheduled registry."""

    type_name = "testPollForEver"

    def run(self, stage, scope, runtime):
        return TaskResult.running(retry_after=3600)


class PassStage(StageType):
    """Succeeds at once."""

    type_name = "testSweepPass"

    def run(self, stage, scope, runtime):
        return TaskResult.succeeded()


class CountingWorker(SimpleWorker):
    """RQ's in-process worker, counting the jobs it ran."""

    jobs_run = 0

    def perform_job(self, job, queue, *args, **kwargs):
        self.jobs_run += 1
        return super().perform_job(job, queue, *args, **kwargs)


@pytest.fixture
def engine(transactional_db, clean_redis):
    """The test stage types registered, and a function that runs every queued job here; it returns how many ran."""
    for cls in (PollForEverStage, PassStage):
        _REGISTRY[cls.type_name] = cls()
    queue = engine_queue()

    def drain(max_jobs=None) -> int:
        worker = CountingWorker([queue], connection=queue.connection)
        worker.work(burst=True, max_jobs=max_jobs)
        return worker.jobs_run

    yield drain
    for cls in (PollForEverStage, PassStage):
        _REGISTRY.pop(cls.type_name, None)


def save(stages, name="swept"):
    pipeline, _ = do_save_pipeline({"application": "shop", "name": name, "stages": stages})
    return pipeline


def chain(type_name, count):
    return [{"refId": str(i), "name": f"S{i}", "type": type_name,
             "requisiteStageRefIds": [str(i - 1)] if i > 1 else []} for i in range(1, count + 1)]


def step_job_id(stage_row) -> str:
    stage_row.refresh_from_db()
    return enqueue.run_stage_job_id(stage_row.id, stage_row.run_token)


def running_stage(drain) -> StageExecution:
    """A stage polling for ever, its next poll scheduled in an hour."""
    execution = do_start_execution(save(chain("testPollForEver", 1)))
    drain()
    return StageExecution.objects.get(execution=execution)


def due(stage_row, seconds_ago: float) -> None:
    StageExecution.objects.filter(id=stage_row.id).update(next_run_at=timezone.now() - timedelta(seconds=seconds_ago))


# --- Job ids, and queueing one message once -------------------------------------------------------


def test_a_message_queued_twice_is_one_job(engine):
    queue = engine_queue()
    enqueue.enqueue_run_stage("a-stage", 3)
    enqueue.enqueue_run_stage("a-stage", 3)
    enqueue.enqueue_start_execution("an-execution")
    enqueue.enqueue_start_execution("an-execution")
    with queue.connection.pipeline() as pipe:  # on a caller's pipeline too, as a step sends its jobs
        enqueue.enqueue_run_stage("a-stage", 3, pipeline=pipe)
        enqueue.enqueue_run_stage("a-stage", 4, delay=60, pipeline=pipe)
        enqueue.enqueue_run_stage("a-stage", 4, delay=60, pipeline=pipe)
        pipe.execute()

    assert queue.get_job_ids() == ["run_stage-a-stage-3", "start_execution-an-execution"]
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == ["run_stage-a-stage-4"]
    job = queue.fetch_job("run_stage-a-stage-3")
    assert (job.func_name, job.args, job.result_ttl, job.timeout) == (enqueue.RUN_STAGE, ("a-stage", 3), 0, 600)


def test_every_message_of_a_run_has_its_id_and_each_runs_once(engine):
    execution = do_start_execution(save(chain("testSweepPass", 3)))
    assert engine_queue().get_job_ids() == [enqueue.start_execution_job_id(execution.id)]

    with override_settings(ENGINE_INLINE_SECONDS=0):
        ran = engine()

    assert Execution.objects.get(id=execution.id).status == Status.SUCCEEDED
    assert ran == 4  # the start, then one step per stage


def test_with_inline_execution_the_start_runs_a_chain_of_quick_stages_in_its_own_job(engine):
    execution = do_start_execution(save(chain("testSweepPass", 3)))

    with override_settings(ENGINE_INLINE_SECONDS=5):
        ran = engine()

    assert ran == 1
    execution.refresh_from_db()
    assert execution.status == Status.SUCCEEDED
    stages = execution.stages.order_by("start_time")
    assert [(stage.ref_id, stage.status) for stage in stages] == [(ref, Status.SUCCEEDED) for ref in "123"]


def test_with_inline_execution_the_start_runs_one_first_stage_and_queues_the_others(engine):
    branches = [{"refId": ref, "type": "testSweepPass", "requisiteStageRefIds": []} for ref in "abc"]
    execution = do_start_execution(save(branches, name="branches"))

    with override_settings(ENGINE_INLINE_SECONDS=5):
        ran = engine(max_jobs=1)

    statuses = dict(StageExecution.objects.filter(execution=execution).values_list("ref_id", "status"))
    assert sorted(statuses.values()) == [Status.RUNNING, Status.RUNNING, Status.SUCCEEDED]  # one ran with the start
    assert len(engine_queue().get_job_ids()) == 2  # the other branches wait for any worker
    assert ran == 1
    assert engine() == 2
    assert Execution.objects.get(id=execution.id).status == Status.SUCCEEDED


# --- What RQ holds --------------------------------------------------------------------------------


def test_rq_is_asked_what_it_holds_of_each_message(engine):
    queue, connection = engine_queue(), engine_queue().connection
    lease_start = timezone.now() - timedelta(seconds=60)
    for name in ("queued", "taken", "started-now", "started-long-ago", "failed", "deleted"):
        enqueue.enqueue_start_execution(name)
    enqueue.enqueue_run_stage("later", 1, delay=3600)
    enqueue.enqueue_run_stage("overdue", 1, delay=1)
    ScheduledJobRegistry(queue=queue).schedule(queue.fetch_job("run_stage-overdue-1"), LONG_AGO)
    queue.remove("start_execution-taken")  # a worker took it off the queue
    for name, started in (("started-now", timezone.now()), ("started-long-ago", LONG_AGO)):
        queue.remove(f"start_execution-{name}")
        connection.hset(Job.key_for(f"start_execution-{name}"),
                        mapping={"status": "started", "started_at": utcformat(started)})
    queue.remove("start_execution-failed")
    connection.hset(Job.key_for("start_execution-failed"), "status", "failed")
    queue.fetch_job("start_execution-deleted").delete()

    held = held_messages([f"start_execution-{name}" for name in (
        "queued", "taken", "started-now", "started-long-ago", "failed", "deleted", "never-queued"
    )] + ["run_stage-later-1", "run_stage-overdue-1"], lease_start)

    assert list(held.values()) == [
        Held.WAITING, Held.TAKEN, Held.WAITING, Held.DEAD, Held.DEAD, Held.GONE, Held.GONE, Held.WAITING, Held.DEAD
    ]
    page = held_page(["start_execution-queued", "start_execution-taken", "run_stage-later-1"], lease_start)
    assert page.on_queue == 1 and not page.all_on_queue  # only the first waits on the queue itself
    assert held_page(["start_execution-queued"], lease_start).all_on_queue


# --- The sweeper ----------------------------------------------------------------------------------


@override_settings(ENGINE_INLINE_SECONDS=0, ENGINE_STAGE_LEASE_SECONDS=1)
@pytest.mark.parametrize("type_name", ["testSweepPass", "wait"])
def test_a_backlog_queued_longer_than_the_lease_is_not_re_queued(engine, type_name):
    pipeline = save(chain(type_name, 2))
    executions = [do_start_execution(pipeline) for _ in range(5)]
    Execution.objects.filter(id__in=[e.id for e in executions]).update(created_at=LONG_AGO)
    queue = engine_queue()

    assert sweep() == NOTHING_SWEPT  # five starts waiting their turn, long overdue
    assert queue.count == 5
    assert engine(max_jobs=5) == 5  # the starts: each queues its first step
    StageExecution.objects.filter(execution__in=executions, status=Status.RUNNING).update(next_run_at=LONG_AGO)
    assert sweep() == NOTHING_SWEPT  # five steps waiting their turn, long overdue
    assert queue.count == 5

    assert engine() == 5 * 2  # every step once: no duplicate
    assert set(Execution.objects.filter(id__in=[e.id for e in executions]).values_list("status", flat=True)) == {
        Status.SUCCEEDED
    }
    assert not StageExecution.objects.filter(execution__in=executions, step_failures__gt=0).exists()


@override_settings(ENGINE_INLINE_SECONDS=0)
def test_in_a_backlog_a_sweep_asks_about_one_page_and_finds_a_lost_message_once_the_workers_near_it(
    engine, monkeypatch
):
    monkeypatch.setattr(sweeper, "HELD_PAGE", 3)
    asked = []
    monkeypatch.setattr(enqueue, "held_page", lambda ids, cutoff: asked.append(ids) or held_page(ids, cutoff))
    pipeline = save(chain("testSweepPass", 1))
    executions = [do_start_execution(pipeline) for _ in range(10)]
    for age, execution in enumerate(executions):  # overdue, oldest first
        Execution.objects.filter(id=execution.id).update(created_at=LONG_AGO - timedelta(seconds=10 - age))
    lost = executions[4]
    engine_queue().fetch_job(enqueue.start_execution_job_id(lost.id)).delete()

    assert sweep() == NOTHING_SWEPT  # the oldest page waits on the queue: nothing further is asked about
    assert len(asked) == 1 and len(asked[0]) == 3

    assert engine(max_jobs=3) == 3  # the workers reach the lost start's page
    assert sweep()["starts"] == 1
    assert engine() == 7 + 10  # the other starts (the lost one queued again) and every step: each once
    assert set(Execution.objects.filter(id__in=[e.id for e in executions]).values_list("status", flat=True)) == {
        Status.SUCCEEDED
    }


@override_settings(ENGINE_STAGE_LEASE_SECONDS=1)
def test_a_message_deleted_from_redis_is_re_queued_once_its_lease_has_passed(engine):
    stage_row = running_stage(engine)
    lost = step_job_id(stage_row)
    engine_queue().fetch_job(lost).delete()

    due(stage_row, 0.5)
    assert sweep()["stages"] == 0  # within its lease
    due(stage_row, 2)
    assert sweep()["stages"] == 1

    again = StageExecution.objects.get(id=stage_row.id)
    assert again.run_token == stage_row.run_token + 1
    assert again.step_failures == 1
    assert engine_queue().get_job_ids() == [enqueue.run_stage_job_id(again.id, again.run_token)]
    assert sweep()["stages"] == 0  # the new message waits in the queue


@override_settings(ENGINE_STAGE_LEASE_SECONDS=1)
def test_a_step_whose_worker_died_mid_job_is_re_queued_a_lease_after_it_started(engine):
    stage_row = running_stage(engine)
    job_id = step_job_id(stage_row)
    connection = engine_queue().connection
    # As RQ leaves a job whose worker was killed: still "started", long after.
    ScheduledJobRegistry(queue=engine_queue()).remove(job_id)
    connection.hset(Job.key_for(job_id), mapping={"status": "started", "started_at": utcformat(timezone.now())})
    due(stage_row, 2)
    assert sweep()["stages"] == 0  # started a moment ago: it may be running still

    connection.hset(Job.key_for(job_id), "started_at", utcformat(timezone.now() - timedelta(seconds=2)))
    assert sweep()["stages"] == 1


@override_settings(ENGINE_STAGE_LEASE_SECONDS=1)
def test_a_job_taken_off_the_queue_by_a_worker_that_died_is_re_queued(engine):
    stage_row = running_stage(engine)
    job_id = step_job_id(stage_row)
    # Queued, then taken off the queue by a worker that died before it could mark it started.
    enqueue.discard(job_id)
    enqueue.enqueue_run_stage(str(stage_row.id), stage_row.run_token)
    engine_queue().remove(job_id)
    due(stage_row, 2)

    assert sweep()["stages"] == 1


@override_settings(ENGINE_STAGE_LEASE_SECONDS=1)
def test_a_job_a_worker_is_just_starting_is_left_to_it(engine):
    stage_row = running_stage(engine)
    job_id = step_job_id(stage_row)
    enqueue.discard(job_id)
    enqueue.enqueue_run_stage(str(stage_row.id), stage_row.run_token)
    queue = engine_queue()
    queue.remove(job_id)  # taken off the queue; the worker marks it started a moment later
    due(stage_row, 2)

    def start_it():
        time.sleep(0.1)
        started = {"status": "started", "started_at": utcformat(timezone.now())}
        queue.connection.hset(Job.key_for(job_id), mapping=started)

    worker = threading.Thread(target=start_it)
    worker.start()
    try:
        assert sweep()["stages"] == 0
    finally:
        worker.join()
    assert StageExecution.objects.get(id=stage_row.id).run_token == stage_row.run_token


@override_settings(ENGINE_STAGE_LEASE_SECONDS=1)
def test_a_start_whose_job_failed_is_queued_again_under_its_id(engine):
    execution = do_start_execution(save(chain("testSweepPass", 1)))
    Execution.objects.filter(id=execution.id).update(created_at=LONG_AGO)
    queue = engine_queue()
    job_id = enqueue.start_execution_job_id(execution.id)
    # As RQ keeps a job that raised (the database was away): failed, off the queue.
    job = queue.fetch_job(job_id)
    queue.remove(job_id)
    job.set_status("failed")
    queue.failed_job_registry.add(job, ttl=3600)

    assert sweep()["starts"] == 1

    assert queue.get_job_ids() == [job_id]
    assert job_id not in queue.failed_job_registry
    engine()
    assert Execution.objects.get(id=execution.id).status == Status.SUCCEEDED


# --- Real workers ---------------------------------------------------------------------------------

FAST_SWEEP = {"ENGINE_STAGE_LEASE_SECONDS": "1", "ENGINE_SWEEP_INTERVAL_SECONDS": "1"}


def _jobs_run(redis_client) -> int:
    workers = Worker.all(connection=redis_client)
    assert sum(worker.failed_job_count for worker in workers) == 0
    return sum(worker.successful_job_count for worker in workers)


def test_a_backlog_far_longer_than_the_lease_runs_every_job_once_on_real_workers(workers, clean_redis):
    """Sweeping every second with a lease of one, two workers run exactly the jobs the executions need."""
    count, stages = 250, 3
    pipeline = save(chain("wait", stages), name="backlog")
    workers.start(2, ENGINE_INLINE_SECONDS="0", **FAST_SWEEP)
    with transaction.atomic():  # their start jobs land in the queue together
        executions = [do_start_execution(pipeline) for _ in range(count)]
    first_created = min(execution.created_at for execution in executions)

    ended = [wait_for_execution(execution.id, timeout=120) for execution in executions]

    assert {execution.status for execution in ended} == {Status.SUCCEEDED}
    last_end = max(execution.end_time for execution in ended)
    assert (last_end - first_created).total_seconds() > 3, "no backlog outlived the lease: queue more executions"
    _wait_until_quiet(clean_redis)
    assert _jobs_run(clean_redis) == count * (1 + stages)  # a start and one step per stage, nothing twice
    assert not StageExecution.objects.filter(execution__in=executions, step_failures__gt=0).exists()


def _wait_until_quiet(redis_client, timeout: float = 10.0) -> None:
    """Until the queue is empty and the workers idle, so their counts include the last jobs."""
    queue = engine_queue()
    deadline = time.monotonic() + timeout
    while queue.count or any(worker.get_state() != "idle" for worker in Worker.all(connection=redis_client)):
        assert time.monotonic() < deadline, "the workers did not settle"
        time.sleep(0.05)
    time.sleep(0.2)


@pytest.fixture
def held_type():
    with held_stages.registered():
        yield


def test_a_step_whose_worker_was_killed_mid_job_is_run_again_by_another(workers, clean_redis, held_type, tmp_path):
    held_file, release_file = tmp_path / "held", tmp_path / "release"
    pipeline = save([{"refId": "1", "name": "Held", "type": "testHeldInStep",
                      "heldFile": str(held_file), "releaseFile": str(release_file)}], name="killed")
    modules = {"STAGE_TYPE_MODULES": "tests.pipelines.held_stages"}
    workers.start(1, ENGINE_INLINE_SECONDS="0", **FAST_SWEEP, **modules)
    execution = do_start_execution(pipeline)
    _wait_for(held_file.exists, "the step to start holding")
    stage_row = StageExecution.objects.get(execution=execution)
    job_id = enqueue.run_stage_job_id(stage_row.id, stage_row.run_token)
    assert clean_redis.hget(Job.key_for(job_id), "status") == b"started"

    workers.kill(0)  # mid-step: its transaction rolls back; RQ still says the job started
    release_file.touch()
    workers.start(1, ENGINE_INLINE_SECONDS="0", **FAST_SWEEP, **modules)

    assert wait_for_execution(execution.id, timeout=30).status == Status.SUCCEEDED
    assert clean_redis.hget(Job.key_for(job_id), "status") == b"started"  # RQ never learnt it died
    assert StageExecution.objects.get(id=stage_row.id).run_token > stage_row.run_token


def _wait_for(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_nothing_is_swept_once_every_execution_ended(engine):
    pipeline = save(chain("testSweepPass", 2))
    executions = [do_start_execution(pipeline) for _ in range(3)]
    engine()
    assert set(Execution.objects.filter(id__in=[e.id for e in executions]).values_list("status", flat=True)) <= set(
        COMPLETE
    )
    with override_settings(ENGINE_STAGE_LEASE_SECONDS=0):
        assert sweep() == NOTHING_SWEPT
