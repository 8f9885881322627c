"""Model fields of the engine's rows that the event log relies on.

``StatusField`` is the ``status`` column of executions and stages. Setting it
on an instance that is already loaded remembers the move (previous status,
new status, time, and a process-wide sequence number), so the engine's
``Dispatch`` can write one event per transition — in the order they
happened, even when a stage goes NOT_STARTED → RUNNING → SUCCEEDED inside
one transaction — without every code path that changes a status having to
report it. Loading a row is not a move: only assignments after the instance
was built count.

``CurrentTransactionId`` is the database-side default of an event's ``xact``
column: the id of the transaction that inserted the row on PostgreSQL, and 0
on SQLite, whose writers are serialized (see ``apps/pipelines/eventlog.py``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import models
from django.db.models.query_utils import DeferredAttribute
from django.utils.deconstruct import deconstructible

# Where an instance keeps its status moves (in its __dict__, beside the field's value).
MOVES_ATTRIBUTE = "_status_moves"
# Orders moves across instances: a stage's and its execution's moves interleave as they happened.
_sequence = itertools.count()


@dataclass(frozen=True)
class StatusMove:
    """One change of an instance's status: from what, to what, when, and in which order overall."""

    sequence: int
    previous: str
    status: str
    at: datetime


class StatusAttribute(DeferredAttribute):
    """The ``status`` attribute of a model instance, remembering every change made after it was loaded."""

    def __set__(self, instance, value) -> None:
        data = instance.__dict__
        name = self.field.attname
        if name in data and data[name] != value:
            move = StatusMove(next(_sequence), data[name], value, datetime.now(UTC))
            data.setdefault(MOVES_ATTRIBUTE, []).append(move)
        data[name] = value


class StatusField(models.CharField):
    """A status column (Spinnaker's names) whose changes the event log records as transitions."""

    descriptor_class = StatusAttribute


def next_sequence() -> int:
    """A number later than every move made so far in this process (to order other events among the moves)."""
    return next(_sequence)


def peek_moves(instance) -> list[StatusMove]:
    """The status moves made on ``instance`` since the last ``take_moves``, oldest first; keeps them."""
    return instance.__dict__.get(MOVES_ATTRIBUTE, [])


def take_moves(instance) -> list[StatusMove]:
    """The status moves made on ``instance`` since the last call, oldest first; forgets them."""
    return instance.__dict__.pop(MOVES_ATTRIBUTE, [])


class StatusTracked(models.Model):
    """Base of models with a ``StatusField``: reloading a row from the database is not a move."""

    class Meta:
        abstract = True

    def refresh_from_db(self, *args, **kwargs) -> None:
        moves = list(self.__dict__.get(MOVES_ATTRIBUTE, ()))
        super().refresh_from_db(*args, **kwargs)
        # Keep the moves made before the reload; drop the one the reload itself made.
        if moves:
            self.__dict__[MOVES_ATTRIBUTE] = moves
        else:
            self.__dict__.pop(MOVES_ATTRIBUTE, None)


@deconstructible(path="apps.pipelines.fields.CurrentTransactionId")
class CurrentTransactionId(models.Func):
    """The inserting transaction's id as a bigint (PostgreSQL 13+), or 0 where writers are serialized."""

    output_field = models.BigIntegerField()
    arity = 0

    def as_sql(self, compiler, connection, **extra_context):
        return "0", []

    def as_postgresql(self, compiler, connection, **extra_context):
        # xid8 has no direct cast to bigint; through text it is exact (epoch and xid, below 2**63).
        return "(pg_current_xact_id()::text::bigint)", []
