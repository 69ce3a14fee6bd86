"""Schema management of a `Database`: the mixin `DatabaseSchema`.

It holds how ddl specs become SQLAlchemy tables on this backend
(`_convertTableSpec`, `_convertFieldSpec` and the backend hooks for column
types, constraints and table options), how existing tables are found and
checked (`getExistingTable`) or created on demand (`ensureTableExists`), and
the module-level `shrink_name`, which keeps identifiers within
`MAX_IDENTIFIER_LENGTH`. It builds on `DatabaseRows`; the static tables of a
repository are declared through `Database.declareStaticTables`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy
import sqlalchemy.exc

from ... import ddl
from ..._exceptions import DatabaseConflictError
from ._database_rows import DatabaseRows

__all__ = ["MAX_IDENTIFIER_LENGTH", "DatabaseSchema", "shrink_name"]

#: Identifier length limit shared by PostgreSQL (63) and kept everywhere for portability.
MAX_IDENTIFIER_LENGTH = 63


def shrink_name(name: str) -> str:
    """Shorten an identifier to `MAX_IDENTIFIER_LENGTH`, keeping it unique by a hash suffix."""
    if len(name) <= MAX_IDENTIFIER_LENGTH:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    return f"{name[: MAX_IDENTIFIER_LENGTH - 11]}_{digest}"


class DatabaseSchema(DatabaseRows):
    """Tables of a `Database`: made from ddl specs, found, checked and created.

    Not used on its own: `Database` inherits it, and sets the attributes
    declared here in its constructor.
    """

    #: Schema holding the tables.
    namespace: str | None
    _metadata: sqlalchemy.MetaData

    def _existing_table_names(self) -> set[str]:
        with self._connect_for_read() as connection:
            return set(sqlalchemy.inspect(connection).get_table_names(schema=self.namespace))

    def getExistingTable(self, name: str, spec: ddl.TableSpec) -> sqlalchemy.Table | None:
        """Return the table ``name`` if it exists in the database, else `None`.

        Raises
        ------
        DatabaseConflictError
            If the table exists with columns other than those of ``spec``.
        """
        table = self._metadata.tables.get(self._full_name(name))
        if table is not None:
            self._check_columns(name, spec, [c.name for c in table.columns])
            return table
        with self._connect_for_read() as connection:
            inspector = sqlalchemy.inspect(connection)
            if not inspector.has_table(name, schema=self.namespace):
                return None
            columns = [c["name"] for c in inspector.get_columns(name, schema=self.namespace)]
        self._check_columns(name, spec, columns)
        return self._convertTableSpec(name, spec, self._metadata)

    @staticmethod
    def _check_columns(name: str, spec: ddl.TableSpec, columns: Sequence[str]) -> None:
        expected = set(spec.fields.names())
        if set(columns) != expected:
            raise DatabaseConflictError(
                f"Table {name!r} exists with columns {sorted(columns)}, but the code expects "
                f"{sorted(expected)}; choose another table name or migrate the table."
            )

    def ensureTableExists(self, name: str, spec: ddl.TableSpec) -> sqlalchemy.Table:
        """Return table ``name``, creating it first if it does not exist.

        Creating is not allowed inside a transaction (a rollback would undo the creation
        while callers keep using the table); binding to an existing table is.

        Raises
        ------
        ReadOnlyDatabaseError
            If the table is missing and the database is read-only.
        DatabaseConflictError
            If the table exists with other columns.
        """
        table = self.getExistingTable(name, spec)
        if table is not None:
            return table
        if self._frames:
            raise RuntimeError(
                f"Cannot create table {name!r} inside a transaction; register tables before "
                "starting one."
            )
        self._check_writeable(f"create table {name!r}")
        table = self._convertTableSpec(name, spec, self._metadata)
        try:
            with self.transaction():
                assert self._connection is not None
                table.create(self._connection)
        except sqlalchemy.exc.DatabaseError:
            # Another client may have created it first; use theirs if it matches.
            self._metadata.remove(table)
            existing = self.getExistingTable(name, spec)
            if existing is None:
                raise
            return existing
        return table

    def _full_name(self, name: str) -> str:
        return f"{self.namespace}.{name}" if self.namespace else name

    def _convertFieldSpec(self, table: str, spec: ddl.FieldSpec) -> sqlalchemy.Column[Any]:
        column_type = self._column_type(spec)
        kwargs: dict[str, Any] = {
            "primary_key": spec.primaryKey,
            "nullable": spec.nullable,
            "comment": spec.doc,
            "autoincrement": spec.autoincrement,
        }
        if spec.default is not None:
            literal = sqlalchemy.literal(spec.default).compile(
                dialect=self._engine.dialect, compile_kwargs={"literal_binds": True}
            )
            kwargs["server_default"] = sqlalchemy.text(literal.string)
        return sqlalchemy.Column(
            spec.name, column_type, *self._field_constraints(table, spec), **kwargs
        )

    def _column_type(self, spec: ddl.FieldSpec) -> sqlalchemy.types.TypeEngine[Any]:
        """The SQLAlchemy type of a field on this backend."""
        return ddl.GUID() if issubclass(spec.dtype, ddl.GUID) else spec.getSizedColumnType()

    def _field_constraints(self, table: str, spec: ddl.FieldSpec) -> list[sqlalchemy.Constraint]:
        """Extra per-column constraints a backend adds (SQLite checks string lengths)."""
        return []

    def _convertTableSpec(
        self, name: str, spec: ddl.TableSpec, metadata: sqlalchemy.MetaData
    ) -> sqlalchemy.Table:
        """Turn ``spec`` into an SQLAlchemy table named ``name`` in ``metadata``."""
        existing = metadata.tables.get(self._full_name(name))
        if existing is not None:
            return existing
        args: list[Any] = [self._convertFieldSpec(name, f) for f in spec.fields]
        covered = [spec.primaryKey(), *spec.unique, *(i.columns for i in spec.indexes)]
        for columns in sorted(spec.unique):
            args.append(
                sqlalchemy.UniqueConstraint(
                    *columns, name=shrink_name(f"{name}_unq_{'_'.join(columns)}")
                )
            )
        index_columns = sorted(i.columns for i in spec.indexes)
        for fk in spec.foreignKeys:
            target = self._full_name(fk.table)
            args.append(
                sqlalchemy.ForeignKeyConstraint(
                    fk.source,
                    [f"{target}.{col}" for col in fk.target],
                    name=shrink_name(
                        f"fkey_{name}_{fk.table}_{'_'.join(fk.target)}_{'_'.join(fk.source)}"
                    ),
                    ondelete=fk.onDelete,
                )
            )
            if fk.addIndex and not any(c[: len(fk.source)] == fk.source for c in covered):
                args.append(
                    sqlalchemy.Index(shrink_name(f"{name}_fkidx_{'_'.join(fk.source)}"), *fk.source)
                )
        for columns in index_columns:
            args.append(sqlalchemy.Index(shrink_name(f"{name}_idx_{'_'.join(columns)}"), *columns))
        return sqlalchemy.Table(
            name, metadata, *args, comment=spec.doc, **self._table_options(spec)
        )

    def _table_options(self, spec: ddl.TableSpec) -> dict[str, Any]:
        """Backend-specific keyword arguments for `sqlalchemy.Table`."""
        return {}
