"""The `Database` layer: one SQL engine and namespace, behind a small API.

Concrete subclasses (`~databutler.registry.databases.sqlite.SqliteDatabase`,
`~databutler.registry.databases.postgresql.PostgresqlDatabase`) supply the
engine and the few statements that differ; everything else lives in `Database`
and the parts it inherits.

A `Database` instance is not thread-safe: give each thread its own `clone`.

This module holds the construction of a `Database` (`fromUri`, `fromEngine`,
`clone`), the declaration of a repository's static tables
(`declareStaticTables`, `StaticTablesContext`), and the composition of its
parts, each in a module of its own: connections and transactions
(`._database_connections`), row operations (`._database_rows`), driver-level
statements (`._database_driver`) and schema management (`._database_schema`).
Their module-level helpers (`chunked`, `shrink_name`, ...) stay importable
from here.
"""

from __future__ import annotations

import weakref
from abc import abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar, cast

import sqlalchemy

from ... import ddl
from ..._exceptions import DatabaseConflictError, SchemaAlreadyDefinedError
from ._database_connections import _finalize as _finalize
from ._database_connections import _Frame as _Frame
from ._database_connections import _HeldConnections as _HeldConnections
from ._database_driver import DatabaseDriverStatements
from ._database_driver import _in_placeholders as _in_placeholders
from ._database_driver import _uuid_from_bytes as _uuid_from_bytes
from ._database_rows import chunked as chunked
from ._database_schema import MAX_IDENTIFIER_LENGTH as MAX_IDENTIFIER_LENGTH
from ._database_schema import DatabaseSchema
from ._database_schema import shrink_name as shrink_name

__all__ = ["Database", "StaticTablesContext"]

_T = TypeVar("_T", bound=tuple[Any, ...])


class StaticTablesContext:
    """Collects the tables declared inside `Database.declareStaticTables`.

    Not constructed directly: `Database.declareStaticTables` yields one.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._initializers: list[Callable[[Database], None]] = []
        self._tables: list[sqlalchemy.Table] = []

    def addTable(self, name: str, spec: ddl.TableSpec) -> sqlalchemy.Table:
        """Declare one table and return its SQLAlchemy object."""
        table = self._db._convertTableSpec(name, spec, self._db._metadata)
        self._tables.append(table)
        return table

    def addTableTuple(self, specs: _T) -> _T:
        """Declare every table of a namedtuple of specs; return a namedtuple of tables.

        The namedtuple's field names are the table names.

        Raises
        ------
        TypeError
            If ``specs`` is a plain tuple, whose fields have no names.
        """
        fields = getattr(specs, "_fields", None)
        if fields is None:
            raise TypeError(
                "addTableTuple needs a namedtuple of TableSpec (its fields name tables)."
            )
        tables = [self.addTable(name, spec) for name, spec in zip(fields, specs, strict=True)]
        result: _T = cast(Any, specs)._make(tables)
        return result

    def addInitializer(self, initializer: Callable[[Database], None]) -> None:
        """Run ``initializer(db)`` once, right after the tables are created."""
        self._initializers.append(initializer)


#: Whether databases created now are for bulk loading (`Database.created_for_bulk_loading`).
_BULK_LOADED: ContextVar[bool] = ContextVar("databutler_bulk_loaded", default=False)


class Database(DatabaseSchema, DatabaseDriverStatements):
    """One database engine and namespace, with transactions, sessions and bulk writes.

    Parameters
    ----------
    origin : `int`
        Identifies this repository among others sharing datasets; stored with
        autoincrement keys by managers that need it.
    engine : `sqlalchemy.engine.Engine`
        The engine, from `makeEngine`.
    namespace : `str`, optional
        Schema holding the tables.
    writeable : `bool`, optional
        Whether writes are allowed.
    """

    def __init__(
        self,
        *,
        origin: int,
        engine: sqlalchemy.engine.Engine,
        namespace: str | None = None,
        writeable: bool = True,
        metadata: sqlalchemy.MetaData | None = None,
    ) -> None:
        self.origin = origin
        self.namespace = namespace
        self._engine = engine
        self._writeable = writeable
        self._metadata = metadata if metadata is not None else sqlalchemy.MetaData(schema=namespace)
        self._connection = None
        self._frames = []
        self._doomed = False
        self._after_commit = []
        self._deferred = []
        self._repeatable = 0
        self._held = _HeldConnections()
        self._clones = weakref.WeakSet()
        # Forgotten, an instance closes its own connections; `fromUri` makes
        # the instance that created the engine dispose of it too (clones share it).
        self._finalizer = weakref.finalize(self, _finalize, self._held, None)
        self._insert_many_cache = {}
        self._guarded_sql = {}

    # ------------------------------------------------------------------
    # Construction

    @staticmethod
    @contextmanager
    def created_for_bulk_loading() -> Iterator[None]:
        """Lay out the databases created in the body for loading in large transactions.

        For a repository that is filled in bulk as it is made (a migration):
        on SQLite its file gets 4 KiB pages rather than the 1 KiB pages that
        suit one small put a transaction (a page is written to the log whole
        at every commit, so large transactions want fewer, larger pages).
        Databases that exist already are not changed.
        """
        token = _BULK_LOADED.set(True)
        try:
            yield
        finally:
            _BULK_LOADED.reset(token)

    @staticmethod
    def bulk_loaded_layout() -> bool:
        """Whether a database created now is for bulk loading (`created_for_bulk_loading`)."""
        return _BULK_LOADED.get()

    @classmethod
    @abstractmethod
    def makeEngine(cls, uri: str, *, writeable: bool = True) -> sqlalchemy.engine.Engine:
        """Create the SQLAlchemy engine for ``uri``, configured for this backend."""
        raise NotImplementedError()

    @classmethod
    def fromUri(
        cls, uri: str, *, origin: int, namespace: str | None = None, writeable: bool = True
    ) -> Database:
        """Connect to the database at ``uri``.

        Parameters
        ----------
        uri : `str`
            SQLAlchemy URL, e.g. ``sqlite:///repo/registry.sqlite3`` or
            ``postgresql://user@host:5432/dbname``.
        origin : `int`
            See the class documentation.
        namespace : `str`, optional
            Schema to use.
        writeable : `bool`, optional
            Whether writes are allowed.
        """
        engine = cls.makeEngine(uri, writeable=writeable)
        db = cls.fromEngine(engine, origin=origin, namespace=namespace, writeable=writeable)
        db._finalizer.detach()
        db._finalizer = weakref.finalize(db, _finalize, db._held, engine)
        return db

    @classmethod
    def fromEngine(
        cls,
        engine: sqlalchemy.engine.Engine,
        *,
        origin: int,
        namespace: str | None = None,
        writeable: bool = True,
    ) -> Database:
        """Wrap an engine made by `makeEngine`."""
        return cls(origin=origin, engine=engine, namespace=namespace, writeable=writeable)

    def clone(self) -> Database:
        """A new instance on the same engine and tables, with its own connection state.

        Use one clone per thread.
        """
        clone = type(self)(
            origin=self.origin,
            engine=self._engine,
            namespace=self.namespace,
            writeable=self._writeable,
            metadata=self._metadata,
        )
        self._clones.add(clone)  # closed with this instance by `dispose`
        return clone

    # ------------------------------------------------------------------
    # Static tables

    @contextmanager
    def declareStaticTables(self, *, create: bool) -> Iterator[StaticTablesContext]:
        """Declare the tables that always exist; create them when ``create`` is true.

        Parameters
        ----------
        create : `bool`
            Create the tables (in a new, empty namespace) when the block ends;
            otherwise only bind to tables that must already exist.

        Raises
        ------
        ReadOnlyDatabaseError
            If ``create`` is true on a read-only database.
        SchemaAlreadyDefinedError
            If ``create`` is true and the namespace already holds tables.
        DatabaseConflictError
            If ``create`` is false and a declared table does not exist.
        """
        if create:
            self._check_writeable("create tables")
            existing = self._existing_table_names()
            if existing:
                raise SchemaAlreadyDefinedError(
                    f"Cannot create a repository in {self}: it already holds tables "
                    f"({', '.join(sorted(existing)[:5])}...). Use an empty database or namespace, "
                    "or open the existing repository instead."
                )
        context = StaticTablesContext(self)
        yield context
        if create:
            with self.transaction():
                assert self._connection is not None
                self._metadata.create_all(self._connection, tables=context._tables)
                for initializer in context._initializers:
                    initializer(self)
        else:
            existing = self._existing_table_names()
            missing = sorted(t.name for t in context._tables if t.name not in existing)
            if missing:
                raise DatabaseConflictError(
                    f"Database {self} has no table(s) {', '.join(missing)}: it is not a databutler "
                    "repository, or was made by an incompatible version. Create a repository first."
                )
