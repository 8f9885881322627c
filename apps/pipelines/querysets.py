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


def release_prefetched(instances) -> None:
    """Drop what ``prefetch_related`` cached on ``instances`` once they have been rendered.

    Each child a reverse relation prefetches points back at its parent (an
    execution's stages at the execution), so a page's rows are reference
    cycles: only Python's full garbage collection frees them, and it runs in
    the middle of some later request, walking everything (the API's tail at
    a million executions). Emptied, the cache is freed at once.
    """
    for instance in instances:
        if getattr(instance, "_prefetched_objects_cache", None):
            instance._prefetched_objects_cache = {}
