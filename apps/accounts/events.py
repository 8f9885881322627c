"""Tell live subscribers that an application's permissions changed, so that they re-check them at once.

WebSocket consumers (apps/pipelines/consumers.py) listen on the application's
``permissions.<name>`` group and close a socket whose user may no longer read
the application. The message is one PUBLISH on the pub/sub channel layer's
group channel, as in apps/pipelines/events.py, sent after the change commits.
"""

from __future__ import annotations

import logging

import redis
from channels.layers import get_channel_layer

from apps.pipelines.enqueue import engine_queue
from apps.pipelines.events import group_channel

logger = logging.getLogger(__name__)


def permissions_group(application_name: str) -> str:
    return f"permissions.{application_name}"


def publish_permissions_changed(application_name: str) -> None:
    """Send ``permissions.changed`` to the application's subscribers; call it after the change commits.

    Best effort: with Redis unreachable the grant or revoke still stands, and
    an open socket still loses access at the consumer's next periodic re-check.
    """
    layer = get_channel_layer()
    if layer is None:
        return
    payload = layer.serialize({"type": "permissions.changed", "application": application_name})
    try:
        engine_queue().connection.publish(group_channel(permissions_group(application_name)), payload)
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        logger.warning("Redis unreachable: open sockets of %s re-check permissions later", application_name)
