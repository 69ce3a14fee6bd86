"""Opaque tables: registry-held tables whose rows only their owner (a datastore) reads."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ... import ddl
from ._versioning import VersionedExtension, VersionTuple

if TYPE_CHECKING:
    from ...transaction import DatastoreTransaction
    from ._database import Database, StaticTablesContext

__all__ = ["OpaqueTableStorage", "OpaqueTableStorageManager"]


class OpaqueTableStorage(ABC):
    """One opaque table.

    An abstract base class: a subclass must implement `insert`, `ensure`,
    `replace`, `fetch` and `delete` before it can be instantiated.

    Parameters
    ----------
    name : `str`
        The table's name.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    def insert(
        self, *data: dict[str, Any], transaction: DatastoreTransaction | None = None
    ) -> None:
        """Insert rows; a row whose key exists already is an error."""
        raise NotImplementedError()

    @abstractmethod
    def ensure(
        self, *data: dict[str, Any], transaction: DatastoreTransaction | None = None
    ) -> None:
        """Insert rows, skipping those whose key exists already."""
        raise NotImplementedError()

    @abstractmethod
    def replace(
        self, *data: dict[str, Any], transaction: DatastoreTransaction | None = None
    ) -> None:
        """Insert rows, overwriting those whose key exists already."""
        raise NotImplementedError()

    @abstractmethod
    def fetch(self, **where: Any) -> Iterator[dict[str, Any]]:
        """Rows matching ``where``: a scalar means ``=``, a list, tuple or set means ``IN``.

        With no arguments, every row.
        """
        raise NotImplementedError()

    @abstractmethod
    def delete(self, columns: tuple[str, ...] | list[str], *rows: dict[str, Any]) -> None:
        """Delete the rows matching ``rows`` on ``columns``; every row when ``columns`` is empty."""
        raise NotImplementedError()


class OpaqueTableStorageManager(VersionedExtension):
    """The registry manager that creates and hands out `OpaqueTableStorage` objects."""

    @classmethod
    @abstractmethod
    def initialize(
        cls,
        db: Database,
        context: StaticTablesContext,
        registry_schema_version: VersionTuple | None = None,
    ) -> OpaqueTableStorageManager:
        """Declare the manager's static tables and return an instance."""
        raise NotImplementedError()

    @abstractmethod
    def clone(self, db: Database) -> OpaqueTableStorageManager:
        """A copy bound to ``db`` (a clone of the original database)."""
        raise NotImplementedError()

    def __getitem__(self, name: str) -> OpaqueTableStorage:
        """The table ``name``; `LookupError` if it is not registered."""
        table = self.get(name)
        if table is None:
            raise LookupError(f"No opaque table named {name!r} has been registered.")
        return table

    @abstractmethod
    def get(self, name: str) -> OpaqueTableStorage | None:
        """The table ``name``, or `None` if it has not been registered."""
        raise NotImplementedError()

    @abstractmethod
    def register(self, name: str, spec: ddl.TableSpec) -> OpaqueTableStorage:
        """Create (or bind to) the table ``name`` with ``spec`` and return it."""
        raise NotImplementedError()
