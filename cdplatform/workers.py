"""The RQ worker class the engine runs on.

A non-forking worker: each engine job is a short database transaction plus an
enqueue, so forking a child per job (RQ's default) would cost far more than the
work itself. Without the fork, the worker keeps Django's database connections
healthy between jobs itself.

It survives Redis going away mid-job instead of quitting, as RQ would.

It also runs the periodic jobs the apps registered (``apps/pipelines/periodic.py``:
the engine's sweeper, event delivery, pruning, ...), so they need no process
of their own: between jobs and when idle, at most once a second, a worker
looks for due runs. Each due run is claimed with a compare-and-set on its
database row, so it happens once however many workers run, and it goes on
when Redis loses everything.

Its scheduler (``--with-scheduler``: RQ forks it as a process of its own)
dies with it, even when the worker is killed with SIGKILL: see
:class:`EngineScheduler`.
"""

import ctypes
import logging
import math
import os
import signal
import sys
import threading
import time

import redis
from django.conf import settings
from django.db import close_old_connections
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import StopRequested
from rq.scheduler import RQScheduler
from rq.worker import SimpleWorker

logger = logging.getLogger(__name__)

# How often a worker looks for due periodic jobs (one small query each time).
PERIODIC_CHECK_SECONDS = 1.0
# RQ beats a worker's heart several times per job (before and after each dequeue, in its loop), each time three
# commands to Redis; a worker's key lives worker_ttl + 60 s (several minutes), so beats closer together than
# this are left out while the key has more than KEY_LIFE_LEFT_SECONDS to live. RQ sets the key's life for
# each job before starting it (with its own pipeline, always sent), so skipped beats never let it expire.
HEARTBEAT_SECONDS = 5.0
KEY_LIFE_LEFT_SECONDS = 60.0
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
# How often a scheduler process checks that its worker is still alive, and
# how long it may take to stop (release its locks) once the worker is gone.
PARENT_CHECK_SECONDS = 1.0
ORPHAN_GRACE_SECONDS = 5.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _watch_parent(parent_pid: int) -> None:
    """In a child process: once ``parent_pid`` is no longer its parent, stop (SIGTERM), then exit outright."""
    while os.getppid() == parent_pid:
        time.sleep(PARENT_CHECK_SECONDS)
    logger.warning("worker %s is gone: scheduler %s stops", parent_pid, os.getpid())
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(ORPHAN_GRACE_SECONDS)
    os._exit(1)


def die_with_parent(parent_pid: int) -> None:
    """Make this (child) process stop when ``parent_pid`` dies, however it dies; call it once its SIGTERM
    handler is installed.

    On Linux the kernel sends SIGTERM the moment the parent dies
    (``prctl(PR_SET_PDEATHSIG)``); everywhere, a thread notices within a
    second that the process has a new parent, sends the same SIGTERM, and
    ends the process if it has not stopped a few seconds later.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            logger.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="parent-watch", daemon=True).start()


class EngineScheduler(RQScheduler):
    """RQ's scheduler process, which stops when its worker dies, even of SIGKILL.

    RQ's own scheduler outlives a killed worker for as long as nothing kills
    it, holding the scheduler lock and heartbeating for a worker that no
    longer exists.
    """

    _parent_pid = 0

    def start(self):
        self._parent_pid = os.getpid()  # the worker, about to fork the scheduler
        return super().start()

    def _install_signal_handlers(self):
        super()._install_signal_handlers()  # SIGTERM asks the loop to stop and release the locks
        die_with_parent(self._parent_pid)


def with_background_queues(queues: list) -> list:
    """A worker of the engine's queue alone also serves RQ_BACKGROUND_QUEUES, after it (RQ takes queues in order)."""
    if [getattr(queue, "name", queue) for queue in queues] != ["default"] or isinstance(queues[0], str):
        return queues
    first = queues[0]
    extra = [type(first)(name, connection=first.connection, serializer=first.serializer)
             for name in settings.RQ_BACKGROUND_QUEUES]
    return [first, *extra]


class EngineWorker(SimpleWorker):
    """SimpleWorker that keeps database connections healthy and runs the periodic jobs."""

    _next_periodic_check = 0.0
    # Between taking a job off the queue and starting it, RQ beats its heart once more: no periodic
    # job then, or the sweeper would find the job this worker holds on no queue and not yet started.
    _holding_job = False
    _running_periodic = False

    def __init__(self, queues, *args, **kwargs):
        super().__init__(with_background_queues(list(queues)), *args, **kwargs)

    @property
    def dequeue_timeout(self) -> int:
        # Wake an idle worker each second to look for due periodic jobs.
        return max(1, min(super().dequeue_timeout, int(PERIODIC_CHECK_SECONDS)))

    # RQ's work loop quits on any error outside its dequeue. Losing Redis is
    # survivable (the database holds the state and the sweeper redoes what was
    # lost): the steps below log it and let the next dequeue wait for Redis,
    # and if the loop ends anyway while Redis is away, work() starts it again.

    def work(self, burst: bool = False, *args, **kwargs):
        limited = kwargs.get("max_jobs") is not None or kwargs.get("max_idle_time") is not None
        while True:
            try:
                result = super().work(burst, *args, **kwargs)
            except REDIS_DOWN:
                result = False
            if burst or limited or self._asked_to_stop():
                return result
            # The loop ended without being asked to: RQ quit on an error (a
            # Redis outage, most likely). Resume once Redis answers.
            logger.warning("the work loop ended unexpectedly; resuming when Redis answers")
            time.sleep(1.0)
            self._wait_for_redis()

    def _start_scheduler(self, burst=False, logging_level="INFO", date_format=DEFAULT_LOGGING_DATE_FORMAT,
                         log_format=DEFAULT_LOGGING_FORMAT):
        """RQ's (rq.worker.base), with :class:`EngineScheduler` as the scheduler."""
        self.scheduler = EngineScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.scheduler.acquire_locks()
        if not self.scheduler.acquired_locks:
            return  # another worker's scheduler runs; run_maintenance_tasks() takes over if it goes away
        if burst:
            try:
                self.scheduler.register_birth()
                self.scheduler.enqueue_scheduled_jobs()
            finally:
                self.scheduler.release_locks()
                self.scheduler.register_death()
        else:
            self.scheduler.start()

    def _asked_to_stop(self) -> bool:
        # An idle worker told to stop (SIGTERM, Ctrl-C) only records the request date.
        return self._stop_requested or self._shutdown_requested_date is not None

    def _redis_answers(self) -> bool:
        try:
            return bool(self.connection.ping())
        except REDIS_DOWN:
            return False

    def _wait_for_redis(self) -> None:
        delay = 0.5
        while not self._asked_to_stop() and not self._redis_answers():
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    def reorder_queues(self, reference_queue):
        self._holding_job = True  # RQ calls this as soon as it has taken a job off a queue
        super().reorder_queues(reference_queue)

    def execute_job(self, job, queue):
        try:
            return super().execute_job(job, queue)
        except REDIS_DOWN:
            logger.exception("lost Redis while running job %s; continuing", job.id)
        finally:
            self._holding_job = False

    def check_for_suspension(self, *args, **kwargs):
        try:
            return super().check_for_suspension(*args, **kwargs)
        except REDIS_DOWN:
            logger.warning("could not check for suspension: Redis is unreachable")

    def run_maintenance_tasks(self):
        try:
            return super().run_maintenance_tasks()
        except REDIS_DOWN:
            logger.warning("skipped maintenance: Redis is unreachable")

    def perform_job(self, job, queue, *args, **kwargs):
        close_old_connections()
        try:
            return super().perform_job(job, queue, *args, **kwargs)
        finally:
            close_old_connections()

    # When the last heartbeat was sent (monotonic) and when it made the worker's key expire.
    _last_beat = -math.inf
    _key_expires = -math.inf

    def heartbeat(self, timeout=None, pipeline=None):
        timeout = timeout or self.worker_ttl + 60  # RQ's default
        if pipeline is not None:
            super().heartbeat(timeout, pipeline)  # sent with the caller's pipeline, whose errors are the caller's
            self._beaten(timeout)
        elif not self._beaten_lately():
            try:
                with self.connection.pipeline(transaction=False) as beats:  # one round trip, not three
                    super().heartbeat(timeout, beats)
                    beats.execute()
                self._beaten(timeout)
            except REDIS_DOWN:
                logger.warning("heartbeat failed: Redis is unreachable")
        # Not in the middle of a job's bookkeeping, nor holding a job not yet started. Periodic
        # jobs need only the database: they run while Redis is away too.
        if pipeline is None and not self._holding_job:
            self._maybe_run_periodic()

    def _beaten(self, timeout: int) -> None:
        self._last_beat = time.monotonic()
        self._key_expires = self._last_beat + timeout

    def _beaten_lately(self) -> bool:
        """Whether a heartbeat went out less than HEARTBEAT_SECONDS ago and left the key more than a minute."""
        beat = time.monotonic()
        return beat - self._last_beat < HEARTBEAT_SECONDS and self._key_expires - beat > KEY_LIFE_LEFT_SECONDS

    def _maybe_take_over_scheduler(self) -> None:
        """Start this worker's scheduler once no other holds the lock. RQ looks only at its maintenance, every
        ten minutes: until then, with the worker that ran it stopped, scheduled jobs (waits, polls) would wait
        for the sweeper."""
        scheduler = self.scheduler
        if scheduler is None or self._asked_to_stop() or (scheduler._process is not None and
                                                          scheduler._process.is_alive()):
            return  # none asked for, stopping (its own scheduler has just been stopped), or running
        try:
            scheduler.acquire_locks(auto_start=True)
        except REDIS_DOWN:
            pass

    def _maybe_run_periodic(self) -> None:
        if time.monotonic() < self._next_periodic_check:
            return
        self._next_periodic_check = time.monotonic() + PERIODIC_CHECK_SECONDS
        self._maybe_take_over_scheduler()
        from apps.pipelines.periodic import run_due

        self._running_periodic = True
        try:
            close_old_connections()
            run_due()
        except Exception:  # noqa: BLE001  (e.g. the database is away: look again next second; the worker goes on)
            logger.exception("could not run periodic jobs")
        finally:
            self._running_periodic = False
        if self._asked_to_stop():
            raise StopRequested()  # a SIGTERM came while they ran (see _shutdown)

    def _shutdown(self):
        # RQ's handler of SIGTERM raises StopRequested in an idle worker, wherever it is. Inside a periodic job
        # an ``except Exception`` would swallow it and the worker would go on: it is raised once they are done.
        if not self._running_periodic:
            super()._shutdown()
