"""A dataset table that knows only ids: enough for the bridge and standalone datastores.

The full registry grows this table with dataset types, runs and data IDs; the
contract other managers rely on — ``dataset.id`` as the target of foreign keys
— stays the same.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy

from ... import ddl
from ..interfaces import DatasetRecordStorageManager, StaticTablesContext, VersionTuple
from ..interfaces._bridge import as_dataset_ids
from ..interfaces._database import Database, chunked
from ._delete import delete_dataset_rows

if TYPE_CHECKING:
    from ...dimensions import DimensionUniverse

__all__ = ["SimpleDatasetRecordStorageManager"]


class SimpleDatasetRecordStorageManager(DatasetRecordStorageManager):
    """Owns ``dataset(id)``; inserts and deletes dataset ids in bulk.

    Parameters
    ----------
    db : `Database`
        The database.
    table : `sqlalchemy.Table`
        The ``dataset`` table.
    registry_schema_version : `VersionTuple`, optional
        The stored schema version.
    """

    _VERSION: ClassVar[VersionTuple | None] = VersionTuple(0, 1, 0)

    def __init__(
        self,
        db: Database,
        table: sqlalchemy.Table,
        registry_schema_version: VersionTuple | None = None,
    ) -> None:
        super().__init__(registry_schema_version=registry_schema_version)
        self._db = db
        self._table = table

    @classmethod
    def initialize(
        cls,
        db: Database,
        context: StaticTablesContext,
        *,
        universe: DimensionUniverse,
        collections: Any = None,
        dimensions: Any = None,
        registry_schema_version: VersionTuple | None = None,
    ) -> SimpleDatasetRecordStorageManager:
        # docstring inherited
        spec = ddl.TableSpec(
            [ddl.FieldSpec("id", cls.getIdColumnType(), primaryKey=True)],
            doc="One row per dataset known to the registry.",
        )
        return cls(db, context.addTable(cls.DATASET_TABLE, spec), registry_schema_version)

    def clone(self, db: Database) -> SimpleDatasetRecordStorageManager:
        # docstring inherited
        return type(self)(db, self._table, self._registry_schema_version)

    @property
    def table(self) -> sqlalchemy.Table:
        """The ``dataset`` table."""
        return self._table

    def insert(self, ids: Iterable[Any]) -> None:
        """Add datasets by id, in batches, all-or-nothing.

        Raises
        ------
        ConflictError
            If an id exists already.
        """
        with self._db.transaction():
            for batch in chunked(as_dataset_ids(ids), self._db.IN_BATCH_SIZE):
                self._db.insert(self._table, *({"id": i} for i in batch))

    def delete(self, ids: Iterable[Any]) -> int:
        """Delete datasets by id, all-or-nothing; return how many existed.

        Raises
        ------
        OrphanedRecordError
            If a datastore still holds one of them (nothing is deleted).
        """
        return delete_dataset_rows(self._db, self._table, ids)
