"""Row operations of a `Database` through SQLAlchemy: the mixin `DatabaseRows`.

It holds the writes that take SQLAlchemy tables and row mappings (`insert`,
`ensure`, `replace`, `delete`, `update_where`, `deleteWhere`), the write
guard every write goes through (`_writing`: read-only check, joining the
open transaction, constraint errors as `ConflictError`, a database the backend
cannot write as `ReadOnlyDatabaseError`), `in_clause`, and the
module-level helper `chunked` that splits large sets of values into batches.
It builds on `DatabaseConnections`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy
import sqlalchemy.exc

from ..._deprecation import adopt_renamed_overrides, renamed
from ..._exceptions import ConflictError, ReadOnlyDatabaseError
from ._database_connections import DatabaseConnections

__all__ = ["DatabaseRows", "chunked"]


class DatabaseRows(DatabaseConnections):
    """Writes and ``IN`` clauses of a `Database`, on SQLAlchemy tables.

    Not used on its own: `Database` inherits it.
    """

    #: Largest number of values bound in one ``IN`` clause or array parameter.
    IN_BATCH_SIZE: int = 10_000

    # ------------------------------------------------------------------
    # Writes

    def _check_writeable(self, what: str) -> None:
        if not self._writeable:
            raise ReadOnlyDatabaseError(
                f"Cannot {what}: database {self} was opened read-only; reopen it with "
                "writeable=True to change it."
            )

    @contextmanager
    def _conflicts_raised(self, what: str) -> Iterator[None]:
        """Raise a constraint violation in the block as `ConflictError` ("Cannot {what}"), and
        a write the backend refuses because the database cannot be written (its file's
        permissions, say) as `ReadOnlyDatabaseError` (see `_write_refused`)."""
        try:
            yield
        except sqlalchemy.exc.IntegrityError as exc:
            if isinstance(exc, ConflictError):
                raise
            raise ConflictError(f"Cannot {what}: {exc.orig}", exc.orig) from exc
        except sqlalchemy.exc.DBAPIError as exc:
            self._raise_refused_write(exc, what)
            raise

    @contextmanager
    def _writing(self, what: str) -> Iterator[sqlalchemy.Connection]:
        """A connection inside a (possibly joined) transaction, with errors translated."""
        self._check_writeable(what)
        frames = self._frames
        with self._conflicts_raised(what):
            if frames and not frames[-1].savepoint and self._connection is not None:
                # Joining an open transaction: what a nested transaction() block
                # does, without its bookkeeping (an error dooms the transaction).
                try:
                    self.flush_deferred()  # statements run in program order
                    yield self._connection
                except BaseException:
                    self._doomed = True
                    raise
            else:
                # Translated inside too, so that the error names the write, not the transaction.
                with self.transaction(), self._conflicts_raised(what):
                    assert self._connection is not None
                    yield self._connection

    @abstractmethod
    def _insert_construct(self, table: sqlalchemy.Table) -> Any:
        """The dialect's INSERT construct, which supports ON CONFLICT."""
        raise NotImplementedError()

    def insert(
        self,
        table: sqlalchemy.Table,
        *rows: Mapping[str, Any],
        select: sqlalchemy.Select[Any] | None = None,
        names: Iterable[str] | None = None,
    ) -> None:
        """Insert rows, or the result of ``select``, into ``table``.

        Raises
        ------
        ConflictError
            If a row violates a key or foreign key; nothing is inserted.
        TypeError
            If both ``rows`` and ``select`` are given.
        """
        if select is not None:
            if rows:
                raise TypeError("insert() takes either rows or select=, not both.")
            columns = list(names) if names is not None else list(select.selected_columns.keys())
            with self._writing(f"insert into {table.name}") as connection:
                result = connection.execute(
                    table.insert().from_select(columns, select),
                    execution_options={"preserve_rowcount": True},
                )
                self._wrote(table, self._rowcount(result, 0))
            return
        if not rows:
            return
        with self._writing(f"insert into {table.name}") as connection:
            connection.execute(table.insert(), list(rows))
        self._wrote(table, len(rows))

    def _wrote(self, table: sqlalchemy.Table, rows: int) -> None:
        """Note that ``rows`` rows were just inserted into ``table`` (in a transaction or not).

        For backends whose planner needs statistics kept fresh after bulk
        loads (PostgreSQL); nothing by default.
        """

    def ensure(
        self,
        table: sqlalchemy.Table,
        *rows: Mapping[str, Any],
        primary_key_only: bool = False,
        select: sqlalchemy.Select[Any] | None = None,
        names: Iterable[str] | None = None,
    ) -> int:
        """Insert the rows (or ``select`` results) that conflict with no existing row.

        Parameters
        ----------
        primary_key_only : `bool`, optional
            Skip only primary-key conflicts; other unique conflicts raise.
        select, names
            As for `insert`.

        Returns
        -------
        count : `int`
            How many rows went in.
        """
        if select is not None and rows:
            raise TypeError("ensure() takes either rows or select=, not both.")
        if select is None and not rows:
            return 0
        stmt = self._insert_construct(table)
        if select is not None:
            columns = list(names) if names is not None else list(select.selected_columns.keys())
            # SQLite needs a WHERE before ON CONFLICT to parse INSERT ... SELECT.
            stmt = stmt.from_select(columns, select.where(sqlalchemy.true()))
        if primary_key_only:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(table.primary_key.columns))
        else:
            stmt = stmt.on_conflict_do_nothing()
        stmt = stmt.execution_options(preserve_rowcount=True)
        with self._writing(f"insert into {table.name}") as connection:
            if select is not None:
                count = self._rowcount(connection.execute(stmt), 0)
            else:
                count = self._rowcount(connection.execute(stmt, list(rows)), len(rows))
        self._wrote(table, count)
        return count

    def ensure_key(self, table: sqlalchemy.Table, row: Mapping[str, Any]) -> Any:
        """Insert ``row`` unless it conflicts with an existing row; the new row's primary key
        (one column, which the database generates), or `None` if nothing went in.

        One statement (``ON CONFLICT DO NOTHING RETURNING``): a caller that needs the key
        of a row it may have to create reads nothing back after the insert.
        """
        (key_column,) = table.primary_key.columns
        stmt = self._insert_construct(table).values(dict(row)).on_conflict_do_nothing()
        with self._writing(f"insert into {table.name}") as connection:
            if connection.dialect.insert_returning:
                key = connection.execute(stmt.returning(key_column)).scalar_one_or_none()
            else:  # SQLite before 3.35: the row id of the insert, if one went in
                result = connection.execute(stmt.execution_options(preserve_rowcount=True))
                primary_key = result.inserted_primary_key
                key = None
                if primary_key is not None and self._rowcount(result, 0) == 1:
                    key = primary_key[0]
        if key is not None:
            self._wrote(table, 1)
        return key

    def replace(self, table: sqlalchemy.Table, *rows: Mapping[str, Any]) -> None:
        """Insert rows, overwriting every non-key column of rows with the same primary key."""
        if not rows:
            return
        stmt = self._insert_construct(table)
        key = list(table.primary_key.columns)
        others = {c.name: stmt.excluded[c.name] for c in table.columns if not c.primary_key}
        if others:
            stmt = stmt.on_conflict_do_update(index_elements=key, set_=others)
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=key)
        with self._writing(f"replace into {table.name}") as connection:
            connection.execute(stmt, list(rows))

    def delete(
        self, table: sqlalchemy.Table, columns: Iterable[str], *rows: Mapping[str, Any]
    ) -> int:
        """Delete the rows matching ``rows`` on ``columns``; return how many went.

        With no ``columns``, delete every row. Columns whose value is the same
        in every row become one equality; a single varying column becomes
        batched ``IN`` clauses; several varying columns match row by row.
        """
        columns = list(columns)
        if columns and not rows:
            return 0
        with self._writing(f"delete from {table.name}") as connection:
            if not columns:
                return self._rowcount(connection.execute(table.delete()), 0)
            constant = [c for c in columns if len({r[c] for r in rows}) == 1]
            varying = [c for c in columns if c not in constant]
            where = [table.columns[c] == rows[0][c] for c in constant]
            if len(varying) <= 1:
                if not varying:
                    return self._rowcount(connection.execute(table.delete().where(*where)), 0)
                column = table.columns[varying[0]]
                total = 0
                for batch in chunked((r[varying[0]] for r in rows), self.IN_BATCH_SIZE):
                    stmt = table.delete().where(*where, self.in_clause(column, batch))
                    total += self._rowcount(connection.execute(stmt), 0)
                return total
            stmt = table.delete().where(
                *where, *(table.columns[c] == sqlalchemy.bindparam(f"_key_{c}") for c in varying)
            )
            stmt = stmt.execution_options(preserve_rowcount=True)
            params = [{f"_key_{c}": r[c] for c in varying} for r in rows]
            return self._rowcount(connection.execute(stmt, params), len(params))

    def update_where(
        self,
        table: sqlalchemy.Table,
        where: sqlalchemy.ColumnElement[bool],
        values: Mapping[str, Any],
    ) -> int:
        """Set ``values`` on the rows of ``table`` matching ``where``; return how many."""
        with self._writing(f"update {table.name}") as connection:
            stmt = table.update().where(where).values(dict(values))
            return self._rowcount(connection.execute(stmt), 0)

    def deleteWhere(self, table: sqlalchemy.Table, where: sqlalchemy.ColumnElement[bool]) -> int:
        """Delete the rows of ``table`` matching ``where``; return how many went."""
        with self._writing(f"delete from {table.name}") as connection:
            return self._rowcount(connection.execute(table.delete().where(where)), 0)

    @staticmethod
    def _rowcount(result: sqlalchemy.CursorResult[Any], fallback: int) -> int:
        count = result.rowcount
        return fallback if count is None or count < 0 else count

    # ------------------------------------------------------------------
    # Expressions

    def in_clause(
        self, column: sqlalchemy.ColumnElement[Any], values: Sequence[Any]
    ) -> sqlalchemy.ColumnElement[bool]:
        """``column IN values``, in the form this backend runs fastest.

        ``values`` must hold at most `IN_BATCH_SIZE` items; split larger sets
        with `chunked`.
        """
        return column.in_(values)

    # Deprecated aliases of renamed methods, kept for one release.
    updateWhere = renamed("update_where")  # noqa: N815
    inClause = renamed("in_clause")  # noqa: N815

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A backend written against the old names keeps working for a release.
        super().__init_subclass__(**kwargs)
        adopt_renamed_overrides(cls)


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Yield lists of at most ``size`` items from ``items``, streaming."""
    if size < 1:
        raise ValueError(f"Chunk size must be positive, got {size}.")
    batch: list[Any] = []
    append = batch.append
    for item in items:
        append(item)
        if len(batch) >= size:
            yield batch
            batch = []
            append = batch.append
    if batch:
        yield batch
