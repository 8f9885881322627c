"""Subscriptions, deliveries with their attempts, Slack's messages and the links between Slack and platform users."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from apps.accounts.permissions import RestrictedQuerySet
from apps.notifications.choices import ChatOutcome, DeliveryStatus, TargetType
from apps.pipelines.models import Application


class Subscription(models.Model):
    """An application-level notification every pipeline of the application inherits (Spinnaker's
    application notifications), in the shape of a pipeline's ``notifications`` entry.

    ``address`` is kept encrypted (a Teams or Google Chat URL is a credential) and never shown again.
    """

    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="notification_subscriptions")
    type = models.CharField(max_length=20, choices=TargetType.choices)
    address_ciphertext = models.TextField(help_text="The target's address, encrypted (write-only).")
    address_hint = models.CharField(max_length=80, blank=True, help_text="What people see of the address.")
    when = models.JSONField(default=list, help_text="pipeline.starting, pipeline.complete, pipeline.failed, ...")
    message = models.JSONField(default=dict, blank=True, help_text="Custom texts by moment: {moment: {text}}.")
    created_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    permission_path = "application"
    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["application_id", "id"]

    def __str__(self) -> str:
        return f"{self.application_id} {self.type} {self.address_hint}"


class Delivery(models.Model):
    """One notification to one target for one event, with how its delivery went (its attempts below).

    Made by the event-log consumer in the transaction that moves its cursor, once per (event, target):
    ``key`` is unique, so an event read twice makes no second delivery.
    """

    key = models.CharField(max_length=64, unique=True, help_text="Event id and target, hashed.")
    event_id = models.BigIntegerField()
    moment = models.CharField(max_length=40, help_text="pipeline.complete, manualJudgment, ...")
    application = models.ForeignKey(Application, on_delete=models.CASCADE, related_name="+")
    execution_id = models.UUIDField(db_index=True)
    stage_id = models.UUIDField(null=True, blank=True)
    target_type = models.CharField(max_length=20, choices=TargetType.choices)
    target = models.JSONField(help_text="The subscription as written (address, message); secrets unresolved.")
    target_hint = models.CharField(max_length=200, help_text="The address as people may see it.")
    source = models.CharField(max_length=40, help_text="pipeline, stage, application or trigger.")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    permission_path = "application"
    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="delivery_due"),
            models.Index(fields=["application", "-id"], name="delivery_app_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.moment} → {self.target_type} {self.target_hint} ({self.status})"


class DeliveryAttempt(models.Model):
    """One try at sending a delivery: when, how it ended, and the error when it did not succeed."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_rows")
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    succeeded = models.BooleanField()
    retryable = models.BooleanField(default=False)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["delivery_id", "number"]
        constraints = [models.UniqueConstraint(fields=["delivery", "number"], name="delivery_attempt_once")]

    def __str__(self) -> str:
        return f"{self.delivery_id}#{self.number} {'ok' if self.succeeded else self.error[:40]}"


class SlackMessage(models.Model):
    """The one Slack message of an execution in a channel, updated in place as the execution goes on.

    ``lease_until`` lets one sender at a time post or update it (a compare-and-set, no lock held
    over the call), so two deliveries never post two messages.
    """

    execution_id = models.UUIDField()
    channel = models.CharField(max_length=100)
    channel_id = models.CharField(max_length=40, blank=True, help_text="The channel's id, as Slack answered.")
    ts = models.CharField(max_length=40, blank=True, help_text="Slack's id of the message; empty until posted.")
    lease_until = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["execution_id", "channel"], name="slack_message_once")]

    def __str__(self) -> str:
        return f"{self.execution_id} in {self.channel}"


class SlackLink(models.Model):
    """A Slack user known as a platform user: whose permissions a click or a command from Slack has."""

    slack_user_id = models.CharField(max_length=40, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="slack_links")
    linked_by = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.slack_user_id} → {self.user_id}"


class SlackLinkCode(models.Model):
    """A one-time code ``/cdp link`` gives a Slack user, to enter on their profile page; kept hashed."""

    code_hash = models.CharField(max_length=64, unique=True)
    slack_user_id = models.CharField(max_length=40)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"code for {self.slack_user_id}"


class ChatRequest(models.Model):
    """Every request that came to the Slack endpoints, with what became of it (forged ones included)."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    endpoint = models.CharField(max_length=20, help_text="interactions or commands")
    slack_user_id = models.CharField(max_length=40, blank=True)
    command = models.CharField(max_length=200, blank=True, help_text="What was asked (verified requests only).")
    outcome = models.CharField(max_length=10, choices=ChatOutcome.choices)
    # Slack's signature of a verified request, hashed: the same request sent again is refused (a replay).
    signature_hash = models.CharField(max_length=64, blank=True, db_index=True)
    reason = models.TextField(blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["signature_hash"], condition=~models.Q(signature_hash=""),
                                               name="chat_request_signed_once")]

    def __str__(self) -> str:
        return f"{self.endpoint} {self.outcome} {self.reason[:40]}"
