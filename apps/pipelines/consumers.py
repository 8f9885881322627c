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
checked on connect, again at once on a ``permissions.changed`` notice (sent
after every grant and revoke, apps/accounts/events.py), and again before an
event is forwarded if the last check is older than :data:`RECHECK_SECONDS` —
which also catches changes that send no notice (team membership, a
deactivated user) and a notice missed while the socket was subscribing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.auth import get_user_model

from apps.accounts.events import permissions_group
from apps.accounts.permissions import READ, can
from apps.pipelines.enqueue import engine_queue
from apps.pipelines.events import application_group, current_sequence, execution_group
from apps.pipelines.models import Application, Execution
from cdplatform.live import FORBIDDEN, NOT_FOUND

# The longest a socket may go on receiving events after its user lost read
# permission without a permissions.changed notice reaching it.
RECHECK_SECONDS = 5.0


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


class LiveUpdatesConsumer(AsyncJsonWebsocketConsumer):
    """Subscribes a reader to one group of execution changes; subclasses say which (:meth:`find`)."""

    subscription: Subscription | None = None
    user_id: int | None = None
    checked_at = 0.0
    closing = False

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
        subscription, allowed = await database_sync_to_async(self._authorize)(user)
        if subscription is None or not allowed:
            return await self.refuse(NOT_FOUND)
        self.subscription, self.user_id, self.checked_at = subscription, user.pk, time.monotonic()
        await self._join(permissions_group(Application(pk=subscription.application_id)))
        await self._join(subscription.group)
        # Read after joining: any later event has a greater sequence and reaches this socket.
        sequence = await sync_to_async(self.current_sequence, thread_sensitive=False)()
        await self.accept()
        await self.send_json({"type": "hello", "sequence": sequence})

    def _authorize(self, user) -> tuple[Subscription | None, bool]:
        subscription = self.find()
        if subscription is None:
            return None, False
        return subscription, can(user, READ, Application(pk=subscription.application_id))

    async def _join(self, group: str) -> None:
        # Listed in self.groups, the group is left when the socket disconnects.
        self.groups.append(group)
        await self.channel_layer.group_add(group, self.channel_name)

    async def refuse(self, code: int) -> None:
        """Accept, then close with ``code``: a socket closed during the handshake shows the browser no code."""
        self.closing = True
        await self.accept()
        await self.close(code=code)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """The socket is one-way: frames from the browser are ignored."""

    async def execution_changed(self, event: dict) -> None:
        """Forward an ``execution.changed`` group message, re-checking permission if the last check is stale."""
        if self.closing:
            return
        if time.monotonic() - self.checked_at >= RECHECK_SECONDS and not await self.recheck():
            return
        await self.send_json(event)

    async def permissions_changed(self, event: dict) -> None:
        """Someone's permissions on the application changed: re-check this socket's user now."""
        if not self.closing:
            await self.recheck()

    async def recheck(self) -> bool:
        """Whether the user may still read; if not, close the socket with 4403."""
        allowed = await database_sync_to_async(may_still_read)(self.user_id, self.subscription.application_id)
        self.checked_at = time.monotonic()
        if not allowed:
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
