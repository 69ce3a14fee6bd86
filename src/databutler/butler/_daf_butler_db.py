"""The database of a daf_butler registry, opened read-only: SQLite or PostgreSQL.

`._daf_butler_repository` reads the tables of daf_butler's default managers
through `SourceDatabase`: ``fetch`` runs a query (``?`` placeholders on both
backends) and returns its rows; ``cursor`` gives a query's column names and
its rows as they arrive; ``columns`` names a table's columns. SQLite is read
with the ``sqlite3`` module (``mode=ro``); PostgreSQL through SQLAlchemy with
the installed driver, in one ``REPEATABLE READ, READ ONLY`` transaction (one
snapshot for the whole migration), the repository's ``namespace`` (schema)
first on the search path.

What differs between the backends' layouts is left to the reader: on
PostgreSQL daf_butler stores dataset ids as ``uuid`` (the driver gives
`uuid.UUID` objects) and a timespan as one ``int8range`` column (the driver
gives an object with ``lower``, ``upper`` and ``isempty``).
"""

from __future__ import annotations

import sqlite3
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from .._exceptions import RepositoryError

__all__ = [
    "NS_MAX",
    "NS_MIN",
    "PostgreSQLSource",
    "SQLiteSource",
    "SourceDatabase",
    "as_uuid",
    "range_bounds",
]

# The bounds daf_butler stores (on SQLite) for a timespan unbounded at either end (TAI ns).
NS_MIN = 0
NS_MAX = 4102444800000000000

#: Seconds to wait for a PostgreSQL server before saying it cannot be reached.
CONNECT_TIMEOUT = 10


class SourceDatabase(ABC):
    """A daf_butler registry database, read-only."""

    #: What the database is, for messages (a path, or a server and database).
    where: str
    #: The backend's errors, which the reader turns into `RepositoryError`.
    errors: tuple[type[BaseException], ...]

    @abstractmethod
    def fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """All rows of a query with ``?`` placeholders."""

    @abstractmethod
    def cursor(
        self, sql: str, parameters: Sequence[Any] = ()
    ) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
        """A query's column names and its rows."""

    @abstractmethod
    def tables(self) -> set[str]:
        """The names of the tables."""

    @abstractmethod
    def close(self) -> None:
        """Release the connection (nothing was written)."""

    def columns(self, table: str) -> list[str]:
        """The column names of ``table``."""
        names, rows = self.cursor(f'SELECT * FROM "{table}" WHERE 1 = 0')
        for _ in rows:
            pass
        return names

    @property
    def rowid(self) -> bool:
        """Whether tables have SQLite's ``rowid`` (the order of their insertion)."""
        return False


class SQLiteSource(SourceDatabase):
    """A SQLite registry file, opened read-only."""

    errors = (sqlite3.Error,)

    def __init__(self, path: Path, repository: Path) -> None:
        self.where = str(path)
        try:
            self.db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
            self.db.execute("SELECT 1 FROM sqlite_master").fetchall()
        except sqlite3.Error as exc:
            raise RepositoryError(
                f"The registry of the daf_butler repository {repository} ({path}) cannot be "
                f"read as SQLite: {exc}. Check the file (and registry.db in butler.yaml)."
            ) from None

    @property
    def rowid(self) -> bool:
        return True

    def fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.execute(sql, parameters).fetchall()

    def cursor(
        self, sql: str, parameters: Sequence[Any] = ()
    ) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
        cursor = self.db.execute(sql, parameters)
        return [c[0] for c in cursor.description], iter(cursor)

    def tables(self) -> set[str]:
        return {row[0] for row in self.fetch("SELECT name FROM sqlite_master WHERE type='table'")}

    def close(self) -> None:
        self.db.close()


class PostgreSQLSource(SourceDatabase):
    """A PostgreSQL registry (a database, and a schema in it), read in one read-only snapshot."""

    def __init__(self, uri: str, namespace: str | None, repository: Path) -> None:
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        from ..registry.databases.postgresql import _check_namespace, _normalize_url

        self.errors = (sqlalchemy.exc.SQLAlchemyError,)
        try:
            _check_namespace(namespace)
            url = _normalize_url(uri)
        except RepositoryError:
            raise
        except Exception as exc:  # a configuration the URL parser refuses
            raise RepositoryError(
                f"{repository}/butler.yaml: registry.db {uri!r} is not usable: {exc}"
            ) from None
        server = f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"
        self.where = server + (f" (schema {namespace})" if namespace else "")
        self.engine = sqlalchemy.create_engine(
            url, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT}
        )
        try:
            self.connection = self.engine.connect()
        except sqlalchemy.exc.SQLAlchemyError as exc:
            self.engine.dispose()
            reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
            raise RepositoryError(
                f"The registry of the daf_butler repository {repository} is on the PostgreSQL "
                f"server {server}, which cannot be reached or refused the connection "
                f"({reason}). Check that the server is running and registry.db in butler.yaml "
                "(host, port, user, database; a password comes from ~/.pgpass or PGPASSWORD)."
            ) from None
        try:
            # One snapshot for the whole read, which writes nothing.
            self.connection.exec_driver_sql(
                "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"
            )
            schema = namespace or "public"
            found = self.fetch(
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = ?", (schema,)
            )
            if not found:
                raise RepositoryError(
                    f"The registry of the daf_butler repository {repository} is in schema "
                    f"{schema!r} of the PostgreSQL database {server}, which has no such schema. "
                    "Check registry.namespace in butler.yaml (and the database it names)."
                )
            self.schema = schema
            self.fetch("SELECT set_config('search_path', ?, true)", (f'"{schema}"',))
        except BaseException:
            self.close()
            raise

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def fetch(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        result = self.connection.exec_driver_sql(self._sql(sql), tuple(parameters))
        return [tuple(row) for row in result]

    def cursor(
        self, sql: str, parameters: Sequence[Any] = ()
    ) -> tuple[list[str], Iterator[tuple[Any, ...]]]:
        result = self.connection.exec_driver_sql(self._sql(sql), tuple(parameters))
        return list(result.keys()), (tuple(row) for row in result)

    def tables(self) -> set[str]:
        return {
            row[0]
            for row in self.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
                (self.schema,),
            )
        }

    def close(self) -> None:
        # Nothing was written: ending the snapshot cannot lose anything, and a connection
        # the server dropped must not hide the error that brought the migration here.
        try:
            self.connection.rollback()
            self.connection.close()
        except self.errors:
            pass
        finally:
            self.engine.dispose()


def as_uuid(value: Any) -> uuid.UUID:
    """A dataset id as daf_butler stores it (32 hex digits on SQLite, ``uuid`` on PostgreSQL)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        if value.__class__ is str and len(value) == 32 and value.isalnum():
            # What uuid.UUID(value) does for 32 hex digits (refusing what it refuses), without
            # its parsing of the other spellings: this runs once a dataset.
            made = _new(uuid.UUID)
            _set(made, "int", int(value, 16))
            _set(made, "is_safe", uuid.SafeUUID.unknown)
            return made
        return uuid.UUID(value)
    except (TypeError, ValueError, AttributeError):
        raise RepositoryError(
            f"{value!r} is not a dataset id as daf_butler stores one (32 hexadecimal digits, "
            "or a uuid); the daf_butler registry is damaged. Repair it, or remove that dataset "
            "in daf_butler, and migrate again."
        ) from None


_new = object.__new__
_set = object.__setattr__


def range_bounds(value: Any, where: str) -> tuple[int, int] | None:
    """The (begin, end) TAI ns of a PostgreSQL ``int8range`` timespan, daf_butler's bounds for
    an unbounded end; `None` for NULL. An empty range has no place in databutler: refused."""
    if value is None:
        return None
    if getattr(value, "isempty", False):
        raise RepositoryError(
            f"{where}: the timespan is empty, which databutler does not represent. Give it "
            "bounds (or none) in daf_butler, then migrate."
        )
    if not hasattr(value, "lower") or not hasattr(value, "upper"):
        raise RepositoryError(
            f"{where}: the timespan is {value!r}, not the int8range daf_butler stores on "
            "PostgreSQL; the registry is not laid out as this migration reads it."
        )
    lower, upper = value.lower, value.upper
    return (
        NS_MIN if lower is None else int(lower),
        NS_MAX if upper is None else int(upper),
    )
