"""Execution and stage statuses, named as Spinnaker names them, with their groups."""

from django.db import models


class Status(models.TextChoices):
    """Status of an execution or a stage (Spinnaker's ExecutionStatus)."""

    NOT_STARTED = "NOT_STARTED"
    BUFFERED = "BUFFERED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    SUSPENDED = "SUSPENDED"
    SUCCEEDED = "SUCCEEDED"
    FAILED_CONTINUE = "FAILED_CONTINUE"
    TERMINAL = "TERMINAL"
    CANCELED = "CANCELED"
    STOPPED = "STOPPED"
    SKIPPED = "SKIPPED"


# Finished: nothing more will happen to it unless a person restarts it.
COMPLETE = frozenset(
    {Status.SUCCEEDED, Status.FAILED_CONTINUE, Status.TERMINAL, Status.CANCELED, Status.STOPPED, Status.SKIPPED}
)
# Finished in a way that lets downstream stages start.
CONTINUABLE = frozenset({Status.SUCCEEDED, Status.FAILED_CONTINUE, Status.SKIPPED})
# Finished in a way that halts its branch (and, for TERMINAL/CANCELED, the execution).
HALTED = frozenset({Status.TERMINAL, Status.CANCELED, Status.STOPPED})
# Started and not finished.
ACTIVE = frozenset({Status.RUNNING, Status.PAUSED, Status.SUSPENDED})

# The statuses as people filter by them: five outcomes instead of eleven names (the first of each gives its colour).
STATUS_GROUPS = {
    "running": (Status.RUNNING,),
    "waiting": (Status.PAUSED, Status.SUSPENDED, Status.NOT_STARTED, Status.BUFFERED),
    "succeeded": (Status.SUCCEEDED,),
    "failed": (Status.TERMINAL, Status.FAILED_CONTINUE, Status.STOPPED),
    "canceled": (Status.CANCELED, Status.SKIPPED),
}


class SyntheticOwner(models.TextChoices):
    """Where a synthetic stage runs relative to the stage that planned it (Orca's SyntheticStageOwner)."""

    STAGE_BEFORE = "STAGE_BEFORE"
    STAGE_AFTER = "STAGE_AFTER"
