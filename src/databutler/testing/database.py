"""Throwaway databases for tests: SQLite file, SQLite in memory, PostgreSQL.

PostgreSQL comes from the server whose URI is in ``DATABUTLER_TEST_POSTGRESQL``
(``scripts/test.sh`` starts one and sets it); each database made here is a
fresh schema, dropped afterwards. Without that variable the PostgreSQL
variants skip, saying how to enable them — except under CI (``CI`` set),
where they fail, since the test command must have started the server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy

from ..registry.databases import open_database
from ..registry.interfaces import Database

__all__ = ["TEST_POSTGRESQL_ENV", "DatabaseFactory", "database_ids", "statements"]

TEST_POSTGRESQL_ENV = "DATABUTLER_TEST_POSTGRESQL"


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    """The SQL statements ``db`` sends inside the block, in order, for tests that count
    them (a SQLAlchemy listener; the driver-level paths step aside for listeners)."""
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    engine = db._engine
    sqlalchemy.event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", record)


#: Readable ids of the database backends every suite runs over.
database_ids = ("sqlite-file", "sqlite-memory", "postgresql")


def postgresql_uri() -> str:
    """The test server's URI, or skip (fail under CI) when there is none."""
    uri = os.environ.get(TEST_POSTGRESQL_ENV)
    if uri:
        return uri
    message = (
        f"PostgreSQL tests need a server: run `bash scripts/test.sh`, which starts one, or set "
        f"{TEST_POSTGRESQL_ENV}=postgresql://user@127.0.0.1:port/dbname."
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class DatabaseFactory:
    """Makes fresh, empty databases of one kind, and (re)opens them.

    Parameters
    ----------
    kind : `str`
        One of `database_ids`.
    tmp_path : `pathlib.Path`
        A directory for SQLite files.
    """

    def __init__(self, kind: str, tmp_path: Path) -> None:
        if kind not in database_ids:
            raise ValueError(f"Unknown database kind {kind!r}; choose from {database_ids}.")
        self.kind = kind
        self._tmp_path = tmp_path
        self._schemas: list[str] = []
        self._databases: list[Database] = []
        self._first: Database | None = None
        self.uri = {
            "sqlite-file": f"sqlite:///{tmp_path / 'registry.sqlite3'}",
            "sqlite-memory": "sqlite://",
            "postgresql": postgresql_uri() if kind == "postgresql" else "",
        }[kind]
        self.namespace = f"test_{uuid.uuid4().hex[:16]}" if kind == "postgresql" else None

    def open(self, *, writeable: bool = True) -> Database:
        """Open the database; for SQLite in memory, a clone of the first one opened."""
        if self.kind == "sqlite-memory" and self._first is not None:
            db = self._first.clone()
            if not writeable:
                db._writeable = False
            return db
        db = open_database(self.uri, namespace=self.namespace, writeable=writeable)
        if self._first is None:
            self._first = db
        self._databases.append(db)
        return db

    def raw_engine(self) -> sqlalchemy.engine.Engine:
        """An engine on the same database, for backdoor checks that bypass the API."""
        assert self._first is not None, "open() the database first"
        return self._first._engine

    def qualified(self, table: str) -> str:
        """``table`` qualified by the namespace, for raw SQL."""
        return f'"{self.namespace}".{table}' if self.namespace else table

    def close(self) -> None:
        """Drop PostgreSQL schemas and dispose of every engine."""
        if self.kind == "postgresql" and self._first is not None:
            with self._first._engine.begin() as connection:
                connection.execute(
                    sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{self.namespace}" CASCADE')
                )
        for db in self._databases:
            if db._connection is None:
                db.dispose()  # also closes the connection its reads share
            else:
                db._engine.dispose()


@contextmanager
def database_factory(kind: str, tmp_path: Path) -> Iterator[DatabaseFactory]:
    """A `DatabaseFactory` closed at exit."""
    factory = DatabaseFactory(kind, tmp_path)
    try:
        yield factory
    finally:
        factory.close()
