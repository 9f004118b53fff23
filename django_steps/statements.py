"""The SQL of the write path, written once per database connection and reused.

Every state change runs the same three statements inside its transaction: lock the
instance row (joined with its workflow, so the compiled-machine cache can check the
definition version without another query), update the instance's state columns, and
insert the change's history rows. Building them through QuerySets on every call
costs several times what the database needs to run them, so this module has Django
write each statement once per connection, with its own compilers and quoting (the
lock is compiled from the equivalent QuerySet, so ``FOR UPDATE OF`` and the column
list are exactly what the ORM would send), and the engine executes them with a
cursor. Parameters are prepared by each field's ``get_db_prep_save`` or
``get_db_prep_value`` and results converted by the backend's converters, as the ORM
does, so every supported database receives the values it would from ``save()`` and
``bulk_create()``.

Like ``QuerySet.update()`` and ``bulk_create()``, these statements send no
``pre_save``/``post_save`` signals; the engine sends django-steps' own signals.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from django.db import connections, models
from django.db.backends.base.base import BaseDatabaseWrapper

from .models import WorkflowHistory, WorkflowInstance

STATE_FIELDS = (
    "current_step",
    "current_step_status",
    "lifecycle",
    "status_before_hold",
    "completed_at",
    "cancelled_at",
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


class LockStatement:
    """``SELECT ... FOR UPDATE OF`` the instance, with its workflow's definition version.

    Only the workflow's ``version`` and ``created_at`` are read (what the cache of
    compiled workflows needs to tell whether its entry is current): the workflow row
    itself comes from that entry.
    """

    def __init__(self, connection: BaseDatabaseWrapper):
        queryset = (
            WorkflowInstance.objects.select_for_update(of=("self",))
            .select_related("workflow")
            .only(
                *(field.name for field in WorkflowInstance._meta.concrete_fields),
                "workflow__version",
                "workflow__created_at",
            )
            .filter(pk=uuid.UUID(int=0))
            .order_by()
        )
        compiler = queryset.query.get_compiler(connection=connection)
        # Compiling a locking query requires a transaction: callers hold one.
        self.sql, params = compiler.as_sql()
        if len(params) != 1:  # pragma: no cover - guards against a Django change
            raise RuntimeError(f"Unexpected parameters for the lock statement: {params!r}")
        select = compiler.select
        klass_info = compiler.klass_info
        assert klass_info is not None
        (workflow_info,) = klass_info["related_klass_infos"]
        self.instance_columns = list(klass_info["select_fields"])
        self.instance_names = [select[i][0].target.attname for i in self.instance_columns]
        workflow_columns = {select[i][0].target.attname: i for i in workflow_info["select_fields"]}
        self.version_column = workflow_columns["version"]
        self.created_at_column = workflow_columns["created_at"]
        self.converters: list[tuple[int, list[Converter], Any]] = [
            (position, converters, expression)
            for position, (converters, expression) in compiler.get_converters(
                [column for column, _, _ in select]
            ).items()
        ]
        assert WorkflowInstance._meta.pk is not None
        self.pk_field = WorkflowInstance._meta.pk

    def fetch(
        self, connection: BaseDatabaseWrapper, cursor: Any, pk: Any
    ) -> tuple[WorkflowInstance, int, Any] | None:
        """The locked instance, its workflow's version and creation time; ``None`` if gone."""
        cursor.execute(self.sql, (self.pk_field.get_db_prep_value(pk, connection),))
        row = cursor.fetchone()
        if row is None:
            return None
        values = list(row)
        for position, converters, expression in self.converters:
            value = values[position]
            for converter in converters:
                value = converter(value, expression, connection)
            values[position] = value
        instance = WorkflowInstance.from_db(
            connection.alias, self.instance_names, [values[i] for i in self.instance_columns]
        )
        return instance, values[self.version_column], values[self.created_at_column]


class UpdateStatement:
    """``UPDATE`` the instance's state columns."""

    def __init__(self, connection: BaseDatabaseWrapper):
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

    def params(self, connection: BaseDatabaseWrapper, instance: WorkflowInstance) -> list[Any]:
        """The parameters that write ``instance``'s state fields."""
        params = [
            column.prepare(getattr(instance, column.attname), connection) for column in self.columns
        ]
        params.append(self.pk_field.get_db_prep_value(instance.pk, connection))
        return params


class HistoryInsert:
    """A multi-row ``INSERT`` of history rows (every column but the primary key)."""

    def __init__(self, connection: BaseDatabaseWrapper):
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

    def sql(self, connection: BaseDatabaseWrapper, count: int) -> str:
        sql = self._sql.get(count)
        if sql is None:
            placeholders = [["%s"] * len(self.fields)] * count
            # One list of placeholders per row, as Django's insert compiler passes them.
            sql = self.prefix + connection.ops.bulk_insert_sql(self.fields, cast(Any, placeholders))
            self._sql[count] = sql
        return sql

    def params(
        self, connection: BaseDatabaseWrapper, rows: Sequence[Mapping[str, Any]]
    ) -> list[Any]:
        """The parameters of ``rows``, each a mapping of every column's attribute name."""
        params: list[Any] = []
        for row in rows:
            params.extend(
                column.prepare(row[column.attname], connection) for column in self.columns
            )
        return params


class Statements:
    """The write path's statements for one database connection."""

    def __init__(self, connection: BaseDatabaseWrapper):
        self.lock = LockStatement(connection)
        self.update = UpdateStatement(connection)
        self.history = HistoryInsert(connection)
        # PostgreSQL runs the update and the insert as one statement (a data-modifying
        # WITH), saving a round trip; other databases get two statements.
        self.combine_writes = connection.vendor == "postgresql"

    def write(
        self,
        connection: BaseDatabaseWrapper,
        cursor: Any,
        instance: WorkflowInstance,
        rows: Sequence[Mapping[str, Any]],
    ) -> None:
        """Save ``instance``'s state fields and insert its history ``rows``."""
        update_params = self.update.params(connection, instance)
        insert_sql = self.history.sql(connection, len(rows))
        insert_params = self.history.params(connection, rows)
        if self.combine_writes:
            cursor.execute(
                f"WITH updated AS ({self.update.sql}) {insert_sql}", update_params + insert_params
            )
        else:
            cursor.execute(self.update.sql, update_params)
            cursor.execute(insert_sql, insert_params)

    def insert_history(
        self, connection: BaseDatabaseWrapper, cursor: Any, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Insert history ``rows`` alone (when an instance starts)."""
        cursor.execute(
            self.history.sql(connection, len(rows)), self.history.params(connection, rows)
        )


# Connection wrappers are per thread (and per async task), so are their statements:
# the backend converters are bound to the connection they were made for.
_statements: weakref.WeakKeyDictionary[BaseDatabaseWrapper, Statements] = (
    weakref.WeakKeyDictionary()
)


def statements_for(using: str) -> tuple[BaseDatabaseWrapper, Statements]:
    """The connection for ``using`` and its statements (built on first use, in a transaction)."""
    connection = connections[using]
    statements = _statements.get(connection)
    if statements is None:
        statements = _statements[connection] = Statements(connection)
    return connection, statements
