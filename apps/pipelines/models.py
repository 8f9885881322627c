"""Applications (and their grant tables and secrets), pipelines (with revisions), executions and stage executions."""

import time
import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F
from django.db.models.fields.json import KT
from django.db.models.functions import Lower
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from apps.pipelines.choices import ACTIVE, COMPLETE, Status, SyntheticOwner
from apps.pipelines.fields import CurrentTransactionId, StatusField, StatusTracked
from apps.pipelines.querysets import (
    ApplicationQuerySet,
    ExecutionQuerySet,
    PipelineQuerySet,
    SecretQuerySet,
    StageExecutionQuerySet,
)

# Spinnaker's application names: letters (either case), digits, hyphens, underscores and dots. Two names that
# differ only in case are the same application (the unique constraint below, and Application.objects.named).
application_name_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$",
    "Application names are letters, digits, hyphens, underscores and dots (at most 63), starting with a letter "
    "or digit; names differing only in case are the same application.",
)


def epoch_millis(moment) -> int | None:
    """Return a datetime as epoch milliseconds (Spinnaker's time format), or None."""
    if moment is None:
        return None
    return int(moment.timestamp() * 1000)


class Application(models.Model):
    """What a team owns and deploys; permissions are granted per application."""

    name = models.CharField(max_length=63, unique=True, validators=[application_name_validator])
    owner = models.CharField(max_length=200, blank=True, help_text="Owning team or e-mail address.")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ApplicationQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(Lower("name"), name="unique_application_name_any_case")]
        permissions = [
            ("execute_application", "Can run, cancel and judge the application's pipelines"),
            ("manage_application", "Can grant and revoke permissions in the application"),
        ]

    def __str__(self) -> str:
        return self.name


class ApplicationUserPermission(UserObjectPermissionBase):
    """A permission on one application granted to one user (django-guardian, with a real foreign key)."""

    content_object = models.ForeignKey(Application, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        # Made by the accounts app before applications declared their own grant tables: the rows stay put.
        db_table = "accounts_applicationuserpermission"


class ApplicationGroupPermission(GroupObjectPermissionBase):
    """A permission on one application granted to a group (a team)."""

    content_object = models.ForeignKey(Application, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        db_table = "accounts_applicationgrouppermission"


secret_name_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
    "Secret names are letters, digits, dots, underscores and hyphens (at most 100), starting with a letter or digit.",
)


class Secret(models.Model):
    """A value a pipeline uses without anyone reading it back: ``${#secret('name')}`` in a webhook stage.

    Owned by an application (the one whose pipelines may use it); stored only
    encrypted (``apps/pipelines/secrets/crypto.py``). Nothing shows the value:
    the API, the pages and the admin set, replace and delete it. Readers of the
    application see the names.
    """

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="secrets")
    name = models.CharField(max_length=100, validators=[secret_name_validator])
    # A Fernet token: the value encrypted with the first of SECRETS_ENCRYPTION_KEYS.
    ciphertext = models.TextField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True)

    permission_path = "application"
    objects = SecretQuerySet.as_manager()

    class Meta:
        ordering = ["application__name", "name"]
        constraints = [models.UniqueConstraint(fields=["application", "name"], name="unique_secret_name_per_app")]

    def __str__(self) -> str:
        return f"{self.application.name}/{self.name}"


class Pipeline(models.Model):
    """A saved pipeline definition, kept as Spinnaker's pipeline JSON (unknown keys included)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="pipelines")
    name = models.CharField(max_length=200)
    definition = models.JSONField(help_text="The whole pipeline document in Spinnaker's format.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True)

    permission_path = "application"
    objects = PipelineQuerySet.as_manager()

    class Meta:
        ordering = ["application__name", "name"]
        constraints = [models.UniqueConstraint(fields=["application", "name"], name="unique_pipeline_name_per_app")]

    def __str__(self) -> str:
        return f"{self.application.name}/{self.name}"

    @property
    def spinnaker_id(self) -> str:
        """The pipeline's id as Spinnaker knows it (the document's ``id``): its UUID, or the opaque id an export
        brought (``services.do_save_pipeline``), which ``pipeline`` stages and ``#pipelineId`` resolve."""
        document_id = self.definition.get("id") if isinstance(self.definition, dict) else None
        return document_id if isinstance(document_id, str) and document_id else str(self.id)


class PipelineRevision(models.Model):
    """One saved version of a pipeline's definition; every save adds one."""

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True)

    class Meta:
        ordering = ["pipeline", "-number"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "number"], name="unique_revision_number")]

    def __str__(self) -> str:
        return f"{self.pipeline} r{self.number}"


class Execution(StatusTracked):
    """One run of a pipeline, with a frozen copy of the definition it ran."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of their own: execution_app_recent and execution_pipeline_recent lead with them.
    application = models.ForeignKey(
        Application, on_delete=models.CASCADE, related_name="executions", db_index=False
    )
    pipeline = models.ForeignKey(
        Pipeline, on_delete=models.SET_NULL, null=True, related_name="executions", db_index=False
    )
    name = models.CharField(max_length=200)
    status = StatusField(max_length=20, choices=Status.choices, default=Status.NOT_STARTED)
    definition = models.JSONField(help_text="The pipeline document as it was when the execution started.")
    trigger = models.JSONField(default=dict)
    parameters = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    started_by = models.CharField(max_length=150, blank=True)
    # Whom the execution acts as now: whoever last started, restarted or resumed
    # it. What its stages start elsewhere (a child pipeline) is authorized as
    # this identity when it starts. ``run_as_system`` marks an operator start
    # (the command line); otherwise a ``run_as`` gone (deleted) refuses.
    run_as = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    run_as_name = models.CharField(max_length=150, blank=True)
    run_as_system = models.BooleanField(default=False)
    canceled_by = models.CharField(max_length=150, blank=True)
    cancel_reason = models.TextField(blank=True)
    # Copied from the definition's limitConcurrent: only one execution of the pipeline runs at a time.
    limit_concurrent = models.BooleanField(default=False)
    # [[paused_at_ms, resumed_at_ms or null], ...]: waits and timeouts do not count paused time.
    pauses = models.JSONField(default=list, blank=True)
    # Set on a child execution started by a `pipeline` stage of another execution.
    parent_stage = models.ForeignKey(
        "StageExecution", on_delete=models.SET_NULL, null=True, blank=True, related_name="child_executions"
    )
    # Set when the engine itself crashed advancing the execution, which then
    # ended TERMINAL: the error in Spinnaker's shape, with its phase.
    exception = models.JSONField(null=True, blank=True)

    permission_path = "application"
    objects = ExecutionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["pipeline", "-created_at"], name="execution_pipeline_recent"),
            models.Index(fields=["application", "-created_at"], name="execution_app_recent"),
            models.Index(fields=["status"], name="execution_status"),
            # The application page's trigger filter lists the kinds an application's executions have: one
            # probe of this index per kind (views/applications.trigger_types), not a scan of every execution.
            models.Index(F("application"), KT("trigger__type"), name="execution_app_trigger_type"),
        ]

    def __str__(self) -> str:
        return f"{self.application.name}/{self.name} {self.id}"

    @property
    def is_complete(self) -> bool:
        return self.status in COMPLETE

    def paused_seconds_since(self, moment) -> float:
        """Seconds the execution spent paused after ``moment`` (a datetime), counting a pause still going on."""
        if not self.pauses or moment is None:
            return 0.0
        since_ms = moment.timestamp() * 1000
        now_ms = time.time() * 1000
        total = 0.0
        for paused_at, resumed_at in self.pauses:
            start, end = max(paused_at, since_ms), resumed_at if resumed_at is not None else now_ms
            total += max(0.0, end - start)
        return total / 1000


class StageExecution(StatusTracked):
    """One stage of an execution: evaluated context, outputs, status and timings."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: unique_stage_ref_per_execution leads with it (every stage UPDATE that moves
    # an indexed column pays for each index).
    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="stages", db_index=False)
    ref_id = models.CharField(max_length=100)
    position = models.PositiveIntegerField(default=0, help_text="Index of the stage in the pipeline's stages list.")
    type = models.CharField(max_length=100)
    name = models.CharField(max_length=200)
    status = StatusField(max_length=20, choices=Status.choices, default=Status.NOT_STARTED)
    requisite_ref_ids = models.JSONField(default=list)
    # The stages that list this one as a requisite, so moving on needs no scan of the whole graph.
    next_ref_ids = models.JSONField(default=list)
    definition = models.JSONField(help_text="The stage as written in the pipeline, before expressions.")
    context = models.JSONField(default=dict, help_text="The stage's inputs after expressions, plus task state.")
    outputs = models.JSONField(default=dict)
    start_time = models.DateTimeField(null=True, blank=True)
    end_time = models.DateTimeField(null=True, blank=True)
    # Every job scheduled for the stage carries the token current when it was
    # scheduled; a job whose token is no longer current is a duplicate or
    # stale message and does nothing.
    run_token = models.PositiveIntegerField(default=0)
    # When the stage's next job is due (None: it waits for a person). The
    # sweeper uses it to find stages whose message went missing. No index: the
    # sweeper reaches the few stages of RUNNING executions through
    # execution_status and unique_stage_ref_per_execution, and an index here
    # would make nearly every stage UPDATE (each step moves this column) write
    # every index of the table instead of none (a HOT update).
    next_run_at = models.DateTimeField(null=True, blank=True)
    # How many times in a row the sweeper found the stage's step lost (its
    # worker died, its message vanished); written only when non-zero, and
    # the stage fails at ENGINE_MAX_STEP_ATTEMPTS.
    step_failures = models.PositiveIntegerField(default=0)
    # True while a started stage's context still waits to be evaluated: a
    # stage whose definition holds expressions starts RUNNING with this set,
    # and its next step evaluates them with no row lock held, then applies
    # them (engine/evaluation.py). Read only while the stage is RUNNING or PAUSED.
    awaiting_evaluation = models.BooleanField(default=False)
    # A synthetic stage (planned by a composite stage when it started, to run
    # before or after its own tasks) points to that stage; top-level stages to none.
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="synthetic_stages"
    )
    synthetic_owner = models.CharField(max_length=20, choices=SyntheticOwner.choices, blank=True)
    # [{id, name, implementingClass, status, startTime, endTime}] for a stage
    # with several tasks or synthetic stages; empty for a stage whose type's
    # run() is its one task (its task is the stage itself), so such a stage's
    # steps write nothing more than before.
    tasks = models.JSONField(default=list, blank=True)

    permission_path = "execution__application"
    objects = StageExecutionQuerySet.as_manager()

    class Meta:
        ordering = ["execution_id", "position"]
        constraints = [models.UniqueConstraint(fields=["execution", "ref_id"], name="unique_stage_ref_per_execution")]

    def __str__(self) -> str:
        return f"{self.name} ({self.ref_id})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE


class Event(models.Model):
    """One entry of the durable event log: a status change, a judgment or a person's action, written in
    the transaction that made it (``apps/pipelines/eventlog.py`` writes and reads it).

    It carries what a consumer needs without re-reading other rows, which may
    have changed or gone since. Execution and stage ids are plain values, not
    foreign keys: the log outlives what it records, and inserting costs no lookup.
    """

    # The inserting transaction (PostgreSQL; 0 on SQLite): readers order by (xact, id), see eventlog.py.
    xact = models.BigIntegerField(db_default=CurrentTransactionId())
    kind = models.CharField(max_length=40, help_text="execution.status, stage.status, stage.judged, ...")
    created_at = models.DateTimeField()
    execution_id = models.UUIDField()
    application_id = models.BigIntegerField()
    application_name = models.CharField(max_length=63)
    pipeline_id = models.UUIDField(null=True, blank=True)
    pipeline_name = models.CharField(max_length=200, blank=True)
    stage_id = models.UUIDField(null=True, blank=True)
    stage_ref_id = models.CharField(max_length=100, blank=True)
    stage_name = models.CharField(max_length=200, blank=True)
    stage_type = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=20, blank=True, help_text="The status after the change.")
    previous_status = models.CharField(max_length=20, blank=True)
    actor = models.CharField(max_length=150, blank=True, help_text="Who acted (control actions and judgments).")
    payload = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["xact", "id"]
        # The readers' order is the only index: every INSERT of the engine pays for each one
        # (pruning walks the same order, which follows time closely enough).
        indexes = [models.Index(fields=["xact", "id"], name="event_log_order")]

    def __str__(self) -> str:
        return f"{self.kind} {self.execution_id} {self.stage_ref_id} {self.status}".strip()


class EventCursor(models.Model):
    """How far one consumer of the event log has read, and how its last attempt went."""

    name = models.CharField(max_length=100, primary_key=True)
    # The last event delivered: the log is read in (xact, event_id) order.
    xact = models.BigIntegerField(default=0)
    event_id = models.BigIntegerField(default=0)
    delivered = models.BigIntegerField(default=0, help_text="Events delivered so far.")
    failures = models.PositiveIntegerField(default=0, help_text="Consecutive failed attempts.")
    retry_at = models.DateTimeField(null=True, blank=True, help_text="No attempt before this, after a failure.")
    last_error = models.TextField(blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} at ({self.xact}, {self.event_id})"


class PeriodicJob(models.Model):
    """The schedule state of one periodic job (``apps/pipelines/periodic.py``); a run is claimed by
    moving ``next_run_at`` with a compare-and-set, so it happens once however many workers look."""

    name = models.CharField(max_length=100, primary_key=True)
    schedule = models.CharField(max_length=100, help_text="'every N s' or a cron expression, as registered.")
    next_run_at = models.DateTimeField()
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    runs = models.PositiveIntegerField(default=0)
    failures = models.PositiveIntegerField(default=0, help_text="Consecutive failed runs.")

    def __str__(self) -> str:
        return f"{self.name} ({self.schedule})"
