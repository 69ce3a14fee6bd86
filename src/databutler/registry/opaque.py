"""Opaque tables stored by name: each datastore's private records live here."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy

from .. import ddl
from .._exceptions import InvalidNameError, RepositoryError
from .interfaces import (
    Database,
    OpaqueTableStorage,
    OpaqueTableStorageManager,
    StaticTablesContext,
    VersionTuple,
)
from .interfaces._database import chunked

if TYPE_CHECKING:
    from ..transaction import DatastoreTransaction

__all__ = ["ByNameOpaqueTableStorage", "ByNameOpaqueTableStorageManager"]

_TABLE_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class ByNameOpaqueTableStorage(OpaqueTableStorage):
    """An opaque table in the registry database.

    Parameters
    ----------
    name : `str`
        Table name.
    db : `Database`
        The database holding it.
    table : `sqlalchemy.Table`
        The table.
    """

    def __init__(self, name: str, db: Database, table: sqlalchemy.Table) -> None:
        super().__init__(name)
        self._db = db
        self.table = table

    @property
    def database(self) -> Database:
        """The database holding the table (for driver-level reads of it)."""
        return self._db

    def insert(
        self, *data: dict[str, Any], transaction: DatastoreTransaction | None = None
    ) -> None:
        # docstring inherited; a database rollback undoes the rows, so the
        # datastore transaction needs no undo action.
        if not data:
            return
        columns = list(data[0])
        if any(row.keys() != data[0].keys() for row in data):
            self._db.insert(self.table, *data)  # rows leave out different columns
            return
        for name in columns:
            self._column(name)  # unknown names fail here, listing the columns
        # One driver-level executemany: no per-row SQLAlchemy work.
        # Sent with the transaction's next statement or its COMMIT where the database pipelines.
        self._db.insert_many(
            self.table, columns, ([row[c] for c in columns] for row in data), deferred=True
        )

    def insert_by_id(
        self, ids: Sequence[uuid.UUID], columns: Sequence[str], values: Iterable[Sequence[Any]]
    ) -> None:
        """Insert rows of ``dataset_id`` (from ``ids``) and ``columns`` (from ``values``, in
        the same order): `insert` for many rows of one shape, without a dictionary a row.

        Raises
        ------
        ValueError
            If a name in ``columns`` is not a column of the table.
        ConflictError
            If a row violates a constraint; nothing is inserted.
        """
        if not ids:
            return
        for name in ("dataset_id", *columns):
            self._column(name)
        db = self._db
        rows = [(key, *row) for key, row in zip(db.encode_ids(ids), values, strict=True)]
        db.insert_many(
            self.table, ["dataset_id", *columns], rows, encoded=["dataset_id"], deferred=True
        )

    def ensure(
        self, *data: dict[str, Any], transaction: DatastoreTransaction | None = None
    ) -> None:
        # docstring inherited
        self._db.ensure(self.table, *data)

    def replace(
        self, *data: dict[str, Any], transaction: DatastoreTransaction | None = None
    ) -> None:
        # docstring inherited
        self._db.replace(self.table, *data)

    def _column(self, name: str) -> sqlalchemy.Column[Any]:
        try:
            return self.table.columns[name]
        except KeyError:
            raise ValueError(
                f"Opaque table {self.name!r} has no column {name!r}; its columns are "
                f"{', '.join(self.table.columns.keys())}."
            ) from None

    def fetch(self, **where: Any) -> Iterator[dict[str, Any]]:
        """Rows matching ``where``, streamed.

        A scalar value means ``=``; a list, tuple or set means ``IN`` (values
        de-duplicated and sent in batches; with several such columns only the
        longest is split). An empty list matches nothing. No arguments means
        every row.

        Raises
        ------
        ValueError
            If a keyword is not a column of the table (checked at the call).
        """
        scalars = []
        lists: list[tuple[sqlalchemy.Column[Any], list[Any]]] = []
        for key, value in where.items():
            column = self._column(key)
            if isinstance(value, (list, tuple, set, frozenset)):
                lists.append((column, list(dict.fromkeys(value))))
            else:
                scalars.append(column == value)
        if any(not values for _, values in lists):
            return iter(())
        return self._fetch(scalars, lists)

    def _fetch(
        self,
        scalars: list[sqlalchemy.ColumnElement[bool]],
        lists: list[tuple[sqlalchemy.Column[Any], list[Any]]],
    ) -> Iterator[dict[str, Any]]:
        base = sqlalchemy.select(self.table).where(*scalars)
        if not lists:
            with self._db.query(base) as result:
                yield from (dict(row) for row in result.mappings())
            return
        lists.sort(key=lambda item: len(item[1]))
        split_column, split_values = lists.pop()
        fixed = [self._db.in_clause(column, values) for column, values in lists]
        budget = max(1, self._db.IN_BATCH_SIZE - sum(len(v) for _, v in lists))
        for batch in chunked(split_values, budget):
            sql = base.where(*fixed, self._db.in_clause(split_column, batch))
            with self._db.query(sql) as result:
                rows = [dict(row) for row in result.mappings()]
            yield from rows

    def delete(self, columns: tuple[str, ...] | list[str], *rows: dict[str, Any]) -> None:
        # docstring inherited
        for name in columns:
            self._column(name)
        self._db.delete(self.table, columns, *rows)


class ByNameOpaqueTableStorageManager(OpaqueTableStorageManager):
    """Creates opaque tables under the names datastores ask for.

    Every registered name is also recorded in ``opaque_meta``. Registered
    tables are cached; clones share the cache.

    Parameters
    ----------
    db : `Database`
        The database.
    metaTable : `sqlalchemy.Table`
        The ``opaque_meta`` table.
    registry_schema_version : `VersionTuple`, optional
        The stored schema version.
    """

    META_TABLE: ClassVar[str] = "opaque_meta"
    _VERSION: ClassVar[VersionTuple | None] = VersionTuple(0, 2, 0)

    def __init__(
        self,
        db: Database,
        metaTable: sqlalchemy.Table,
        registry_schema_version: VersionTuple | None = None,
        *,
        _tables: dict[str, sqlalchemy.Table] | None = None,
        _lock: threading.Lock | None = None,
    ) -> None:
        super().__init__(registry_schema_version=registry_schema_version)
        self._db = db
        self._metaTable = metaTable
        self._tables = _tables if _tables is not None else {}
        self._lock = _lock if _lock is not None else threading.Lock()
        self._storage: dict[str, ByNameOpaqueTableStorage] = {}

    @classmethod
    def initialize(
        cls,
        db: Database,
        context: StaticTablesContext,
        registry_schema_version: VersionTuple | None = None,
    ) -> ByNameOpaqueTableStorageManager:
        # docstring inherited
        spec = ddl.TableSpec(
            [ddl.FieldSpec("table_name", sqlalchemy.String, length=128, primaryKey=True)],
            doc="Names of the opaque tables datastores have registered.",
        )
        return cls(db, context.addTable(cls.META_TABLE, spec), registry_schema_version)

    def clone(self, db: Database) -> ByNameOpaqueTableStorageManager:
        # docstring inherited
        return type(self)(
            db,
            self._metaTable,
            self._registry_schema_version,
            _tables=self._tables,
            _lock=self._lock,
        )

    def get(self, name: str) -> ByNameOpaqueTableStorage | None:
        # docstring inherited
        storage = self._storage.get(name)
        if storage is None:
            table = self._tables.get(name)
            if table is None:
                return None
            storage = self._storage[name] = ByNameOpaqueTableStorage(name, self._db, table)
        return storage

    def _made_before(self, name: str) -> bool:
        """Whether ``opaque_meta`` lists ``name``: a table registered (and made) before."""
        sql = sqlalchemy.select(self._metaTable.c.table_name).where(
            self._metaTable.c.table_name == name
        )
        with self._db.query(sql) as result:
            return result.first() is not None

    def register(self, name: str, spec: ddl.TableSpec) -> ByNameOpaqueTableStorage:
        """Create (or bind to) the opaque table ``name`` and return it.

        Must not be called inside a transaction.

        Raises
        ------
        InvalidNameError
            If ``name`` is not 1-63 letters, digits and underscores.
        DatabaseConflictError
            If a table of that name exists with other columns.
        """
        if not isinstance(name, str) or not _TABLE_NAME_RE.fullmatch(name):
            raise InvalidNameError(
                f"Invalid opaque table name {name!r}: use 1-63 letters, digits and underscores, "
                "not starting with a digit."
            )
        with self._lock:
            cached = self._tables.get(name)
            if cached is not None:
                self._db.getExistingTable(name, spec)  # raises if the columns differ
            else:
                table = self._db.getExistingTable(name, spec)
                if table is None and self._made_before(name):
                    raise RepositoryError(
                        f"Table {name!r} (a datastore's records) is missing from the registry "
                        f"{self._db}, which made it: the registry is damaged. Restore it from a "
                        "backup; an empty table in its place would make every artifact of the "
                        "datastore look unknown."
                    )
                if table is None:
                    table = self._db.ensureTableExists(name, spec)
                if self._db.isWriteable():
                    self._db.ensure(self._metaTable, {"table_name": name})
                self._tables[name] = table
        storage = self.get(name)
        assert storage is not None
        return storage
