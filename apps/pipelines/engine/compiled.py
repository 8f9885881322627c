"""A queryset the engine runs on every step, compiled to SQL once per database connection alias.

Building and compiling a queryset with joins (``select_related``), a
``FOR UPDATE OF`` and a subquery costs several times more Python work than
sending it and building its rows: the engine's stage lock did both on
every step. :class:`CompiledQuery` builds the queryset once with a stand-in
value, keeps Django's compiled SQL and its compiler, and later runs the same
SQL with the real value in the stand-in's place, building the instances the
way Django's own iterator does (``select_related`` objects included). The
results are the same objects the queryset gives.

When the stand-in does not show up among the compiled parameters (a
backend that prepares the value differently), or the queryset asks for what
this does not rebuild (annotations, known related objects), the queryset is
simply run each time.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Generic, TypeVar

from django.db import connections
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable, get_related_populators  # type: ignore[attr-defined]
from django.db.transaction import TransactionManagementError


class _Compiled:
    """What one alias needs to run the query again: SQL, parameters, and how to turn rows into instances."""

    __slots__ = ("sql", "params", "converters", "model", "init_list", "start", "end", "populators")

    def __init__(self, queryset: QuerySet, using: str, stand_in) -> None:
        rebuilt_as_django_does = (
            getattr(queryset, "_iterable_class", None) is ModelIterable
            and not getattr(queryset, "_known_related_objects", None)
            and not getattr(queryset, "_prefetch_related_lookups", ())
        )
        if not rebuilt_as_django_does:
            raise _NotReusable
        compiler = queryset.query.get_compiler(using=using)
        self.sql, params = compiler.as_sql()
        self.params = tuple(params)
        klass_info, select = compiler.klass_info, compiler.select
        self.model = klass_info["model"]
        self.start, self.end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        self.init_list = [column[0].target.attname for column in select[self.start:self.end]]
        self.populators = get_related_populators(klass_info, select, using)
        converters = compiler.get_converters([column[0] for column in select[0:compiler.col_count]])
        self.converters = list(converters.items())
        if not any(param is stand_in for param in self.params) or compiler.annotation_col_map:
            raise _NotReusable

    def run(self, using: str, stand_in, value) -> list[Model]:
        params = [value if param is stand_in else param for param in self.params]
        connection = connections[using]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            rows = cursor.fetchall()
        objects = []
        for row in rows:
            if self.converters:  # as SQLCompiler.apply_converters does
                row = list(row)
                for position, (converters, expression) in self.converters:
                    value = row[position]
                    for converter in converters:
                        value = converter(value, expression, connection)
                    row[position] = value
            obj = self.model.from_db(using, self.init_list, row[self.start:self.end])
            for populator in self.populators:
                populator.populate(row, obj)
            objects.append(obj)
        return objects


class _NotReusable(Exception):
    pass


M = TypeVar("M", bound=Model)


class CompiledQuery(Generic[M]):
    """``build(value)`` (a queryset filtered by one UUID value) compiled once per alias, then run with other values.

    ``run(value)`` returns ``list(build(value))``. A query that locks
    (``select_for_update``) is refused outside a transaction, as Django does.
    Each thread compiles its own (a compiler holds its thread's connection).
    """

    def __init__(self, build: Callable[[uuid.UUID], QuerySet[M]], *, locks: bool = False, using: str = "default"):
        self._build = build
        self._locks = locks
        self._using = using
        self._stand_in = uuid.uuid4()  # a value no row holds, found again among the compiled parameters
        self._local = threading.local()
        self._reusable = True

    def run(self, value: uuid.UUID) -> list[M]:
        if self._locks and connections[self._using].get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        compiled = getattr(self._local, "compiled", None)
        if compiled is None and self._reusable:
            try:
                compiled = self._local.compiled = _Compiled(self._build(self._stand_in), self._using, self._stand_in)
            except _NotReusable:
                self._reusable = False
        if compiled is None:
            return list(self._build(value))
        return compiled.run(self._using, self._stand_in, value)
