"""The RQ worker class the engine runs on.

A non-forking worker: each engine job is a short database transaction plus an
enqueue, so forking a child per job (RQ's default) would cost far more than the
work itself. Without the fork, the worker must keep Django's database
connections healthy between jobs itself, which is all this class adds.
"""

from django.db import close_old_connections
from rq.worker import SimpleWorker


class EngineWorker(SimpleWorker):
    """SimpleWorker that drops broken or expired database connections around each job."""

    def perform_job(self, job, queue, *args, **kwargs):
        close_old_connections()
        try:
            return super().perform_job(job, queue, *args, **kwargs)
        finally:
            close_old_connections()
