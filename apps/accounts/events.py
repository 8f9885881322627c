"""Tell live subscribers that permissions on a governing object changed, so that they re-check them at once.

WebSocket consumers (e.g. apps/pipelines/consumers.py) listen on the
``permissions.<app>.<model>.<pk>`` group of the object that governs what they
show, and close a socket whose user may no longer read it. The message is one
PUBLISH (cdplatform/live.py), sent after the change commits.
"""

from __future__ import annotations

import logging

import redis

from cdplatform.live import publish

logger = logging.getLogger(__name__)


def permissions_group(obj) -> str:
    """The group told of grant changes on the governing object ``obj`` (an instance, or one with just its pk)."""
    return f"permissions.{obj._meta.label_lower}.{obj.pk}"


def publish_permissions_changed(obj) -> None:
    """Send ``permissions.changed`` to the object's subscribers; call it after the change commits.

    Best effort: with Redis unreachable the grant or revoke still stands, and
    an open socket still loses access at the consumer's next periodic re-check.
    """
    try:
        publish(permissions_group(obj), {"type": "permissions.changed", "object": f"{obj._meta.label_lower}.{obj.pk}"})
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        logger.warning("Redis unreachable: open sockets of %s re-check permissions later", obj)
