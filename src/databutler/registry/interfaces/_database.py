"""The `Database` layer: one SQL engine and namespace, behind a small API.

Concrete subclasses (`~databutler.registry.databases.sqlite.SqliteDatabase`,
`~databutler.registry.databases.postgresql.PostgresqlDatabase`) supply the
engine and the few statements that differ; everything else lives here.

A `Database` instance is not thread-safe: give each thread its own `clone`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import uuid
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import sqlalchemy
import sqlalchemy.exc

from ... import ddl
from ..._exceptions import (
    ConflictError,
    DatabaseConflictError,
    ReadOnlyDatabaseError,
    SchemaAlreadyDefinedError,
    TransactionAbortedError,
)

__all__ = ["Database", "StaticTablesContext"]

_T = TypeVar("_T", bound=tuple[Any, ...])

#: Identifier length limit shared by PostgreSQL (63) and kept everywhere for portability.
MAX_IDENTIFIER_LENGTH = 63


def shrink_name(name: str) -> str:
    """Shorten an identifier to `MAX_IDENTIFIER_LENGTH`, keeping it unique by a hash suffix."""
    if len(name) <= MAX_IDENTIFIER_LENGTH:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    return f"{name[: MAX_IDENTIFIER_LENGTH - 11]}_{digest}"


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


@dataclass
class _Frame:
    """One level of `Database.transaction` nesting."""

    trans: sqlalchemy.Transaction | None
    savepoint: bool
    #: How many `Database.on_commit` callbacks were pending when the block began.
    pending: int = 0


class _HeldConnections:
    """The connections a `Database` keeps for its lifetime: one for reads, one for sessions.

    Kept apart from the `Database` so that a finalizer can close them when
    the database is forgotten without keeping it alive.
    """

    __slots__ = ("reader", "writer")

    def __init__(self) -> None:
        self.reader: sqlalchemy.Connection | None = None
        self.writer: sqlalchemy.Connection | None = None

    def close(self) -> None:
        for connection in (self.reader, self.writer):
            if connection is not None:
                with contextlib.suppress(Exception):  # the server may be gone already
                    connection.close()
        self.reader = self.writer = None


def _finalize(held: _HeldConnections, engine: sqlalchemy.engine.Engine | None) -> None:
    held.close()
    if engine is not None:
        with contextlib.suppress(Exception):
            engine.dispose()


class Database(ABC):
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

    #: Largest number of values bound in one ``IN`` clause or array parameter.
    IN_BATCH_SIZE: int = 10_000

    #: Keep one connection for reads and one for sessions open for the
    #: instance's lifetime, instead of a pool checkout (with a ping) per call.
    #: They are closed by `dispose`, or by a finalizer once the instance is
    #: forgotten; one found dropped by the server is replaced before use.
    KEEP_READER: bool = True

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
        self._connection: sqlalchemy.Connection | None = None
        self._frames: list[_Frame] = []
        self._doomed = False
        self._after_commit: list[Callable[[], None]] = []
        self._held = _HeldConnections()
        self._clones: weakref.WeakSet[Database] = weakref.WeakSet()
        # Forgotten, an instance closes its own connections; `fromUri` makes
        # the instance that created the engine dispose of it too (clones share it).
        self._finalizer = weakref.finalize(self, _finalize, self._held, None)
        # insertMany's bind processors and SQL, by (table, columns, encoded columns).
        self._insert_many_cache: dict[Any, tuple[list[tuple[int, Any]], str]] = {}
        # insert_guarded's SQL and bind processors, by the shape of the call.
        self._guarded_sql: dict[Any, tuple[str, list[list[tuple[int, Any]]]]] = {}

    # ------------------------------------------------------------------
    # Construction

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

    def dispose(self) -> None:
        """Close this instance's connections and every pooled one of the engine (shared
        with clones)."""
        if self._connection is not None:
            raise RuntimeError("Cannot dispose of a database while a session is open.")
        self._close_kept()
        self._engine.dispose()

    def _close_kept(self) -> None:
        """Close the kept connections of this instance and of its clones not in a session."""
        self._held.close()
        for clone in list(self._clones):
            if clone._connection is None:
                clone._close_kept()

    def close(self) -> None:
        """Close the connections this instance keeps (the engine stays for its clones)."""
        if self._connection is not None:
            raise RuntimeError("Cannot close a database while a session is open.")
        self._held.close()

    def _close_reader(self) -> None:
        reader, self._held.reader = self._held.reader, None
        if reader is not None:
            with contextlib.suppress(Exception):
                reader.close()

    def _is_stale(self, connection: sqlalchemy.Connection) -> bool:
        """Whether a kept, idle connection is known to be unusable (closed or dropped)."""
        return connection.closed or connection.invalidated

    def isWriteable(self) -> bool:
        """Whether this database accepts writes."""
        return self._writeable

    def isInTransaction(self) -> bool:
        """Whether a `transaction` block is open on this instance."""
        return bool(self._frames)

    @property
    def dialect_name(self) -> str:
        """The SQLAlchemy dialect name (``sqlite``, ``postgresql``)."""
        return self._engine.dialect.name

    def __str__(self) -> str:
        return self._engine.url.render_as_string(hide_password=True)

    # ------------------------------------------------------------------
    # Sessions and transactions

    def _begin_mode(self, connection: sqlalchemy.Connection, *, write: bool) -> None:
        """Tell the backend whether the next BEGIN is for writing (SQLite locks up front)."""
        connection.info["databutler.write"] = write

    @contextmanager
    def session(self) -> Iterator[None]:
        """Pin one connection for every operation inside the block; re-entrant."""
        if self._connection is not None:
            yield
            return
        connection = self._held.writer
        self._held.writer = None  # a session on another thread would make its own
        if connection is not None and self._is_stale(connection):
            with contextlib.suppress(Exception):
                connection.close()
            connection = None
        if connection is None:
            connection = self._engine.connect()
        self._connection = connection
        try:
            yield
        except BaseException:
            self._connection = None
            if connection.invalidated or connection.in_transaction():
                with contextlib.suppress(Exception):
                    connection.close()
            else:
                self._keep_writer(connection)
            raise
        self._connection = None
        self._keep_writer(connection)

    def _keep_writer(self, connection: sqlalchemy.Connection) -> None:
        if not self.KEEP_READER or connection.closed or self._held.writer is not None:
            connection.close()
        else:
            self._held.writer = connection

    @contextmanager
    def transaction(
        self,
        *,
        interrupting: bool = False,
        savepoint: bool = False,
        lock: Iterable[sqlalchemy.Table] = (),
    ) -> Iterator[None]:
        """Run the block in a transaction; nested blocks join the outer one.

        Parameters
        ----------
        interrupting : `bool`, optional
            Require that no transaction is open yet (`RuntimeError` otherwise).
        savepoint : `bool`, optional
            Make this block a SAVEPOINT, so a failure inside it that the caller
            catches undoes only the block. Blocks nested in a savepoint block
            are savepoints too.
        lock : `~collections.abc.Iterable` [`sqlalchemy.Table`], optional
            Tables to lock for writing until the transaction ends.

        Raises
        ------
        TransactionAbortedError
            When the outermost block ends normally although an inner,
            non-savepoint block failed: all of the work was rolled back.

        Notes
        -----
        An error in a nested block without a savepoint dooms the whole
        transaction, as it does on PostgreSQL: catching it inside the outer
        block does not keep the outer work.
        """
        if interrupting and self._frames:
            raise RuntimeError("This operation must not run inside another transaction.")
        with self.session():
            connection = self._connection
            assert connection is not None
            if not self._frames:
                if connection.in_transaction():
                    connection.rollback()  # end an implicit read transaction
                self._begin_mode(connection, write=self._writeable)
                frame = _Frame(connection.begin(), savepoint)
                self._doomed = False
                self._on_transaction_begin(connection)
            elif savepoint or self._frames[-1].savepoint:
                frame = _Frame(connection.begin_nested(), True)
            else:
                frame = _Frame(None, False)
            frame.pending = len(self._after_commit)
            self._frames.append(frame)
            try:
                self._lock_tables(connection, list(lock))
                yield
            except BaseException:
                self._frames.pop()
                if frame.trans is not None:
                    if frame.trans.is_active:
                        frame.trans.rollback()
                    del self._after_commit[frame.pending :]  # what the block read is undone
                else:
                    self._doomed = True
                if not self._frames:
                    self._after_commit.clear()
                raise
            self._frames.pop()
            if frame.trans is None:
                return
            if not self._frames and self._doomed:
                frame.trans.rollback()
                self._doomed = False
                self._after_commit.clear()
                raise TransactionAbortedError(
                    "An operation inside this transaction failed, so all of its work was rolled "
                    "back; use transaction(savepoint=True) around steps whose errors you catch."
                )
            try:
                frame.trans.commit()
            except BaseException:
                if not self._frames:
                    self._after_commit.clear()
                raise
            if not self._frames:
                callbacks, self._after_commit = self._after_commit, []
                for callback in callbacks:
                    callback()

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` once the outermost transaction commits; forget it on rollback.

        Outside a transaction it runs at once. Caches use it to keep what a
        transaction read without keeping what a rollback undoes.
        """
        if self._frames:
            self._after_commit.append(callback)
        else:
            callback()

    def _on_transaction_begin(self, connection: sqlalchemy.Connection) -> None:  # noqa: B027
        """Hook run right after an outermost BEGIN."""

    def _lock_tables(  # noqa: B027
        self, connection: sqlalchemy.Connection, tables: list[sqlalchemy.Table]
    ) -> None:
        """Lock ``tables`` for writing until the transaction ends (no-op: writes serialise)."""

    @contextmanager
    def _connect_for_read(self) -> Iterator[sqlalchemy.Connection]:
        """The session connection, or a short-lived one, for reading."""
        if self._connection is not None:
            connection = self._connection
            if not self._frames:
                self._begin_mode(connection, write=False)
            try:
                yield connection
            finally:
                if not self._frames and connection.in_transaction():
                    connection.rollback()
            return
        if not self.KEEP_READER:
            with self._connect_autocommit() as connection:
                yield connection
            return
        # Reads share one connection in autocommit mode: no pool checkout,
        # BEGIN or ROLLBACK per query, and no snapshot held between them.
        reader = self._held.reader
        self._held.reader = None  # a nested read gets its own connection
        if reader is not None and self._is_stale(reader):
            with contextlib.suppress(Exception):
                reader.close()
            reader = None
        if reader is None:
            reader = self._connect_autocommit()
        try:
            yield reader
        except BaseException:
            with contextlib.suppress(Exception):
                reader.close()
            raise
        else:
            if self._held.reader is None and not reader.closed:
                self._held.reader = reader
            else:
                reader.close()

    def _connect_autocommit(self) -> sqlalchemy.Connection:
        """A new connection on which every statement commits by itself."""
        return self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def query(
        self, sql: sqlalchemy.sql.expression.Executable, *args: Any, **kwargs: Any
    ) -> Iterator[sqlalchemy.CursorResult[*tuple[Any, ...]]]:
        """Run a read query; the result is valid only inside the block.

        Uses the session connection when one is open, otherwise the kept read connection.
        """
        # A kept connection the server dropped since its last use: a read
        # outside a session is retried once, on a new connection.
        attempts = 2 if self._connection is None else 1
        for attempt in range(attempts):
            with self._connect_for_read() as connection:
                try:
                    result = connection.execute(sql, *args, **kwargs)
                except sqlalchemy.exc.DBAPIError as exc:
                    if exc.connection_invalidated and attempt + 1 < attempts:
                        continue  # the invalidated connection is replaced on the next try
                    raise
                try:
                    yield result
                finally:
                    result.close()
                return

    # ------------------------------------------------------------------
    # Schema

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
            self._checkWriteable("create tables")
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
        self._checkWriteable(f"create table {name!r}")
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

    # ------------------------------------------------------------------
    # Writes

    def is_transient(self, error: BaseException) -> bool:
        """Whether ``error`` (or what caused it) means "repeat the transaction": it collided
        with another client's (deadlock, serialization failure) and was rolled back whole."""
        return False

    def _checkWriteable(self, what: str) -> None:
        if not self._writeable:
            raise ReadOnlyDatabaseError(
                f"Cannot {what}: database {self} was opened read-only; reopen it with "
                "writeable=True to change it."
            )

    @contextmanager
    def _writing(self, what: str) -> Iterator[sqlalchemy.Connection]:
        """A connection inside a (possibly joined) transaction, with errors translated."""
        self._checkWriteable(what)
        frames = self._frames
        try:
            if frames and not frames[-1].savepoint and self._connection is not None:
                # Joining an open transaction: what a nested transaction() block
                # does, without its bookkeeping (an error dooms the transaction).
                try:
                    yield self._connection
                except BaseException:
                    self._doomed = True
                    raise
            else:
                with self.transaction():
                    assert self._connection is not None
                    yield self._connection
        except sqlalchemy.exc.IntegrityError as exc:
            if isinstance(exc, ConflictError):
                raise
            raise ConflictError(f"Cannot {what}: {exc.orig}", exc.orig) from exc

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
                connection.execute(table.insert().from_select(columns, select))
            return
        if not rows:
            return
        with self._writing(f"insert into {table.name}") as connection:
            connection.execute(table.insert(), list(rows))

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
                return self._rowcount(connection.execute(stmt), 0)
            return self._rowcount(connection.execute(stmt, list(rows)), len(rows))

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
                    stmt = table.delete().where(*where, self.inClause(column, batch))
                    total += self._rowcount(connection.execute(stmt), 0)
                return total
            stmt = table.delete().where(
                *where, *(table.columns[c] == sqlalchemy.bindparam(f"_key_{c}") for c in varying)
            )
            stmt = stmt.execution_options(preserve_rowcount=True)
            params = [{f"_key_{c}": r[c] for c in varying} for r in rows]
            return self._rowcount(connection.execute(stmt, params), len(params))

    def updateWhere(
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

    def inClause(
        self, column: sqlalchemy.ColumnElement[Any], values: Sequence[Any]
    ) -> sqlalchemy.ColumnElement[bool]:
        """``column IN values``, in the form this backend runs fastest.

        ``values`` must hold at most `IN_BATCH_SIZE` items; split larger sets
        with `chunked`.
        """
        return column.in_(values)

    # ------------------------------------------------------------------
    # Driver-level statements keyed by dataset ids: the bulk hot paths skip
    # SQLAlchemy's per-value processing and IN-list rendering.

    #: Whether one writer at a time holds the whole database (SQLite's BEGIN IMMEDIATE).
    SERIALIZED_WRITES: bool = False

    #: The driver's parameter placeholder.
    PLACEHOLDER: str = "?"

    #: Appended to a SELECT to lock its rows (empty where writers serialise).
    FOR_UPDATE: str = ""

    #: Appended to a SELECT to lock its rows, skipping rows others have locked.
    FOR_UPDATE_SKIP_LOCKED: str = ""

    def quoted(self, table: sqlalchemy.Table) -> str:
        """The table's name, qualified and quoted, for driver-level SQL."""
        return str(self._engine.dialect.identifier_preparer.format_table(table))

    def quoteName(self, name: str) -> str:
        """A column name, quoted if needed, for driver-level SQL."""
        return str(self._engine.dialect.identifier_preparer.quote(name))

    def resultProcessors(
        self, columns: Iterable[sqlalchemy.ColumnElement[Any]]
    ) -> list[Callable[[Any], Any] | None]:
        """Per column, what turns a driver value into the column type's Python value.

        `None` where the driver value is already right (most strings and numbers).
        """
        dialect = self._engine.dialect
        return [c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns]

    def bindValue(self, column: sqlalchemy.ColumnElement[Any], value: Any) -> Any:
        """``value`` as the driver binds it for ``column`` (its type's bind processor applied)."""
        dialect = self._engine.dialect
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        return value if process is None else process(value)

    def insertMany(
        self,
        table: sqlalchemy.Table,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        encoded: Iterable[str] = (),
    ) -> None:
        """Insert tuples of ``columns`` values in one driver-level executemany.

        Values go through their column types' bind processors, so this
        stores exactly what `insert` would, without per-row SQLAlchemy work;
        values of the ``encoded`` columns are in driver form already (see
        `encodeIds`, `bindValue`) and go in as they are.

        Raises
        ------
        ConflictError
            If a row violates a constraint; nothing is inserted.
        """
        key = (table, tuple(columns), tuple(encoded))
        prepared = self._insert_many_cache.get(key)
        if prepared is None:
            found = self._bound(table, columns, encoded)
            names = ", ".join(self.quoteName(c) for c in columns)
            marks = ", ".join([self.PLACEHOLDER] * len(columns))
            sql = f"INSERT INTO {self.quoted(table)} ({names}) VALUES ({marks})"
            prepared = self._insert_many_cache.setdefault(key, (found, sql))
        processors, sql = prepared
        if processors:
            converted = []
            for row in rows:
                values = list(row)
                for i, process in processors:
                    values[i] = process(values[i])
                converted.append(tuple(values))
        else:
            converted = [tuple(row) for row in rows]
        if not converted:
            return
        self.executeRaw(sql, converted, many=True, what=f"insert into {table.name}")

    #: Whether `insert_guarded` works here (one statement for several inserts).
    GUARDED_INSERTS: bool = False

    def insert_guarded(
        self,
        guard: tuple[sqlalchemy.Table, Mapping[str, Any]],
        inserts: Sequence[tuple[sqlalchemy.Table, Sequence[str], Sequence[Any], Iterable[str]]],
    ) -> bool:
        """Insert one row into each table, in order, in one statement, only if ``guard``
        (a table and column values) names an existing row, which stays share-locked until
        the transaction ends; whether the rows went in.

        Each insert is ``(table, columns, values, encoded columns)`` as in
        `insertMany`. Only where `GUARDED_INSERTS` is true.

        Raises
        ------
        ConflictError
            If a row violates a constraint; nothing is inserted.
        """
        raise NotImplementedError(f"{type(self).__name__} has no guarded inserts.")

    def _bound(
        self, table: sqlalchemy.Table, columns: Sequence[str], encoded: Iterable[str]
    ) -> list[tuple[int, Any]]:
        """``(index, bind processor)`` of the ``columns`` that need one (not ``encoded`` ones)."""
        dialect = self._engine.dialect
        skip = set(encoded)
        return [
            (i, p)
            for i, c in enumerate(columns)
            if c not in skip
            and (p := table.columns[c].type.dialect_impl(dialect).bind_processor(dialect))
            is not None
        ]

    def sqlInValues(self, column: str, n: int) -> str:
        """SQL for ``column IN (n values)`` of a plain type; parameters from `inValuesParams`."""
        return _in_placeholders(column, n)

    def inValuesParams(self, values: list[Any]) -> list[Any]:
        """The parameters that go with `sqlInValues`."""
        return values

    def encodeIds(self, ids: Iterable[uuid.UUID]) -> list[Any]:
        """Dataset ids as the driver binds them to a `~databutler.ddl.GUID` column."""
        return [i.bytes for i in ids]

    def decodeIds(self, values: Iterable[Any]) -> list[uuid.UUID]:
        """`~databutler.ddl.GUID` values as the driver returns them, as `uuid.UUID`."""
        return [_uuid_from_bytes(bytes(v)) for v in values]

    def sqlInIds(self, column: str, n: int) -> str:
        """SQL for ``column IN (n encoded ids)``; parameters from `inIdsParams`."""
        return _in_placeholders(column, n)

    def inIdsParams(self, encoded: list[Any]) -> list[Any]:
        """The parameters that go with `sqlInIds`."""
        return encoded

    def executeRaw(
        self, sql: str, params: Sequence[Any] = (), *, many: bool = False, what: str
    ) -> int:
        """Run a driver-level write; return the row count.

        ``params`` are one statement's parameters, or with ``many`` a list of
        tuples, one per execution. Joins the enclosing transaction, like
        every other write.
        """
        args: Any = list(params) if many else tuple(params)
        with self._writing(what) as connection:
            result = connection.exec_driver_sql(
                sql, args, execution_options={"preserve_rowcount": True}
            )
            return self._rowcount(result, 0)

    @contextmanager
    def queryRaw(self, sql: str, params: Sequence[Any] = ()) -> Iterator[list[tuple[Any, ...]]]:
        """Run a driver-level read; rows are driver tuples (ids as in `decodeIds`).

        The rows are fetched at once: keep the result small (a batch).
        """
        attempts = 2 if self._connection is None else 1  # as in `query`
        for attempt in range(attempts):
            with self._connect_for_read() as connection:
                try:
                    rows = self._fetch_raw(connection, sql, tuple(params))
                except sqlalchemy.exc.DBAPIError as exc:
                    if exc.connection_invalidated and attempt + 1 < attempts:
                        continue
                    raise
                yield rows
                return

    def _fetch_raw(
        self, connection: sqlalchemy.Connection, sql: str, params: tuple[Any, ...]
    ) -> list[tuple[Any, ...]]:
        """All rows of one driver-level statement.

        On a connection whose transaction state SQLAlchemy already settled
        (autocommit, or a transaction it began) and that nothing listens to,
        the statement goes straight to a driver cursor: SQLAlchemy's result
        set-up costs more than a small indexed query. Driver errors are raised
        as SQLAlchemy's, and a dropped connection is invalidated, as
        `~sqlalchemy.engine.Connection.exec_driver_sql` does.
        """
        engine = connection.engine
        direct = not engine.dispatch.before_cursor_execute and (
            connection.in_transaction()
            or connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
        )
        if not direct:
            result = connection.exec_driver_sql(sql, params)
            try:
                cursor = result.cursor
                return list(cursor.fetchall()) if cursor is not None and cursor.description else []
            finally:
                result.close()
        dialect = engine.dialect
        fairy = connection.connection
        cursor = fairy.cursor()
        try:
            cursor.execute(sql, params)
            try:
                return list(cursor.fetchall())
            except dialect.loaded_dbapi.ProgrammingError:
                return []  # a statement without rows (psycopg refuses to fetch; sqlite3 gives [])
        except dialect.loaded_dbapi.Error as exc:
            dropped = dialect.is_disconnect(exc, fairy.dbapi_connection, cursor)
            if dropped:
                connection.invalidate(exc)
            raise sqlalchemy.exc.DBAPIError.instance(
                sql,
                params,
                exc,
                dialect.loaded_dbapi.Error,
                connection_invalidated=dropped,
                dialect=dialect,
            ) from exc
        finally:
            with contextlib.suppress(Exception):
                cursor.close()


def _uuid_from_bytes_checked(value: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=value)


def _uuid_from_bytes_fast(value: bytes) -> uuid.UUID:
    # uuid.UUID(bytes=...) validates its arguments at length; 16 bytes from a
    # GUID column need none of it. Same slots as UUID.__init__ sets.
    result = object.__new__(uuid.UUID)
    object.__setattr__(result, "int", int.from_bytes(value, "big"))
    object.__setattr__(result, "is_safe", uuid.SafeUUID.unknown)
    return result


def _pick_uuid_from_bytes() -> Callable[[bytes], uuid.UUID]:
    sample = uuid.uuid4()
    try:
        copy = _uuid_from_bytes_fast(sample.bytes)
        if copy == sample and hash(copy) == hash(sample) and str(copy) == str(sample):
            return _uuid_from_bytes_fast
    except (AttributeError, TypeError):
        pass
    return _uuid_from_bytes_checked


_uuid_from_bytes = _pick_uuid_from_bytes()


@functools.lru_cache(maxsize=64)
def _in_placeholders(column: str, n: int) -> str:
    return f"{column} IN ({', '.join('?' * n)})"


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
