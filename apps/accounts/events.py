"""Tell live subscribers that permissions changed, so that they re-check them at once.

WebSocket consumers (e.g. apps/pipelines/consumers.py) listen on two groups
and close a socket whose user may no longer read what it shows:

- ``permissions.<app>.<model>.<pk>`` of the object that governs what they
  show: told after every grant and revoke on it (apps/accounts/services.py);
- ``permissions.auth.user.<pk>`` of the socket's user: told after whatever
  changes what that user may do everywhere, which no grant service sees
  because it happens in the stock admin, ``createsuperuser`` or the ORM —
  joining or leaving a team (either side of the membership, a team deleted),
  a change of ``is_active`` or ``is_superuser`` (any save of the user that
  may touch them), the user deleted. The receivers below are connected in
  apps/accounts/apps.py.

Each message is one PUBLISH (cdplatform/live.py), sent after the change
commits, with a ``notice`` id of its own: the sockets of one web process that
receive the same notice share one re-check.
"""

from __future__ import annotations

import logging
import uuid
from functools import partial

import redis
from django.contrib.auth import get_user_model
from django.db import transaction

from cdplatform.live import publish

logger = logging.getLogger(__name__)

# A save of the user that writes one of these (or every field) may change what the user may read.
USER_FIELDS_THAT_GOVERN = frozenset({"is_active", "is_superuser"})


def permissions_group(obj) -> str:
    """The group told of grant changes on the governing object ``obj`` (an instance, or one with just its pk)."""
    return f"permissions.{obj._meta.label_lower}.{obj.pk}"


def user_permissions_group(user_pk) -> str:
    """The group told of changes to what the user ``user_pk`` may do everywhere (teams, active, superuser)."""
    return permissions_group(get_user_model()(pk=user_pk))


def publish_permissions_changed(obj) -> None:
    """Send ``permissions.changed`` to the object's subscribers; call it after the change commits.

    Best effort: with Redis unreachable the change still stands, and an open
    socket still loses access at the consumer's next periodic re-check.
    """
    label = f"{obj._meta.label_lower}.{obj.pk}"
    try:
        publish(permissions_group(obj), {"type": "permissions.changed", "object": label, "notice": uuid.uuid4().hex})
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        logger.warning("Redis unreachable: open sockets of %s re-check permissions later", label)


def publish_user_permissions_changed_on_commit(user_pks) -> None:
    """After the current transaction commits (at once outside one), tell each user's sockets to re-check."""
    user_model = get_user_model()
    for pk in sorted(set(user_pks)):
        # The pk is read now: a deleted user's instance has lost it by the time the transaction commits.
        transaction.on_commit(partial(publish_permissions_changed, user_model(pk=pk)))


# --- Receivers (connected in apps.py) ---------------------------------------------------------------


def user_saved(sender, instance, created, update_fields=None, **kwargs) -> None:
    """A saved user may have been deactivated or lost superuser (a sign-in's ``last_login`` save is skipped)."""
    if created or (update_fields is not None and not USER_FIELDS_THAT_GOVERN & set(update_fields)):
        return
    publish_user_permissions_changed_on_commit([instance.pk])


def user_deleted(sender, instance, **kwargs) -> None:
    """A deleted user may read nothing: their open sockets close."""
    publish_user_permissions_changed_on_commit([instance.pk])


def membership_changed(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """Users joined or left teams (``user.groups`` or ``group.user_set``): what the teams grant changed for them."""
    if not reverse:  # instance is the user
        if action in ("post_add", "post_remove", "post_clear"):
            publish_user_permissions_changed_on_commit([instance.pk])
    elif action == "pre_clear":  # instance is the team; after the clear its members are no longer known
        publish_user_permissions_changed_on_commit(instance.user_set.values_list("pk", flat=True))
    elif action in ("post_add", "post_remove"):
        publish_user_permissions_changed_on_commit(pk_set or ())


def team_deleted(sender, instance, **kwargs) -> None:
    """A deleted team takes its members' memberships and its grants with it (no m2m signal is sent for them)."""
    publish_user_permissions_changed_on_commit(instance.user_set.values_list("pk", flat=True))
