"""Service accounts, API tokens and the audit log.

The grant tables of each governing model live in the app that owns the model
(``apps/pipelines/models.py`` for applications) and are registered with
:func:`apps.accounts.permissions.register_governing`: this app never imports them.
"""

import hashlib
import secrets

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone

from apps.accounts.permissions import RestrictedQuerySet


class ServiceAccount(models.Model):
    """A non-person user owned by a team, that triggers and bots act as (Spinnaker Fiat's service accounts)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="service_account")
    owner = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="service_accounts")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.user.username


TOKEN_PREFIX = "cdp"


class ApiTokenQuerySet(models.QuerySet):
    """Tokens, with the ones that still authenticate."""

    def usable(self):
        """Tokens neither revoked nor expired."""
        unexpired = models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=timezone.now())
        return self.filter(unexpired, revoked_at__isnull=True)


class ApiToken(models.Model):
    """A named API token of a user, for scripts; only its hash is kept, the token itself is shown once."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    # The first characters, kept in clear so a person can tell tokens apart and the lookup is indexed.
    key_prefix = models.CharField(max_length=16, db_index=True)
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="unique_token_name_per_user")]

    def __str__(self) -> str:
        return f"{self.user} / {self.name} ({self.key_prefix}…)"

    @staticmethod
    def hash(token: str) -> str:
        # The token is 256 random bits: a fast hash is enough, nothing to brute-force.
        return hashlib.sha256(token.encode()).hexdigest()

    @staticmethod
    def generate() -> tuple[str, str]:
        """A new token and its prefix: ``cdp_<prefix>_<secret>``."""
        prefix = secrets.token_hex(4)
        return f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}", prefix

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())


class AuditSource(models.TextChoices):
    API = "api"
    WEB = "web"
    TRIGGER = "trigger"
    CLI = "cli"
    ADMIN = "admin"
    SLACK = "slack"
    SYSTEM = "system"


class AuditEvent(models.Model):
    """Who did what, when, from where: pipeline saved or deleted, execution started, canceled, judged, grants."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(max_length=150)
    source = models.CharField(max_length=10, choices=AuditSource.choices)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=60, db_index=True)
    # By name, so that accounts imports nothing of pipelines; the migration depends on it all the same.
    application = models.ForeignKey(
        "pipelines.Application", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    application_name = models.CharField(max_length=63, blank=True, db_index=True)
    object_type = models.CharField(max_length=40, blank=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    details = models.JSONField(default=dict, blank=True)

    # Readable with the application it is about; events of no application only by a superuser.
    permission_path = "application"
    objects = RestrictedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["application", "-created_at"], name="audit_app_recent")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.object_type} {self.object_id}"
