"""Connections and transactions of a `Database`: the mixin `DatabaseConnections`.

It holds what a `~databutler.registry.interfaces.Database` does with its
connections: the read connection and the session connection kept for the
instance's lifetime (`_HeldConnections`, closed by `dispose`, `close` or a
finalizer), sessions, nested transactions with savepoints and after-commit
callbacks (`on_commit`, `on_rollback`), writes deferred to the next statement or the commit
(`Deferred`, sent in one round trip where the backend pipelines), the
connection a read runs on, and `query`. It is the lowest layer of the
`Database`: it imports no other part of it.
"""

from __future__ import annotations

import contextlib
import warnings
import weakref
from abc import ABC
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy
import sqlalchemy.exc

from ..._exceptions import (
    ConcurrentUpdateError,
    ConflictError,
    DatabaseConnectionError,
    ReadOnlyDatabaseError,
    TransactionAbortedError,
)

__all__ = ["DatabaseConnections", "Deferred", "GuardChangedError"]


class GuardChangedError(ConcurrentUpdateError):
    """The guard row of a deferred `insert_guarded` had changed when the transaction was
    sent: nothing was written, and the work repeats on fresh caches (see `repeatable`)."""


@dataclass
class _Frame:
    """One level of `Database.transaction` nesting."""

    trans: sqlalchemy.Transaction | None
    savepoint: bool
    #: How many `Database.on_commit` callbacks were pending when the block began.
    pending: int = 0
    #: `Database.on_rollback` callbacks of a frame with a transaction or savepoint of its own,
    #: run if it rolls back.
    undo: list[Callable[[], None]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Deferred:
    """A driver-level write whose result nobody reads, waiting to be sent (see
    `DatabaseDriverStatements.execute_deferred`)."""

    sql: str
    #: One statement's parameters, or with ``many`` a list of them.
    args: Any
    many: bool
    #: What the statement does, for an error message ("insert into dataset_location").
    what: str
    #: Turns the `ConflictError` a constraint violation becomes into the caller's error.
    explain: Callable[[ConflictError], BaseException] | None = None
    #: The (unqualified) table this statement only inserts one row into, or `None`. Such
    #: statements may be sent as one (see `DatabaseConnections._send_deferred`); a
    #: constraint violation there is told apart by its table.
    inserts_into: str | None = None
    #: Called with the statement's row count once it has been sent, or `None`.
    counted: Callable[[int], None] | None = None

    def conflict(self, error: sqlalchemy.exc.IntegrityError) -> BaseException:
        """The error a constraint violation of this statement is raised as."""
        conflict = ConflictError(f"Cannot {self.what}: {error.orig}", error.orig)
        return conflict if self.explain is None else self.explain(conflict)


class _HeldConnections:
    """The connections a `Database` keeps for its lifetime: one for reads, one for sessions.

    Kept apart from the `Database` so that a finalizer can close them when
    the database is forgotten without keeping it alive.
    """

    __slots__ = ("cursor", "cursor_of", "reader", "streamer", "writer")

    def __init__(self) -> None:
        self.reader: sqlalchemy.Connection | None = None
        self.writer: sqlalchemy.Connection | None = None
        #: One for streams outside a session, where the backend streams without a transaction.
        self.streamer: sqlalchemy.Connection | None = None
        #: A driver cursor kept for reads on ``reader``, and the driver connection it is of.
        self.cursor: Any = None
        self.cursor_of: Any = None

    def close(self) -> None:
        self.cursor = self.cursor_of = None
        for connection in (self.reader, self.writer, self.streamer):
            if connection is not None:
                with contextlib.suppress(Exception):  # the server may be gone already
                    connection.close()
        self.reader = self.writer = self.streamer = None


def _finalize(held: _HeldConnections, engine: sqlalchemy.engine.Engine | None) -> None:
    held.close()
    if engine is not None:
        with contextlib.suppress(Exception):
            engine.dispose()


class DatabaseConnections(ABC):
    """The connection and transaction state of a `Database`, and what works on it.

    Not used on its own: `Database` inherits it, and sets the attributes
    declared here in its constructor.
    """

    #: Keep one connection for reads and one for sessions open for the
    #: instance's lifetime, instead of a pool checkout (with a ping) per call.
    #: They are closed by `dispose`, or by a finalizer once the instance is
    #: forgotten; one found dropped by the server is replaced before use.
    KEEP_READER: bool = True

    _engine: sqlalchemy.engine.Engine
    _writeable: bool
    #: The session connection, while a `session` block is open.
    _connection: sqlalchemy.Connection | None
    _frames: list[_Frame]
    _doomed: bool
    _after_commit: list[Callable[[], None]]
    #: Writes queued by `execute_deferred`, in order, sent before anything else runs.
    _deferred: list[Deferred]
    #: Depth of `repeatable` blocks.
    _repeatable: int
    _held: _HeldConnections
    #: A row the open transaction writes, whose presence shows that it committed (`witness`),
    #: after the depth of the block that wrote it.
    _witness: tuple[int, sqlalchemy.Table, str, Any] | None = None
    _clones: weakref.WeakSet[DatabaseConnections]
    #: Changes when an outermost transaction begins and when any block rolls back: see
    #: `transaction_scope`.
    _scope: int = 0

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
        if (
            not self.KEEP_READER
            or connection.closed
            or connection.invalidated
            or self._held.writer is not None
        ):
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
        ReadOnlyDatabaseError
            When the backend refuses to write the database (its file or
            directory is not writable, say: see `_write_refused`); nothing of
            the transaction is kept.
        DatabaseConnectionError
            When the connection to the server is lost in the block or its
            COMMIT. Lost in the COMMIT, the `witness` row, read on a new
            connection, tells whether the commit happened: if it did, the block
            ends normally; if it cannot be told, ``in_doubt`` is set.

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
                try:
                    frame = _Frame(connection.begin(), savepoint)
                except sqlalchemy.exc.DBAPIError as exc:  # BEGIN IMMEDIATE takes a write lock
                    self._raise_refused_write(exc, "begin a write transaction")
                    raise
                self._scope += 1
                self._doomed = False
                self._on_transaction_begin(connection)
            elif savepoint or self._frames[-1].savepoint:
                self.flush_deferred()  # queued writes belong to the enclosing block
                frame = _Frame(connection.begin_nested(), True)
            else:
                frame = _Frame(None, False)
            outermost = not self._frames
            try:
                with self._framed(connection, frame, lock):
                    yield
            except sqlalchemy.exc.DBAPIError as exc:
                self._raise_refused_write(exc, "write to the database")
                if not (outermost and exc.connection_invalidated):
                    raise
                raise DatabaseConnectionError(
                    "The connection to the database server was lost during a transaction, "
                    f"so none of its work was kept ({_first_line(exc)}); check that the "
                    "server runs, then repeat the transaction."
                ) from exc
            finally:
                if outermost:
                    self._witness = None
                    self._on_transaction_end(connection)

    def _write_refused(
        self, error: sqlalchemy.exc.DBAPIError, what: str
    ) -> ReadOnlyDatabaseError | None:
        """``error`` as a `ReadOnlyDatabaseError` ("Cannot {what}: ..."), if it says that the
        database cannot be written here (its file's or directory's permissions, a read-only
        mount); `None` for any other error. Backends override it; the default knows none."""
        return None

    def _raise_refused_write(self, error: sqlalchemy.exc.DBAPIError, what: str) -> None:
        """Raise ``error`` as `_write_refused` names it, if it does; return otherwise."""
        refused = self._write_refused(error, what) if self._writeable else None
        if refused is not None:
            raise refused from error

    def witness(self, table: sqlalchemy.Table, column: str, value: Any) -> None:
        """Name a row the open transaction writes (``column`` equal to ``value`` in ``table``),
        unique to it: if the connection is lost while the transaction commits, a read on a
        new connection tells from it whether the commit happened. The first one named
        serves; outside a transaction this does nothing."""
        if self._frames and self._witness is None:
            self._witness = (len(self._frames), table, column, value)

    def _committed_after_all(self) -> bool | None:
        """After the connection was lost in a COMMIT: whether the transaction committed, read
        from its `witness` on a new connection; `None` if it cannot be told."""
        if self._witness is None:
            return None
        _, table, column, value = self._witness
        sql = sqlalchemy.select(sqlalchemy.literal(1)).where(table.c[column] == value)
        for _ in range(2):  # a pooled connection may be as dead as the lost one
            try:
                with self._engine.connect() as connection:
                    return connection.execute(sql).first() is not None
            except sqlalchemy.exc.DBAPIError as exc:
                if not exc.connection_invalidated:
                    return None
            except Exception:
                return None
        return None

    @contextmanager
    def _framed(
        self, connection: sqlalchemy.Connection, frame: _Frame, lock: Iterable[sqlalchemy.Table]
    ) -> Iterator[None]:
        """Run the block of `transaction` in ``frame``, then end the frame: commit, release
        the savepoint or roll back (all of it, when a nested block failed)."""
        frame.pending = len(self._after_commit)
        self._frames.append(frame)
        try:
            self._lock_tables(connection, list(lock))
            yield
        except BaseException:
            self._scope += 1  # what the block wrote (or the whole transaction) is undone
            self._frames.pop()
            if self._witness is not None and self._witness[0] > len(self._frames):
                self._witness = None  # its row is rolled back with the block
            if frame.trans is not None:
                self._deferred.clear()  # queued since the block began: never sent
                ended = False
                try:
                    if frame.trans.is_active:
                        frame.trans.rollback()
                        ended = True
                except Exception:  # the block's own error is the one to raise
                    if self._frames:
                        self._doomed = True  # the enclosing transaction must not commit
                if not ended and not self._frames:
                    _end_failed(connection, frame.trans, outermost=True)
                del self._after_commit[frame.pending :]  # what the block read is undone
                self._undo(frame)
            else:
                self._doomed = True
            if not self._frames:
                self._after_commit.clear()
            raise
        self._frames.pop()
        if frame.trans is None:
            return
        if not self._frames and self._doomed:
            self._deferred.clear()
            frame.trans.rollback()
            self._doomed = False
            self._after_commit.clear()
            self._undo(frame)
            raise TransactionAbortedError(
                "An operation inside this transaction failed, so all of its work was rolled "
                "back; use transaction(savepoint=True) around steps whose errors you catch."
            )
        try:
            if self._deferred:
                # Queued writes go out with the COMMIT (or the savepoint's release):
                # one round trip where the backend pipelines.
                queued, self._deferred = self._deferred, []
                self._send_deferred(connection, queued, commit=not self._frames)
            frame.trans.commit()
        except BaseException as exc:
            self._scope += 1
            _end_failed(connection, frame.trans, outermost=not self._frames)
            lost = (
                not self._frames
                and isinstance(exc, sqlalchemy.exc.DBAPIError)
                and exc.connection_invalidated
            )
            committed = self._committed_after_all() if lost else False
            if not committed:
                del self._after_commit[frame.pending :]
                if not self._frames:
                    self._after_commit.clear()
                self._undo(frame)
            if committed is None:
                raise DatabaseConnectionError(
                    "The connection to the database server was lost while a transaction "
                    f"committed ({_first_line(exc)}), and whether the server committed it "
                    "cannot be told now: look for its work once the server is back.",
                    in_doubt=True,
                ) from exc
            if not committed:
                raise
            # The server committed it; only its reply was lost: the transaction succeeded.
        owner = self._undo_owner()
        if owner is not None:  # a savepoint released: the enclosing block's rollback undoes it
            owner.undo.extend(frame.undo)
        frame.undo = []
        if not self._frames:
            callbacks, self._after_commit = self._after_commit, []
            for callback in callbacks:
                callback()

    def flush_deferred(self) -> None:
        """Send the writes `execute_deferred` queued, before anything else runs.

        Every statement of the session runs after it: reads see the queued
        rows, and errors come out in program order. A failure here fails
        the enclosing transaction block, as the write itself would have.
        """
        if self._deferred:
            self._send_queued()

    def _send_queued(self, last: Deferred | None = None) -> int:
        """Send the queued writes (and then ``last``) together; the last one's row count.

        With ``last``, a write whose row count its caller reads (`execute_raw`)
        goes out with the writes queued before it: one round trip, not two.
        """
        queued, self._deferred = self._deferred, []
        if last is not None:
            queued.append(last)
        connection = self._connection
        assert connection is not None, "writes are deferred only inside a transaction"
        try:
            return self._send_deferred(connection, queued, commit=False)
        except BaseException:
            if self._frames and not self._frames[-1].savepoint:
                self._doomed = True  # the server aborted the transaction
            raise

    def _send_deferred(
        self, connection: sqlalchemy.Connection, queued: list[Deferred], *, commit: bool
    ) -> int:
        """Send ``queued`` in order (and then COMMIT, if ``commit``), as few round trips
        as the backend allows; a constraint violation raises its statement's `Deferred.conflict`.
        Returns the row count of the last statement.

        Only backends that set `PIPELINED_WRITES` queue writes; others run them at once.
        """
        raise NotImplementedError(f"{type(self).__name__} does not defer writes.")

    #: Whether `execute_deferred` queues writes to send them together (a pipelining driver).
    PIPELINED_WRITES: bool = False

    def transaction_scope(self) -> int | None:
        """A token for what the open transaction has done so far; `None` outside one.

        It stays the same while the transaction goes on and changes when it
        ends or when any block of it rolls back, so that a cache can let the
        transaction reuse what it read or wrote itself (`CommittedCache`)
        without keeping anything a rollback undid.
        """
        return self._scope if self._frames else None

    #: Whether `ensureTableExists` can create a table inside a transaction, in a
    #: `tables_in_transaction` block: the table then commits or rolls back with the rest.
    #: Where writers serialise (SQLite) that makes no client wait longer than the
    #: transaction would anyway; elsewhere (PostgreSQL) the locks a CREATE TABLE takes on
    #: the tables it references would stop their writers until the commit, so tables are
    #: made in short transactions of their own, before the work that uses them.
    TABLES_IN_TRANSACTIONS: bool = False

    #: Depth of `tables_in_transaction` blocks.
    _tables_in_transaction: int = 0

    @contextmanager
    def tables_in_transaction(self) -> Iterator[bool]:
        """Let `ensureTableExists` create a missing table inside the transaction in the
        block, where the backend can (`TABLES_IN_TRANSACTIONS`); yields whether it can.

        Elsewhere it still refuses to (`RuntimeError`): make the tables first. For
        work that registers what needs a table and must leave nothing if it fails.
        """
        self._tables_in_transaction += 1
        try:
            yield self.TABLES_IN_TRANSACTIONS
        finally:
            self._tables_in_transaction -= 1

    def on_rollback(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` if what the block has done so far is rolled back: when the
        innermost savepoint (or the whole transaction) it was called in rolls back.

        A savepoint that is released hands its callbacks to the enclosing block; the
        outermost commit forgets them. Outside a transaction it does nothing (there is
        nothing to roll back). Caches use it to forget what a rollback undoes.
        """
        owner = self._undo_owner()
        if owner is not None:
            owner.undo.append(callback)

    def _undo_owner(self) -> _Frame | None:
        """The innermost open frame with a transaction or savepoint of its own."""
        for frame in reversed(self._frames):
            if frame.trans is not None:
                return frame
        return None

    @staticmethod
    def _undo(frame: _Frame) -> None:
        """Run the `on_rollback` callbacks of ``frame``, which rolled back; last first."""
        callbacks, frame.undo = frame.undo, []
        for callback in reversed(callbacks):
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

    def _on_transaction_end(self, connection: sqlalchemy.Connection) -> None:  # noqa: B027
        """Hook run once an outermost transaction has committed or rolled back (or failed to)."""

    def _lock_tables(  # noqa: B027
        self, connection: sqlalchemy.Connection, tables: list[sqlalchemy.Table]
    ) -> None:
        """Lock ``tables`` for writing until the transaction ends (no-op: writes serialise)."""

    def _reads_on_session(self) -> bool:
        """Whether a read now goes to the session connection rather than the kept read one.

        Inside a transaction it must (it sees the transaction's writes). In a
        session outside one it need not where the backend lets reads have their
        own connection (`READS_ON_OWN_CONNECTION`): the session then holds
        nothing a read must see, and its connection would wrap each read in a
        BEGIN and a ROLLBACK, two round trips more.
        """
        return self._connection is not None and (
            bool(self._frames) or not (self.READS_ON_OWN_CONNECTION and self.KEEP_READER)
        )

    @contextmanager
    def _connect_for_read(self) -> Iterator[sqlalchemy.Connection]:
        """The session connection, or a short-lived one, for reading."""
        if self._reads_on_session():
            connection = self._connection
            assert connection is not None
            self.flush_deferred()  # a read sees what this session wrote
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
        # on it is retried once, on a new connection.
        attempts = 1 if self._reads_on_session() else 2
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

    #: Whether reads outside a transaction may run on a connection of their own, even in a
    #: session: a read on the kept autocommit one (`_reads_on_session`), a stream on a new
    #: one (PostgreSQL: its server-side cursor lives in a transaction, which a read or
    #: write on the session connection while the caller iterates would end).
    READS_ON_OWN_CONNECTION: bool = False

    @contextmanager
    def stream(
        self, sql: sqlalchemy.sql.expression.Executable, rows_per_fetch: int
    ) -> Iterator[sqlalchemy.CursorResult[*tuple[Any, ...]]]:
        """A read whose rows are fetched ``rows_per_fetch`` at a time; valid inside the block.

        Inside a transaction (or a `session`) it runs on that connection, and
        sees its writes. Outside one the caller may read and write while it
        iterates: where the backend needs it (`READS_ON_OWN_CONNECTION`) the
        stream has a connection and a read transaction of its own, which
        those reads and writes neither end nor wait for.
        """
        streamed = sql.execution_options(stream_results=True, yield_per=rows_per_fetch)
        if self._reads_on_session() or not self.READS_ON_OWN_CONNECTION:
            # In a transaction (or a session, where reads have no connection of their own).
            with self.session(), self.query(streamed) as result:
                yield result
            return
        connection = self._engine.connect()
        try:
            self._begin_mode(connection, write=False)
            with connection.begin():
                result = connection.execute(streamed)
                try:
                    yield result
                finally:
                    result.close()
        finally:
            connection.close()

    @contextmanager
    def stream_batches(
        self, sql: sqlalchemy.Select[Any], rows_per_fetch: int
    ) -> Iterator[Iterator[Sequence[Any]]]:
        """The rows of ``sql`` in lists of at most ``rows_per_fetch``, read as the iterator
        advances; valid inside the block. Rows are read by position.

        Where and how it reads is as in `stream`; backends may read the rows
        without a transaction where one statement's snapshot is enough.
        """
        with self.stream(sql, rows_per_fetch) as result:
            yield result.partitions(rows_per_fetch)

    def is_transient(self, error: BaseException) -> bool:
        """Whether ``error`` (or what caused it) means "repeat the transaction": it collided
        with another client's (deadlock, serialization failure, a changed guard) and was
        rolled back whole."""
        seen: set[int] = set()
        current: BaseException | None = error
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            if self._is_collision(current):
                return True
            current = current.__cause__ or current.__context__
        return False

    def _is_collision(self, error: BaseException) -> bool:
        """Whether ``error`` itself (not its causes) is a collision, for `is_transient`."""
        return isinstance(error, GuardChangedError)

    @contextmanager
    def repeatable(self) -> Iterator[None]:
        """Mark the block as repeated whole when it fails with a transient error.

        Its transactions may then defer a check whose failure only such a
        repeat mends: `insert_guarded` sends its guard with the COMMIT
        instead of on its own, and a changed guard raises `GuardChangedError`.
        """
        self._repeatable += 1
        try:
            yield
        finally:
            self._repeatable -= 1

    def _deferring(self) -> bool:
        """Whether writes queue now to go out with the next statement or the COMMIT."""
        return (
            self.PIPELINED_WRITES
            and bool(self._frames)
            and self._connection is not None
            and not self._engine.dispatch.before_cursor_execute  # listeners see every statement
        )


def _end_failed(
    connection: sqlalchemy.Connection,
    trans: sqlalchemy.engine.Transaction,
    *,
    outermost: bool,
) -> None:
    """End ``trans``, whose COMMIT (or RELEASE) failed, so that the connection takes the
    next BEGIN: SQLAlchemy leaves a transaction whose commit raised inactive but still the
    connection's, and SQLite may keep its own transaction open after a failed COMMIT (a
    full disk, an I/O error). Errors here are not raised: the commit's says what failed."""
    with contextlib.suppress(Exception), warnings.catch_warnings():
        warnings.simplefilter("ignore", sqlalchemy.exc.SAWarning)  # "already deassociated"
        trans.rollback()  # an inactive one is only taken off the connection
    if outermost:
        with contextlib.suppress(Exception):
            raw = connection.connection.dbapi_connection
            if raw is not None:
                raw.rollback()  # nothing where the driver's transaction is over


def _first_line(error: BaseException) -> str:
    """The driver's own message of ``error``, first line only, for an error's text."""
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__
