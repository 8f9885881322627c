"""Metrics accounts (Prometheus), canary configs per application (Kayenta's format) and canary analyses."""

from __future__ import annotations

from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from apps.accounts.permissions import RestrictedQuerySet
from apps.deployments.models import account_name_validator

# The account PROMETHEUS_URL describes, with no other configuration.
DEFAULT_ACCOUNT = "prometheus"


class PrometheusAccount(models.Model):
    """A Prometheus server canary analyses query over its HTTP API, with write-only credentials.

    ``bearer_token`` and ``password`` are Fernet tokens (apps/pipelines/secrets/crypto.py), blank for
    none; nothing reads them back but the query client, in the worker, just before a call.
    """

    name = models.CharField(max_length=63, unique=True, validators=[account_name_validator])
    url = models.CharField(max_length=500, help_text="Base URL of the Prometheus server, e.g. http://127.0.0.1:9090")
    username = models.CharField(max_length=255, blank=True, help_text="Basic auth user (with a password).")
    password = models.TextField(blank=True, editable=False)
    bearer_token = models.TextField(blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [
            ("use_prometheusaccount", "Can query the metrics account in canary analyses"),
            ("manage_prometheusaccount", "Can change the metrics account and grant permissions on it"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_credentials(self) -> bool:
        return bool(self.password or self.bearer_token)


class PrometheusAccountUserPermission(UserObjectPermissionBase):
    """A permission on one metrics account granted to one user."""

    content_object = models.ForeignKey(PrometheusAccount, on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        pass


class PrometheusAccountGroupPermission(GroupObjectPermissionBase):
    """A permission on one metrics account granted to a group (a team)."""

    content_object = models.ForeignKey(PrometheusAccount, on_delete=models.CASCADE)

    class Meta(GroupObjectPermissionBase.Meta):
        pass


class CanaryConfig(models.Model):
    """One canary config of an application: Kayenta's JSON document (metrics, classifier), kept as given.

    ``document`` is validated (apps/canary/documents.py) before it is saved; its ``name`` is the
    config's name, unique within the application. A stage names it by ``canaryConfigId`` (the id or
    the name).
    """

    application = models.ForeignKey("pipelines.Application", on_delete=models.CASCADE, related_name="canary_configs")
    name = models.CharField(max_length=200)
    document = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True)

    permission_path = "application"
    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["application", "name"]
        constraints = [models.UniqueConstraint(fields=["application", "name"], name="unique_canary_config_name")]

    def __str__(self) -> str:
        return self.name


class CanaryAnalysis(models.Model):
    """One run of a ``kayentaCanary`` stage: the config it judged by, and each interval's samples and verdicts.

    ``intervals`` is a list, one entry per scored interval: its window, score, classification and
    each metric's samples (canary and baseline) with the test's figures (apps/canary/judge.py).
    """

    stage = models.OneToOneField("pipelines.StageExecution", on_delete=models.CASCADE, related_name="canary_analysis")
    application = models.ForeignKey("pipelines.Application", on_delete=models.CASCADE,
                                    related_name="canary_analyses")
    config_name = models.CharField(max_length=200)
    config = models.JSONField(default=dict)
    account_name = models.CharField(max_length=63)
    intervals = models.JSONField(default=list)
    status = models.CharField(max_length=20, default="RUNNING")
    score = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    permission_path = "application"
    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.config_name} ({self.status})"
