"""WebSocket subscriptions to live execution changes: of one execution, or of every execution of one application.

The protocol (server to browser only; whatever the browser sends is ignored):

- ``ws/executions/<execution id>/`` and ``ws/applications/<application name>/``;
- once subscribed, the server sends ``{"type": "hello", "sequence": n}``: the
  execution's latest event sequence, null when it has none yet and always null
  for an application (sequences are per execution). The page re-reads the
  state after every hello, then applies each event that follows;
- then every ``execution.changed`` message of apps/pipelines/events.py, as it
  was published;
- close codes: 4403 when the user is not logged in or loses read permission
  while subscribed; 4404 for an unknown execution, application or kind of
  subscription — and for one the user may not read, as the API answers 404,
  so that names cannot be probed. The socket is accepted before it is closed
  so that the browser sees the code.

Read permission is the API's: :func:`apps.accounts.permissions.can`. It is
checked on connect, and the answer is then kept per (user, application) and
shared by every socket of that user on that application in this web process
(:data:`ANSWERS`, apps/pipelines/live_access.py), so that many sockets make
one query, not one each. It is checked again:

- at once on a ``permissions.changed`` notice (apps/accounts/events.py): on
  the application's group after every grant and revoke, and on the user's
  own group after a team membership change, a deactivation, a superuser
  change or the user's deletion. The sockets that receive one notice share
  one query;
- otherwise only while events flow: an answer older than
  :data:`REFRESH_SECONDS` is refreshed in the background when an event
  arrives (so at most one query per user and application every
  REFRESH_SECONDS, none while nothing happens), and an event is never
  forwarded on an answer older than :data:`RECHECK_SECONDS`: it waits for a
  fresh one. That is the bound for a notice that never came (Redis
  unreachable when it was sent, or lost while the web process reconnected):
  a user who lost read permission receives no event handled more than
  RECHECK_SECONDS after the change (one query's time later at worst).

The sockets receive their groups' messages through the web process's
:class:`cdplatform.live.GroupFanout` (one subscription per group, each
message encoded once), not one Channels group membership each. Each socket
keeps what it was handed in order, notices and events alike, and forwards it
from a task of its own; one that falls :data:`MAX_PENDING` messages behind
(a client that stopped reading) is closed with 1013 ("try again later"), and
its page reconnects and re-reads the state.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model

from apps.accounts.events import permissions_group, user_permissions_group
from apps.accounts.permissions import READ, can
from apps.pipelines.enqueue import engine_queue
from apps.pipelines.events import application_group, current_sequence, execution_group
from apps.pipelines.live_access import SharedAnswers
from apps.pipelines.models import Application, Execution
from cdplatform.live import FORBIDDEN, NOT_FOUND, GroupFanout

# The longest a socket may go on receiving events after its user lost read
# permission without a permissions.changed notice reaching it.
RECHECK_SECONDS = 5.0
# An answer this old is refreshed in the background when an event arrives, so that events flowing steadily
# never wait for a re-check.
REFRESH_SECONDS = 4.0
# Messages a socket may have waiting to be written before it is closed as too slow (TRY_AGAIN_LATER).
MAX_PENDING = 1000
TRY_AGAIN_LATER = 1013


@dataclass(frozen=True)
class Subscription:
    """What a socket listens to, and the application whose read permission guards it."""

    group: str
    application_id: int
    application_name: str


def may_still_read(user_id: int, application_id: int) -> bool:
    """Whether the user, read again from the database, may still read the application."""
    user = get_user_model().objects.filter(pk=user_id).first()
    return user is not None and can(user, READ, Application(pk=application_id))


# This web process's answers of may_still_read, shared by its sockets.
ANSWERS = SharedAnswers(lambda user_id, application_id: may_still_read(user_id, application_id))


class LiveUpdatesConsumer(AsyncJsonWebsocketConsumer):
    """Subscribes a reader to one group of execution changes; subclasses say which (:meth:`find`)."""

    subscription: Subscription | None = None
    user_id: int | None = None
    # The socket's (user, application): what its read permission is kept under in ANSWERS.
    key: tuple[int, int] = (0, 0)
    closing = False
    holding = False
    fanout: GroupFanout | None = None
    forwarder: asyncio.Task | None = None
    wakeup: asyncio.Future | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.joined: list[str] = []
        # What the fan-out handed this socket, not yet forwarded: (message, its JSON text), in arrival order.
        self.pending: deque[tuple[dict, str]] = deque()

    def find(self) -> Subscription | None:
        """The subscription that the URL names, or None if its object does not exist (runs in a thread)."""
        raise NotImplementedError

    def current_sequence(self) -> int | None:
        """The sequence number of the latest event the subscription has seen (runs in a thread)."""
        return None

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            return await self.refuse(FORBIDDEN)
        started = time.monotonic()
        subscription, allowed = await database_sync_to_async(self._authorize)(user)
        if subscription is None or not allowed:
            return await self.refuse(NOT_FOUND)
        self.subscription, self.user_id, self.key = subscription, user.pk, (user.pk, subscription.application_id)
        self.fanout = GroupFanout.of_running_loop()
        for group in (permissions_group(Application(pk=subscription.application_id)),
                      user_permissions_group(user.pk), subscription.group):
            await self._join(group)
        # Read after joining: any later event has a greater sequence and reaches this socket.
        sequence = await sync_to_async(self.current_sequence, thread_sensitive=False)()
        # No message is forwarded before the hello, so the answer is held before any event needs it.
        ANSWERS.hold(self.key, True, started)
        self.holding = True
        await self.accept()
        await self.send_json({"type": "hello", "sequence": sequence})
        self.forwarder = asyncio.ensure_future(self._forward())

    def _authorize(self, user) -> tuple[Subscription | None, bool]:
        subscription = self.find()
        if subscription is None:
            return None, False
        return subscription, can(user, READ, Application(pk=subscription.application_id))

    async def _join(self, group: str) -> None:
        # Listed in self.joined, the group is left when the socket disconnects.
        if self.fanout is not None:
            self.joined.append(group)
            await self.fanout.join(group, self)

    async def refuse(self, code: int) -> None:
        """Accept, then close with ``code``: a socket closed during the handshake shows the browser no code."""
        self.closing = True
        await self.accept()
        await self.close(code=code)

    async def disconnect(self, code):
        for group in self.joined:
            self.fanout.leave(group, self)  # type: ignore[union-attr]  (joined only with a fan-out)
        self.joined = []
        if self.forwarder is not None:
            self.forwarder.cancel()
        if self.holding:
            self.holding = False
            ANSWERS.release(self.key)

    async def dispatch(self, message):
        """As Channels' own, less the hop to the sync thread it makes before every message to close stale
        database connections: made for every socket, one socket after another through that one thread, it
        held up the others. These handlers reach the database only through database_sync_to_async, which
        closes stale connections itself."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """The socket is one-way: frames from the browser are ignored."""

    def deliver(self, message: dict, text: str) -> None:
        """A message of one of the socket's groups, from the fan-out: kept, in order, for :meth:`_forward`."""
        if self.closing:
            return
        if len(self.pending) >= MAX_PENDING:
            self.pending.clear()
            self.closing = True
            asyncio.ensure_future(self.close(code=TRY_AGAIN_LATER))
            return
        self.pending.append((message, text))
        if self.wakeup is not None and not self.wakeup.done():
            self.wakeup.set_result(None)

    async def _forward(self) -> None:
        """Forward what :meth:`deliver` kept, one message at a time, until the socket closes."""
        loop = asyncio.get_running_loop()
        try:
            while not self.closing:
                if not self.pending:
                    self.wakeup = loop.create_future()
                    await self.wakeup
                    continue
                message, text = self.pending.popleft()
                kind = message.get("type")
                if kind == "execution.changed":
                    await self.forward_event(text)
                elif kind == "permissions.changed":
                    await self.recheck_after_notice(message)
        except OSError:
            pass  # the client went (uvicorn's ClientDisconnected); disconnect() cleans up

    async def forward_event(self, text: str) -> None:
        """Forward an ``execution.changed`` message if the user may still read (see the module docstring)."""
        now = time.monotonic()
        if await self.recheck(now - RECHECK_SECONDS, refresh_after=now - REFRESH_SECONDS):
            await self.send(text_data=text)

    async def recheck_after_notice(self, event: dict) -> None:
        """Permissions on the application, or the user's own, changed: re-check with a query made since."""
        await self.recheck(ANSWERS.first_seen(event.get("notice")))

    async def recheck(self, not_before: float, *, refresh_after: float | None = None) -> bool:
        """Whether the user may still read, by an answer at least as fresh as ``not_before``; if not, close
        the socket with 4403."""
        allowed = await ANSWERS.allowed(self.key, not_before=not_before, refresh_after=refresh_after)
        if not allowed and not self.closing:
            self.closing = True
            await self.close(code=FORBIDDEN)
        return allowed


class ExecutionConsumer(LiveUpdatesConsumer):
    """``ws/executions/<uuid>/``: the changes of one execution."""

    def find(self) -> Subscription | None:
        execution_id = self.scope["url_route"]["kwargs"]["execution_id"]
        row = Execution.objects.filter(pk=execution_id).values("application_id", "application__name").first()
        if row is None:
            return None
        return Subscription(execution_group(execution_id), row["application_id"], row["application__name"])

    def current_sequence(self) -> int | None:
        return current_sequence(engine_queue().connection, self.scope["url_route"]["kwargs"]["execution_id"])


class ApplicationConsumer(LiveUpdatesConsumer):
    """``ws/applications/<name>/``: the changes of every execution of one application."""

    def find(self) -> Subscription | None:
        name = self.scope["url_route"]["kwargs"]["application_name"]
        application_id = Application.objects.named(name).values_list("pk", flat=True).first()
        if application_id is None:
            return None
        return Subscription(application_group(name), application_id, name)
