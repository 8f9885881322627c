"""What every app's live updates share: the Redis channel of a Channels group, one connection to PUBLISH on, and
the web process's one subscription to each group its sockets listen to (:class:`GroupFanout`).

The pub/sub channel layer (``channels_redis.pubsub``) sends a group message
as one Redis PUBLISH on the group's channel. Synchronous code (workers, service
functions after commit) publishes there directly, on a connection kept per
Redis URL, with the layer's own serializer, so consumers receive exactly what
``group_send`` would have sent. This module imports no app.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import Callable

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


class GroupFanout:
    """This event loop's one channel in each group that some of its sockets listen to.

    Joined through Channels one socket at a time, a group message reaches every
    socket's own channel: the layer puts it in each socket's queue, decodes it
    once per socket, and each socket's task wakes, dispatches it and encodes it
    again. With 500 sockets on one execution, that per-socket machinery cost
    more than writing the frames. Here a group's message is received once,
    encoded to JSON once, and handed to each member's ``deliver(message,
    text)`` — a plain call, in the order messages arrived (one thread, so the
    members of several groups see them in Redis's order). A member queues what
    it is handed and writes it from a task of its own, so a slow client holds
    up nobody else.
    """

    _by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupFanout] = weakref.WeakKeyDictionary()

    def __init__(self, layer):
        self.layer = layer
        self._members: dict[str, dict[object, None]] = {}
        self._readers: dict[str, asyncio.Task] = {}
        self._joined: dict[str, asyncio.Future] = {}

    @classmethod
    def of_running_loop(cls) -> GroupFanout | None:
        """The running loop's fan-out (the channel layer's loops are per loop too); None without a channel layer."""
        layer = get_channel_layer()
        if layer is None:
            return None
        loop = asyncio.get_running_loop()
        fanout = cls._by_loop.get(loop)
        if fanout is None or fanout.layer is not layer:  # a changed CHANNEL_LAYERS setting makes a new layer
            fanout = cls._by_loop[loop] = cls(layer)
        return fanout

    async def join(self, group: str, member) -> None:
        """Hand ``member`` every message of ``group`` from now on: returns once the group is subscribed to."""
        self._members.setdefault(group, {})[member] = None
        reader = self._readers.get(group)
        if reader is None or reader.done():
            self._joined[group] = asyncio.get_running_loop().create_future()
            self._readers[group] = asyncio.ensure_future(self._read(group, self._joined[group]))
        # Shielded: a socket that goes while waiting must not cancel the subscription the others wait for.
        await asyncio.shield(self._joined[group])

    def leave(self, group: str, member) -> None:
        """Stop handing ``member`` the group's messages; the group's channel goes with its last member."""
        members = self._members.get(group)
        if members is None:
            return
        members.pop(member, None)
        if not members:
            del self._members[group]
            self._joined.pop(group, None)
            reader = self._readers.pop(group, None)
            if reader is not None:
                reader.cancel()

    def members(self, group: str) -> int:
        return len(self._members.get(group, ()))

    async def _read(self, group: str, joined: asyncio.Future) -> None:
        channel = await self.layer.new_channel()
        try:
            await self.layer.group_add(group, channel)
            if not joined.done():
                joined.set_result(None)
            encode: Callable[[dict], str] = json.dumps
            while True:
                message = await self.layer.receive(channel)
                text = encode(message)
                for member in list(self._members.get(group, ())):
                    member.deliver(message, text)
        except BaseException as error:
            if not joined.done():
                joined.set_exception(error if isinstance(error, Exception) else asyncio.CancelledError())
            raise
        finally:
            await asyncio.shield(self.layer.group_discard(group, channel))
