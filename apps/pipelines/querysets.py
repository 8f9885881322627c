"""Querysets with ``restrict(user, action)``: every list and lookup goes through the permission chokepoint."""

from django.db import models

from apps.accounts.permissions import restrict_applications


class ApplicationQuerySet(models.QuerySet):
    def restrict(self, user, action: str = "read"):
        """The applications ``user`` may ``action`` (read, write or execute)."""
        return restrict_applications(self, user, action)


class PipelineQuerySet(models.QuerySet):
    def restrict(self, user, action: str = "read"):
        return restrict_applications(self, user, action, field="application")


class ExecutionQuerySet(models.QuerySet):
    def restrict(self, user, action: str = "read"):
        return restrict_applications(self, user, action, field="application")


class StageExecutionQuerySet(models.QuerySet):
    def restrict(self, user, action: str = "read"):
        return restrict_applications(self, user, action, field="execution__application")
