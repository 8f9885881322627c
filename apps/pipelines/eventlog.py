"""The durable event log: written in the transaction of each change, read by consumers with their own cursor.

Writing. Every status change of an execution or a stage, every judgment and
every person's action (cancel, pause, resume, restart, skip) adds an
:class:`~apps.pipelines.models.Event` row in the transaction that makes the
change, so the log holds exactly what committed: a rolled-back change leaves
no event, and no committed change lacks one. The engine's ``Dispatch``
collects a transaction's events in an :class:`EventBuffer`. On PostgreSQL
the events buffered so far go in the same statement as the UPDATE of the
next execution or stage the engine saves (a data-modifying ``WITH``), so a
step sends no INSERT of its own; what is left is written with one
multi-row INSERT just before the transaction commits.
Kinds: ``execution.status`` and ``stage.status`` (``status`` and
``previous_status``), ``stage.judged`` (payload: decision, input),
``execution.canceled`` (payload: reason), ``execution.paused``,
``execution.resumed``, ``stage.restarted`` (payload: stage),
``stage.wait_skipped``, ``stage.window_skipped`` — the last six named as in
the audit log, with the ``actor``.
Status transitions come from the rows themselves (``fields.StatusField``
remembers each move), so a stage that goes NOT_STARTED → RUNNING → SUCCEEDED
in one transaction yields both transitions, in order. The live WebSocket path
(``events.py``, a PUBLISH after commit) is unchanged: the log is an addition.

Reading in commit order. A reader keeps a cursor and asks for what comes
after it. With ids alone that is wrong on PostgreSQL: ids are taken at
INSERT, but transactions commit in any order, so transaction A may insert
id 10, B id 11, B commit, a reader move past 11, and then A commit — id 10
is never read. Each row therefore stores the id of the transaction that wrote
it (``xact``, ``pg_current_xact_id()``, a column default) and a reader only
takes rows whose transaction id is below ``pg_snapshot_xmin(pg_current_snapshot())``:
every transaction below the snapshot's xmin has committed or aborted, so the
set of such rows can no longer grow below that point, and any transaction
that writes later gets a larger id than the xmin we read with. Rows are read
in (xact, id) order and the cursor is that pair. The price is latency, not
correctness: a long-running writing transaction anywhere on the server (in
any of its databases: transaction ids are server-wide) holds xmin back, and
every reader waits for it to end before reading past it.
On SQLite writers are serialized (the settings open every transaction
IMMEDIATE) and ids are AUTOINCREMENT, so id order is commit order; ``xact``
is 0 there and the same (xact, id) query reads in id order.

Consumers. An app registers a consumer by name (:func:`register_consumer`,
typically in ``AppConfig.ready()``) with a handler that receives a batch of
events in log order. Delivery is at least once, and exactly once for what the
handler writes to this database:

* the handler runs inside the transaction that moves the consumer's cursor
  (an :class:`~apps.pipelines.models.EventCursor` row, locked with
  ``SELECT ... FOR UPDATE SKIP LOCKED``, so one process at a time serves a
  consumer and the others skip it instead of waiting). Its database writes
  commit with the cursor or not at all: a process killed mid-batch leaves
  neither, and the batch is delivered again from the same cursor;
* anything the handler does outside the database (a message sent) may
  happen again after such a crash: use ``event.id`` as the idempotency key.
  Keep handlers quick — a slow call belongs in a job the handler creates —
  since a long transaction delays every reader (see above);
* a handler that raises is rolled back, its error is kept on its cursor row
  and it is tried again from the same cursor after a back-off (1 s doubling
  up to 5 min); other consumers go on meanwhile. An event a handler can never
  take blocks that consumer until the handler is fixed: nothing is skipped.

The workers drive every consumer through the periodic job
``pipelines.deliver-events`` (each second, for at most
``CONSUMER_BUDGET_SECONDS``), so an event reaches its consumers about one to
two seconds after it commits. A new consumer starts at the oldest event kept.

Pruning. ``pipelines.prune-events`` (hourly) deletes events older than
``EVENT_RETENTION_DAYS``, in bounded batches from the start of the log (see
:func:`prune_events`), but never one that a registered consumer has not
read past: a stuck consumer keeps the log growing (its cursor row says why)
rather than losing events.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, models, transaction
from django.db.models import Q
from django.db.models.expressions import RawSQL
from django.utils import timezone

from apps.pipelines.fields import next_sequence, peek_moves, take_moves
from apps.pipelines.models import Event, EventCursor, Execution, StageExecution

logger = logging.getLogger(__name__)

# The oldest transaction id that may still be running (PostgreSQL): rows written below it are final.
SNAPSHOT_XMIN_SQL = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
# How long one tick of the workers may spend delivering events, all consumers together.
CONSUMER_BUDGET_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 300
# Pruning deletes at most PRUNE_BATCH * PRUNE_MAX_BATCHES events per run; the next run goes on.
PRUNE_BATCH = 2000
PRUNE_MAX_BATCHES = 20


# --- Writing -------------------------------------------------------------------------------------

# The columns an INSERT writes, in order: every one but the id and the transaction id (set by the database).
COLUMNS = (
    "kind", "created_at", "execution_id", "application_id", "application_name", "pipeline_id", "pipeline_name",
    "stage_id", "stage_ref_id", "stage_name", "stage_type", "status", "previous_status", "actor", "payload",
)


def new_event(
    kind: str,
    execution: Execution,
    stage: StageExecution | None = None,
    *,
    status: str = "",
    previous_status: str = "",
    actor: str = "",
    payload: dict | None = None,
    at: datetime | None = None,
) -> Event:
    """An unsaved event about ``execution`` (its application loaded) and optionally one of its stages."""
    values = _event_values(kind, execution, stage, status, previous_status, actor, payload, at)
    return Event(**dict(zip(COLUMNS, values, strict=True)))


def _event_values(
    kind: str, execution: Execution, stage: StageExecution | None, status: str = "", previous_status: str = "",
    actor: str = "", payload: dict | None = None, at: datetime | None = None,
) -> tuple:
    """An event's column values, in ``COLUMNS`` order: the engine writes them without building an Event."""
    return (
        kind, at or datetime.now(UTC), execution.id, execution.application_id, execution.application.name,
        execution.pipeline_id, execution.name,
        stage.id if stage is not None else None,
        stage.ref_id if stage is not None else "",
        stage.name if stage is not None else "",
        stage.type if stage is not None else "",
        status, previous_status, actor, payload or {},
    )


class EventBuffer:
    """The events of one transaction: the status moves of the rows it touched, and the actions noted.

    ``track`` the executions and stages a transaction changes, ``note`` what
    a person did, and call ``write`` inside the transaction, before it
    commits: one INSERT for all of them, in the order they happened.

    :meth:`save` saves a row with the events buffered so far in the same
    statement (PostgreSQL), so a step whose writes all go through it sends
    no INSERT of its own.
    """

    __slots__ = ("_tracked", "_noted", "_since")

    def __init__(self) -> None:
        self._tracked: dict[int, tuple[Execution | StageExecution, Execution]] = {}
        self._noted: list[tuple[int, tuple]] = []
        # Every move or note numbered after this one is in the buffer when the count says so (see save()).
        self._since = next_sequence()

    def track(self, execution: Execution, stage: StageExecution | None = None) -> None:
        """Record the status moves of ``execution`` (and ``stage``) when the buffer is written."""
        self._tracked[id(execution)] = (execution, execution)
        if stage is not None:
            self._tracked[id(stage)] = (stage, execution)

    def note(self, kind: str, execution: Execution, stage: StageExecution | None = None, **details) -> None:
        """Add an event for an action (``actor``, ``payload``, ...); it takes its place among the moves."""
        self._noted.append((next_sequence(), _event_values(kind, execution, stage, **details)))

    def write(self) -> int:
        """Insert the buffered events with one INSERT (none when there are none); returns how many."""
        rows = self._take()
        if rows:
            _insert_rows(rows)
        return len(rows)

    def save(self, row: Execution | StageExecution, fields: list[str]) -> None:
        """``row.save(update_fields=fields)``; on PostgreSQL the events buffered so far go in the same statement.

        The UPDATE becomes ``WITH logged AS (INSERT INTO event ...) UPDATE ...``:
        one round trip instead of two, in the same transaction as before. The
        log must keep the order things happened in, so this is done only when
        every status move and note numbered since the last write is in the
        buffer (a move on a row not tracked yet would otherwise be written
        after later ones); else the events wait for :meth:`write`. Track the
        row first for its own moves to go with it.
        """
        if connection.vendor != "postgresql" or not self._holds_every_move():
            row.save(update_fields=fields)
            return
        rows = self._take()
        if not rows:
            row.save(update_fields=fields)
            return
        prefix, placeholders = _insert_sql(connection.vendor)
        with_events = _WithEvents(f"{prefix} {', '.join([placeholders] * len(rows))}", _insert_values(rows))
        with connection.execute_wrapper(with_events):
            row.save(update_fields=fields)
        if not with_events.used:  # the save sent no UPDATE (nothing to save)
            _insert_rows(rows)

    def _holds_every_move(self) -> bool:
        """Whether every move and note numbered since the last write is buffered (this thread's only, then)."""
        now = next_sequence()
        held = sum(1 for sequence, _ in self._noted if sequence > self._since)
        for row, _ in self._tracked.values():
            held += sum(1 for move in peek_moves(row) if move.sequence > self._since)
        complete = held == now - self._since - 1
        if complete:
            self._since = now
        return complete

    def _take(self) -> list[tuple]:
        """The buffered events' values in the order they happened; forgets them."""
        ordered = list(self._noted)
        for row, execution in self._tracked.values():
            stage = row if isinstance(row, StageExecution) else None
            kind = "stage.status" if stage is not None else "execution.status"
            for move in take_moves(row):
                values = _event_values(kind, execution, stage, move.status, move.previous, at=move.at)
                ordered.append((move.sequence, values))
        self._noted.clear()
        self._tracked.clear()
        ordered.sort(key=lambda pair: pair[0])
        return [values for _, values in ordered]


class _WithEvents:
    """An execute wrapper putting an INSERT of events in front of the next UPDATE, as a data-modifying WITH."""

    __slots__ = ("sql", "params", "used")

    def __init__(self, sql: str, params: list) -> None:
        self.sql, self.params, self.used = sql, params, False

    def __call__(self, execute, sql, params, many, context):
        if self.used or many or not sql.startswith("UPDATE "):
            return execute(sql, params, many, context)
        self.used = True
        return execute(f"WITH logged_events AS ({self.sql}) {sql}", [*self.params, *(params or ())], many, context)


def insert_events(events: list[Event]) -> None:
    """One multi-row INSERT of unsaved events, asking nothing back."""
    _insert_rows([tuple(getattr(event, name) for name in COLUMNS) for event in events])


def _insert_rows(rows: list[tuple]) -> None:
    """One multi-row INSERT of events' values (``COLUMNS`` order), asking nothing back.

    ``bulk_create`` would do the same with ``RETURNING`` the ids and the
    database-set ``xact`` and copy them onto each object; the engine writes
    events in every step's transaction and never reads them back, so that
    work (about half the cost of the write), and building Event instances,
    is left out.
    """
    prefix, placeholders = _insert_sql(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(f"{prefix} {', '.join([placeholders] * len(rows))}", _insert_values(rows))


def _insert_values(rows: list[tuple]) -> list:
    """The rows' values as the database takes them: text and numbers as they are, the rest through their field."""
    prepared = _prepared_fields(connection.vendor)
    values = []
    for row in rows:
        for value, field in zip(row, prepared, strict=True):
            values.append(value if field is None else field.get_db_prep_save(value, connection))
    return values


@functools.cache
def _prepared_fields(vendor: str) -> tuple:
    """Per column, the field whose ``get_db_prep_save`` converts its values, or None for text and integers."""
    return tuple(
        None if isinstance(field, models.CharField | models.IntegerField) else field for field in _insert_fields()
    )


@functools.cache
def _insert_fields() -> tuple:
    """The fields of ``COLUMNS``, which must be every column but the id and the transaction id."""
    fields = tuple(Event._meta.get_field(name) for name in COLUMNS)
    others = {field.name for field in Event._meta.concrete_fields} - set(COLUMNS)
    if others != {"id", "xact"}:
        raise ImproperlyConfigured(f"eventlog.COLUMNS does not match the Event model: {sorted(others)}")
    return fields


@functools.cache
def _insert_sql(vendor: str) -> tuple[str, str]:
    """The INSERT's head and one row's placeholders, built once per database vendor (every step writes events)."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in _insert_fields())
    row = "(" + ", ".join(["%s"] * len(_insert_fields())) + ")"
    return f"INSERT INTO {quote(Event._meta.db_table)} ({columns}) VALUES", row


def record_action(kind: str, execution: Execution, stage: StageExecution | None = None, **details) -> None:
    """Write one action's event now, in the caller's transaction (outside the engine's dispatch)."""
    buffer = EventBuffer()
    buffer.note(kind, execution, stage, **details)
    buffer.write()


# --- Reading -------------------------------------------------------------------------------------


def read_after(xact: int, event_id: int, limit: int) -> list[Event]:
    """Up to ``limit`` final events after the cursor (xact, event_id), in log order (see the module docstring)."""
    events = Event.objects.filter(xact__gte=xact).filter(Q(xact__gt=xact) | Q(id__gt=event_id))
    if connection.vendor == "postgresql":
        events = events.filter(xact__lt=RawSQL(SNAPSHOT_XMIN_SQL, ()))
    return list(events.order_by("xact", "id")[:limit])


# --- Consumers -----------------------------------------------------------------------------------

Handler = Callable[[list[Event]], None]


@dataclass(frozen=True)
class Consumer:
    """A named reader of the event log: ``handler(events)`` gets each batch, in log order, at least once."""

    name: str
    handler: Handler
    batch_size: int = 100


CONSUMERS: dict[str, Consumer] = {}


def register_consumer(name: str, handler: Handler, *, batch_size: int = 100) -> Consumer:
    """Register a consumer of the event log (from an app's ``ready()``); the same registration twice is harmless.

    The handler runs in the transaction that advances the consumer's cursor:
    what it writes to the database is kept exactly once; what it does
    elsewhere may be repeated after a crash, keyed by ``event.id``.
    """
    consumer = Consumer(name, handler, batch_size)
    existing = CONSUMERS.get(name)
    if existing is not None and existing != consumer:
        raise ImproperlyConfigured(f"event consumer {name!r} is already registered with another handler")
    if not 1 <= batch_size <= 10_000:
        raise ImproperlyConfigured(f"event consumer {name!r}: batch_size must be between 1 and 10000")
    CONSUMERS[name] = consumer
    return consumer


def consume(name: str) -> int:
    """Deliver the next batch to one consumer; returns how many events it took.

    0 when it is caught up, backing off after a failure, failed now, or being
    served by another process right now.
    """
    consumer = CONSUMERS[name]
    with transaction.atomic():
        cursor = _lock_cursor(name)
        if cursor is None or (cursor.retry_at is not None and cursor.retry_at > timezone.now()):
            return 0
        batch = read_after(cursor.xact, cursor.event_id, consumer.batch_size)
        if not batch:
            return 0
        try:
            with transaction.atomic():
                consumer.handler(batch)
        except Exception as error:  # noqa: BLE001  (a failing consumer is retried later; the others go on)
            _record_failure(cursor, error)
            return 0
        cursor.xact, cursor.event_id = batch[-1].xact, batch[-1].id
        cursor.delivered += len(batch)
        cursor.failures, cursor.retry_at, cursor.last_error = 0, None, ""
        cursor.save()
    return len(batch)


def _lock_cursor(name: str) -> EventCursor | None:
    """The consumer's cursor row, locked; None when another process holds it (it is not waited for)."""
    locked = EventCursor.objects.select_for_update(skip_locked=True).filter(name=name).first()
    if locked is None and not EventCursor.objects.filter(name=name).exists():
        _ensure_cursors([name])
        locked = EventCursor.objects.select_for_update(skip_locked=True).filter(name=name).first()
    return locked


def _ensure_cursors(names: list[str]) -> None:
    """Create the missing cursor rows; a new consumer starts at the oldest event kept."""
    EventCursor.objects.bulk_create([EventCursor(name=name) for name in names], ignore_conflicts=True)


def _record_failure(cursor: EventCursor, error: Exception) -> None:
    logger.exception("event consumer %s failed at (%s, %s)", cursor.name, cursor.xact, cursor.event_id)
    cursor.failures += 1
    backoff = min(2 ** (cursor.failures - 1), MAX_BACKOFF_SECONDS)
    cursor.retry_at = timezone.now() + timedelta(seconds=backoff)
    cursor.last_error = f"{type(error).__name__}: {error}"[:2000]
    cursor.save(update_fields=["failures", "retry_at", "last_error", "updated_at"])


def run_consumers(budget_seconds: float = CONSUMER_BUDGET_SECONDS) -> int:
    """Deliver to every registered consumer, a batch each in turn, until all are caught up or time is up.

    The periodic job the workers run each second; returns how many events were delivered.
    """
    if not CONSUMERS:
        return 0
    deadline = time.monotonic() + budget_seconds
    pending = list(CONSUMERS)
    delivered = 0
    while pending and time.monotonic() < deadline:
        for name in list(pending):
            taken = consume(name)
            delivered += taken
            if taken < CONSUMERS[name].batch_size:
                pending.remove(name)  # caught up (or not its turn): next tick
            if time.monotonic() >= deadline:
                break
    return delivered


# --- Pruning -------------------------------------------------------------------------------------


def prune_events(now: datetime | None = None) -> int:
    """Delete events older than ``EVENT_RETENTION_DAYS`` that every registered consumer has read past.

    Walks the log from its start in the readers' order (its only index),
    which follows time closely: it stops at the first batch that reaches an
    event young enough to keep, so an old event written just after a young
    one waits for a later run. Bounded: at most PRUNE_BATCH *
    PRUNE_MAX_BATCHES rows per call. Returns how many were deleted.
    """
    cutoff = (now or timezone.now()) - timedelta(days=settings.EVENT_RETENTION_DAYS)
    log = Event.objects.order_by("xact", "id")
    if CONSUMERS:
        _ensure_cursors(list(CONSUMERS))
        slowest = EventCursor.objects.filter(name__in=CONSUMERS).order_by("xact", "event_id").first()
        assert slowest is not None  # every registered consumer has a cursor row now
        log = log.filter(Q(xact__lt=slowest.xact) | Q(xact=slowest.xact, id__lte=slowest.event_id))
    deleted = 0
    for _ in range(PRUNE_MAX_BATCHES):
        batch = list(log.values_list("id", "created_at")[:PRUNE_BATCH])
        old = [event_id for event_id, created_at in batch if created_at < cutoff]
        if old:
            deleted += Event.objects.filter(id__in=old).delete()[0]
        if len(old) < PRUNE_BATCH:
            break  # reached an event to keep, or the end
    return deleted
