"""Granting and revoking application permissions, and issuing API tokens: the only places that change them."""

from __future__ import annotations

from datetime import datetime
from functools import partial

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from apps.accounts.audit import Actor, record
from apps.accounts.events import publish_permissions_changed
from apps.accounts.models import ApiToken
from apps.accounts.permissions import ACTIONS, PERMISSION_FOR


def _check_action(action: str) -> str:
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    return PERMISSION_FOR[action]


def _describe(grantee) -> dict:
    kind = "group" if isinstance(grantee, Group) else "user"
    name = grantee.name if kind == "group" else grantee.username
    return {"grantee_type": kind, "grantee": name}


def do_grant(application, grantee, action: str, *, actor: Actor | str) -> None:
    """Give a user or a group (a team) ``action`` (read, write, execute) on an application."""
    codename = _check_action(action)
    with transaction.atomic():
        assign_perm(f"pipelines.{codename}", grantee, application)
        record("permission.granted", actor, application=application, object_type="application",
               object_id=application.pk, details={**_describe(grantee), "action": action})
        transaction.on_commit(partial(publish_permissions_changed, application.name))


def do_revoke(application, grantee, action: str, *, actor: Actor | str) -> None:
    """Take ``action`` on an application away from a user or a group."""
    codename = _check_action(action)
    with transaction.atomic():
        remove_perm(f"pipelines.{codename}", grantee, application)
        record("permission.revoked", actor, application=application, object_type="application",
               object_id=application.pk, details={**_describe(grantee), "action": action})
        transaction.on_commit(partial(publish_permissions_changed, application.name))


def do_create_token(user, name: str, *, expires_at: datetime | None = None) -> tuple[ApiToken, str]:
    """Issue a token for ``user``; returns the row and the token, which is never shown again."""
    if expires_at is not None and expires_at <= timezone.now():
        raise ValueError("expires_at must be in the future")
    token, prefix = ApiToken.generate()
    row = ApiToken.objects.create(user=user, name=name, key_prefix=prefix, key_hash=ApiToken.hash(token),
                                  expires_at=expires_at)
    return row, token


def do_revoke_token(token: ApiToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
