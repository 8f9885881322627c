"""The viewset base every API resource uses: querysets restricted to what the user may read.

Anything the user may not read is a 404, and list responses never contain,
or count, it. What a change needs (write, execute, a judgment role, a state
that allows it) is decided by the service function the view calls
(``apps/*/services.py``), which raises PermissionRefused (403) or
ActionRefused (409) before it writes anything: the API, the pages, the admin
and the command line get the same answer.
"""

from rest_framework import viewsets

from apps.accounts.permissions import READ


class RestrictedViewSetMixin:
    """Mixin for DRF viewsets whose model queryset has ``restrict(user, action)``."""

    def get_queryset(self):
        return super().get_queryset().restrict(self.request.user, READ)


class RestrictedModelViewSet(RestrictedViewSetMixin, viewsets.ModelViewSet):
    """A model viewset over what the user may read."""


class RestrictedReadOnlyViewSet(RestrictedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """A read-only viewset over what the user may read; custom actions call services."""
