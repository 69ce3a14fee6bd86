"""PostgreSQL: for repositories shared by many users and processes."""

from __future__ import annotations

import collections
import contextlib
import functools
import importlib.util
import itertools
import logging
import re
import select
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, NoReturn, cast

import sqlalchemy
from sqlalchemy.dialects import postgresql

from ..._exceptions import (
    ConfigurationError,
    ConflictError,
    DatabaseStorageError,
    ReadOnlyDatabaseError,
    RepositoryError,
)
from ..interfaces import Database, Deferred, GuardChangedError
from ..interfaces._database_driver import StorageFailures, driver_error, name_storage_failures
from . import parse_database_url

__all__ = ["PostgresqlDatabase"]

_SCHEMA_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_DRIVERS = (("psycopg", "psycopg"), ("psycopg2", "psycopg2"))

#: Whether a writeable connection may create its namespace (set by ``fromUri``).
_CREATE: ContextVar[bool] = ContextVar("databutler_postgresql_create", default=True)


def _normalize_url(uri: str) -> sqlalchemy.engine.URL:
    url = parse_database_url(uri)
    if url.get_backend_name() != "postgresql":
        raise ConfigurationError(
            f"Not a PostgreSQL URI: {uri!r}; expected postgresql://user@host:port/dbname."
        )
    driver = url.get_driver_name() if "+" in url.drivername else None
    if driver is None:
        for module, name in _DRIVERS:
            if importlib.util.find_spec(module) is not None:
                return url.set(drivername=f"postgresql+{name}")
        raise ConfigurationError(
            "No PostgreSQL driver is installed: install psycopg 3 with "
            "`pip install 'databutler[postgresql]'` (or psycopg2 and use postgresql+psycopg2://)."
        )
    driver_module = {"psycopg": "psycopg", "psycopg2": "psycopg2"}.get(driver or "")
    if driver_module is None:
        raise ConfigurationError(
            f"Unsupported PostgreSQL driver {driver!r}; use postgresql+psycopg:// or "
            "postgresql+psycopg2://."
        )
    if importlib.util.find_spec(driver_module) is None:
        raise ConfigurationError(
            f"PostgreSQL driver {driver_module} is not installed: `pip install {driver_module}` "
            "(or `pip install 'databutler[postgresql]'` for psycopg 3)."
        )
    return url


def _check_namespace(namespace: str | None) -> None:
    if namespace is not None and not (
        isinstance(namespace, str) and _SCHEMA_RE.fullmatch(namespace)
    ):
        raise ConfigurationError(
            f"Invalid PostgreSQL namespace {namespace!r}: a schema name is 1-63 letters, "
            "digits and underscores, not starting with a digit."
        )


def _pipelines(engine: sqlalchemy.engine.Engine) -> bool:
    """Whether the engine's driver can send several statements before reading their results."""
    if engine.dialect.driver != "psycopg":
        return False  # psycopg2 has no pipeline mode
    import psycopg

    return bool(psycopg.Pipeline.is_supported())


def _chunks_rows(engine: sqlalchemy.engine.Engine) -> bool:
    """Whether the engine's driver can stream one statement's rows in chunks (libpq 17+)."""
    if engine.dialect.driver != "psycopg":
        return False
    import psycopg

    return psycopg.pq.version() >= 170000


def _with_first(
    first: Sequence[Any] | None, rest: Iterator[Sequence[Any]]
) -> Iterator[Sequence[Any]]:
    """The batch ``first`` (if any), then those of ``rest``."""
    if first is not None:
        yield first
        yield from rest


def _raise_failed(
    connection: sqlalchemy.Connection, exc: Any, culprit: Deferred | None
) -> NoReturn:
    """Raise the error of deferred writes that failed with ``exc`` (``culprit`` failed, if
    known): a constraint violation as its `Deferred.conflict`, else SQLAlchemy's error."""
    error = driver_error(
        connection,
        None,
        exc,
        culprit.sql if culprit is not None else "COMMIT",
        culprit.args if culprit is not None else (),
    )
    if culprit is not None and isinstance(error, sqlalchemy.exc.IntegrityError):
        raise culprit.conflict(error) from exc
    raise error from exc


def _guarded_shape(
    guard: tuple[sqlalchemy.Table, Mapping[str, Any]],
    inserts: Sequence[tuple[sqlalchemy.Table, Sequence[str], Sequence[Any], Iterable[str]]],
) -> tuple[Any, ...]:
    """What the SQL of an `insert_guarded` call depends on: the tables and column names."""
    guard_table, where = guard
    return guard_table, tuple(where), tuple((t, tuple(c), tuple(e)) for t, c, _, e in inserts)


def _execute_alone(raw: Any, sql: str) -> None:
    """Run ``sql`` (no parameters, no result) on a cursor of its own, never prepared."""
    cursor = raw.cursor()
    try:
        cursor.execute(sql, prepare=False)
    finally:
        cursor.close()


def _leave_autocommit(raw: Any) -> None:
    """Put ``raw`` back in psycopg's transaction mode, once no transaction block is open."""
    with contextlib.suppress(Exception):  # a dropped connection is invalidated anyway
        if raw is not None and raw.autocommit and raw.info.transaction_status == _IDLE:
            raw.autocommit = False


def _processed_row(values: Sequence[Any], processors: list[tuple[int, Any]]) -> list[Any]:
    """``values`` with the processors applied (``(index, processor)`` pairs)."""
    row = list(values)
    for i, process in processors:
        row[i] = process(row[i])
    return row


#: libpq's transaction status of a connection with no transaction open (``PQTRANS_IDLE``).
_IDLE = 0
#: At most this many queued inserts go out as one statement (a `put` makes four, one
#: more bridge and records row for each further datastore of a chain); more take the
#: pipeline, so that neither the statement's parameters nor the cache of its SQL grow.
_MAX_AS_ONE = 16
#: The SQLSTATE of a NOT NULL violation.
_NOT_NULL_VIOLATION = "23502"

#: SQLSTATEs of a transaction that collided with another one and was rolled back whole.
TRANSIENT_SQLSTATES = frozenset({"40001", "40P01"})

#: SQLSTATEs of a write the server refuses to this user or session: a read-only
#: transaction (a standby, ``default_transaction_read_only``), a privilege not granted.
_REFUSED_SQLSTATES = {
    "25006": "the server runs this session's transactions read-only (a standby, or "
    "default_transaction_read_only)",
    "42501": "this database user lacks the privilege",
}


#: SQLSTATEs of a server whose storage failed, and what to say of them.
_STORAGE_SQLSTATES = {
    "53100": "its disk is full",
    "58030": "reading or writing its files failed (an I/O error)",
    "XX001": "its data files are damaged",
    "XX002": "an index is damaged",
}

_LOG = logging.getLogger(__name__)


def _storage_failures(server: str) -> StorageFailures:
    """How the driver's errors of a server whose storage failed read: see
    `name_storage_failures`."""

    def name(error: BaseException) -> DatabaseStorageError | None:
        state = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
        why = _STORAGE_SQLSTATES.get(state) if isinstance(state, str) else None
        if why is None:
            return None
        detail = " ".join(str(error).split())
        return DatabaseStorageError(
            f"The PostgreSQL server at {server} failed: {why} ({detail}); the transaction "
            "was rolled back. Ask its administrator to fix that, then repeat."
        )

    return name


class PostgresqlDatabase(Database):
    """A `Database` on PostgreSQL; ``namespace`` is a schema, created when absent.

    Read-only instances run every transaction ``READ ONLY``; bulk ``IN``
    clauses bind one array parameter (``= ANY(:ids)``) instead of thousands
    of scalars; ``FOR UPDATE [SKIP LOCKED]`` and table locks are honoured.
    """

    # docstring inherited
    IN_BATCH_SIZE = 50_000

    def __init__(self, **kwargs: Any) -> None:
        _check_namespace(kwargs.get("namespace"))
        super().__init__(**kwargs)
        self.PIPELINED_WRITES = _pipelines(self._engine)
        self._chunked = _chunks_rows(self._engine)
        # psycopg 3 sends ids in binary (``%b``): its text form of a uuid[] costs about
        # 1.3 µs an id to build, five times the binary one (psycopg2 has text only).
        self._ids_mark = "%b" if self._engine.dialect.driver == "psycopg" else "%s"
        self._unanalyzed: dict[str, int] = {}  # rows this process wrote since its ANALYZE
        self._analyzed: dict[str, int] = {}  # rows it had written at that ANALYZE
        self._analyze_queued: dict[str, Callable[[], None]] = {}
        # `_defer_guarded`'s statements and `_send_as_one`'s, by the shape of the call.
        self._deferred_guarded_sql: dict[Any, tuple[list[str], list[list[tuple[int, Any]]]]] = {}
        self._combined_sql: dict[tuple[str, ...], str] = {}
        # `_driver_statement`'s compiled streams, by SQLAlchemy's cache key (see there).
        self._compiled_streams: collections.OrderedDict[Any, Any] = collections.OrderedDict()
        if self.namespace is None:
            return
        if self._writeable and _CREATE.get():
            try:
                with self._engine.begin() as connection:
                    connection.execute(
                        sqlalchemy.schema.CreateSchema(self.namespace, if_not_exists=True)
                    )
            except sqlalchemy.exc.DBAPIError as exc:
                refused = self._write_refused(exc, f"create schema {self.namespace!r}")
                if refused is None:
                    raise
                self._engine.dispose()
                raise refused from exc
        elif not _CREATE.get():
            with self._engine.connect() as connection:
                exists = connection.execute(
                    sqlalchemy.text("SELECT 1 FROM pg_namespace WHERE nspname = :name"),
                    {"name": self.namespace},
                ).first()
            if exists is None:
                self._engine.dispose()
                raise RepositoryError(
                    f"PostgreSQL schema {self.namespace!r} does not exist in "
                    f"{self._engine.url.render_as_string(hide_password=True)}: check "
                    "'registry.namespace' in butler.yaml; opening never creates it."
                )

    @classmethod
    def fromUri(
        cls,
        uri: str,
        *,
        origin: int,
        namespace: str | None = None,
        writeable: bool = True,
        create: bool = True,
    ) -> Database:
        """Connect to ``uri`` (see `Database.fromUri`), checking the namespace first.

        A writeable connection creates a missing namespace (schema) unless
        ``create=False`` (how repositories are opened), which refuses it with
        `~databutler.RepositoryError`.
        """
        _check_namespace(namespace)
        token = _CREATE.set(create)
        try:
            return super().fromUri(uri, origin=origin, namespace=namespace, writeable=writeable)
        finally:
            _CREATE.reset(token)

    @classmethod
    def makeEngine(cls, uri: str, *, writeable: bool = True) -> sqlalchemy.engine.Engine:
        # docstring inherited
        url = _normalize_url(uri)
        if url.get_driver_name() == "psycopg2":
            import psycopg2.extras  # type: ignore[import-untyped]

            psycopg2.extras.register_uuid()  # bind uuid.UUID like psycopg 3 does
        engine = sqlalchemy.create_engine(url, pool_pre_ping=True, pool_size=5, pool_use_lifo=True)
        try:
            with engine.connect():
                pass
        except Exception as exc:  # the driver's errors for hosts, ports, options, encodings
            engine.dispose()
            reason = exc.orig if isinstance(exc, sqlalchemy.exc.DBAPIError) else exc
            detail = " ".join(str(reason).split()) or type(reason).__name__
            raise ConfigurationError(
                f"Cannot connect to PostgreSQL at {url.render_as_string(hide_password=True)}: "
                f"{detail}. Check that the server runs and the URI is right."
            ) from exc
        name_storage_failures(engine, _storage_failures(url.render_as_string(hide_password=True)))
        return engine

    def _is_stale(self, connection: sqlalchemy.Connection) -> bool:
        # docstring inherited; an idle connection has nothing to read: data on
        # its socket is the server's goodbye (a terminated backend, a restart).
        if super()._is_stale(connection):
            return True
        try:
            fileno = connection.connection.dbapi_connection.fileno()  # type: ignore[union-attr]
            readable, _, _ = select.select([fileno], [], [], 0)
        except Exception:
            return True
        return bool(readable)

    PLACEHOLDER = "%s"
    FOR_UPDATE = " FOR UPDATE"
    FOR_UPDATE_SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"
    WRITING_CTES = True

    def encode_ids(self, ids: Iterable[uuid.UUID]) -> list[Any]:
        # docstring inherited; the driver binds uuid.UUID natively.
        return list(ids)

    def decode_ids(self, values: Iterable[Any]) -> list[uuid.UUID]:
        # docstring inherited
        return [v if isinstance(v, uuid.UUID) else uuid.UUID(str(v)) for v in values]

    # One value is bound as a plain comparison, more as one array parameter. A prepared
    # statement's generic plan uses ``column = $1`` as an index condition, where it
    # may turn ``column = ANY($1)`` on a later column of an index into a filter.

    def sql_in_ids(self, column: str, n: int) -> str:
        # docstring inherited
        mark = self._ids_mark
        return f"{column} = {mark}::uuid" if n == 1 else f"{column} = ANY({mark}::uuid[])"

    def in_ids_params(self, encoded: list[Any]) -> list[Any]:
        # docstring inherited
        return list(encoded) if len(encoded) == 1 else [encoded]

    def sql_in_values(self, column: str, n: int) -> str:
        # docstring inherited
        return f"{column} = %s" if n == 1 else f"{column} = ANY(%s)"

    def in_values_params(self, values: list[Any]) -> list[Any]:
        # docstring inherited
        return list(values) if len(values) == 1 else [values]

    #: Rows written to a table before this process first ANALYZEs it; after that,
    #: as many rows again as it had written at its last ANALYZE (so a table loaded
    #: a page at a time is analyzed a logarithmic number of times).
    ANALYZE_AFTER_ROWS = 500

    def _wrote(self, table: sqlalchemy.Table, rows: int) -> None:
        # docstring inherited. The planner's statistics follow bulk loads at once
        # (autovacuum would analyze the table only a minute or more later, and
        # until then plans take a loaded table for an empty one: nested loops
        # over the wrong index, minutes instead of a second). ANALYZE runs
        # after the COMMIT, never inside the caller's transaction.
        if rows <= 0:
            return
        key = self.quoted(table)
        written = self._unanalyzed.get(key, 0) + rows
        self._unanalyzed[key] = written
        if written < max(self.ANALYZE_AFTER_ROWS, self._analyzed.get(key, 0)):
            return
        if not self._frames:
            self._analyze(key)
            return
        queued = self._analyze_queued.get(key)
        if queued is not None and queued in self._after_commit:
            return  # already to run after this transaction's COMMIT
        callback = self._analyze_queued[key] = functools.partial(self._analyze, key)
        self.on_commit(callback)

    def _analyze(self, key: str) -> None:
        """ANALYZE ``key`` (a quoted table name) if enough was written since the last time."""
        self._analyze_queued.pop(key, None)
        written = self._unanalyzed.get(key, 0)
        if written < max(self.ANALYZE_AFTER_ROWS, self._analyzed.get(key, 0)):
            return
        self._unanalyzed[key] = 0
        self._analyzed[key] = self._analyzed.get(key, 0) + written
        try:
            with self.transaction():
                self.execute_raw(f"ANALYZE {key}", what="refresh the planner's statistics")
        except Exception as exc:  # statistics are an optimisation: never fail a write for them
            _LOG.debug("ANALYZE %s failed: %s", key, exc)

    GUARDED_INSERTS = True

    READS_ON_OWN_CONNECTION = True

    @contextlib.contextmanager
    def stream_batches(
        self, sql: sqlalchemy.Select[Any], rows_per_fetch: int
    ) -> Iterator[Iterator[Sequence[Any]]]:
        # docstring inherited. Outside a session, with psycopg 3 on libpq 17 or later, the
        # rows come in chunks of the one statement, run in autocommit on a connection kept
        # for streams: one round trip for a small result, where a server-side cursor costs
        # BEGIN, DECLARE, its description, FETCHes, CLOSE and COMMIT. The statement's
        # snapshot is the stream's, as the cursor's transaction was.
        statement = self._driver_statement(sql) if self._streams_in_chunks() else None
        if statement is None:
            with super().stream_batches(sql, rows_per_fetch) as batches:
                yield batches
            return
        text, params = statement
        columns = list(sql.selected_columns)
        held = self._held
        connection, held.streamer = held.streamer, None
        for attempt in range(2):
            if connection is None or connection.closed or connection.invalidated:
                connection = self._connect_autocommit()
            chunks = self._chunks(connection, text, params, columns, rows_per_fetch)
            try:
                first = next(chunks, None)
            except sqlalchemy.exc.DBAPIError as exc:
                with contextlib.suppress(Exception):
                    connection.close()
                connection = None
                if exc.connection_invalidated and attempt == 0:
                    continue  # dropped by the server while kept: once more on a new one
                raise
            break
        assert connection is not None
        keep = True
        try:
            yield _with_first(first, chunks)
        except GeneratorExit:
            raise  # the caller's generator was closed early: the connection is fine
        except BaseException:
            keep = False
            raise
        finally:
            chunks.close()  # an unread rest is cancelled and drained by the driver
            raw = connection.connection.dbapi_connection
            idle = raw is not None and raw.pgconn.transaction_status == _IDLE
            if keep and idle and held.streamer is None and not connection.invalidated:
                held.streamer = connection
            else:
                with contextlib.suppress(Exception):
                    connection.close()

    def _chunks(
        self,
        connection: sqlalchemy.Connection,
        sql: str,
        params: Mapping[str, Any],
        columns: Sequence[sqlalchemy.ColumnElement[Any]],
        size: int,
    ) -> Generator[Sequence[Any], None, None]:
        """The rows of ``sql`` on ``connection`` (autocommit), ``size`` at a time, streamed
        by the driver, with the result processors of ``columns`` applied as SQLAlchemy
        would (chosen by the types the server reports); driver errors are raised as
        SQLAlchemy's."""
        raw = connection.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        rows = cursor.stream(sql, params, size=size)
        error = connection.dialect.loaded_dbapi.Error
        processors: list[tuple[int, Any]] | None = None
        try:
            while True:
                try:
                    batch: list[Any] = list(itertools.islice(rows, size))
                except error as exc:
                    raise driver_error(connection, cursor, exc, sql, params) from exc
                if processors is None and batch:
                    found = self.result_processors(columns, (d[1] for d in cursor.description))
                    processors = [(i, p) for i, p in enumerate(found) if p is not None]
                if batch and processors:
                    batch = [_processed_row(row, processors) for row in batch]
                if batch:
                    yield batch
                if len(batch) < size:
                    return
        finally:
            with contextlib.suppress(Exception):
                rows.close()
            with contextlib.suppress(Exception):
                cursor.close()

    def _streams_in_chunks(self) -> bool:
        """Whether a stream may now run as one statement read in chunks (`stream_batches`)."""
        return (
            self._chunked
            and not self._reads_on_session()
            and not self._engine.dispatch.before_cursor_execute  # listeners see every statement
        )

    def _driver_statement(
        self, sql: sqlalchemy.Select[Any]
    ) -> tuple[str, Mapping[str, Any]] | None:
        """``sql`` as driver SQL and its parameters; `None` if a parameter's type converts
        its value (the cursor path binds those).

        Compiling a query's statement costs more than building it (about 360 µs
        for a butler query). Statements of one shape that differ only in their
        values (a ``where`` with other numbers, other collections) share
        SQLAlchemy's cache key, as they do in its own statement cache: the
        compiled form of the first serves the others, given their values
        (`_STREAMS_KEPT` shapes are kept, least recently used first out).
        """
        dialect = self._engine.dialect
        key = sql._generate_cache_key()
        # Not cacheable, or holding long lists (which a kept form would keep alive; their
        # statements' work dwarfs compiling them): compiled each time.
        if key is None or getattr(key, "params", None) or _long_lists(key.bindparams):
            compiled = sql.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
            if _converts_values(compiled, dialect):
                return None
            return str(compiled), compiled.params
        kept = self._compiled_streams
        entry = kept.get(key.key)
        if entry is None:
            compiled = sql.compile(dialect=dialect, cache_key=key)
            entry = kept[key.key] = (compiled, _converts_values(compiled, dialect), key.bindparams)
            if len(kept) > _STREAMS_KEPT:
                kept.popitem(last=False)
        else:
            with contextlib.suppress(KeyError):  # another thread's call may have dropped it
                kept.move_to_end(key.key)
        compiled, converts, first_binds = entry
        if converts:
            return None
        # This statement's values, by the names of the compiled one's parameters (they line
        # up in the two cache keys), with the IN lists expanded.
        values = {
            first.key: this.effective_value
            for first, this in zip(first_binds, key.bindparams, strict=True)
        }
        expanded = compiled.construct_expanded_state(values)
        return expanded.statement, expanded.parameters

    def insert_guarded(
        self,
        guard: tuple[sqlalchemy.Table, Mapping[str, Any]],
        inserts: Sequence[tuple[sqlalchemy.Table, Sequence[str], Sequence[Any], Iterable[str]]],
        *,
        explain: Callable[[ConflictError], BaseException] | None = None,
        on_changed: Callable[[], None] | None = None,
    ) -> bool:
        # docstring inherited. One round trip: the guard row is share-locked in a CTE and
        # every insert selects its row from it, so none happens unless it is there.
        # Foreign keys between the inserted rows are checked at the end of the statement.
        if on_changed is not None and self._repeatable and self._deferring():
            self._defer_guarded(guard, inserts, explain, on_changed)
            return True
        shape = _guarded_shape(guard, inserts)
        prepared = self._guarded_sql.get(shape)
        if prepared is None:
            prepared = self._guarded_sql[shape] = self._guarded_statement(shape)
        sql, bound = prepared
        params: list[Any] = list(guard[1].values())
        for (_, _, values, _), processors in zip(inserts, bound, strict=True):
            params.extend(_processed_row(values, processors))
        return self.execute_raw(sql, params, what="insert rows") > 0

    def _defer_guarded(
        self,
        guard: tuple[sqlalchemy.Table, Mapping[str, Any]],
        inserts: Sequence[tuple[sqlalchemy.Table, Sequence[str], Sequence[Any], Iterable[str]]],
        explain: Callable[[ConflictError], BaseException] | None,
        on_changed: Callable[[], None],
    ) -> None:
        """Queue `insert_guarded`'s rows as plain one-row inserts (see `_send_deferred`).

        The guard rides on the first insert: its first value is read through
        the share-locked guard row, so a changed guard makes it NULL, and the
        NOT NULL violation fails the transaction before anything is kept.
        """
        shape = _guarded_shape(guard, inserts)
        prepared = self._deferred_guarded_sql.get(shape)
        if prepared is None:
            prepared = self._deferred_guarded_sql[shape] = self._deferred_guarded_statements(shape)
        statements, bound = prepared
        where_values = list(guard[1].values())
        first_table, first_columns = inserts[0][0].name, inserts[0][1]

        def explain_first(conflict: ConflictError) -> BaseException:
            diag = getattr(conflict.orig, "diag", None)
            if (
                getattr(conflict.orig, "sqlstate", None) == _NOT_NULL_VIOLATION
                and getattr(diag, "table_name", None) == first_table
                and getattr(diag, "column_name", None) == first_columns[0]
            ):
                on_changed()
                return GuardChangedError(
                    "The registry's definitions changed while these rows were prepared; "
                    "nothing was written. Repeat the call."
                )
            explained: BaseException = conflict if explain is None else explain(conflict)
            return explained

        for n, ((table, _, values, _), sql, processors) in enumerate(
            zip(inserts, statements, bound, strict=True)
        ):
            row = _processed_row(values, processors)
            if n == 0:
                row[1:1] = where_values  # the guard's parameters follow the first value
            self._deferred.append(
                Deferred(
                    sql,
                    tuple(row),
                    False,
                    f"insert into {table.name}",
                    explain_first if n == 0 else explain,
                    table.name,
                )
            )

    def _deferred_guarded_statements(
        self, shape: Any
    ) -> tuple[list[str], list[list[tuple[int, Any]]]]:
        """The one-row inserts of `_defer_guarded` for one shape, and their bind processors."""
        guard_table, where, inserts = shape
        conditions = " AND ".join(f"{self.quote_name(c)} = %s" for c in where)
        dialect = self._engine.dialect
        statements, bound = [], []
        for n, (table, columns, encoded) in enumerate(inserts):
            marks = ["%s"] * len(columns)
            if n == 0:
                kind = table.columns[columns[0]].type.compile(dialect=dialect)
                marks[0] = (
                    f"(SELECT CAST(%s AS {kind}) FROM {self.quoted(guard_table)} "
                    f"WHERE {conditions} FOR SHARE)"
                )
            names = ", ".join(self.quote_name(c) for c in columns)
            statements.append(
                f"INSERT INTO {self.quoted(table)} ({names}) VALUES ({', '.join(marks)})"
            )
            bound.append(self._bound(table, columns, encoded))
        return statements, bound

    def _guarded_statement(self, shape: Any) -> tuple[str, list[list[tuple[int, Any]]]]:
        """The SQL of `insert_guarded` for one shape, and each insert's bind processors."""
        guard_table, where, inserts = shape
        conditions = " AND ".join(f"{self.quote_name(c)} = %s" for c in where)
        parts = [f"g AS (SELECT 1 FROM {self.quoted(guard_table)} WHERE {conditions} FOR SHARE)"]
        statements, bound = [], []
        dialect = self._engine.dialect
        for table, columns, encoded in inserts:
            casts = ", ".join(
                f"CAST(%s AS {table.columns[c].type.compile(dialect=dialect)})" for c in columns
            )
            names = ", ".join(self.quote_name(c) for c in columns)
            statements.append(f"INSERT INTO {self.quoted(table)} ({names}) SELECT {casts} FROM g")
            bound.append(self._bound(table, columns, encoded))
        *first, last = statements
        parts.extend(f"i{n} AS ({sql})" for n, sql in enumerate(first))
        return f"WITH {', '.join(parts)} {last}", bound

    def _write_refused(
        self, error: sqlalchemy.exc.DBAPIError, what: str
    ) -> ReadOnlyDatabaseError | None:
        # docstring inherited
        state = getattr(error.orig, "sqlstate", None)
        why = _REFUSED_SQLSTATES.get(state) if isinstance(state, str) else None
        if why is None:
            return None
        return ReadOnlyDatabaseError(
            f"Cannot {what}: the PostgreSQL server refuses to write {self}: {why} "
            f"({str(error.orig).strip()}); connect as a user who may write it, to the "
            "primary server, or open the repository read-only. Nothing was changed."
        )

    def _is_collision(self, error: BaseException) -> bool:
        # docstring inherited; also serialization_failure and deadlock_detected.
        return (
            super()._is_collision(error)
            or getattr(getattr(error, "orig", error), "sqlstate", None) in TRANSIENT_SQLSTATES
        )

    def _send_deferred(
        self, connection: sqlalchemy.Connection, queued: list[Deferred], *, commit: bool
    ) -> int:
        # docstring inherited. One psycopg pipeline: every statement (and the COMMIT)
        # goes out at once and the results come back in one round trip. The server
        # skips what follows a failed statement; the first cursor without a result
        # is the one that failed.
        raw: Any = connection.connection.dbapi_connection
        if commit and self._send_as_one(connection, raw, queued):
            return 1
        opening = self._opens_transaction(connection, raw)
        cursors: list[Any] = []
        try:
            with raw.pipeline():
                if opening:
                    _execute_alone(raw, "BEGIN")
                for item in queued:
                    cursor = raw.cursor()
                    cursors.append(cursor)
                    if not item.many:
                        cursor.execute(item.sql, item.args)
                    elif len(item.args) == 1:  # cheaper than a one-row executemany
                        cursor.execute(item.sql, item.args[0])
                    else:
                        cursor.executemany(item.sql, item.args)
                if commit:
                    # A COMMIT statement, not raw.commit(): that would sync the pipeline
                    # and its exit sync again, one round trip more. The connection reads
                    # the transaction's state from the server's reply either way.
                    _execute_alone(raw, "COMMIT")
            for item, cursor in zip(queued, cursors, strict=True):
                if item.counted is not None:
                    item.counted(int(cursor.rowcount))
            return int(cursors[-1].rowcount) if cursors else 0
        except connection.dialect.loaded_dbapi.Error as exc:
            failed = next((i for i, c in enumerate(cursors) if c.pgresult is None), None)
            _raise_failed(connection, exc, queued[failed] if failed is not None else None)
        finally:
            for cursor in cursors:
                with contextlib.suppress(Exception):
                    cursor.close()
            if opening:
                _leave_autocommit(raw)  # committed; else when the transaction ends

    def _send_as_one(
        self, connection: sqlalchemy.Connection, raw: Any, queued: list[Deferred]
    ) -> bool:
        """Send ``queued`` as one statement on its own (autocommit), if it can be; whether it was.

        It can when nothing of the transaction has reached the server yet and
        every queued write inserts one row (`Deferred.inserts_into`): a `put`.
        Their inserts become the parts of one ``WITH`` statement, which the
        server runs and commits whole, without BEGIN and COMMIT round trips.
        Foreign keys between the rows are checked at the statement's end; a
        violation names its table, and so its write.
        """
        if (
            len(queued) > _MAX_AS_ONE
            or raw.info.transaction_status != _IDLE
            or not all(
                item.inserts_into is not None
                and (not item.many or len(item.args) == 1)
                and item.counted is None
                for item in queued
            )
        ):
            return False
        texts = tuple(item.sql for item in queued)
        sql = self._combined_sql.get(texts)
        if sql is None:
            *first, last = texts
            parts = ", ".join(f"w{n} AS ({text})" for n, text in enumerate(first))
            sql = self._combined_sql[texts] = f"WITH {parts} {last}" if parts else last
        params: list[Any] = []
        for item in queued:
            params.extend(item.args[0] if item.many else item.args)
        raw.autocommit = True
        try:
            with raw.cursor() as cursor:
                cursor.execute(sql, params)
        except connection.dialect.loaded_dbapi.Error as exc:
            table = getattr(getattr(exc, "diag", None), "table_name", None)
            culprit = next((item for item in queued if item.inserts_into == table), None)
            _raise_failed(connection, exc, culprit)
        finally:
            _leave_autocommit(raw)
        return True

    def _opens_transaction(self, connection: sqlalchemy.Connection, raw: Any) -> bool:
        """Send the BEGIN of the open transaction block with the next statements, if nothing
        of the block has reached the server yet; whether it is to be sent.

        psycopg's own BEGIN waits for its reply before the first statement goes
        out: one round trip more. Here the caller sends ``BEGIN`` itself, first
        in a pipeline, with the connection in autocommit (so that psycopg sends
        no BEGIN of its own) until the block ends (`_on_transaction_end`).
        Every later statement of the block runs inside it all the same: the
        server has the block open.
        """
        if (
            not connection.in_transaction()
            or raw.autocommit
            or raw.info.transaction_status != _IDLE
            or raw.isolation_level is not None  # psycopg's BEGIN would say more than ours
            or raw.read_only is not None
        ):
            return False
        raw.autocommit = True
        return True

    def _on_transaction_begin(self, connection: sqlalchemy.Connection) -> None:
        # docstring inherited
        _leave_autocommit(connection.connection.dbapi_connection)  # never left on: a net
        if not self._writeable:
            connection.exec_driver_sql("SET TRANSACTION READ ONLY")

    def _on_transaction_end(self, connection: sqlalchemy.Connection) -> None:
        # docstring inherited; back to psycopg's transactions once the block is over
        if not connection.invalidated and not connection.closed:
            _leave_autocommit(connection.connection.dbapi_connection)

    def _fetch_raw(
        self, connection: sqlalchemy.Connection, sql: str, params: tuple[Any, ...]
    ) -> list[tuple[Any, ...]]:
        # docstring inherited; the first read of a transaction block carries its BEGIN
        raw: Any = connection.connection.dbapi_connection
        if (
            not self.PIPELINED_WRITES
            or connection is not self._connection
            or connection.engine.dispatch.before_cursor_execute
            or not self._opens_transaction(connection, raw)
        ):
            return super()._fetch_raw(connection, sql, params)
        cursor = raw.cursor()
        try:
            # BEGIN and the read go out together, and the end of the pipeline (its Sync)
            # brings both replies back: one round trip. A fetch inside the block would
            # wait for the read's reply, and the Sync then for one more.
            with raw.pipeline():
                _execute_alone(raw, "BEGIN")
                cursor.execute(sql, params)
            return list(cursor.fetchall()) if cursor.description is not None else []
        except connection.dialect.loaded_dbapi.Error as exc:
            raise driver_error(connection, cursor, exc, sql, params) from exc
        finally:
            with contextlib.suppress(Exception):
                cursor.close()

    def _lock_tables(
        self, connection: sqlalchemy.Connection, tables: list[sqlalchemy.Table]
    ) -> None:
        # docstring inherited
        for table in tables:
            name = connection.dialect.identifier_preparer.format_table(table)
            connection.exec_driver_sql(f"LOCK TABLE {name} IN EXCLUSIVE MODE")

    def _insert_construct(self, table: sqlalchemy.Table) -> Any:
        # docstring inherited
        return postgresql.insert(table)

    def in_clause(self, column: Any, values: Any) -> sqlalchemy.ColumnElement[bool]:
        # docstring inherited
        array = sqlalchemy.bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return cast(sqlalchemy.ColumnElement[bool], column == sqlalchemy.any_(array))


#: Shapes of streamed statements whose compiled form a database keeps (`_driver_statement`).
_STREAMS_KEPT = 256

#: Values in a list parameter beyond which `_driver_statement` compiles its statement afresh.
_LIST_KEPT_MAX = 1_000


def _long_lists(binds: Sequence[Any]) -> bool:
    """Whether a parameter among ``binds`` holds a list of more than `_LIST_KEPT_MAX` values."""
    return any(
        isinstance(bind.value, list | tuple | set | frozenset) and len(bind.value) > _LIST_KEPT_MAX
        for bind in binds
    )


def _converts_values(compiled: Any, dialect: Any) -> bool:
    """Whether a parameter of ``compiled`` has a type that converts its value on the way to
    the driver (the SQLAlchemy cursor path binds those)."""
    return any(
        bind.type.dialect_impl(dialect).bind_processor(dialect) is not None
        for bind in compiled.binds.values()
    )
