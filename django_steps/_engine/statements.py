"""The SQL of the write path and of the look-up, written once per connection and reused.

Internal (see :mod:`django_steps._engine`).

Every state change runs the same three statements inside its transaction: lock the
instance row (joined with its workflow, so the compiled-machine cache can check the
definition revision without another query), update the instance's state columns, and
insert the change's history rows; finding an object's instance is one query.
Building these through QuerySets on every call costs several times what the database
needs to run them, so this module has Django write each statement once per
connection, with its own compilers and quoting (the queries are compiled from the
equivalent QuerySets, so ``FOR UPDATE OF``, joins and column lists are exactly what
the ORM would send), and the engine executes them with a cursor. Parameters are
prepared by each field's ``get_db_prep_save`` or ``get_db_prep_value`` and results
converted by the backend's converters, as the ORM does, so every supported database
receives the values it would from ``save()`` and ``bulk_create()``.

Like ``QuerySet.update()`` and ``bulk_create()``, these statements send no
``pre_save``/``post_save`` signals; the engine sends django-steps' own signals.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any, ClassVar, cast

from django.db import connections, models
from django.db.backends.base.base import BaseDatabaseWrapper

from ..models import Workflow, WorkflowHistory, WorkflowInstance

STATE_FIELDS = (
    "current_step",
    "current_step_status",
    "step_entered_at",
    "lifecycle",
    "status_before_hold",
    "completed_at",
    "cancelled_at",
    "due_at",
    "held_at",
    "assignee",
    "actors",
    "updated_at",
)
"""The instance fields a state change writes."""

Converter = Callable[[Any, Any, BaseDatabaseWrapper], Any]

# Columns of these exact field types (or foreign keys to them) take the engine's str,
# int and None values as they are on every backend: their preparation returns the
# value unchanged, so it is skipped for those values (it is about a third of the
# Python time of the statements).
_PLAIN_FIELD_TYPES = (
    models.CharField,
    models.TextField,
    models.IntegerField,
    models.BigIntegerField,
    models.PositiveIntegerField,
    models.AutoField,
    models.BigAutoField,
)


class _Column:
    """A field to write, and whether str/int/None values go to the database as they are."""

    __slots__ = ("attname", "field", "plain")

    def __init__(self, field: models.Field[Any, Any]):
        self.field = field
        self.attname = field.attname
        target = field.target_field if field.is_relation else field  # type: ignore[attr-defined]
        self.plain = type(target) in _PLAIN_FIELD_TYPES

    def prepare(self, value: Any, connection: BaseDatabaseWrapper) -> Any:
        if self.plain and (value is None or type(value) is str or type(value) is int):
            return value
        return self.field.get_db_prep_save(value, connection)


class _CompiledQuery:
    """A QuerySet compiled once for a connection: its SQL, where each argument goes in
    its parameters, and the converters of its result columns.

    The QuerySet is compiled with a sentinel for each argument; each call puts the real
    values in their places.
    """

    def __init__(
        self,
        queryset: models.QuerySet[Any],
        connection: BaseDatabaseWrapper,
        sentinels: Mapping[str, Any],
    ):
        self.connection = connection
        compiler = queryset.query.get_compiler(connection=connection)
        self.sql, params = compiler.as_sql()
        self.params = list(params)
        self.slots: dict[str, int] = {}
        for name, sentinel in sentinels.items():
            positions = [
                index
                for index, param in enumerate(self.params)
                if type(param) is type(sentinel) and param == sentinel
            ]
            if len(positions) != 1:  # pragma: no cover - guards against a Django change
                raise RuntimeError(f"Cannot place {name!r} in {self.sql!r} ({params!r}).")
            self.slots[name] = positions[0]
        self.select = compiler.select
        klass_info = compiler.klass_info
        assert klass_info is not None
        self.klass_info = klass_info
        self.converters: list[tuple[int, list[Converter], Any]] = [
            (position, converters, expression)
            for position, (converters, expression) in compiler.get_converters(
                [column for column, _, _ in self.select]
            ).items()
        ]

    def columns(self, klass_info: Mapping[str, Any]) -> tuple[list[int], list[str]]:
        """The positions and attribute names of one model's columns in a result row."""
        positions = list(klass_info["select_fields"])
        return positions, [self.select[i][0].target.attname for i in positions]

    def fetch(self, cursor: Any, arguments: Mapping[str, Any]) -> list[Any] | None:
        """The first result row, converted as the ORM converts it; ``None`` if none."""
        connection = self.connection
        params = self.params.copy()
        for name, value in arguments.items():
            params[self.slots[name]] = value
        cursor.execute(self.sql, params)
        row = cursor.fetchone()
        if row is None:
            return None
        values = list(row)
        for position, converters, expression in self.converters:
            value = values[position]
            for converter in converters:
                value = converter(value, expression, connection)
            values[position] = value
        return values


class LockStatement:
    """``SELECT ... FOR UPDATE OF`` the instance, with its workflow's definition revision.

    Only the workflow's ``revision`` is read (what the cache of compiled workflows
    needs to tell whether its entry is current): the workflow row itself comes from
    that entry.
    """

    SENTINEL = uuid.UUID(int=0)

    def __init__(self, connection: BaseDatabaseWrapper):
        assert WorkflowInstance._meta.pk is not None
        self.pk_field = WorkflowInstance._meta.pk
        queryset = (
            WorkflowInstance.objects.select_for_update(of=("self",))
            .select_related("workflow")
            .only(
                *(field.name for field in WorkflowInstance._meta.concrete_fields),
                "workflow__revision",
            )
            .filter(pk=self.SENTINEL)
            .order_by()
        )
        # Compiling a locking query requires a transaction: callers hold one.
        self.query = _CompiledQuery(
            queryset, connection, {"pk": self.pk_field.get_db_prep_value(self.SENTINEL, connection)}
        )
        self.sql = self.query.sql
        self.instance_columns, self.instance_names = self.query.columns(self.query.klass_info)
        (workflow_info,) = self.query.klass_info["related_klass_infos"]
        positions, names = self.query.columns(workflow_info)
        self.revision_column = positions[names.index("revision")]

    def fetch(self, cursor: Any, pk: Any) -> tuple[WorkflowInstance, uuid.UUID] | None:
        """The locked instance and its workflow's revision; ``None`` if it is gone."""
        connection = self.query.connection
        values = self.query.fetch(cursor, {"pk": self.pk_field.get_db_prep_value(pk, connection)})
        if values is None:
            return None
        instance = WorkflowInstance.from_db(
            connection.alias, self.instance_names, [values[i] for i in self.instance_columns]
        )
        return instance, values[self.revision_column]


class LookupStatement:
    """An object's instance, unfinished first, with its workflow row (``select_related``).

    The query of :func:`django_steps.services.get_workflow_instance_for_object`, with or
    without a workflow name.
    """

    SENTINELS: ClassVar[dict[str, Any]] = {
        "content_type": -7_654_321,
        "object_id": "django-steps:object-id",
        "workflow_name": "django-steps:workflow-name",
    }

    def __init__(self, connection: BaseDatabaseWrapper, *, by_name: bool):
        sentinels = dict(self.SENTINELS)
        queryset = WorkflowInstance.objects.select_related("workflow").filter(
            content_type_id=sentinels["content_type"], object_id=sentinels["object_id"]
        )
        if by_name:
            queryset = queryset.filter(workflow__name=sentinels["workflow_name"])
        else:
            del sentinels["workflow_name"]
        self.query = _CompiledQuery(queryset.unfinished_first()[:1], connection, sentinels)
        self.instance_columns, self.instance_names = self.query.columns(self.query.klass_info)
        (workflow_info,) = self.query.klass_info["related_klass_infos"]
        self.workflow_columns, self.workflow_names = self.query.columns(workflow_info)
        self.workflow_field = WorkflowInstance._meta.get_field("workflow")

    def fetch(self, cursor: Any, arguments: Mapping[str, Any]) -> WorkflowInstance | None:
        values = self.query.fetch(cursor, arguments)
        if values is None:
            return None
        alias = self.query.connection.alias
        instance = WorkflowInstance.from_db(
            alias, self.instance_names, [values[i] for i in self.instance_columns]
        )
        workflow = Workflow.from_db(
            alias, self.workflow_names, [values[i] for i in self.workflow_columns]
        )
        self.workflow_field.set_cached_value(instance, workflow)  # as select_related does
        return instance


class UpdateStatement:
    """``UPDATE`` the instance's state columns."""

    def __init__(self, connection: BaseDatabaseWrapper):
        self.connection = connection
        meta = WorkflowInstance._meta
        quote = connection.ops.quote_name
        by_name = {field.name: field for field in meta.concrete_fields}
        self.fields: list[models.Field[Any, Any]] = [by_name[name] for name in STATE_FIELDS]
        self.columns = [_Column(field) for field in self.fields]
        assert meta.pk is not None
        self.pk_field = meta.pk
        assignments = ", ".join(f"{quote(str(field.column))} = %s" for field in self.fields)
        self.sql = (
            f"UPDATE {quote(meta.db_table)} SET {assignments} "
            f"WHERE {quote(str(self.pk_field.column))} = %s"
        )

    def params(self, instance: WorkflowInstance) -> list[Any]:
        """The parameters that write ``instance``'s state fields."""
        connection = self.connection
        params = [
            column.prepare(getattr(instance, column.attname), connection) for column in self.columns
        ]
        params.append(self.pk_field.get_db_prep_value(instance.pk, connection))
        return params


class HistoryInsert:
    """A multi-row ``INSERT`` of history rows (every column but the primary key)."""

    def __init__(self, connection: BaseDatabaseWrapper):
        self.connection = connection
        meta = WorkflowHistory._meta
        self.fields: list[models.Field[Any, Any]] = [
            field for field in meta.concrete_fields if not field.primary_key
        ]
        self.columns = [_Column(field) for field in self.fields]
        quote = connection.ops.quote_name
        self.prefix = (
            f"INSERT INTO {quote(meta.db_table)} "
            f"({', '.join(quote(str(field.column)) for field in self.fields)}) "
        )
        self._sql: dict[int, str] = {}

    def sql(self, count: int) -> str:
        """The statement inserting ``count`` rows."""
        sql = self._sql.get(count)
        if sql is None:
            placeholders = [["%s"] * len(self.fields)] * count
            # One list of placeholders per row, as Django's insert compiler passes them.
            sql = self.prefix + self.connection.ops.bulk_insert_sql(
                self.fields, cast(Any, placeholders)
            )
            self._sql[count] = sql
        return sql

    def params(self, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
        """The parameters of ``rows``, each a mapping of every column's attribute name."""
        connection = self.connection
        params: list[Any] = []
        for row in rows:
            params.extend(
                column.prepare(row[column.attname], connection) for column in self.columns
            )
        return params


class Statements:
    """The statements for one database connection, each written on first use."""

    def __init__(self, connection: BaseDatabaseWrapper):
        self.connection = connection
        # PostgreSQL runs the update and the insert as one statement (a data-modifying
        # WITH), saving a round trip; other databases get two statements.
        self.combine_writes = connection.vendor == "postgresql"
        self._combined: dict[int, str] = {}

    @cached_property
    def lock(self) -> LockStatement:
        return LockStatement(self.connection)

    @cached_property
    def update(self) -> UpdateStatement:
        return UpdateStatement(self.connection)

    @cached_property
    def history(self) -> HistoryInsert:
        return HistoryInsert(self.connection)

    @cached_property
    def lookup(self) -> LookupStatement:
        return LookupStatement(self.connection, by_name=False)

    @cached_property
    def lookup_by_name(self) -> LookupStatement:
        return LookupStatement(self.connection, by_name=True)

    def write(
        self, cursor: Any, instance: WorkflowInstance, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Save ``instance``'s state fields and insert its history ``rows``."""
        update_params = self.update.params(instance)
        insert_params = self.history.params(rows)
        if self.combine_writes:
            cursor.execute(self._combined_sql(len(rows)), update_params + insert_params)
        else:
            cursor.execute(self.update.sql, update_params)
            cursor.execute(self.history.sql(len(rows)), insert_params)

    def insert_history(self, cursor: Any, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert history ``rows`` alone (when an instance starts)."""
        cursor.execute(self.history.sql(len(rows)), self.history.params(rows))

    def _combined_sql(self, count: int) -> str:
        sql = self._combined.get(count)
        if sql is None:
            sql = self._combined[count] = (
                f"WITH updated AS ({self.update.sql}) {self.history.sql(count)}"
            )
        return sql


# The attribute of a connection wrapper holding its statements. Connection wrappers are
# per thread (and per async task), and the statements hold the wrapper (its converters
# are bound to it), so they are kept on the wrapper itself: they end with it. A
# process-wide mapping from wrapper to statements would keep every wrapper, and its
# server connection, alive forever.
_ATTRIBUTE = "_django_steps_statements"


def statements_for(using: str) -> tuple[BaseDatabaseWrapper, Statements]:
    """The connection for ``using`` and its statements, each compiled on first use.

    The statements live exactly as long as the connection wrapper. The lock must first
    be used inside a transaction: compiling ``FOR UPDATE`` needs one.
    """
    connection = connections[using]
    statements: Statements | None = getattr(connection, _ATTRIBUTE, None)
    if statements is None:
        statements = Statements(connection)
        setattr(connection, _ATTRIBUTE, statements)
    return connection, statements
