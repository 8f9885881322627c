"""What every app's live updates share: the Redis channel of a Channels group, and one connection to PUBLISH on.

The pub/sub channel layer (``channels_redis.pubsub``) sends a group message
as one Redis PUBLISH on the group's channel. Synchronous code (workers, service
functions after commit) publishes there directly, on a connection kept per
Redis URL, with the layer's own serializer, so consumers receive exactly what
``group_send`` would have sent. This module imports no app.
"""

from __future__ import annotations

import redis
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

# WebSocket close codes every live consumer uses: not allowed, and no such thing (or not yours to know of).
FORBIDDEN = 4403
NOT_FOUND = 4404

_connections: dict[str, redis.Redis] = {}


def group_channel(group: str) -> str:
    """The Redis pub/sub channel that the pub/sub channel layer uses for a group."""
    prefix = settings.CHANNEL_LAYERS["default"].get("CONFIG", {}).get("prefix", "asgi")
    return f"{prefix}__group__{group}"


def connection() -> redis.Redis:
    """A Redis client for the channel layer's Redis, one per URL per process (its pool is reused)."""
    url = settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0]
    client = _connections.get(url)
    if client is None:
        client = _connections[url] = redis.Redis.from_url(url)
    return client


def publish(group: str, message: dict) -> bool:
    """PUBLISH ``message`` to a group's subscribers; False (nothing sent) when no channel layer is configured."""
    layer = get_channel_layer()
    if layer is None:
        return False
    connection().publish(group_channel(group), layer.serialize(message))
    return True


class UnknownSubscriptionConsumer(AsyncWebsocketConsumer):
    """Any path no app routes: refused with 4404 rather than an unrouted error (deny by default)."""

    async def connect(self):
        await self.accept()
        await self.close(code=NOT_FOUND)
