"""Concrete `~databutler.registry.interfaces.Database` backends."""

from __future__ import annotations

import sqlalchemy

from ..._exceptions import ConfigurationError
from ..interfaces import Database

__all__ = ["database_class_for_uri", "open_database"]


def database_class_for_uri(uri: str) -> type[Database]:
    """The `Database` subclass that handles ``uri`` (by its scheme).

    Raises
    ------
    ConfigurationError
        If the URI is malformed or names an unsupported database.
    """
    try:
        backend = sqlalchemy.engine.make_url(uri).get_backend_name()
    except sqlalchemy.exc.ArgumentError as exc:
        raise ConfigurationError(
            f"Malformed database URI {uri!r}; expected sqlite:///path or postgresql://host/db."
        ) from exc
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
    uri: str, *, origin: int = 0, namespace: str | None = None, writeable: bool = True
) -> Database:
    """Connect to ``uri`` with the matching `Database` class (see `Database.fromUri`)."""
    return database_class_for_uri(uri).fromUri(
        uri, origin=origin, namespace=namespace, writeable=writeable
    )
