"""The one place that decides who may do what to which governed object.

A *governing* model is one that permissions are granted on: an application
today, a deployment account next. Its app registers it once, when Django
starts (:func:`register_governing`), with its actions and, for each action,
the guardian permission codenames that allow it, and the two direct
foreign-key grant tables (to users, to groups) that hold its rows. For an
application:

- ``read``: see the application, its pipelines and executions — granted by
  any of view, change or execute (writing or running implies seeing);
- ``write``: edit pipelines and application settings — ``change_application``;
- ``execute``: start, cancel, pause, restart, judge — ``execute_application``;
- ``manage``: grant and revoke these permissions (the owners) —
  ``manage_application``. Not implied by write: a writer cannot grant
  themselves execute.

A *governed* model names its path to the governing object in a class
attribute, ``permission_path`` (an execution: ``"application"``; a stage:
``"execution__application"``), and gets :class:`RestrictedQuerySet`, so
``Model.objects.restrict(user, action)`` works for every one of them.

Object permissions only: model-wide permissions grant nothing here, except
that a superuser may do everything. The API, the web pages, the admin and the
WebSocket consumers all ask :func:`restrict` or :func:`can`. An object a user
may not read is answered with 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Q, QuerySet

READ, WRITE, EXECUTE, DEPLOY, MANAGE = "read", "write", "execute", "deploy", "manage"


class PermissionRefused(PermissionDenied):
    """The acting user may not do this (403 from the API and the pages); ``field`` names what was refused."""

    def __init__(self, message: str, *, field: str = ""):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Governor:
    """A governing model as registered: what each action needs, and where its grants are kept."""

    model: type[models.Model]
    allowing: dict[str, tuple[str, ...]]
    granted_as: dict[str, str]
    user_grants: type[models.Model]
    group_grants: type[models.Model]
    # Who may grant and revoke on an object: those who may do this to it.
    manage_action: str = WRITE

    @property
    def actions(self) -> tuple[str, ...]:
        """The actions the model knows, in the order registered."""
        return tuple(self.allowing)

    def codename(self, action: str) -> str:
        """The permission a grant of ``action`` writes; ValueError naming the actions for an unknown one."""
        check_action(self, action)
        return self.granted_as[action]

    def action_of(self, codename: str) -> str | None:
        """The action a granted permission stands for, or None for one that grants nothing here."""
        return next((action for action, granted in self.granted_as.items() if granted == codename), None)


_GOVERNORS: dict[type[models.Model], Governor] = {}


def register_governing(
    model: type[models.Model],
    *,
    allowing: dict[str, tuple[str, ...]],
    granted_as: dict[str, str],
    user_grants: type[models.Model],
    group_grants: type[models.Model],
    manage_action: str = WRITE,
) -> Governor:
    """Make ``model`` a governing model (call it from the app's ``ready()``); registering twice replaces."""
    unknown = set(granted_as) - set(allowing)
    if unknown:
        raise ValueError(f"{model.__name__}: granted_as names actions it does not allow: {sorted(unknown)}")
    if manage_action not in allowing:
        raise ValueError(f"{model.__name__}: manage_action {manage_action!r} is not one of its actions")
    governor = Governor(model, dict(allowing), dict(granted_as), user_grants, group_grants, manage_action)
    _GOVERNORS[model] = governor
    return governor


def check_action(governor: Governor, action: str) -> str:
    """``action`` if the governing model knows it; a ValueError naming the ones it knows otherwise."""
    if action not in governor.allowing:
        raise ValueError(f"unknown action {action!r} on {governor.model.__name__}; use one of {governor.actions}")
    return action


def governance(model: type[models.Model]) -> tuple[Governor, str]:
    """The governor of ``model`` and the lookup path from ``model`` to it ("" for a governing model itself)."""
    if model in _GOVERNORS:
        return _GOVERNORS[model], ""
    path = getattr(model, "permission_path", None)
    if not path:
        raise LookupError(f"{model.__name__} is neither governing nor governed (no permission_path)")
    target: type[models.Model] = model
    for name in path.split("__"):
        related = target._meta.get_field(name).related_model
        if not isinstance(related, type):
            raise LookupError(f"{model.__name__}.permission_path {path!r}: {name!r} is not a foreign key")
        target = related
    if target not in _GOVERNORS:
        raise LookupError(f"{model.__name__}.permission_path {path!r} leads to {target.__name__}, which is not "
                          "registered as governing")
    return _GOVERNORS[target], path


def governor_of(obj_or_model) -> Governor:
    """The governor of a model or an instance."""
    model = obj_or_model if isinstance(obj_or_model, type) else type(obj_or_model)
    return governance(model)[0]


def is_superuser(user) -> bool:
    """A superuser may do everything; an inactive one nothing."""
    return bool(user and user.is_active and user.is_superuser)


def _may_hold_grants(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def allowed_query(governor: Governor, user, action: str) -> Q | None:
    """A filter of the governing rows ``user`` may ``action`` (subqueries, direct or through a team).

    None means every row (a superuser); an empty ``Q(pk__in=[])`` means none.
    """
    codenames = governor.allowing[check_action(governor, action)]
    if is_superuser(user):
        return None
    if not _may_hold_grants(user):
        return Q(pk__in=[])
    direct = governor.user_grants._default_manager.filter(user=user, permission__codename__in=codenames)
    by_team = governor.group_grants._default_manager.filter(group__user=user, permission__codename__in=codenames)
    return Q(pk__in=direct.values("content_object_id")) | Q(pk__in=by_team.values("content_object_id"))


def restrict(queryset: QuerySet, user, action: str = READ) -> QuerySet:
    """Filter ``queryset`` (of a governing or governed model) to the rows ``user`` may ``action``."""
    governor, path = governance(queryset.model)
    allowed = allowed_query(governor, user, action)
    if allowed is None:
        return queryset
    if not _may_hold_grants(user):
        return queryset.none()
    if not path:
        return queryset.filter(allowed)
    # The ids as a list, not a subquery: the planner cannot tell how selective a
    # subquery is, and for a user of one quiet application scans the whole table.
    allowed_ids = list(governor.model._default_manager.filter(allowed).values_list("pk", flat=True))
    return queryset.filter(**{f"{path}__in": allowed_ids})


def governing_pk(obj):
    """The primary key of the object that governs ``obj`` (``obj.pk`` for a governing object), read off attributes."""
    _, path = governance(type(obj))
    if not path:
        return obj.pk
    *through, last = path.split("__")
    for name in through:
        obj = getattr(obj, name)
    return getattr(obj, type(obj)._meta.get_field(last).attname)


def can(user, action: str, obj) -> bool:
    """Whether the user may ``action`` on one governing or governed object (one query, none for a superuser)."""
    governor = governor_of(obj)
    check_action(governor, action)
    if is_superuser(user):
        return True
    if not _may_hold_grants(user):
        return False
    return restrict(governor.model._default_manager.filter(pk=governing_pk(obj)), user, action).exists()


def allowed_ids(user, action: str, model: type[models.Model], ids) -> set:
    """Of the given ids of governing ``model`` rows, those the user may ``action`` — one query for a list page."""
    governor = governor_of(model)
    check_action(governor, action)
    ids = set(ids)
    if is_superuser(user) or not ids:
        return ids
    allowed = restrict(governor.model._default_manager.filter(pk__in=ids), user, action)
    return set(allowed.values_list("pk", flat=True))


def allowed_actions_by_id(user, model: type[models.Model], ids, actions: tuple[str, ...]) -> dict:
    """For each id of a governing row the user may read, the actions of ``actions`` allowed: one query per action."""
    ids = list(ids)
    allowed = {action: allowed_ids(user, action, model, ids) for action in actions}
    return {pk: [READ, *(action for action in actions if pk in allowed[action])] for pk in ids}


def require(user, action: str, obj, *, field: str = "") -> None:
    """Refuse (:class:`PermissionRefused`) a user who may not ``action`` on ``obj``."""
    if not can(user, action, obj):
        governor = governor_of(obj)
        owner = _governing_label(obj, governor)
        doing = "manage grants" if action == MANAGE else action
        raise PermissionRefused(f"You may not {doing} in {governor.model._meta.verbose_name} {owner}.", field=field)


def _governing_label(obj, governor: Governor) -> str:
    if isinstance(obj, governor.model):
        return str(obj)
    pk = governing_pk(obj)
    return str(governor.model._default_manager.filter(pk=pk).first() or pk)


def in_any_role(user, roles: list[str]) -> bool:
    """Whether the user belongs to one of the named roles (groups); a superuser always does."""
    if not roles or is_superuser(user):
        return True
    if user is None or not user.is_authenticated:
        return False
    return user.groups.filter(name__in=roles).exists()


class RestrictedQuerySet(models.QuerySet):
    """A queryset of a governing or governed model: ``restrict(user, action)`` keeps what the user may do."""

    def restrict(self, user, action: str = READ) -> QuerySet:
        """The rows ``user`` may ``action`` (read, write, execute, ...: the governing model's actions)."""
        return restrict(self, user, action)
