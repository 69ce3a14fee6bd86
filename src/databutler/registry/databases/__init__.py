"""Concrete `~databutler.registry.interfaces.Database` backends."""

from __future__ import annotations

import sqlalchemy

from ..._exceptions import ConfigurationError
from ..interfaces import Database

__all__ = ["database_class_for_uri", "open_database", "parse_database_url"]


def parse_database_url(uri: str) -> sqlalchemy.engine.URL:
    """``uri`` parsed as an SQLAlchemy URL.

    Raises
    ------
    ConfigurationError
        If ``uri`` is not a string or not a well-formed database URI.
    """
    if not isinstance(uri, str) or not uri.strip():
        raise ConfigurationError(
            f"Malformed database URI {uri!r}: give a non-empty string such as "
            "sqlite:///path/registry.sqlite3 or postgresql://user@host:5432/dbname."
        )
    if "\0" in uri:
        raise ConfigurationError(f"Malformed database URI {uri!r}: it contains a NUL character.")
    try:
        return sqlalchemy.engine.make_url(uri)
    except (sqlalchemy.exc.ArgumentError, ValueError, TypeError) as exc:
        raise ConfigurationError(
            f"Malformed database URI {uri!r} ({exc}); expected sqlite:///path/registry.sqlite3 "
            "or postgresql://user@host:5432/dbname."
        ) from None


def database_class_for_uri(uri: str) -> type[Database]:
    """The `Database` subclass that handles ``uri`` (by its scheme).

    Raises
    ------
    ConfigurationError
        If the URI is malformed or names an unsupported database.
    """
    backend = parse_database_url(uri).get_backend_name()
    if backend == "sqlite":
        from .sqlite import SqliteDatabase

        return SqliteDatabase
    if backend == "postgresql":
        from .postgresql import PostgresqlDatabase

        return PostgresqlDatabase
    raise ConfigurationError(
        f"Unsupported database {backend!r} in {uri!r}; databutler supports sqlite and postgresql."
    )


def open_database(
    uri: str,
    *,
    origin: int = 0,
    namespace: str | None = None,
    writeable: bool = True,
    create: bool = True,
) -> Database:
    """Connect to ``uri`` with the matching `Database` class (see `Database.fromUri`).

    ``create=False`` opens only a database that exists: a missing, empty or
    damaged SQLite file, or a missing PostgreSQL namespace, raises
    `~databutler.RepositoryError` and nothing is created. By default a
    writeable SQLite file and a PostgreSQL namespace are created when missing.
    """
    from .postgresql import PostgresqlDatabase
    from .sqlite import SqliteDatabase

    cls = database_class_for_uri(uri)
    if issubclass(cls, SqliteDatabase | PostgresqlDatabase):
        return cls.fromUri(
            uri, origin=origin, namespace=namespace, writeable=writeable, create=create
        )
    return cls.fromUri(uri, origin=origin, namespace=namespace, writeable=writeable)
