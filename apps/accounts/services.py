"""Granting and revoking permissions on governing objects, and issuing API tokens: the only places that change them.

Every grant and revoke, from the API or the admin, goes through :func:`do_grant`
and :func:`do_revoke`: audited in the same transaction, and followed after
commit by a notice that makes open WebSockets re-check (and close) at once.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from apps.accounts.audit import Actor, record
from apps.accounts.events import publish_permissions_changed
from apps.accounts.models import ApiToken, AuditEvent
from apps.accounts.permissions import governor_of, require


def _describe(grantee) -> dict:
    kind = "group" if isinstance(grantee, Group) else "user"
    name = grantee.name if kind == "group" else grantee.username
    return {"grantee_type": kind, "grantee": name}


def _audited_application(obj):
    """The audit log files events by application: ``obj`` itself when it is one, else none."""
    application_model = AuditEvent._meta.get_field("application").related_model
    return obj if isinstance(obj, application_model) else None


def check_manage_grants(user, obj, *, field: str = "") -> None:
    """Refuse (PermissionRefused) a user who may not grant or revoke on ``obj`` (manage, for an application).

    ``user`` None is an operator identity (the command line, the system), which may.
    """
    if user is not None:
        require(user, governor_of(obj).manage_action, obj, field=field)


def _change_grant(verb: str, obj, grantee, action: str, actor: Actor | str) -> None:
    governor = governor_of(obj)
    permission = f"{governor.model._meta.app_label}.{governor.codename(action)}"
    with transaction.atomic():
        (assign_perm if verb == "granted" else remove_perm)(permission, grantee, obj)
        record(f"permission.{verb}", actor, application=_audited_application(obj),
               object_type=governor.model._meta.model_name, object_id=obj.pk,
               details={**_describe(grantee), "action": action})
        transaction.on_commit(partial(publish_permissions_changed, obj))


def do_grant(obj, grantee, action: str, *, actor: Actor | str) -> None:
    """Give a user or a group (a team) ``action`` on a governing object (read, write, execute, manage).

    The actor must be allowed to manage grants on it (PermissionRefused otherwise).
    """
    check_manage_grants(Actor.of(actor).user, obj)
    _change_grant("granted", obj, grantee, action, actor)


def do_grant_creator(obj, actions, *, actor: Actor) -> None:
    """Give the person who just created ``obj`` the ``actions`` on it: nobody may manage a new object yet."""
    for action in actions:
        _change_grant("granted", obj, actor.user, action, actor)


def do_revoke(obj, grantee, action: str, *, actor: Actor | str) -> None:
    """Take ``action`` on a governing object away from a user or a group (the actor must manage grants on it)."""
    check_manage_grants(Actor.of(actor).user, obj)
    _change_grant("revoked", obj, grantee, action, actor)


def do_create_token(user, name: str, *, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Issue a token for ``user``; returns the row and the token, which is never shown again."""
    if expires_at is not None and expires_at <= timezone.now():
        raise ValueError("expires_at must be in the future")
    token, prefix = ApiToken.generate()
    row = ApiToken.objects.create(user=user, name=name, key_prefix=prefix, key_hash=ApiToken.hash(token),
                                  expires_at=expires_at)
    return row, token


def do_revoke_token(token: ApiToken) -> None:
    """Revoke a token (the row stays, with the time, for the record)."""
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
