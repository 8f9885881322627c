"""The viewset base every API resource uses: querysets restricted to what the user may do.

The action comes from the HTTP method (GET read, POST/PUT/PATCH/DELETE
write) unless a view names it for a custom action in ``action_permissions``
(e.g. ``{"cancel": "execute"}``). The queryset is restricted to the
applications the user may *read* first, so anything else is a 404; then,
for the object being acted on, the specific action is checked and refused
with 403. List responses never contain, or count, what the user may not read.
"""

from rest_framework import exceptions, viewsets

from apps.accounts.permissions import READ, WRITE, can

METHOD_ACTIONS = {"GET": READ, "HEAD": READ, "OPTIONS": READ}


class RestrictedViewSetMixin:
    """Mixin for DRF viewsets whose model queryset has ``restrict(user, action)``."""

    action_permissions: dict[str, str] = {}

    def required_action(self) -> str:
        """The permission this request needs: read, write or execute."""
        named = self.action_permissions.get(getattr(self, "action", None) or "")
        if named:
            return named
        return METHOD_ACTIONS.get(self.request.method, WRITE)

    def get_queryset(self):
        return super().get_queryset().restrict(self.request.user, READ)

    def application_of(self, obj):
        """The application that governs ``obj``; views whose objects are not applications override it."""
        return obj.application

    def check_object_permissions(self, request, obj):
        super().check_object_permissions(request, obj)
        action = self.required_action()
        if action != READ and not can(request.user, action, self.application_of(obj)):
            raise exceptions.PermissionDenied(f"You may not {action} in application {self.application_of(obj)}.")


class RestrictedModelViewSet(RestrictedViewSetMixin, viewsets.ModelViewSet):
    pass


class RestrictedReadOnlyViewSet(RestrictedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    pass
