"""The persistent bridge: two tables shared by every datastore of a registry.

``dataset_location(datastore_name, dataset_id)`` says a datastore holds a
dataset; its foreign key to ``dataset`` stops the registry deleting a dataset
that is still stored. ``dataset_location_trash(dataset_id, datastore_name)``
lists datasets whose artifacts await deletion; it has no foreign key, so the
registry can delete the dataset in the transaction that trashes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple, cast

import sqlalchemy

from ... import ddl
from ..._dataset_ref import require_dataset_id
from ..._exceptions import ConflictError, ReadOnlyDatabaseError
from ..interfaces import (
    Database,
    DatasetIdRef,
    DatasetRecordStorageManager,
    DatastoreRegistryBridge,
    DatastoreRegistryBridgeManager,
    FakeDatasetRef,
    OpaqueTableStorage,
    OpaqueTableStorageManager,
    StaticTablesContext,
    StoredDatastoreItemInfoFactory,
    VersionTuple,
)
from ..interfaces._bridge import (
    as_dataset_ids,
    ref_ids,
    validate_datastore_name,
)
from ..interfaces._database import chunked
from ._trash import check_empty_trash_arguments, selected_id_batches
from .ephemeral import EphemeralDatastoreRegistryBridge

if TYPE_CHECKING:
    from ...dimensions import DimensionUniverse
    from ...transaction import DatastoreTransaction

__all__ = ["MonolithicDatastoreRegistryBridge", "MonolithicDatastoreRegistryBridgeManager"]


class _TableSpecs(NamedTuple):
    dataset_location: ddl.TableSpec
    dataset_location_trash: ddl.TableSpec


class _TablesTuple(NamedTuple):
    dataset_location: sqlalchemy.Table
    dataset_location_trash: sqlalchemy.Table


#: Width of the ``datastore_name`` columns.
_NAME_LENGTH = 256


def _makeTableSpecs(datasets: type[DatasetRecordStorageManager]) -> _TableSpecs:
    # dataset_id leads both keys: lookups by id (findDatastores, locate) and by
    # (id, datastore) use the key itself, which also serves the foreign key.
    location = ddl.TableSpec([], doc="A row means the named datastore holds the dataset.")
    datasets.addDatasetForeignKey(location, primaryKey=True)
    location.fields.add(
        ddl.FieldSpec("datastore_name", sqlalchemy.String, length=_NAME_LENGTH, primaryKey=True)
    )
    trash = ddl.TableSpec(
        [],
        doc="Datasets removed from a datastore whose artifacts still have to be deleted.",
    )
    # No foreign key: trash rows outlive their datasets. dataset_id leads the
    # key because the queries that empty the trash look rows up by id.
    datasets.addDatasetForeignKey(trash, primaryKey=True, constraint=False)
    trash.fields.add(
        ddl.FieldSpec("datastore_name", sqlalchemy.String, length=_NAME_LENGTH, primaryKey=True)
    )
    return _TableSpecs(dataset_location=location, dataset_location_trash=trash)


class MonolithicDatastoreRegistryBridge(DatastoreRegistryBridge):
    """The bridge of one persistent datastore, over the shared tables.

    Every write joins an enclosing ``db.transaction()``, or runs in its own.

    Parameters
    ----------
    datastoreName : `str`
        Name of the datastore.
    db : `Database`
        The registry database.
    tables : `_TablesTuple`
        The two bridge tables.
    """

    def __init__(self, datastoreName: str, *, db: Database, tables: _TablesTuple) -> None:
        super().__init__(datastoreName)
        self._db = db
        self._tables = tables

    def _location_where(self, ids: list[uuid.UUID], table: sqlalchemy.Table) -> list[Any]:
        return [
            table.c.datastore_name == self.datastoreName,
            self._db.inClause(table.c.dataset_id, ids),
        ]

    def _batches(self, refs: Iterable[DatasetIdRef]) -> Iterator[list[uuid.UUID]]:
        return chunked(ref_ids(refs), self._db.IN_BATCH_SIZE)

    def insert(self, refs: Iterable[DatasetIdRef]) -> None:
        # docstring inherited
        location = self._tables.dataset_location
        name = self.datastoreName
        try:
            with self._db.transaction():
                for batch in self._batches(refs):
                    self._db.insert(
                        location, *({"datastore_name": name, "dataset_id": i} for i in batch)
                    )
        except ConflictError as exc:
            raise ConflictError(
                f"Datastore {name!r} cannot record these datasets as stored: one is recorded "
                "already, or is not a dataset of the registry. Nothing was recorded; use ensure() "
                f"to skip datasets recorded already. ({exc})",
                exc.orig,
            ) from exc

    def ensure(self, refs: Iterable[DatasetIdRef]) -> None:
        # docstring inherited
        location = self._tables.dataset_location
        name = self.datastoreName
        try:
            with self._db.transaction():
                for batch in self._batches(refs):
                    self._db.ensure(
                        location,
                        *({"datastore_name": name, "dataset_id": i} for i in batch),
                        primary_key_only=True,
                    )
        except ConflictError as exc:
            raise ConflictError(
                f"Datastore {name!r} cannot record these datasets as stored: one is not a "
                f"dataset of the registry. Nothing was recorded. ({exc})",
                exc.orig,
            ) from exc

    def forget(self, refs: Iterable[DatasetIdRef]) -> None:
        # docstring inherited
        location = self._tables.dataset_location
        with self._db.transaction():
            for batch in self._batches(refs):
                self._db.deleteWhere(
                    location, sqlalchemy.and_(*self._location_where(batch, location))
                )

    def moveToTrash(
        self, refs: Iterable[DatasetIdRef], transaction: DatastoreTransaction | None
    ) -> None:
        # docstring inherited; the database transaction is the undo log here.
        location, trash = self._tables
        with self._db.transaction():
            for batch in self._batches(refs):
                where = self._location_where(batch, location)
                held = self._db.forUpdate(
                    sqlalchemy.select(location.c.dataset_id, location.c.datastore_name).where(
                        *where
                    )
                )
                # A dataset trashed again (re-stored before the trash was
                # emptied) needs its artifacts deleted once: skip the duplicate.
                self._db.ensure(trash, select=held, names=["dataset_id", "datastore_name"])
                self._db.deleteWhere(location, sqlalchemy.and_(*where))

    def check(self, refs: Iterable[Any]) -> set[uuid.UUID]:
        # docstring inherited
        location = self._tables.dataset_location
        found: set[uuid.UUID] = set()
        with self._db.session():
            for batch in chunked(as_dataset_ids(refs), self._db.IN_BATCH_SIZE):
                sql = sqlalchemy.select(location.c.dataset_id).where(
                    *self._location_where(batch, location)
                )
                with self._db.query(sql) as result:
                    found.update(result.scalars())
        return found

    @contextmanager
    def emptyTrash(
        self,
        records_table: OpaqueTableStorage | None = None,
        record_class: type[StoredDatastoreItemInfoFactory] | None = None,
        record_column: str | None = None,
        selected_ids: Iterable[Any] | None = None,
        dry_run: bool = False,
    ) -> Iterator[tuple[Iterable[tuple[DatasetIdRef, Any]], set[Any] | None]]:
        """Context manager over the trashed datasets whose artifacts are to be deleted.

        See `DatastoreRegistryBridge.emptyTrash` for the contract. This
        implementation runs the whole block in one database transaction. It
        pages through the trash by dataset id, ``SKIP LOCKED`` on PostgreSQL
        (so concurrent emptiers share the work and never double-handle a
        row), and deletes each page's records and trash rows once the caller
        has moved past it; the deletions become visible only at a clean exit
        and are rolled back otherwise. A trashed dataset that was stored again
        before the trash was emptied is not yielded: its records describe the
        live artifacts; only its stale trash row is dropped. A trashed dataset
        with no records row is yielded with ``info`` `None`, so its trash row
        does not linger forever.
        """
        check_empty_trash_arguments(records_table, record_class, record_column)
        if not dry_run and not self._db.isWriteable():
            # Refuse before the caller deletes any artifact whose rows we could not purge.
            raise ReadOnlyDatabaseError(
                f"Cannot empty the trash of datastore {self.datastoreName!r}: database "
                f"{self._db} was opened read-only; use dry_run=True or a writeable database."
            )
        records: sqlalchemy.Table | None = None
        if records_table is not None:
            records = getattr(records_table, "table", None)
            if not isinstance(records, sqlalchemy.Table):
                raise TypeError(
                    f"Records table {records_table.name!r} is not stored in this registry's "
                    "database (it has no SQL table); the persistent bridge joins to it in SQL."
                )
            if "dataset_id" not in records.columns:
                raise ValueError(
                    f"Records table {records_table.name!r} has no 'dataset_id' column."
                )
        selected = (
            None if selected_ids is None else list(dict.fromkeys(as_dataset_ids(selected_ids)))
        )
        transaction = self._db.transaction() if not dry_run else self._db.session()
        with transaction:
            keep = None
            if record_column is not None:
                assert records is not None
                keep = self._preserved(records, records.columns[record_column], selected)
            yield self._trashed(records, record_class, selected, dry_run), keep

    def _preserved(
        self,
        records: sqlalchemy.Table,
        column: sqlalchemy.Column[Any],
        selected: list[uuid.UUID] | None,
    ) -> set[Any]:
        """Artifacts (``column`` values) of trashed datasets that held datasets also use."""
        location, trash = self._tables
        stored = records.alias("stored_records")
        shared = sqlalchemy.exists().where(
            stored.c[column.name] == column,
            location.c.dataset_id == stored.c.dataset_id,
            location.c.datastore_name == self.datastoreName,
        )
        base = (
            sqlalchemy.select(column)
            .distinct()
            .join_from(records, trash, trash.c.dataset_id == records.c.dataset_id)
            .where(trash.c.datastore_name == self.datastoreName, shared)
        )
        keep: set[Any] = set()
        for batch in selected_id_batches(selected, self._db.IN_BATCH_SIZE):
            sql = (
                base if batch is None else base.where(self._db.inClause(trash.c.dataset_id, batch))
            )
            with self._db.query(sql) as result:
                keep.update(result.scalars())
        return keep

    def _trash_pages(
        self, selected: list[uuid.UUID] | None
    ) -> Iterator[list[tuple[uuid.UUID, bool]]]:
        """Pages of ``(dataset_id, stored_again)`` from this datastore's trash."""
        location, trash = self._tables
        stored_again = (
            sqlalchemy.exists()
            .where(
                location.c.dataset_id == trash.c.dataset_id,
                location.c.datastore_name == trash.c.datastore_name,
            )
            .label("stored_again")
        )
        base = sqlalchemy.select(trash.c.dataset_id, stored_again).where(
            trash.c.datastore_name == self.datastoreName
        )
        page_size = self._db.IN_BATCH_SIZE
        if selected is not None:
            for batch in selected_id_batches(selected, page_size):
                assert batch is not None
                sql = self._db.forUpdate(
                    base.where(self._db.inClause(trash.c.dataset_id, batch)), skip_locked=True
                )
                with self._db.query(sql) as result:
                    page = [(row[0], bool(row[1])) for row in result]
                if page:
                    yield page
            return
        last: uuid.UUID | None = None
        while True:
            sql = base.order_by(trash.c.dataset_id).limit(page_size)
            if last is not None:
                sql = sql.where(trash.c.dataset_id > last)
            with self._db.query(self._db.forUpdate(sql, skip_locked=True)) as result:
                page = [(row[0], bool(row[1])) for row in result]
            if not page:
                return
            yield page
            last = page[-1][0]

    def _trashed(
        self,
        records: sqlalchemy.Table | None,
        record_class: type[StoredDatastoreItemInfoFactory] | None,
        selected: list[uuid.UUID] | None,
        dry_run: bool,
    ) -> Iterator[tuple[FakeDatasetRef, Any]]:
        trash = self._tables.dataset_location_trash
        for page in self._trash_pages(selected):
            ids = [i for i, stored_again in page if not stored_again]
            by_id: dict[uuid.UUID, list[Any]] = {}
            if records is not None and ids:
                assert record_class is not None
                sql = sqlalchemy.select(records).where(self._db.inClause(records.c.dataset_id, ids))
                with self._db.query(sql) as result:
                    for row in result.mappings():
                        by_id.setdefault(row["dataset_id"], []).append(
                            record_class.from_record(dict(row))
                        )
            for dataset_id in ids:
                ref = FakeDatasetRef(dataset_id)
                for info in by_id.get(dataset_id, [None]):
                    yield ref, info
            if dry_run:
                continue
            # The caller has moved past every pair of this page: purge it.
            if records is not None and ids:
                self._db.deleteWhere(records, self._db.inClause(records.c.dataset_id, ids))
            self._db.deleteWhere(
                trash,
                sqlalchemy.and_(
                    trash.c.datastore_name == self.datastoreName,
                    self._db.inClause(trash.c.dataset_id, [i for i, _ in page]),
                ),
            )


class MonolithicDatastoreRegistryBridgeManager(DatastoreRegistryBridgeManager):
    """Bridges for every datastore of a registry, over two shared tables.

    Parameters
    ----------
    db : `Database`
        The registry database.
    tables : `_TablesTuple`
        The ``dataset_location`` and ``dataset_location_trash`` tables.
    opaque : `OpaqueTableStorageManager`
        Manager of the datastores' records tables.
    universe : `~databutler.dimensions.DimensionUniverse`
        The dimensions of the registry.
    registry_schema_version : `VersionTuple`, optional
        The stored schema version.
    """

    _VERSION: ClassVar[VersionTuple] = VersionTuple(0, 2, 1)

    def __init__(
        self,
        *,
        db: Database,
        tables: _TablesTuple,
        opaque: OpaqueTableStorageManager,
        universe: DimensionUniverse,
        registry_schema_version: VersionTuple | None = None,
        _ephemeral: dict[str, EphemeralDatastoreRegistryBridge] | None = None,
    ) -> None:
        super().__init__(
            opaque=opaque, universe=universe, registry_schema_version=registry_schema_version
        )
        self._db = db
        self._tables = tables
        # Shared with clones: an ephemeral datastore's contents belong to the
        # process, not to one database connection.
        self._ephemeral = _ephemeral if _ephemeral is not None else {}
        location = tables.dataset_location
        self._find_sql = sqlalchemy.select(location.c.datastore_name).where(
            location.c.dataset_id == sqlalchemy.bindparam("dataset_id")
        )

    @classmethod
    def currentVersions(cls) -> list[VersionTuple]:
        # docstring inherited
        return [cls._VERSION]

    @classmethod
    def initialize(
        cls,
        db: Database,
        context: StaticTablesContext,
        *,
        opaque: OpaqueTableStorageManager,
        datasets: type[DatasetRecordStorageManager],
        universe: DimensionUniverse,
        registry_schema_version: VersionTuple | None = None,
    ) -> MonolithicDatastoreRegistryBridgeManager:
        # docstring inherited
        specs = context.addTableTuple(_makeTableSpecs(datasets))
        tables = _TablesTuple(*cast(tuple[sqlalchemy.Table, ...], specs))
        return cls(
            db=db,
            tables=tables,
            opaque=opaque,
            universe=universe,
            registry_schema_version=registry_schema_version,
        )

    def clone(
        self, *, db: Database, opaque: OpaqueTableStorageManager
    ) -> MonolithicDatastoreRegistryBridgeManager:
        # docstring inherited
        return type(self)(
            db=db,
            tables=self._tables,
            opaque=opaque,
            universe=self.universe,
            registry_schema_version=self._registry_schema_version,
            _ephemeral=self._ephemeral,
        )

    def refresh(self) -> None:
        # docstring inherited; nothing cached depends on other clients.
        pass

    def register(self, name: str, *, ephemeral: bool = False) -> DatastoreRegistryBridge:
        # docstring inherited
        validate_datastore_name(name)
        if ephemeral:
            bridge = self._ephemeral.get(name)
            if bridge is None:
                bridge = self._ephemeral.setdefault(name, EphemeralDatastoreRegistryBridge(name))
            return bridge
        return MonolithicDatastoreRegistryBridge(name, db=self._db, tables=self._tables)

    def findDatastores(self, ref: DatasetIdRef) -> frozenset[str]:
        # docstring inherited
        dataset_id = require_dataset_id(ref)
        with self._db.query(self._find_sql, {"dataset_id": dataset_id}) as result:
            names = set(result.scalars())
        for name, bridge in self._ephemeral.items():
            if dataset_id in bridge:
                names.add(name)
        return frozenset(names)

    def locate(self, refs: Iterable[DatasetIdRef]) -> dict[uuid.UUID, set[str]]:
        # docstring inherited
        location = self._tables.dataset_location
        found: dict[uuid.UUID, set[str]] = {}
        ephemeral = list(self._ephemeral.values())
        with self._db.session():
            for batch in chunked(ref_ids(refs), self._db.IN_BATCH_SIZE):
                for dataset_id in batch:
                    found.setdefault(dataset_id, set())
                sql = sqlalchemy.select(location.c.dataset_id, location.c.datastore_name).where(
                    self._db.inClause(location.c.dataset_id, batch)
                )
                with self._db.query(sql) as result:
                    for dataset_id, name in result:
                        found[dataset_id].add(name)
                for bridge in ephemeral:
                    for dataset_id in bridge.check(batch):
                        found[dataset_id].add(bridge.datastoreName)
        return found
