"""SQLite: the embedded default, in a file or in memory."""

from __future__ import annotations

import os
import sqlite3
from typing import Any

import sqlalchemy
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.pool import QueuePool, StaticPool

from ... import ddl
from ..._exceptions import ConfigurationError
from ..interfaces import Database

__all__ = ["SqliteDatabase"]

#: How long a writer waits for another process's write lock, in milliseconds.
BUSY_TIMEOUT_MS = 300_000

#: Page size of new database files, in bytes.
PAGE_SIZE = 1024

#: Page cache per connection, in KiB (SQLite's default is 2 MiB).
CACHE_KIB = 65_536


class SqliteDatabase(Database):
    """A `Database` on SQLite.

    Connections run with foreign keys on and, for files, in WAL mode (readers
    never block the writer). Write transactions start with ``BEGIN IMMEDIATE``,
    so two processes never deadlock upgrading read locks; reads use a plain
    ``BEGIN``. SQLite has no schemas: ``namespace`` must be `None`.
    """

    # docstring inherited
    IN_BATCH_SIZE = 10_000
    KEEP_READER = True
    SERIALIZED_WRITES = True

    def __init__(self, *, namespace: str | None = None, **kwargs: Any) -> None:
        if namespace is not None:
            raise ConfigurationError(
                f"SQLite databases have no namespaces (got namespace={namespace!r}); use a "
                "separate database file instead."
            )
        super().__init__(namespace=None, **kwargs)

    @classmethod
    def makeEngine(cls, uri: str, *, writeable: bool = True) -> sqlalchemy.engine.Engine:
        # docstring inherited
        url = sqlalchemy.engine.make_url(uri)
        if url.get_backend_name() != "sqlite":
            raise ConfigurationError(
                f"Not an SQLite URI: {uri!r}; expected sqlite:///path/to/file."
            )
        path = url.database or ""
        in_memory = path in ("", ":memory:")
        if in_memory:
            if not writeable:
                raise ConfigurationError(
                    "A read-only in-memory SQLite database is always empty; open it writeable."
                )

            def connect() -> sqlite3.Connection:
                return sqlite3.connect(":memory:", check_same_thread=False)

            engine = sqlalchemy.create_engine("sqlite://", creator=connect, poolclass=StaticPool)
        else:
            path = os.path.abspath(path)
            if writeable:
                parent = os.path.dirname(path)
                if not os.path.isdir(parent):
                    raise ConfigurationError(
                        f"Cannot create SQLite database {path}: directory {parent} does not exist; "
                        "create it first."
                    )
            elif not os.path.exists(path):
                raise ConfigurationError(
                    f"SQLite database {path} does not exist, so it cannot be opened read-only."
                )
            target = f"file:{path}?mode={'rwc' if writeable else 'ro'}"

            def connect() -> sqlite3.Connection:
                return sqlite3.connect(target, uri=True, check_same_thread=False)

            # A pool of independent connections (the default for a creator is one
            # connection per thread, which would make clones share transactions).
            engine = sqlalchemy.create_engine("sqlite://", creator=connect, poolclass=QueuePool)

        @sqlalchemy.event.listens_for(engine, "connect")
        def _configure(dbapi_connection: sqlite3.Connection, record: Any) -> None:
            # We issue BEGIN ourselves (below); the driver's implicit BEGIN would
            # break savepoints and take locks at the wrong time.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # Small pages for a new file (no effect on an existing one): a put
            # touches ~8 B-tree pages, and every commit appends each to the WAL,
            # so 1 KiB pages write a third of the bytes 4 KiB pages do.
            cursor.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if writeable and not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                # Safe in WAL mode: a crash can lose the last commits, never corrupt.
                cursor.execute("PRAGMA synchronous = NORMAL")
                # Checkpoint (and fsync) every ~40 MiB of WAL, not every 4 MiB: each
                # fsync also flushes every dirty artifact file (ext4 data=ordered).
                cursor.execute("PRAGMA wal_autocheckpoint = 10000")
            cursor.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            cursor.execute("PRAGMA temp_store = MEMORY")
            cursor.close()

        @sqlalchemy.event.listens_for(engine, "begin")
        def _begin(connection: sqlalchemy.Connection) -> None:
            if connection.get_execution_options().get("databutler_autocommit"):
                return  # the driver runs each statement in its own transaction
            write = connection.info.get("databutler.write", writeable)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write and writeable else "BEGIN")

        return engine

    def _connect_autocommit(self) -> sqlalchemy.Connection:
        # docstring inherited; the driver is in autocommit mode already (we
        # issue BEGIN ourselves), so only our BEGIN has to be skipped.
        return self._engine.connect().execution_options(databutler_autocommit=True)

    def _table_options(self, spec: ddl.TableSpec) -> dict[str, Any]:
        # docstring inherited; tables keyed by something other than one integer
        # are stored clustered by that key (half the B-trees, denser pages).
        key = [f for f in spec.fields if f.primaryKey]
        rowid_key = len(key) == 1 and issubclass(key[0].dtype, sqlalchemy.Integer)
        return {} if not key or rowid_key else {"sqlite_with_rowid": False}

    def _insert_construct(self, table: sqlalchemy.Table) -> Any:
        # docstring inherited
        return sqlite_dialect.insert(table)

    def _column_type(self, spec: ddl.FieldSpec) -> sqlalchemy.types.TypeEngine[Any]:
        # docstring inherited; only INTEGER PRIMARY KEY is SQLite's autoincrementing
        # rowid (BIGINT would not be), and it is 64-bit anyway.
        if spec.autoincrement and issubclass(spec.dtype, sqlalchemy.Integer):
            return sqlalchemy.Integer()
        return super()._column_type(spec)

    def _field_constraints(self, table: str, spec: ddl.FieldSpec) -> list[sqlalchemy.Constraint]:
        # SQLite ignores VARCHAR lengths; enforce short strings (and refuse empty ones) here.
        if (
            spec.isStringType()
            and spec.length is not None
            and spec.length <= ddl.MAX_BOUNDED_STRING
        ):
            return [
                sqlalchemy.CheckConstraint(
                    f'length("{spec.name}") BETWEEN 1 AND {spec.length}',
                    name=f"{table}_len_{spec.name}",
                )
            ]
        return []
