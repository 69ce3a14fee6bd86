"""Driver-level statements of a `Database`: the mixin `DatabaseDriverStatements`.

The bulk hot paths keyed by dataset ids skip SQLAlchemy's per-value
processing and IN-list rendering: this module holds the pieces they use
(quoting, bind and result processors, `insert_many`, `insert_guarded`, the
``IN`` SQL and parameters of `sql_in_values`/`sql_in_ids`, `encode_ids` and
`decode_ids`, `execute_raw`, `execute_deferred`, `query_raw` and its
direct-cursor fetch) and the module-level helpers that turn GUID bytes into
`uuid.UUID` fast. It builds on `DatabaseRows`.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy
import sqlalchemy.event
import sqlalchemy.exc

from ..._deprecation import renamed
from ..._exceptions import ConflictError, DatabaseError
from ._database_connections import Deferred
from ._database_rows import DatabaseRows

__all__ = ["DatabaseDriverStatements", "name_storage_failures"]

StorageFailures = Callable[[BaseException], DatabaseError | None]
"""A backend's reading of a driver error: the `DatabaseError` that names it (a full disk,
an I/O error, a damaged file) with what to do, or `None` for any other error."""

#: Each engine's `StorageFailures` (see `name_storage_failures`).
_FAILURES: weakref.WeakKeyDictionary[sqlalchemy.Engine, StorageFailures] = (
    weakref.WeakKeyDictionary()
)


def name_storage_failures(engine: sqlalchemy.Engine, name: StorageFailures) -> None:
    """Raise what ``name`` makes of a driver error on ``engine`` in place of SQLAlchemy's
    error: for statements SQLAlchemy runs (its ``handle_error`` event, after its clean-up)
    and for those run on driver cursors (`driver_error`). ``name`` must not refer to the
    `Database`: the engine's listener would keep it alive."""
    _FAILURES[engine] = name

    @sqlalchemy.event.listens_for(engine, "handle_error")
    def _named(context: sqlalchemy.engine.ExceptionContext) -> None:
        named = name(context.original_exception)
        if named is not None:
            raise named from context.sqlalchemy_exception


class DatabaseDriverStatements(DatabaseRows):
    """Driver-level reads and writes of a `Database`, keyed by dataset ids.

    Not used on its own: `Database` inherits it, and sets the caches
    declared here in its constructor.
    """

    # insert_many's bind processors and SQL, by (table, columns, encoded columns).
    _insert_many_cache: dict[Any, tuple[list[tuple[int, Any]], str]]
    # insert_guarded's SQL and bind processors, by the shape of the call.
    _guarded_sql: dict[Any, tuple[str, list[list[tuple[int, Any]]]]]

    # ------------------------------------------------------------------
    # Driver-level statements keyed by dataset ids: the bulk hot paths skip
    # SQLAlchemy's per-value processing and IN-list rendering.

    #: Whether one writer at a time holds the whole database (SQLite's BEGIN IMMEDIATE).
    SERIALIZED_WRITES: bool = False

    #: Whether a read is a call into this process (SQLite) rather than a round trip to a
    #: server: there, a small read on its own costs less than making another statement
    #: carry it (see `ByDimensionsDatasetRecordStorageManager.query`).
    LOCAL_READS: bool = False

    #: The driver's parameter placeholder.
    PLACEHOLDER: str = "?"

    #: Appended to a SELECT to lock its rows (empty where writers serialise).
    FOR_UPDATE: str = ""

    #: Appended to a SELECT to lock its rows, skipping rows others have locked.
    FOR_UPDATE_SKIP_LOCKED: str = ""

    #: Whether a statement's ``WITH`` parts may write (``DELETE`` in a CTE: PostgreSQL), so
    #: that several writes and the read of their result are one statement (`write_alone`).
    WRITING_CTES: bool = False

    # Deprecated aliases of renamed methods, kept for one release.
    quoteName = renamed("quote_name")  # noqa: N815
    resultProcessors = renamed("result_processors")  # noqa: N815
    bindValue = renamed("bind_value")  # noqa: N815
    insertMany = renamed("insert_many")  # noqa: N815
    sqlInValues = renamed("sql_in_values")  # noqa: N815
    inValuesParams = renamed("in_values_params")  # noqa: N815
    encodeIds = renamed("encode_ids")  # noqa: N815
    decodeIds = renamed("decode_ids")  # noqa: N815
    sqlInIds = renamed("sql_in_ids")  # noqa: N815
    inIdsParams = renamed("in_ids_params")  # noqa: N815
    executeRaw = renamed("execute_raw")  # noqa: N815
    queryRaw = renamed("query_raw")  # noqa: N815

    def quoted(self, table: sqlalchemy.Table) -> str:
        """The table's name, qualified and quoted, for driver-level SQL."""
        return str(self._engine.dialect.identifier_preparer.format_table(table))

    def quote_name(self, name: str) -> str:
        """A column name, quoted if needed, for driver-level SQL."""
        return str(self._engine.dialect.identifier_preparer.quote(name))

    def result_processors(
        self,
        columns: Iterable[sqlalchemy.ColumnElement[Any]],
        type_codes: Iterable[Any] | None = None,
    ) -> list[Callable[[Any], Any] | None]:
        """Per column, what turns a driver value into the column type's Python value.

        `None` where the driver value is already right (most strings and numbers).
        ``type_codes`` are the types the driver reported for the columns (a cursor's
        ``description``), which some processors depend on (PostgreSQL's numerics).
        """
        dialect = self._engine.dialect
        codes = itertools.repeat(None) if type_codes is None else type_codes
        return [
            c.type.dialect_impl(dialect).result_processor(dialect, code)
            for c, code in zip(columns, codes, strict=False)
        ]

    def bind_value(self, column: sqlalchemy.ColumnElement[Any], value: Any) -> Any:
        """``value`` as the driver binds it for ``column`` (its type's bind processor applied)."""
        dialect = self._engine.dialect
        process = column.type.dialect_impl(dialect).bind_processor(dialect)
        return value if process is None else process(value)

    def insert_many(
        self,
        table: sqlalchemy.Table,
        columns: Sequence[str],
        rows: Iterable[Sequence[Any]],
        *,
        encoded: Iterable[str] = (),
        deferred: bool = False,
    ) -> None:
        """Insert tuples of ``columns`` values in one driver-level executemany.

        Values go through their column types' bind processors, so this
        stores exactly what `insert` would, without per-row SQLAlchemy work;
        values of the ``encoded`` columns are in driver form already (see
        `encode_ids`, `bind_value`) and go in as they are. With ``deferred``
        the insert may be sent later in the transaction (`execute_deferred`).

        Raises
        ------
        ConflictError
            If a row violates a constraint; nothing is inserted.
        """
        key = (table, tuple(columns), tuple(encoded))
        prepared = self._insert_many_cache.get(key)
        if prepared is None:
            found = self._bound(table, columns, encoded)
            names = ", ".join(self.quote_name(c) for c in columns)
            marks = ", ".join([self.PLACEHOLDER] * len(columns))
            sql = f"INSERT INTO {self.quoted(table)} ({names}) VALUES ({marks})"
            prepared = self._insert_many_cache.setdefault(key, (found, sql))
        processors, sql = prepared
        converted: list[Sequence[Any]]
        if processors:
            converted = []
            for row in rows:
                values = list(row)
                for i, process in processors:
                    values[i] = process(values[i])
                converted.append(tuple(values))
        elif isinstance(rows, list) and not deferred:
            converted = rows  # run now: the driver takes any sequence a row, no copy needed
        else:
            converted = [tuple(row) for row in rows]
        if not converted:
            return
        what = f"insert into {table.name}"
        if deferred:
            self.execute_deferred(
                sql,
                converted,
                many=True,
                what=what,
                inserts_into=table.name if len(converted) == 1 else None,
            )
        else:
            self.execute_raw(sql, converted, many=True, what=what)
        self._wrote(table, len(converted))

    #: Whether `insert_guarded` works here (one statement for several inserts).
    GUARDED_INSERTS: bool = False

    def insert_guarded(
        self,
        guard: tuple[sqlalchemy.Table, Mapping[str, Any]],
        inserts: Sequence[tuple[sqlalchemy.Table, Sequence[str], Sequence[Any], Iterable[str]]],
        *,
        explain: Callable[[ConflictError], BaseException] | None = None,
        on_changed: Callable[[], None] | None = None,
    ) -> bool:
        """Insert one row into each table, in order, in one statement, only if ``guard``
        (a table and column values) names an existing row, which stays share-locked until
        the transaction ends; whether the rows went in.

        Each insert is ``(table, columns, values, encoded columns)`` as in
        `insert_many`. Only where `GUARDED_INSERTS` is true.

        Given ``on_changed``, inside a `repeatable` block where writes are
        deferred, the inserts and their guard are queued instead (the answer is
        then `True`): a guard found changed when they are sent calls
        ``on_changed`` and fails the transaction with `GuardChangedError`, for
        the block to repeat.

        Raises
        ------
        ConflictError
            If a row violates a constraint; nothing is inserted. (``explain``
            turns it into the caller's error, when the rows were queued.)
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

    def sql_in_values(self, column: str, n: int) -> str:
        """SQL for ``column IN (n values)`` of a plain type; parameters from `in_values_params`."""
        return _in_placeholders(column, n)

    def in_values_params(self, values: list[Any]) -> list[Any]:
        """The parameters that go with `sql_in_values`."""
        return values

    def encode_ids(self, ids: Iterable[uuid.UUID]) -> list[Any]:
        """Dataset ids as the driver binds them to a `~databutler.ddl.GUID` column."""
        return [i.bytes for i in ids]

    def decode_ids(self, values: Iterable[Any]) -> list[uuid.UUID]:
        """`~databutler.ddl.GUID` values as the driver returns them, as `uuid.UUID`."""
        return [_uuid_from_bytes(bytes(v)) for v in values]

    def sql_in_ids(self, column: str, n: int) -> str:
        """SQL for ``column IN (n encoded ids)``; parameters from `in_ids_params`."""
        return _in_placeholders(column, n)

    def in_ids_params(self, encoded: list[Any]) -> list[Any]:
        """The parameters that go with `sql_in_ids`."""
        return encoded

    def execute_raw(
        self, sql: str, params: Sequence[Any] = (), *, many: bool = False, what: str
    ) -> int:
        """Run a driver-level write; return the row count.

        ``params`` are one statement's parameters, or with ``many`` a list of
        tuples, one per execution. Joins the enclosing transaction, like
        every other write.
        """
        args: Any = (
            (params if isinstance(params, list) else list(params)) if many else tuple(params)
        )
        if self._deferred and not many and self._deferring() and not self._frames[-1].savepoint:
            # The queued writes and this one go out together: one round trip.
            self._check_writeable(what)
            return self._send_queued(Deferred(sql, args, False, what))
        with self._writing(what) as connection:
            result = connection.exec_driver_sql(
                sql, args, execution_options={"preserve_rowcount": True}
            )
            return self._rowcount(result, 0)

    def write_alone(
        self, sql: str, params: Sequence[Any] = (), *, what: str
    ) -> list[tuple[Any, ...]]:
        """Run one driver-level write that returns rows (``RETURNING``, or the ``SELECT`` of
        a statement whose ``WITH`` parts write) and return them.

        Inside a transaction it joins it. Outside one, where reads have a connection of
        their own (`READS_ON_OWN_CONNECTION`), it runs there in autocommit: a transaction
        of its own, atomic as every single statement is, in one round trip (no BEGIN or
        COMMIT). A connection the server dropped while it was kept is replaced and the
        statement sent again, so it must be one that may run twice (a ``DELETE`` of
        given rows, say).
        """
        self._check_writeable(what)
        # A read in a session may run in a transaction that is rolled back after it.
        if self._frames or self._reads_on_session() or not self.READS_ON_OWN_CONNECTION:
            with self._writing(what) as connection:
                result = connection.exec_driver_sql(sql, tuple(params))
                try:
                    return list(result.fetchall())
                finally:
                    result.close()
        with self._conflicts_raised(what):
            return self._read_raw(sql, tuple(params))

    def execute_deferred(
        self,
        sql: str,
        params: Sequence[Any] = (),
        *,
        many: bool = False,
        what: str,
        explain: Callable[[ConflictError], BaseException] | None = None,
        inserts_into: str | None = None,
        counted: Callable[[int], None] | None = None,
    ) -> None:
        """Run a driver-level write whose row count nobody reads now, perhaps a little later.

        Inside a transaction, where the backend pipelines (`PIPELINED_WRITES`:
        PostgreSQL through psycopg 3), the write is queued and sent with the
        session's next statement, or with the COMMIT (one round trip for all
        of them); elsewhere it runs at once. Either way it belongs to the
        enclosing transaction, and a constraint violation is raised as
        ``explain(ConflictError(...))`` (or the `ConflictError`): at once, or
        by the statement, block end or commit that sends it. ``inserts_into``
        names the table when the statement is a plain insert of one row (with
        ``many``, one set of parameters) into it: such writes may go out as one
        statement (`Deferred.inserts_into`). ``counted``, if given, is called
        with the row count once the write has been sent (see `counted_later`).
        """
        self._check_writeable(what)
        args: Any = list(params) if many else tuple(params)
        if many and not args:
            if counted is not None:
                counted(0)
            return
        if self._deferring():
            self._deferred.append(
                Deferred(sql, args, many, what, explain, inserts_into, counted=counted)
            )
            return
        try:
            count = self.execute_raw(sql, args, many=many, what=what)
        except ConflictError as exc:
            if explain is None:
                raise
            raise explain(exc) from exc
        if counted is not None:
            counted(count)

    def counted_later(
        self,
        sql: str,
        params: Sequence[Any] = (),
        *,
        what: str,
        explain: Callable[[ConflictError], BaseException] | None = None,
    ) -> Callable[[], int]:
        """Queue a write like `execute_deferred`; return a function that gives its row count.

        The count is read when it is needed, usually after the COMMIT that
        sent the write; asked for before the write has gone out, the function
        sends the queued writes first (`flush_deferred`).
        """
        counts: list[int] = []
        self.execute_deferred(sql, params, what=what, explain=explain, counted=counts.append)

        def count() -> int:
            if not counts:
                self.flush_deferred()
            if not counts:
                raise RuntimeError(f"The write ({what}) was never sent: its transaction failed.")
            return counts[0]

        return count

    def query_raw(
        self, sql: str, params: Sequence[Any] = ()
    ) -> contextlib.AbstractContextManager[list[tuple[Any, ...]]]:
        """Run a driver-level read; rows are driver tuples (ids as in `decode_ids`).

        Use it as ``with db.query_raw(sql, params) as rows:``. The rows are
        fetched at once, by the call: keep the result small (a batch).
        """
        return _Fetched(self._read_raw(sql, tuple(params)))

    def _read_raw(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        """The rows of `query_raw`."""
        on_session = self._reads_on_session()
        reader = self._held.reader
        if not on_session and reader is not None and not reader.invalidated and not reader.closed:
            # The kept read connection, without the checks of `_connect_for_read`: if the
            # server dropped it, the read fails, and is made again on a new connection.
            self._held.reader = None  # a nested read gets its own connection
            try:
                rows = self._fetch_kept(reader, sql, params)
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    reader.close()
                if not (isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated):
                    raise
            else:
                if self._held.reader is None:
                    self._held.reader = reader
                else:
                    reader.close()
                return rows
        attempts = 1 if on_session else 2  # as in `query`
        for attempt in range(attempts):
            with self._connect_for_read() as connection:
                try:
                    return self._fetch_raw(connection, sql, params)
                except sqlalchemy.exc.DBAPIError as exc:
                    if exc.connection_invalidated and attempt + 1 < attempts:
                        continue
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")

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
        cursor = connection.connection.cursor()
        try:
            return fetch_all(connection, cursor, sql, params)
        finally:
            with contextlib.suppress(Exception):
                cursor.close()

    def _fetch_kept(
        self, reader: sqlalchemy.Connection, sql: str, params: tuple[Any, ...]
    ) -> list[tuple[Any, ...]]:
        """`_fetch_raw` on the kept read connection (autocommit), through a driver cursor
        kept with it: a per-call read costs no cursor of its own."""
        raw = reader.connection.dbapi_connection
        if raw is None or reader.engine.dispatch.before_cursor_execute:
            return self._fetch_raw(reader, sql, params)
        held = self._held
        cursor = held.cursor
        if cursor is None or held.cursor_of is not raw:
            cursor = held.cursor = raw.cursor()
            held.cursor_of = raw
        try:
            return fetch_all(reader, cursor, sql, params)
        except BaseException:
            held.cursor = held.cursor_of = None
            raise


def fetch_all(
    connection: sqlalchemy.Connection, cursor: Any, sql: str, params: tuple[Any, ...]
) -> list[tuple[Any, ...]]:
    """Run ``sql`` on the driver ``cursor`` of ``connection`` and return every row; driver
    errors are raised as SQLAlchemy's, a dropped connection invalidated."""
    dialect = connection.dialect
    try:
        cursor.execute(sql, params)
        try:
            return list(cursor.fetchall())
        except dialect.loaded_dbapi.ProgrammingError:
            return []  # a statement without rows (psycopg refuses to fetch; sqlite3 gives [])
    except dialect.loaded_dbapi.Error as exc:
        raise driver_error(connection, cursor, exc, sql, params) from exc


def driver_error(
    connection: sqlalchemy.Connection, cursor: Any, error: Any, sql: str, params: Any
) -> Exception:
    """The driver's ``error`` on ``connection`` as SQLAlchemy raises it, for code that runs
    statements on driver cursors; a dropped connection is invalidated first. A failure of
    the database's storage is the error `name_storage_failures` names it (its cause the
    SQLAlchemy error)."""
    dialect = connection.dialect
    dropped = dialect.is_disconnect(error, connection.connection.dbapi_connection, cursor)
    if dropped:
        connection.invalidate(error)
    raised: sqlalchemy.exc.StatementError = sqlalchemy.exc.DBAPIError.instance(
        sql,
        params,
        error,
        dialect.loaded_dbapi.Error,
        connection_invalidated=dropped,
        dialect=dialect,
    )
    name = _FAILURES.get(connection.engine)
    named = name(error) if name is not None else None
    if named is not None:
        named.__cause__ = raised
        return named
    return raised


class _Fetched:
    """Rows fetched already, handed out by a ``with`` block (see `query_raw`)."""

    __slots__ = ("rows",)

    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def __enter__(self) -> list[tuple[Any, ...]]:
        return self.rows

    def __exit__(self, *exc_info: object) -> None:
        return None


def _uuid_from_bytes_checked(value: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=value)


#: Read once: an enum member's attribute lookup costs more than the rest of the decoding.
_SAFE_UNKNOWN = uuid.SafeUUID.unknown


def _uuid_from_bytes_fast(value: bytes) -> uuid.UUID:
    # uuid.UUID(bytes=...) validates its arguments at length; 16 bytes from a
    # GUID column need none of it. Same slots as UUID.__init__ sets.
    result = object.__new__(uuid.UUID)
    object.__setattr__(result, "int", int.from_bytes(value, "big"))
    object.__setattr__(result, "is_safe", _SAFE_UNKNOWN)
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
