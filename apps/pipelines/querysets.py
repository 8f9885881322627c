"""Querysets with ``restrict(user, action)``: every list and lookup goes through the permission chokepoint.

Applications govern; pipelines, executions and stages are governed through
the path their model names in ``permission_path`` (see apps/accounts/permissions.py).
"""

from apps.accounts.permissions import RestrictedQuerySet


class ApplicationQuerySet(RestrictedQuerySet):
    """Applications: ``restrict`` keeps those the user holds a grant on."""

    def named(self, name):
        """The application called ``name``, in any case (Spinnaker's names are case-insensitive)."""
        if "\x00" in str(name):  # no name holds NUL, and PostgreSQL refuses it in a query's text
            return self.none()
        return self.filter(name__iexact=name)


class PipelineQuerySet(RestrictedQuerySet):
    """Pipelines, restricted through their application."""


class ExecutionQuerySet(RestrictedQuerySet):
    """Executions, restricted through their application."""


class StageExecutionQuerySet(RestrictedQuerySet):
    """Stage executions, restricted through their execution's application."""


class SecretQuerySet(RestrictedQuerySet):
    """Application secrets, restricted through their application (names only: values are never read back)."""
