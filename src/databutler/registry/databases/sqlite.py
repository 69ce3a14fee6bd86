"""SQLite: the embedded default, in a file or in memory."""

from __future__ import annotations

import os
import sqlite3
import stat
import urllib.parse
from contextvars import ContextVar
from typing import Any

import sqlalchemy
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.pool import QueuePool, StaticPool

from ... import ddl
from ..._exceptions import (
    ConfigurationError,
    DatabaseStorageError,
    ReadOnlyDatabaseError,
    RepositoryError,
)
from ..interfaces import Database
from ..interfaces._database_driver import StorageFailures, name_storage_failures
from . import parse_database_url

__all__ = ["SQLITE_FILE_SUFFIXES", "SqliteDatabase"]

#: The files of an SQLite database, after its name: itself, its write-ahead log and shared
#: memory, its rollback journal.
SQLITE_FILE_SUFFIXES = ("", "-wal", "-shm", "-journal")

#: How long a writer waits for another process's write lock, in milliseconds.
BUSY_TIMEOUT_MS = 300_000

#: Page size of new database files, in bytes.
PAGE_SIZE = 1024

#: Page size of new database files made for bulk loading (`Database.created_for_bulk_loading`).
BULK_PAGE_SIZE = 4096

#: Page cache per connection, in KiB (SQLite's default is 2 MiB).
CACHE_KIB = 65_536

#: The first bytes of every SQLite database file.
_MAGIC = b"SQLite format 3\0"

#: Whether `SqliteDatabase.makeEngine` may create a missing file (set by ``fromUri``).
_CREATE: ContextVar[bool] = ContextVar("databutler_sqlite_create", default=True)


class SqliteDatabase(Database):
    """A `Database` on SQLite.

    Connections run with foreign keys on and, for files, in WAL mode (readers
    never block the writer). Write transactions start with ``BEGIN IMMEDIATE``,
    so two processes never deadlock upgrading read locks; reads use a plain
    ``BEGIN``. SQLite has no schemas: ``namespace`` must be `None`.

    A write SQLite refuses because the file (or its directory, where the
    journal goes) cannot be written raises `~databutler.ReadOnlyDatabaseError`
    naming the file, and opening a file writeable that cannot be written
    refuses at once.
    """

    # docstring inherited
    IN_BATCH_SIZE = 10_000
    KEEP_READER = True
    LOCAL_READS = True
    SERIALIZED_WRITES = True
    TABLES_IN_TRANSACTIONS = True

    def __init__(self, *, namespace: str | None = None, **kwargs: Any) -> None:
        _check_namespace(namespace)
        super().__init__(namespace=None, **kwargs)
        #: Tables the open transaction created, by name: kept out of the metadata (which
        #: clones on other threads share) until the transaction has committed.
        self._created_in_transaction: dict[str, sqlalchemy.Table] = {}
        # Reads outside a transaction run on a connection of their own; a stream reads a
        # snapshot there (WAL: the caller's writes meanwhile neither wait for it nor show up
        # in it), so that a loop putting into the collection it queries ends. An in-memory
        # database has one connection only, which every read shares.
        self.READS_ON_OWN_CONNECTION = not isinstance(self._engine.pool, StaticPool)

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
        """Connect to the SQLite database at ``uri`` (see `Database.fromUri`).

        ``create=False`` (how repositories are opened) never creates the
        file: a missing, empty or damaged file raises `~databutler.RepositoryError`.
        Read-only connections work on read-only media: when SQLite cannot
        create the ``-shm`` file next to the database, and no write-ahead log
        holds unmerged commits, the file is opened as immutable.
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
        url = parse_database_url(uri)
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
            if path.startswith("//"):  # kept by abspath; in a file: URI "//x" is a host
                path = "/" + path.lstrip("/")
            create = writeable and _CREATE.get()
            if create:
                parent = os.path.dirname(path)
                if not os.path.isdir(parent):
                    raise ConfigurationError(
                        f"Cannot create SQLite database {path}: directory {parent} does not exist; "
                        "create it first."
                    )
                if os.path.lexists(path):
                    _check_file(path, allow_empty=True, writeable=True)
            else:
                _check_file(path, allow_empty=False, writeable=writeable)
            mode = "rwc" if create else "rw" if writeable else "ro"
            target = f"file:{urllib.parse.quote(path)}?mode={mode}"
            if not writeable:
                target = _readable(path, target)
            elif not create:
                if _on_read_only_media(path):
                    raise RepositoryError(
                        f"The registry database {path} is on a read-only file system, so it "
                        "cannot be opened for writing; open the repository read-only."
                    )
                reason = _not_writable(path)
                if reason is not None:
                    raise ReadOnlyDatabaseError(
                        f"The registry database {path} cannot be opened for writing: {reason}; "
                        "check the permissions of the file and of its directory, or open the "
                        "repository read-only."
                    )
                _probe(path, target)

            def connect() -> sqlite3.Connection:
                return sqlite3.connect(target, uri=True, check_same_thread=False)

            # A pool of independent connections (the default for a creator is one
            # connection per thread, which would make clones share transactions). The
            # URL is not used to connect; it names the file in messages.
            url = sqlalchemy.URL.create("sqlite", database=path)
            engine = sqlalchemy.create_engine(url, creator=connect, poolclass=QueuePool)

        name_storage_failures(engine, _storage_failures(path))
        bulk = Database.bulk_loaded_layout()  # for the file this engine may create

        @sqlalchemy.event.listens_for(engine, "connect")
        def _configure(dbapi_connection: sqlite3.Connection, record: Any) -> None:
            # We issue BEGIN ourselves (below); the driver's implicit BEGIN would
            # break savepoints and take locks at the wrong time.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            # Small pages for a new file (no effect on an existing one): a put
            # touches ~8 B-tree pages, and every commit appends each to the WAL,
            # so 1 KiB pages write a third of the bytes 4 KiB pages do. A file
            # made to be bulk-loaded gets 4 KiB pages: its commits write tens of
            # thousands of pages, a WAL frame each, and deeper B-trees with 1 KiB.
            size = BULK_PAGE_SIZE if bulk else PAGE_SIZE
            cursor.execute(f"PRAGMA page_size = {size}")
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

    def _write_refused(
        self, error: sqlalchemy.exc.DBAPIError, what: str
    ) -> ReadOnlyDatabaseError | None:
        # docstring inherited; SQLite opens a file it may not write read-only without a
        # word, and says so only at the first write (SQLITE_READONLY); a journal it cannot
        # create in the directory is SQLITE_READONLY_DIRECTORY, or SQLITE_CANTOPEN.
        orig = error.orig
        if not isinstance(orig, sqlite3.OperationalError):
            return None
        code = getattr(orig, "sqlite_errorcode", None)
        text = str(orig)
        if code is not None:
            readonly = code & 0xFF == sqlite3.SQLITE_READONLY
            cannot_open = code & 0xFF == sqlite3.SQLITE_CANTOPEN
        else:  # a driver that does not tell the code
            readonly = "readonly database" in text
            cannot_open = "unable to open database file" in text
        statement = (error.statement or "").lstrip()[:6].upper()
        if not readonly and not (cannot_open and statement != "SELECT"):
            return None
        path = self._engine.url.database or ":memory:"
        return ReadOnlyDatabaseError(
            f"Cannot {what}: SQLite cannot write the registry database {path} ({text}); check "
            f"that the file and its directory {os.path.dirname(path)} (where SQLite keeps its "
            "journal) may be written, or open the repository read-only. Nothing was changed."
        )

    def ensureTableExists(self, name: str, spec: ddl.TableSpec) -> sqlalchemy.Table:
        # docstring inherited; SQLite's DDL is transactional and its writers serialise, so
        # inside a write transaction, in a `tables_in_transaction` block, a missing table is
        # created there, to commit or roll back with the rest.
        if not self._frames or not self._tables_in_transaction:
            try:
                return super().ensureTableExists(name, spec)
            except ReadOnlyDatabaseError:
                # The table its failed CREATE put in the metadata must not be found there.
                self._forget_table(name)
                raise
        table = self.getExistingTable(name, spec)
        if table is not None:
            return table
        self._check_writeable(f"create table {name!r}")
        full_name = self._full_name(name)
        if full_name in self._metadata.tables:  # another thread bound to it meanwhile
            return self._metadata.tables[full_name]
        table = self._convertTableSpec(name, spec, self._metadata)
        # Clones on other threads share the metadata: none may find the table there
        # before it commits (a rollback would leave them a table that is not there).
        # Once committed, the next lookup adds it from the database.
        self._metadata.remove(table)
        with self._writing(f"create table {name!r}") as connection:
            table.create(connection)
        self._created_in_transaction[name] = table
        self.on_rollback(lambda: self._forget_created(name))
        return table

    def _forget_table(self, name: str) -> None:
        """Take table ``name`` out of the metadata: a lookup reads the database again."""
        table = self._metadata.tables.get(self._full_name(name))
        if table is not None:
            self._metadata.remove(table)

    def _forget_created(self, name: str) -> None:
        """Forget table ``name``, created by a block that rolled back."""
        self._created_in_transaction.pop(name, None)

    def getExistingTable(self, name: str, spec: ddl.TableSpec) -> sqlalchemy.Table | None:
        # docstring inherited; a table the open transaction created is found too.
        table = self._created_in_transaction.get(name)
        if table is None:
            return super().getExistingTable(name, spec)
        self._check_columns(name, spec, [c.name for c in table.columns])
        return table

    def _on_transaction_end(self, connection: sqlalchemy.Connection) -> None:
        # docstring inherited; committed, the tables are found in the database from now on.
        self._created_in_transaction.clear()
        super()._on_transaction_end(connection)

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


def _check_namespace(namespace: str | None) -> None:
    if namespace is not None:
        raise ConfigurationError(
            f"SQLite databases have no namespaces (got namespace={namespace!r}); use a "
            "separate database file instead."
        )


def _check_file(path: str, *, allow_empty: bool, writeable: bool) -> None:
    """Refuse a registry file that is missing, not a file, or not a whole SQLite database."""
    restore = "restore it from a backup, or fix 'registry.db' in butler.yaml"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        how = "" if writeable else " read-only"
        raise RepositoryError(
            f"SQLite database {path} does not exist, so it cannot be opened{how}; {restore}. "
            "Opening a repository never creates its database."
        ) from None
    except OSError as exc:
        raise RepositoryError(
            f"Cannot open the registry database {path}: {exc.strerror or exc}; check the path "
            "and its permissions."
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise RepositoryError(
            f"The registry database {path} is a directory, not an SQLite file; move it away "
            f"and {restore}."
        )
    if not stat.S_ISREG(info.st_mode):
        raise RepositoryError(f"The registry database {path} is not a regular file; {restore}.")
    if info.st_size == 0:
        if allow_empty:
            return
        raise RepositoryError(
            f"The registry database {path} is empty (0 bytes): it was truncated or never "
            f"written; {restore}."
        )
    try:
        with open(path, "rb") as stream:
            header = stream.read(100)
    except OSError as exc:
        raise RepositoryError(
            f"Cannot read the registry database {path}: {exc.strerror or exc}; check its "
            "permissions."
        ) from None
    if len(header) < 100 or not header.startswith(_MAGIC):
        raise RepositoryError(
            f"{path} is not an SQLite database (it is damaged or was overwritten); {restore}."
        )
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65_536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count in the header is valid when its "version-valid-for" matches
    # the change counter (every SQLite since 3.7.0 writes both). A write-ahead log
    # holds pages the file may not have yet: a checkpoint that ran out of disk wrote
    # the first page's new count but not the pages past the file's end, and SQLite
    # reads them from the log.
    if (
        header[24:28] == header[92:96]
        and pages
        and info.st_size < pages * page_size
        and not _has_log(path)
    ):
        raise RepositoryError(
            f"The registry database {path} is truncated ({info.st_size} of "
            f"{pages * page_size} bytes); {restore}."
        )


def _has_log(path: str) -> bool:
    """Whether the database file ``path`` has a write-ahead log with frames in it."""
    try:
        return os.stat(f"{path}-wal").st_size > 0
    except OSError:
        return False


def _storage_failures(path: str) -> StorageFailures:
    """How SQLite's errors of storage on the database file ``path`` read (a full disk, an
    I/O error, a damaged file): see `name_storage_failures`."""
    where = f"the registry database {path}"

    def name(error: BaseException) -> DatabaseStorageError | None:
        if not isinstance(error, sqlite3.DatabaseError):
            return None
        code = getattr(error, "sqlite_errorcode", None)
        text = str(error)
        if code is not None:
            primary = code & 0xFF
        elif "database or disk is full" in text:  # a driver that does not tell the code
            primary = sqlite3.SQLITE_FULL
        elif "disk I/O error" in text:
            primary = sqlite3.SQLITE_IOERR
        elif "malformed" in text:
            primary = sqlite3.SQLITE_CORRUPT
        else:
            return None
        if primary == sqlite3.SQLITE_FULL:
            return DatabaseStorageError(
                f"The disk holding {where} is full ({text}); its transaction was rolled "
                "back. Free space on that disk (SQLite needs room for its journal next to "
                "the file), then repeat."
            )
        if primary == sqlite3.SQLITE_IOERR:
            return DatabaseStorageError(
                f"SQLite could not read or write {where} ({text}); its transaction was "
                "rolled back. The disk may be full, failing or gone (an unmounted drive, a "
                "dropped network share); check it, then repeat."
            )
        if primary == sqlite3.SQLITE_CORRUPT:
            return DatabaseStorageError(
                f"{where[0].upper()}{where[1:]} is damaged ({text}). Restore it from a "
                "backup; sqlite3's .recover command may save what is left of it."
            )
        return None

    return name


def _not_writable(path: str) -> str | None:
    """Why SQLite could not write the database file ``path``, or `None` if it could.

    SQLite would open such a file read-only without a word and refuse the
    first write; this tells it before anything is tried. It writes the file,
    and either its ``-wal`` and ``-shm`` files, if both are there and
    writeable, or new files in its directory (a journal, or those two).
    """
    effective = os.access in os.supports_effective_ids

    def writable(name: str) -> bool:
        return os.access(name, os.W_OK, effective_ids=effective)

    if not writable(path):
        return "this user may not write the file"
    directory = os.path.dirname(path)
    if writable(directory):
        return None
    companions = [f"{path}-wal", f"{path}-shm"]
    if all(os.path.exists(name) and writable(name) for name in companions):
        return None
    return (
        f"this user may not create files in its directory {directory}, where SQLite keeps "
        "its journal"
    )


def _probe(path: str, target: str) -> None:
    """Open ``target`` once and read the schema, turning SQLite's errors into ours."""
    try:
        connection = sqlite3.connect(target, uri=True, check_same_thread=False)
        try:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            connection.close()
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return  # a writer holds it; the real connection will wait its turn
        raise RepositoryError(
            f"Cannot open the registry database {path}: {exc}; check the file and its "
            "directory's permissions, or restore the file from a backup."
        ) from None
    except sqlite3.DatabaseError as exc:
        raise RepositoryError(
            f"The registry database {path} is damaged ({exc}); restore it from a backup."
        ) from None


def _readable(path: str, target: str) -> str:
    """``target``, or its immutable form when read-only media stop SQLite's shared memory."""
    try:
        _probe(path, target)
        return target
    except RepositoryError:
        wal = f"{path}-wal"
        if os.path.exists(wal) and os.path.getsize(wal) > 0:
            raise  # immutable would ignore the commits in the write-ahead log
    immutable = f"{target}&immutable=1"
    _probe(path, immutable)
    return immutable


def _on_read_only_media(path: str) -> bool:
    """Whether ``path`` is on a file system mounted read-only."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False
