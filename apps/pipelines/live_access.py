"""Whether a user may still read an application, answered once for every live socket of this web process.

The consumers of apps/pipelines/consumers.py re-check read permission on a
notice and periodically. Asked socket by socket, 500 sockets of one page's
users made 500 queries at the same moment, run one after another in the
single thread that runs sync code. Here the answer is kept per (user,
application) and shared:

- an answer records when its query *started*: it is at least that fresh;
- a caller says how fresh an answer it needs (``not_before``, a
  ``time.monotonic()`` value). A kept answer that fresh is returned without a
  query; otherwise one query is started, and every caller that needs no
  fresher answer meanwhile waits for that same query: N sockets asking
  together make one query;
- a caller may also say when it would like a fresher answer
  (``refresh_after``): the kept answer is returned at once and one query
  starts in the background, so that a steady stream of events never waits
  for a periodic re-check;
- an answer is kept only while some socket holds its key (:meth:`hold`,
  :meth:`release`), so memory follows the open sockets.

Everything here runs on the web process's event loop, which is one thread,
so the dictionaries need no lock; the query runs in database_sync_to_async's
thread. A query that fails fails every caller waiting for it and is not kept:
the next caller starts another.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from channels.db import database_sync_to_async

Key = tuple[int, int]  # (user id, application id)

# How many notice ids (apps/accounts/events.py) are remembered with the moment this process first saw them.
NOTICES_KEPT = 1024


@dataclass(frozen=True)
class _Answer:
    started: float
    allowed: bool


@dataclass(frozen=True)
class _Query:
    started: float
    task: asyncio.Task


class SharedAnswers:
    """Answers of ``check(user_id, application_id)`` (a sync function that queries), shared per key."""

    def __init__(self, check: Callable[[int, int], bool]):
        self._check = check
        self._answers: dict[Key, _Answer] = {}
        self._queries: dict[Key, _Query] = {}
        self._holders: Counter[Key] = Counter()
        self._notices: OrderedDict[str, float] = OrderedDict()
        self.queries_started = 0  # for the tests and the bench: how many queries this process made

    def hold(self, key: Key, allowed: bool, started: float) -> None:
        """A socket subscribes under ``key``, having been answered ``allowed`` by a query started at ``started``."""
        self._holders[key] += 1
        self._keep(key, allowed, started)

    def release(self, key: Key) -> None:
        """A socket that held ``key`` has gone; the answer is forgotten with the last one."""
        self._holders[key] -= 1
        if self._holders[key] <= 0:
            del self._holders[key]
            self._answers.pop(key, None)

    def first_seen(self, notice: str | None) -> float:
        """When this process first saw a notice: the answers it needs are those of queries started since."""
        now = time.monotonic()
        if not notice:
            return now  # a notice without an id cannot be shared: every socket re-checks
        seen = self._notices.setdefault(notice, now)
        while len(self._notices) > NOTICES_KEPT:
            self._notices.popitem(last=False)
        return seen

    async def allowed(self, key: Key, *, not_before: float, refresh_after: float | None = None) -> bool:
        """The answer for ``key`` from a query started at ``not_before`` or later (waiting for one if need be)."""
        answer = self._answers.get(key)
        if answer is not None and answer.started >= not_before:
            if refresh_after is not None and answer.started < refresh_after:
                self._query(key, refresh_after)
            return answer.allowed
        if answer is not None:
            # Too old for this caller, so too old for any other socket's next event as well.
            del self._answers[key]
        # Shielded: a socket that disconnects while waiting must not cancel the query the others wait for.
        return await asyncio.shield(self._query(key, not_before))

    def _query(self, key: Key, not_before: float) -> asyncio.Task:
        running = self._queries.get(key)
        if running is not None and running.started >= not_before:
            return running.task
        started = time.monotonic()
        task = asyncio.ensure_future(database_sync_to_async(self._check)(*key))
        self.queries_started += 1
        self._queries[key] = _Query(started, task)
        task.add_done_callback(partial(self._finished, key, started))
        return task

    def _finished(self, key: Key, started: float, task: asyncio.Task) -> None:
        running = self._queries.get(key)
        if running is not None and running.task is task:
            del self._queries[key]
        if task.cancelled() or task.exception() is not None:
            return  # the exception is retrieved here too, so that no "never retrieved" warning is logged
        self._keep(key, task.result(), started)

    def _keep(self, key: Key, allowed: bool, started: float) -> None:
        if key not in self._holders:
            return
        current = self._answers.get(key)
        if current is None or current.started <= started:
            self._answers[key] = _Answer(started, allowed)
