"""The one place that decides who may do what to which application.

Object permissions only (django-guardian rows on Application, granted to users
and to groups): model-wide permissions grant nothing here, except that a
superuser may do everything. Actions and the permissions that allow them:

- ``read``: see the application, its pipelines and executions — granted by
  any of view, change or execute (writing or running implies seeing);
- ``write``: edit pipelines and application settings — ``change_application``;
- ``execute``: start, cancel, pause, restart, judge — ``execute_application``.

Querysets call :func:`restrict_applications` (through their ``restrict``
method), so the API, the web pages and the WebSocket consumers all ask the same
question. An object a user may not read is answered with 404.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

READ, WRITE, EXECUTE = "read", "write", "execute"
ACTIONS = (READ, WRITE, EXECUTE)
PERMISSION_FOR = {READ: "view_application", WRITE: "change_application", EXECUTE: "execute_application"}
_ALLOWING = {
    READ: ("view_application", "change_application", "execute_application"),
    WRITE: ("change_application",),
    EXECUTE: ("execute_application",),
}


def _can_see_everything(user) -> bool:
    return bool(user and user.is_active and user.is_superuser)


def application_ids_query(user, action: str):
    """A subquery of the ids of applications ``user`` may ``action``; None means all of them."""
    from apps.accounts.models import ApplicationGroupPermission, ApplicationUserPermission

    if action not in _ALLOWING:
        raise ValueError(f"unknown action {action!r}; use one of {ACTIONS}")
    if _can_see_everything(user):
        return None
    if user is None or not user.is_authenticated or not user.is_active:
        return []
    codenames = _ALLOWING[action]
    direct = ApplicationUserPermission.objects.filter(user=user, permission__codename__in=codenames)
    by_team = ApplicationGroupPermission.objects.filter(group__user=user, permission__codename__in=codenames)
    return Q(id__in=direct.values("content_object_id")) | Q(id__in=by_team.values("content_object_id"))


def restrict_applications(queryset: QuerySet, user, action: str, field: str = "") -> QuerySet:
    """Filter ``queryset`` to rows whose application (reached through ``field``) the user may ``action``."""
    from apps.pipelines.models import Application

    allowed = application_ids_query(user, action)
    if allowed is None:
        return queryset
    if isinstance(allowed, list):
        return queryset.none()
    if not field:
        return queryset.filter(allowed)
    # The ids as a list, not a subquery: the planner cannot tell how selective a
    # subquery is, and for a user of one quiet application scans the whole table.
    allowed_ids = list(Application.objects.filter(allowed).values_list("id", flat=True))
    return queryset.filter(**{f"{field}__in": allowed_ids})


def can(user, action: str, application) -> bool:
    """Whether the user may ``action`` on one application (one query, none for a superuser)."""
    from apps.pipelines.models import Application

    if _can_see_everything(user):
        return True
    return restrict_applications(Application.objects.filter(pk=application.pk), user, action).exists()


def allowed_application_ids(user, action: str, application_ids) -> set:
    """Of the given application ids, those the user may ``action`` — one query for a whole list page."""
    from apps.pipelines.models import Application

    ids = set(application_ids)
    if _can_see_everything(user) or not ids:
        return ids if _can_see_everything(user) else set()
    allowed = restrict_applications(Application.objects.filter(pk__in=ids), user, action)
    return set(allowed.values_list("pk", flat=True))


def in_any_role(user, roles: list[str]) -> bool:
    """Whether the user belongs to one of the named roles (groups); a superuser always does."""
    if not roles or _can_see_everything(user):
        return True
    if user is None or not user.is_authenticated:
        return False
    return user.groups.filter(name__in=roles).exists()
