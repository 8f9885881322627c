"""The trigger index, every inbound event with what it started, deliveries seen, and what registry polls saw."""

import uuid

from django.db import models

from apps.pipelines.models import Application, Execution, Pipeline
from apps.triggers.querysets import TriggerIndexQuerySet, TriggerMatchQuerySet


class TriggerIndex(models.Model):
    """One trigger of a saved pipeline, indexed by what an event is looked up with (``type``, ``key``).

    Rebuilt from the pipeline's ``triggers`` each time it is saved (``index.py``),
    so matching an event reads only the rows of its key, never every pipeline.
    ``enabled`` is false when the trigger or its pipeline is disabled.
    """

    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="trigger_index")
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField(help_text="The trigger's index in the document's triggers list.")
    type = models.CharField(max_length=40)
    key = models.CharField(max_length=400, help_text="What an event of this type is looked up by.")
    enabled = models.BooleanField(default=True)
    definition = models.JSONField(help_text="The trigger as the document has it.")
    # Cron triggers: the next time the trigger is due (claimed with a compare-and-set, as periodic jobs are).
    next_fire_at = models.DateTimeField(null=True, blank=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_execution_id = models.UUIDField(null=True, blank=True)
    last_refused_at = models.DateTimeField(null=True, blank=True)
    last_refusal = models.TextField(blank=True)

    permission_path = "application"
    objects = TriggerIndexQuerySet.as_manager()

    class Meta:
        ordering = ["pipeline", "position"]
        constraints = [models.UniqueConstraint(fields=["pipeline", "position"], name="unique_trigger_position")]
        indexes = [
            models.Index(fields=["type", "key"], name="trigger_lookup", condition=models.Q(enabled=True)),
            models.Index(fields=["next_fire_at"], name="trigger_cron_due", condition=models.Q(enabled=True)),
        ]

    def __str__(self) -> str:
        return f"{self.pipeline_id} #{self.position} {self.type} {self.key}"


class Outcome(models.TextChoices):
    """What became of an inbound event."""

    STARTED = "started", "started executions"
    IGNORED = "ignored", "matched no trigger"
    REFUSED = "refused", "refused"


class InboundEvent(models.Model):
    """One request or event that may start pipelines, recorded with its outcome before anything starts.

    Kept ``TRIGGER_EVENT_RETENTION_DAYS``. The body itself is not kept, only
    its digest and size; ``headers`` holds the few that matter (event kind,
    delivery id, user agent), never a signature or a token.
    """

    # What the executions it started carry as ``trigger.eventId``.
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)
    source = models.CharField(max_length=300, help_text="git/github, webhook/<source>, docker, jenkins, cron, ...")
    delivery_id = models.CharField(max_length=200, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    body_sha256 = models.CharField(max_length=64, blank=True)
    body_size = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    status_code = models.PositiveSmallIntegerField(default=200)
    reason = models.TextField(blank=True, help_text="Why it was refused, or why nothing matched.")
    summary = models.JSONField(default=dict, blank=True, help_text="What the event said: branch, tag, job, ...")

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.source} {self.received_at:%Y-%m-%d %H:%M:%S} {self.outcome}"


class TriggerMatch(models.Model):
    """A trigger an inbound event matched: the execution it started, or why it started none.

    Readable by whoever reads the trigger's application: the per-application
    view of inbound events.
    """

    event = models.ForeignKey(InboundEvent, on_delete=models.CASCADE, related_name="matches")
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    pipeline = models.ForeignKey(Pipeline, on_delete=models.SET_NULL, null=True, related_name="+")
    pipeline_name = models.CharField(max_length=200)
    trigger_position = models.PositiveIntegerField()
    execution = models.ForeignKey(Execution, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    refusal = models.TextField(blank=True)

    permission_path = "application"
    objects = TriggerMatchQuerySet.as_manager()

    class Meta:
        ordering = ["-event_id", "id"]
        indexes = [models.Index(fields=["application", "-event"], name="trigger_match_app_recent")]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.pipeline_name} #{self.trigger_position}"


class SeenDelivery(models.Model):
    """A delivery id an authenticated request carried: the same id again is a replay, refused."""

    source = models.CharField(max_length=300)
    delivery_id = models.CharField(max_length=200)
    received_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "delivery_id"], name="unique_delivery")]

    def __str__(self) -> str:
        return f"{self.source} {self.delivery_id}"


class PolledTag(models.Model):
    """A tag a registry poll has seen (with its digest): a new one, or a new digest, fires once."""

    registry = models.CharField(max_length=300)
    repository = models.CharField(max_length=300)
    tag = models.CharField(max_length=200)
    digest = models.CharField(max_length=100, blank=True)
    seen_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["registry", "repository", "tag"], name="unique_polled_tag")]

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"
