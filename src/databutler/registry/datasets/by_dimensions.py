"""Datasets stored by dataset type, run and data ID.

Tables:

- ``dataset(id, dataset_type_id, run_id, ingest_date)``: one row per
  dataset; deleting its RUN deletes it (``ON DELETE CASCADE``), and the
  bridge's ``dataset_location`` foreign key stops a delete while a datastore
  still holds it.
- ``dataset_tags_<digest>``, one per set of required dimensions:
  ``(dataset_type_id, dataset_id, collection_id, <one column per required
  dimension>)``, unique on (type, collection, data ID), so a RUN or TAGGED
  collection holds at most one dataset per type and data ID. A dataset is
  tagged into its own RUN when it is inserted. The data ID columns reference
  the dimension record tables: data IDs must name existing records.
"""

from __future__ import annotations

import datetime
import hashlib
import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

import sqlalchemy

from ... import ddl
from ..._collection_type import CollectionType, Timespan
from ..._dataset_id import DatasetIdFactory, DatasetIdGenEnum
from ..._dataset_ref import DatasetRef
from ..._dataset_type import DatasetType
from ..._deprecation import renamed
from ..._exceptions import (
    ArgumentConflictError,
    CollectionError,
    ConflictError,
    DatabutlerError,
    InvalidArgumentError,
)
from ...dimensions import DataCoordinate, DimensionGroup, DimensionUniverse
from .._dimension_values import COLUMN_TYPES
from .._expanded import implied_columns, trusted_full
from ..collections import CollectionRecord, SimpleCollectionManager
from ..dataset_types import DatasetTypeConflictError, DatasetTypeManager
from ..dimension_records import StaticDimensionRecordStorageManager
from ..interfaces import (
    DatasetRecordStorageManager,
    FindRider,
    StaticTablesContext,
    VersionTuple,
)
from ..interfaces._database import Database, chunked
from ._delete import delete_dataset_rows, queue_dataset_row_deletes
from ._temporal import (
    AMBIGUOUS,
    ambiguity_error,
    check_order,
    record_time,
    temporal_element,
    temporal_rows,
)
from .calibs import CalibrationStorage, from_ns

if TYPE_CHECKING:
    from ..attributes import SchemaGeneration
    from ..queries import Node, OrderTerm
    from ..queries._values import SpanColumns

__all__ = ["ByDimensionsDatasetRecordStorageManager"]

#: Rows fetched at a time when streaming query results.
_STREAM_BATCH = 10_000

#: What `_find_carrying` carries when the search returned no row.
_NO_ROWS: Any = object()


def tags_table_name(group: DimensionGroup) -> str:
    """The tags table of datasets whose types have ``group``'s required dimensions."""
    digest = hashlib.sha1(",".join(group.required).encode()).hexdigest()[:12]
    return f"dataset_tags_{digest}"


class ByDimensionsDatasetRecordStorageManager(DatasetRecordStorageManager):
    """Inserts, finds, tags and removes datasets by type, collection and data ID.

    Parameters
    ----------
    db : `Database`
        The database.
    dataset : `sqlalchemy.Table`
        The ``dataset`` table.
    types : `DatasetTypeManager`
        The dataset types.
    collections : `SimpleCollectionManager`
        The collections.
    universe : `DimensionUniverse`
        The dimensions.
    registry_schema_version : `VersionTuple`, optional
        The stored schema version.
    """

    _VERSION: ClassVar[VersionTuple | None] = VersionTuple(1, 0, 0)

    def __init__(
        self,
        db: Database,
        dataset: sqlalchemy.Table,
        types: DatasetTypeManager,
        collections: SimpleCollectionManager,
        dimensions: StaticDimensionRecordStorageManager,
        universe: DimensionUniverse,
        registry_schema_version: VersionTuple | None = None,
    ) -> None:
        super().__init__(registry_schema_version=registry_schema_version)
        self._db = db
        self._dataset = dataset
        self._types = types
        self._collections = collections
        self._dimensions = dimensions
        self._universe = universe
        self._calibs = CalibrationStorage(db, universe, collections)
        self._ids = DatasetIdFactory()
        self._info: dict[int, _TypeInfo] = {}

    @classmethod
    def initialize(
        cls,
        db: Database,
        context: StaticTablesContext,
        *,
        universe: DimensionUniverse,
        collections: SimpleCollectionManager | None = None,
        dimensions: StaticDimensionRecordStorageManager | None = None,
        registry_schema_version: VersionTuple | None = None,
    ) -> ByDimensionsDatasetRecordStorageManager:
        # docstring inherited
        if collections is None or dimensions is None:
            raise TypeError(
                f"{cls.__name__} needs the collection and dimension managers "
                "(collections=, dimensions=)."
            )
        types = DatasetTypeManager.initialize(db, context, universe=universe)
        spec = ddl.TableSpec(
            [
                ddl.FieldSpec("id", cls.getIdColumnType(), primaryKey=True),
                ddl.FieldSpec("dataset_type_id", sqlalchemy.BigInteger, nullable=False),
                ddl.FieldSpec("run_id", sqlalchemy.BigInteger, nullable=False),
                ddl.FieldSpec("ingest_date", sqlalchemy.DateTime, nullable=False),
            ],
            foreignKeys=[
                ddl.ForeignKeySpec("dataset_type", ("dataset_type_id",), ("dataset_type_id",)),
                ddl.ForeignKeySpec(
                    "collection", ("run_id",), ("collection_id",), onDelete="CASCADE"
                ),
            ],
            doc="One row per dataset known to the registry.",
        )
        dataset = context.addTable(cls.DATASET_TABLE, spec)
        return cls(db, dataset, types, collections, dimensions, universe, registry_schema_version)

    def clone(self, db: Database) -> ByDimensionsDatasetRecordStorageManager:
        # docstring inherited
        return type(self)(
            db,
            self._dataset,
            self._types.clone(db),
            self._collections.clone(db),
            self._dimensions.clone(db),
            self._universe,
            self._registry_schema_version,
        )

    @property
    def types(self) -> DatasetTypeManager:
        """The dataset type manager."""
        return self._types

    # -- dataset types and their tags tables -------------------------------

    def _tags_spec(self, group: DimensionGroup) -> ddl.TableSpec:
        fields = [
            ddl.FieldSpec("dataset_type_id", sqlalchemy.BigInteger, nullable=False),
            ddl.FieldSpec("dataset_id", self.getIdColumnType(), primaryKey=True),
            ddl.FieldSpec("collection_id", sqlalchemy.BigInteger, primaryKey=True),
        ]
        foreign_keys = [
            ddl.ForeignKeySpec("dataset_type", ("dataset_type_id",), ("dataset_type_id",)),
            ddl.ForeignKeySpec("dataset", ("dataset_id",), ("id",), onDelete="CASCADE"),
            ddl.ForeignKeySpec(
                "collection", ("collection_id",), ("collection_id",), onDelete="CASCADE"
            ),
        ]
        for name in group.required:
            key = self._universe[name].key
            fields.append(
                ddl.FieldSpec(name, COLUMN_TYPES[key.dtype], length=key.length, nullable=False)
            )
            columns = (*self._universe[name].required, name)
            foreign_keys.append(ddl.ForeignKeySpec(name, columns, columns, addIndex=False))
        return ddl.TableSpec(
            fields,
            unique=[("dataset_type_id", "collection_id", *group.required)],
            foreignKeys=foreign_keys,
            doc=f"Datasets with dimensions {group} in RUN and TAGGED collections.",
        )

    def _tags(self, datasetType: DatasetType) -> sqlalchemy.Table:
        group = self._universe.group(datasetType.dimensions)
        return self._db.ensureTableExists(tags_table_name(group), self._tags_spec(group))

    def _type_info(self, name: str) -> _TypeInfo:
        """What the hot paths need about dataset type ``name``, built once per type."""
        record = self._types.find(name)
        info = self._info.get(record.key)
        # A key can come back for another type (SQLite reuses the ids of removed rows).
        if info is None or info.datasetType != record.datasetType:
            group = self._universe.group(record.datasetType.dimensions)
            tags = self._tags(record.datasetType)
            db = self._db
            p = db.PLACEHOLDER
            t, d = db.quoted(tags), db.quoted(self._dataset)
            c = db.quoted(self._collections.table)
            dims = " AND ".join(f"t.{db.quote_name(n)} = {p}" for n in group.required)
            find_sql = (
                f"SELECT t.dataset_id, t.collection_id, c.name FROM {t} t "
                f"JOIN {d} d ON d.id = t.dataset_id JOIN {c} c ON c.collection_id = d.run_id "
                f"WHERE t.dataset_type_id = {p}" + (f" AND {dims}" if dims else "")
            )
            info = _TypeInfo(record.key, record.datasetType, group, tags, find_sql)
            self._info[record.key] = info
        return info

    def refresh(self) -> None:
        """Forget cached dataset types, to see other clients' changes."""
        self._types.refresh()
        self._info.clear()

    def register_dataset_type(self, datasetType: DatasetType) -> bool:
        """Register ``datasetType`` (see `DatasetTypeManager.register`); whether it was new.

        It may create a table: inside a transaction only in a
        `Database.tables_in_transaction` block where the database can (the
        table then rolls back with it), or when the type's tables exist already.
        """
        record, new = self._types.register(datasetType)
        self._tags(record.datasetType)
        if record.datasetType.isCalibration:
            self._calibs.table(self._universe.group(record.datasetType.dimensions))
        return new

    # -- inserting ---------------------------------------------------------

    # Deprecated aliases of renamed methods, kept for one release.
    registerDatasetType = renamed("register_dataset_type")

    def _standardize(self, datasetType: DatasetType, data_id: Any) -> DataCoordinate:
        group = self._universe.group(datasetType.dimensions)
        if isinstance(data_id, DataCoordinate) and data_id.dimensions == group:
            return data_id  # checked when it was made, for these very dimensions
        return DataCoordinate.standardize(data_id, universe=self._universe, dimensions=group)

    def insert(
        self,
        datasetTypeName: str,
        run: str,
        dataIds: Iterable[Mapping[str, Any] | DataCoordinate],
        idGenerationMode: DatasetIdGenEnum = DatasetIdGenEnum.UNIQUE,
    ) -> list[DatasetRef]:
        """Add new datasets of one type to a RUN, in batches, all-or-nothing.

        Raises
        ------
        ConflictError
            If the run already holds a dataset of that type and data ID (or
            the id exists); nothing is inserted.
        DataIdError
            If a data ID is malformed or names a dimension record that does not exist.
        """
        data_ids = list(dataIds)
        generation = self._types.generation
        # One dataset on a database that can insert under a guard: the generation check
        # rides on the insert itself (see `_insert_rows`) instead of a read of its own.
        guarded = (
            len(data_ids) == 1
            and generation is not None
            and generation.seen is not None
            and self._db.GUARDED_INSERTS
        )
        with self._db.transaction():
            if not guarded:
                self._check_generation()
            try:
                refs = self._insert_new(datasetTypeName, run, data_ids, idGenerationMode, guarded)
            except ConflictError:
                raise  # the database refused the rows (and PostgreSQL the transaction)
            except DatabutlerError:
                # Refused before anything was written, perhaps because of stale caches.
                if not guarded or not self._check_generation():
                    raise
                refs = None
            else:
                if refs is None:  # the guard found another generation: nothing was written
                    self._check_generation()
            if refs is None:  # again, on fresh caches, with the generation share-locked
                refs = self._insert_new(datasetTypeName, run, data_ids, idGenerationMode, False)
                assert refs is not None
            return refs

    def _insert_new(
        self,
        datasetTypeName: str,
        run: str,
        data_ids: list[Mapping[str, Any] | DataCoordinate],
        idGenerationMode: DatasetIdGenEnum,
        guarded: bool,
    ) -> list[DatasetRef] | None:
        """The new refs, inserted; with ``guarded``, `None` if the caches were stale (nothing
        was inserted: see `_insert_rows`)."""
        info = self._type_info(datasetTypeName)
        datasetType, universe, group = info.datasetType, self._universe, info.group
        make_id = self._ids.makeDatasetId
        refs = []
        from_required = DataCoordinate.from_required
        for data_id in data_ids:
            if type(data_id) is dict:
                coordinate = from_required(group, data_id)
            else:
                coordinate = DataCoordinate.standardize(
                    data_id, universe=universe, dimensions=group
                )
            dataset_id = make_id(run, datasetType, coordinate, idGenerationMode)
            refs.append(DatasetRef(datasetType, coordinate, run=run, id=dataset_id))
        return refs if self._write(info.key, datasetType, run, refs, guarded=guarded) else None

    def import_(self, refs: Iterable[DatasetRef]) -> list[DatasetRef]:
        """Add datasets with the ids they already have (from another repository)."""
        by_key: dict[tuple[str, str], list[DatasetRef]] = {}
        for ref in refs:
            if ref.run is None:
                raise InvalidArgumentError(f"Cannot import {ref!r}: it needs a run.")
            by_key.setdefault((ref.datasetType.name, ref.run), []).append(ref)
        out: list[DatasetRef] = []
        with self._db.transaction():
            self._check_generation()
            for (name, run), group in by_key.items():
                record = self._types.find(name)
                datasetType = record.datasetType
                dimensions = self._universe.group(datasetType.dimensions)
                # A ref of this very type whose data ID is a coordinate of its dimensions
                # (checked when it was made) is taken as it is; the others are standardized.
                normalized = [
                    r
                    if (r.datasetType is datasetType or r.datasetType == datasetType)
                    and isinstance(r.dataId, DataCoordinate)
                    and r.dataId.dimensions == dimensions
                    else DatasetRef(
                        datasetType, self._standardize(datasetType, r.dataId), run=run, id=r.id
                    )
                    for r in group
                ]
                self._write(record.key, datasetType, run, normalized)
                out.extend(normalized)
        return out

    def _check_generation(self) -> bool:
        """Drop the caches if another client changed runs or dataset types; whether it had.

        One primary-key read, at the start of each write transaction, so
        that what follows is looked up afresh when needed; on PostgreSQL it
        also holds off schema changes until the transaction ends.
        """
        if self._types.generation is not None:
            return self._types.generation.check(lock=True)
        return False

    def _write(
        self,
        type_key: int,
        datasetType: DatasetType,
        run: str,
        refs: list[DatasetRef],
        *,
        guarded: bool = False,
    ) -> bool:
        """Insert ``refs`` into ``run``; whether they went in (only a guarded insert finding
        stale caches says no).

        The checks come before the nested transaction block, so that an error
        they raise (perhaps from stale caches, which the caller may refresh and
        retry) does not doom the caller's transaction.
        """
        run_record = self._collections.find(run)
        if run_record.type is not CollectionType.RUN:
            raise CollectionError(
                f"Datasets go into RUN collections; {run!r} is {run_record.type.name}."
            )
        info = self._type_info(datasetType.name)
        if info.key != type_key or info.datasetType != datasetType:
            raise DatasetTypeConflictError(
                f"Dataset type {datasetType.name!r} was redefined (by another client) "
                f"while these datasets were prepared: now {info.datasetType}, they were "
                f"made for {datasetType}. Nothing was added; repeat the call to use the "
                "current definition."
            )
        with self._db.transaction():
            if refs:  # a new row: if the commit's reply is lost, it tells whether it happened
                self._db.witness(self._dataset, "id", refs[0].id)
            return self._insert_rows(info, datasetType, run, run_record.key, refs, guarded=guarded)

    def _insert_rows(
        self,
        info: _TypeInfo,
        datasetType: DatasetType,
        run: str,
        run_key: int,
        refs: list[DatasetRef],
        *,
        guarded: bool = False,
    ) -> bool:
        """Insert the dataset and tags rows of ``refs``; whether they went in.

        With ``guarded`` (one ref), both rows go in one statement that also
        share-locks the schema generation, and only if it is still the one
        this client's caches were built under; if it was not, nothing is
        inserted and the answer is `False` (no error: the transaction goes on).
        """
        type_key = info.key
        required = info.group.required
        tag_columns = ["dataset_type_id", "dataset_id", "collection_id", *required]
        dataset_columns = ["id", "dataset_type_id", "run_id", "ingest_date"]
        db = self._db
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        ingest_date = db.bind_value(self._dataset.c.ingest_date, now)

        def explain(exc: ConflictError) -> ConflictError:
            return ConflictError(
                f"Cannot add these {datasetType.name!r} datasets to run {run!r}: one has an id "
                "that exists already, a data ID the run already holds for this dataset type, "
                "or a data ID naming a dimension record that does not exist. Nothing was added. "
                f"({exc})",
                exc.orig,
            )

        try:
            if guarded:
                generation = self._types.generation
                assert generation is not None and len(refs) == 1
                (ref,) = refs
                (key,) = db.encode_ids([ref.id])
                inserted = db.insert_guarded(
                    generation.guard,
                    [
                        (
                            self._dataset,
                            dataset_columns,
                            (key, type_key, run_key, ingest_date),
                            ("id", "ingest_date"),
                        ),
                        (
                            info.tags,
                            tag_columns,
                            (type_key, key, run_key, *[ref.dataId[n] for n in required]),
                            ("dataset_id",),
                        ),
                    ],
                    explain=explain,
                    on_changed=generation.forget,
                )
                return inserted
            with db.transaction():
                for batch in chunked(refs, db.IN_BATCH_SIZE):
                    keys = db.encode_ids([r.id for r in batch])
                    db.insert_many(
                        self._dataset,
                        dataset_columns,
                        [(k, type_key, run_key, ingest_date) for k in keys],
                        encoded=["id", "ingest_date"],
                    )
                    db.insert_many(
                        info.tags,
                        tag_columns,
                        [
                            (type_key, k, run_key, *[r.dataId[n] for n in required])
                            for k, r in zip(keys, batch, strict=True)
                        ],
                        encoded=["dataset_id"],
                    )
            return True
        except ConflictError as exc:
            raise explain(exc) from exc

    @staticmethod
    def _tag_row(
        type_key: int, collection_key: int, ref: DatasetRef, required: Sequence[str]
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "dataset_type_id": type_key,
            "dataset_id": ref.id,
            "collection_id": collection_key,
        }
        for name in required:
            row[name] = ref.dataId[name]
        return row

    # -- finding -----------------------------------------------------------

    def find_riding(
        self,
        datasetTypeName: str,
        dataId: Mapping[str, Any] | DataCoordinate,
        collections: Sequence[str],
        timespan: Timespan | None = None,
        *,
        coherent: bool = False,
        rider: FindRider | None = None,
    ) -> tuple[DatasetRef | None, list[dict[str, Any]] | None]:
        """The first dataset of that type and data ID in ``collections``, searched in order,
        and ``rider``'s rows of it, read by the same statement (`None` where they were
        not: nothing found, a search of CALIBRATION collections, or no ``rider``).

        CHAINED collections are searched member by member. CALIBRATION
        collections are searched only with a ``timespan``: a dataset valid at
        some time of it matches (more than one is an error).

        With ``coherent``, caches another client made stale are not used: the
        schema generation is read with the search (one query for both) and,
        if it changed, the search runs again on fresh caches.
        """

        def plain(
            timespan: Timespan | None,
        ) -> tuple[DatasetRef | None, list[dict[str, Any]] | None]:
            found, _, ridden = self._find_carrying(
                datasetTypeName, dataId, collections, None, timespan, rider
            )
            return found, ridden

        generation = self._types.generation if coherent else None
        if generation is None:
            return plain(timespan)
        if timespan is not None or self._db.isInTransaction():
            generation.check()
            return plain(timespan)
        try:
            found, token, ridden = self._find_carrying(
                datasetTypeName, dataId, collections, generation.scalar_sql, None, rider
            )
        except (DatabutlerError, sqlalchemy.exc.DBAPIError):
            # Possibly an answer from stale caches (a type redefined, a table dropped).
            if generation.check():
                return plain(None)
            raise
        changed = generation.check() if token is _NO_ROWS else generation.observe(token)
        if changed:
            return plain(None)
        return found, ridden

    def _find_carrying(
        self,
        datasetTypeName: str,
        dataId: Mapping[str, Any] | DataCoordinate,
        collections: Sequence[str],
        scalar: tuple[str, tuple[Any, ...]] | None,
        timespan: Timespan | None = None,
        rider: FindRider | None = None,
    ) -> tuple[DatasetRef | None, Any, list[dict[str, Any]] | None]:
        """`find_riding`, with the value of the ``scalar`` subquery selected alongside
        (`_NO_ROWS` when the search returned no row to carry it) in the middle."""
        info = self._type_info(datasetTypeName)
        resolved = self._collections.resolve(collections)
        if (
            timespan is None
            and info.datasetType.isCalibration
            and any(c.type is CollectionType.CALIBRATION for c in resolved)
        ):
            # A data ID naming an exposure (visit, day_obs) gives the time, its timespan,
            # and the values its record implies (a flat's physical_filter).
            given = dataId.mapping if isinstance(dataId, DataCoordinate) else dataId
            extra = [n for n in given if n in self._universe and n not in info.group.names]
            element = temporal_element(self._dimensions.table, extra)
            if element is not None:
                timespan, implied = record_time(
                    self._db, self._universe, self._dimensions.table, element, given
                )
                dataId = {**{k: v for k, v in implied.items() if k in info.group}, **given}
        coordinate = DataCoordinate.standardize(
            dataId, universe=self._universe, dimensions=info.group
        )
        if timespan is not None and any(c.type is CollectionType.CALIBRATION for c in resolved):
            calibration = self._find_with_calibrations(info, coordinate, resolved, timespan)
            return calibration, _NO_ROWS, None
        searched = [c.key for c in resolved if c.type is not CollectionType.CALIBRATION]
        if not searched:
            return None, _NO_ROWS, None
        db = self._db
        sql = f"{info.find_sql} AND {db.sql_in_values('t.collection_id', len(searched))}"
        params = [
            info.key,
            *(coordinate[n] for n in info.group.required),
            *db.in_values_params(searched),
        ]
        width = 0
        if rider is not None:
            # ``SELECT a, b, c FROM x WHERE`` becomes ``SELECT a, b, c, r FROM x JOIN ... WHERE``.
            head, _, rest = sql.partition(" WHERE ")
            sql = f"{head} {rider.join.replace('{dataset_id}', 't.dataset_id')} WHERE {rest}"
            head, _, rest = sql.partition(" FROM ")
            sql = f"{head}, {rider.columns} FROM {rest}"
            params = [*rider.params, *params]
            width = rider.width
        if scalar is not None:
            # ``SELECT a, b, c FROM`` becomes ``SELECT a, b, c, (scalar) FROM``.
            head, _, rest = sql.partition(" FROM ")
            sql = f"{head}, {scalar[0]} FROM {rest}"
            params = [*scalar[1], *params]
        carried: Any = _NO_ROWS
        ridden: dict[Any, list[tuple[Any, ...]]] = {}
        with db.query_raw(sql, params) as rows:
            if rows and scalar is not None:
                carried = rows[0][3 + width]
            found = {row[1]: (row[0], row[2]) for row in rows}
            if width:
                for row in rows:
                    ridden.setdefault(row[1], []).append(tuple(row[3 : 3 + width]))
        for key in searched:
            if key in found:
                dataset_id, run_name = found[key]
                (ref_id,) = db.decode_ids([dataset_id])
                ref = DatasetRef(info.datasetType, coordinate, run=run_name, id=ref_id)
                records = None if rider is None else rider.decode(ridden[key], ref_id)
                return ref, carried, records
        return None, carried, None

    def _find_with_calibrations(
        self,
        info: _TypeInfo,
        coordinate: DataCoordinate,
        resolved: list[CollectionRecord],
        timespan: Timespan,
    ) -> DatasetRef | None:
        for collection in resolved:
            if collection.type is CollectionType.CALIBRATION:
                if not info.datasetType.isCalibration:
                    continue
                hits = self._calibs.find(collection.key, info.key, info.group, coordinate, timespan)
                if len(hits) > 1:
                    candidates = ", ".join(
                        f"{h[0]} (run {self._run_of(h[0])!r})" for h in sorted(hits, key=str)
                    )
                    raise CollectionError(
                        f"{len(hits)} {info.datasetType.name!r} datasets for {coordinate} are "
                        f"valid in {collection.name!r} during {timespan}: {candidates}; give a "
                        "narrower time, or decertify all but one over it."
                    )
                if hits:
                    dataset_id = hits[0][0]
                    return DatasetRef(
                        info.datasetType, coordinate, run=self._run_of(dataset_id), id=dataset_id
                    )
            else:
                ref, _ = self.find_riding(info.datasetType.name, coordinate, [collection.name])
                if ref is not None:
                    return ref
        return None

    def _run_of(self, dataset_id: uuid.UUID) -> str:
        run = self._collections.table
        sql = (
            sqlalchemy.select(run.c.name)
            .join_from(self._dataset, run, run.c.collection_id == self._dataset.c.run_id)
            .where(self._dataset.c.id == dataset_id)
        )
        with self._db.query(sql) as result:
            return str(result.scalar_one())

    def certify(self, collection: str, refs: Iterable[DatasetRef], timespan: Timespan) -> None:
        """Make ``refs`` valid in CALIBRATION ``collection`` over ``timespan``.

        Raises
        ------
        ConflictError
            If a dataset of the same type and data ID is already valid in
            part of ``timespan``; nothing changes.
        CollectionError
            If ``collection`` is not CALIBRATION.
        InvalidArgumentError
            If a dataset type is not a calibration type (a `ValueError`).
        """
        with self._db.transaction():
            for name, group in _by_type(refs).items():
                info = self._type_info(name)
                if not info.datasetType.isCalibration:
                    raise InvalidArgumentError(
                        f"Dataset type {name!r} is not a calibration type (isCalibration=False); "
                        "only calibrations can be certified."
                    )
                self._calibs.certify(collection, info.key, info.group, group, timespan)

    def decertify(
        self,
        collection: str,
        datasetTypeName: str,
        timespan: Timespan,
        dataIds: Iterable[Mapping[str, Any]] | None = None,
    ) -> int:
        """Remove validity within ``timespan``; ranges sticking out are cut back."""
        info = self._type_info(datasetTypeName)
        coordinates = None
        if dataIds is not None:
            coordinates = [
                DataCoordinate.standardize(d, universe=self._universe, dimensions=info.group)
                for d in dataIds
            ]
        return self._calibs.decertify(collection, info.key, info.group, timespan, coordinates)

    def query(
        self,
        datasetTypeName: str,
        collections: Sequence[str],
        *,
        where: Node | None = None,
        bind: Mapping[str, Any] | None = None,
        in_datastore: str | None = None,
        not_in_datastore: str | None = None,
        location: sqlalchemy.Table | None = None,
        find_first: bool = False,
        order_by: Sequence[OrderTerm] = (),
        limit: int | None = None,
        coherent: bool = False,
    ) -> Iterator[DatasetRef]:
        """Datasets of one type in ``collections`` (each once), optionally filtered.

        ``where`` may use the dataset type's dimensions (and those they
        imply) and ``ingest_date``; with ``location`` (the bridge's
        ``dataset_location`` table) the results can be restricted to datasets
        a datastore holds, or does not hold. For a calibration type,
        CALIBRATION collections give the datasets certified in them, each
        once whatever its validity ranges; with ``find_first`` they are
        refused (`ArgumentConflictError`).

        With ``find_first``, each data ID gives only the dataset of the first
        of ``collections`` (chains flattened in order) that has one. With
        ``order_by`` (dimensions, record fields, ``run``, ``ingest_date``) or
        ``limit``, the rows are ordered in SQL, ties broken by the data ID (and,
        where one data ID can have several datasets, the dataset id), and at
        most ``limit`` come back.

        The query is built (and every name in it checked) at the call; rows
        are read as the returned iterator advances.

        With ``coherent``, caches another client made stale are not used.
        Outside a transaction, on a server (not `Database.LOCAL_READS`), the
        schema generation rides on the query's own statement, one round trip
        for both: its first row carries it (an empty result reads it after).
        If it changed, the query is built again on fresh caches and run again,
        before any row is returned. Otherwise it is read first; a lookup by
        time reads it after it is built, and builds again if it changed.
        """
        build = partial(
            self._built_query,
            datasetTypeName,
            collections,
            where=where,
            bind=bind,
            in_datastore=in_datastore,
            not_in_datastore=not_in_datastore,
            location=location,
            find_first=find_first,
            order_by=order_by,
            limit=limit,
        )
        generation = self._types.generation if coherent else None
        if generation is not None and (self._db.isInTransaction() or self._db.LOCAL_READS):
            generation.check()
            generation = None
        try:
            built = build()
        except DatabutlerError:
            # Possibly refused on stale caches (a type redefined by another client).
            if generation is None or not generation.check():
                raise
            return self._run_built(build(), limit)
        if generation is not None and isinstance(built, tuple):
            return self._carrying(built, build, generation, limit)
        if generation is not None and generation.check():
            built = build()
        return self._run_built(built, limit)

    def _run_built(self, built: _Built, limit: int | None) -> Iterator[DatasetRef]:
        if built is None:
            return iter(())
        if isinstance(built, tuple):
            return self._stream_refs(*built, limit)
        return built

    def _carrying(
        self,
        built: tuple[_TypeInfo, sqlalchemy.Select[Any]],
        build: Callable[[], _Built],
        generation: SchemaGeneration,
        limit: int | None,
    ) -> Iterator[DatasetRef]:
        """The refs of ``built``, whose statement carries the schema generation in a last
        column, checked at the first batch (see `query`)."""
        info, sql = built
        batches = _batches(self._db, sql.add_columns(generation.scalar_subquery()), limit)
        try:
            try:
                first = next(batches, None)
            except (DatabutlerError, sqlalchemy.exc.DBAPIError):
                # Possibly a statement built on stale caches (a table dropped meanwhile).
                if not generation.check():
                    raise
                stale = True
            else:
                stale = generation.observe(first[0][-1]) if first else generation.check()
            if stale:
                batches.close()
                yield from self._run_built(build(), limit)
                return
            if first:
                yield from self._refs_of(info, first)
            for rows in batches:
                yield from self._refs_of(info, rows)
        finally:
            batches.close()

    def _built_query(
        self,
        datasetTypeName: str,
        collections: Sequence[str],
        *,
        where: Node | None,
        bind: Mapping[str, Any] | None,
        in_datastore: str | None,
        not_in_datastore: str | None,
        location: sqlalchemy.Table | None,
        find_first: bool,
        order_by: Sequence[OrderTerm],
        limit: int | None,
    ) -> _Built:
        """What `query` runs: a lookup by time (an iterator, built), the type and the
        statement of the others, or `None` when nothing is searched."""
        from ..queries import (
            DimensionColumns,
            Identifier,
            apply_order,
            dimension_term,
            order_clauses,
            to_sql,
        )

        temporal = self._temporal_query(
            datasetTypeName, collections, where, bind, find_first, order_by, limit
        )
        if temporal is not None:
            if in_datastore is not None or not_in_datastore is not None:
                raise ArgumentConflictError(
                    "A calibration lookup by time (a where naming a dimension with a timespan) "
                    "cannot also filter by datastore; filter the refs it returns instead."
                )
            return temporal

        info = self._type_info(datasetTypeName)
        group, tags = info.group, info.tags
        searched = self._collections.resolve(collections)
        keys = [c.key for c in searched if c.type is not CollectionType.CALIBRATION]
        calib_keys, calibs = self._calibration_search(info, searched, find_first)
        if not keys and not calib_keys:
            return None
        found: Any = tags
        # Whether one data ID can come with several datasets (ordered then by dataset id).
        several = len(keys) > 1
        if calibs is not None:
            # Datasets certified in CALIBRATION collections (each once, whatever its
            # validity ranges), with those of the other collections.
            dims = [tags.c[n] for n in group.required]
            parts = [
                sqlalchemy.select(
                    calibs.c.dataset_id, *(calibs.c[n] for n in group.required)
                ).where(
                    calibs.c.dataset_type_id == info.key, calibs.c.collection_id.in_(calib_keys)
                )
            ]
            if keys:
                parts.append(
                    sqlalchemy.select(tags.c.dataset_id, *dims).where(
                        tags.c.dataset_type_id == info.key, tags.c.collection_id.in_(keys)
                    )
                )
            # UNION (and DISTINCT for one part) keeps one row per dataset and data ID.
            union = sqlalchemy.union(*parts) if len(parts) > 1 else parts[0].distinct()
            found = union.subquery("found")
            several = True
        elif find_first and len(keys) > 1:
            # Rank each row by its collection's place in the search; keep the best per data ID.
            places = {key: i for i, key in enumerate(keys)}
            rank = sqlalchemy.case(places, value=tags.c.collection_id)
            dims = [tags.c[n] for n in group.required]
            best = sqlalchemy.func.row_number().over(partition_by=dims or None, order_by=rank)
            found = (
                sqlalchemy.select(tags.c.dataset_id, *dims, best.label("search_rank"))
                .where(tags.c.dataset_type_id == info.key, tags.c.collection_id.in_(keys))
                .subquery("found_first")
            )
        run = self._collections.table.alias("run")
        dataset = self._dataset
        # The id comes back as the driver returns it, decoded a batch at a time.
        raw_id = sqlalchemy.type_coerce(found.c.dataset_id, sqlalchemy.types.NullType())
        sql = (
            sqlalchemy.select(raw_id, run.c.name, *(found.c[n] for n in group.required))
            .join_from(found, dataset, dataset.c.id == found.c.dataset_id)
            .join(run, run.c.collection_id == dataset.c.run_id)
        )
        if found is tags:
            sql = sql.where(tags.c.dataset_type_id == info.key, tags.c.collection_id.in_(keys))
            if len(keys) > 1:  # a dataset may be in several of them: report it once
                sql = sql.distinct()
        elif calibs is None:
            sql = sql.where(found.c.search_rank == 1)
        base = {n: found.c[n] for n in group.required}
        columns = DimensionColumns(self._universe, self._dimensions.table, base)
        # The implied values come with the rows (full data IDs), after the required ones.
        implied, implied_sql, implied_joins = implied_columns(
            self._universe, self._dimensions.table, base, info.implied
        )
        assert tuple(implied) == info.implied, (implied, info.implied)
        sql = sql.add_columns(*implied_sql)
        if where is not None:

            def resolve_where(identifier: Identifier) -> Any:
                # The dataset's own ingest_date (also raw.ingest_date), then dimensions.
                if identifier.field is None and identifier.name == "ingest_date":
                    return dataset.c.ingest_date
                if identifier.name == datasetTypeName and identifier.field == "ingest_date":
                    return dataset.c.ingest_date
                if identifier.name == datasetTypeName and identifier.field == "timespan":
                    return self._validity(info, found.c.dataset_id, keys, calib_keys, calibs)
                return columns.resolve(identifier)

            sql = sql.where(to_sql(where, resolve_where, bind))
        for name, holds in ((in_datastore, True), (not_in_datastore, False)):
            if name is None:
                continue
            if location is None:
                raise ValueError("Datastore filters need the bridge's dataset_location table.")
            held = sqlalchemy.exists().where(
                location.c.dataset_id == found.c.dataset_id, location.c.datastore_name == name
            )
            sql = sql.where(held if holds else ~held)
        if order_by or limit is not None:
            own = {"run": run.c.name, "ingest_date": dataset.c.ingest_date}

            def resolve(term: OrderTerm) -> Any:
                return own[term.name] if term.name in own else dimension_term(columns, term)

            # The data ID is unique in one collection, and after find_first; over several
            # collections the same one may come from two datasets, then ordered by id.
            ties = [found.c[n] for n in group.required]
            if several and not find_first:
                ties.append(found.c.dataset_id)
            order = order_clauses(order_by, resolve, lambda: [*own, *columns.names()], ties)
            sql = apply_order(sql, order, limit)
        for table, onclause in implied_joins:
            sql = sql.join(table, onclause, isouter=True)
        return info, columns.apply(sql)

    def _validity(
        self,
        info: _TypeInfo,
        dataset_id: sqlalchemy.ColumnElement[Any],
        keys: list[int],
        calib_keys: list[int],
        calibs: sqlalchemy.Table | None,
    ) -> SpanColumns:
        """``<type>.timespan`` in a query: the validity ranges of a dataset certified in the
        searched CALIBRATION collections; in RUN and TAGGED collections a dataset is valid
        at every time (it overlaps any timespan)."""
        from ..queries._values import SpanColumns

        def overlaps(begin: Any, end: Any) -> sqlalchemy.ColumnElement[bool]:
            clauses: list[sqlalchemy.ColumnElement[bool]] = []
            if calibs is not None and calib_keys:
                valid = calibs.alias("validity")
                clauses.append(
                    sqlalchemy.exists().where(
                        valid.c.dataset_id == dataset_id,
                        valid.c.dataset_type_id == info.key,
                        valid.c.collection_id.in_(calib_keys),
                        valid.c.validity_begin < end,
                        begin < valid.c.validity_end,
                    )
                )
            if keys:
                tagged = info.tags.alias("untimed")
                clauses.append(
                    sqlalchemy.exists().where(
                        tagged.c.dataset_id == dataset_id,
                        tagged.c.dataset_type_id == info.key,
                        tagged.c.collection_id.in_(keys),
                    )
                )
            return sqlalchemy.or_(sqlalchemy.false(), *clauses)

        return SpanColumns(overlaps=overlaps)

    def _extra_dimensions(self, info: _TypeInfo, where: Node | None) -> list[str]:
        """Dimensions a ``where`` names that the type's dimensions neither have nor imply."""
        if where is None:
            return []
        from ..queries import DimensionColumns, identifiers

        reachable = DimensionColumns(
            self._universe,
            self._dimensions.table,
            {n: None for n in info.group.required},  # type: ignore[misc]
        ).reachable()
        named = {i.name for i in identifiers(where)}
        return [n for n in self._universe.names if n in named and n not in reachable]

    def _temporal_query(
        self,
        datasetTypeName: str,
        collections: Sequence[str],
        where: Node | None,
        bind: Mapping[str, Any] | None,
        find_first: bool,
        order_by: Sequence[OrderTerm],
        limit: int | None,
    ) -> Iterator[DatasetRef] | None:
        """A calibration lookup by time, when ``where`` names a dimension with a timespan
        (``exposure``) that a calibration type lacks and CALIBRATION collections are
        searched: one ref per (data ID, exposure), in one statement (`None` otherwise)."""
        info = self._type_info(datasetTypeName)
        if not info.datasetType.isCalibration:
            return None
        extra = self._extra_dimensions(info, where)
        searched = self._collections.resolve(collections)
        if not extra or not any(c.type is CollectionType.CALIBRATION for c in searched):
            return None
        element = temporal_element(self._dimensions.table, extra)
        if element is None:
            return None
        from ..queries import DimensionColumns, apply_order, to_sql

        def where_sql(base: Mapping[str, Any]) -> tuple[Any, Any]:
            columns = DimensionColumns(self._universe, self._dimensions.table, base)
            return to_sql(where, columns.resolve, bind), columns.apply  # type: ignore[arg-type]

        rows, keys = temporal_rows(
            universe=self._universe,
            table_of=self._dimensions.table,
            type_key=info.key,
            group=info.group,
            tags=info.tags,
            calibs=self._calibs.existing_table(info.group),
            searched=searched,
            element=element,
            where=where_sql,
            find_first=find_first,
        )
        names = [*info.group.required, *keys]
        check_order(order_by, names)
        run = self._collections.table.alias("run")
        dataset = self._dataset
        raw_id = sqlalchemy.type_coerce(rows.c.dataset_id, sqlalchemy.types.NullType())
        counted = [rows.c[AMBIGUOUS]] if find_first else []
        sql = (
            sqlalchemy.select(raw_id, run.c.name, *(rows.c[n] for n in names), *counted)
            .join_from(rows, dataset, dataset.c.id == rows.c.dataset_id)
            .join(run, run.c.collection_id == dataset.c.run_id)
        )
        sql = sql.where(rows.c.search_rank == 1) if find_first else sql.distinct()
        order = [(rows.c[t.name], t.descending) for t in order_by]
        order += [(rows.c[n], False) for n in names if n not in {t.name for t in order_by}]
        sql = apply_order(sql, order, limit)
        return self._stream_temporal(info, sql, limit, names, find_first)

    def _stream_temporal(
        self,
        info: _TypeInfo,
        sql: sqlalchemy.Select[Any],
        limit: int | None,
        names: list[str],
        find_first: bool,
    ) -> Iterator[DatasetRef]:
        datasetType, group = info.datasetType, info.group
        width = 2 + len(group.required)
        for rows in _batches(self._db, sql, limit):
            ids = self._db.decode_ids([row[0] for row in rows])
            for row, dataset_id in zip(rows, ids, strict=True):
                if find_first and row[2 + len(names)] > 1:
                    keys = dict(zip(names, row[2 : 2 + len(names)], strict=True))
                    raise ambiguity_error(datasetType.name, keys, row[2 + len(names)])
                coordinate = DataCoordinate.from_required(group, tuple(row[2:width]), check=False)
                yield DatasetRef(datasetType, coordinate, run=row[1], id=dataset_id)

    def _calibration_search(
        self, info: _TypeInfo, searched: Sequence[CollectionRecord], find_first: bool
    ) -> tuple[list[int], sqlalchemy.Table | None]:
        """The keys of the CALIBRATION collections a query of ``info``'s type searches,
        and the calibs table to search them in (`None`: nothing to search).

        Raises
        ------
        ArgumentConflictError
            With ``find_first``: which of several certified datasets comes
            "first" needs a time, that a query has not.
        """
        if not info.datasetType.isCalibration:
            return [], None
        calibrations = [c for c in searched if c.type is CollectionType.CALIBRATION]
        if not calibrations:
            return [], None
        if find_first:
            raise ArgumentConflictError(
                f"find_first=True cannot choose among the {info.datasetType.name!r} datasets "
                f"certified in CALIBRATION collection {calibrations[0].name!r}: which one is "
                "first depends on a time; pass find_first=False to list every certified "
                "dataset, or find one with find_dataset(..., timespan=...)."
            )
        table = self._calibs.existing_table(info.group)
        if table is None:
            return [], None
        return [c.key for c in calibrations], table

    def exists_clause(
        self,
        datasetTypeName: str,
        collections: Sequence[str],
        key: Callable[[str], sqlalchemy.ColumnElement[Any]],
    ) -> sqlalchemy.ColumnElement[bool]:
        """SQL that holds where a dataset of the type is in one of ``collections``.

        ``key(name)`` is the query's column of dimension ``name``'s value
        (`LookupError` when the query has none). The dataset must agree with
        the query on every dimension of its type, or implied by them (an
        exposure's ``physical_filter`` and ``band``), that the query has; the
        others are free (``detector`` constrained by ``raw`` datasets: of any
        exposure). Chains are flattened; a dataset certified in a CALIBRATION
        collection counts whatever its validity range.
        """
        info = self._type_info(datasetTypeName)
        group = info.group
        searched = self._collections.resolve(collections)
        keys = [c.key for c in searched if c.type is not CollectionType.CALIBRATION]
        calib_keys: list[int] = []
        calibs = None
        if info.datasetType.isCalibration:
            calib_keys = [c.key for c in searched if c.type is CollectionType.CALIBRATION]
            calibs = self._calibs.existing_table(group) if calib_keys else None
        from ..queries import DimensionColumns

        clauses = []
        for table, among in ((info.tags, keys), (calibs, calib_keys)):
            if table is None or not among:
                continue
            inner = DimensionColumns(
                self._universe,
                self._dimensions.table,
                {name: table.c[name] for name in group.required},
                prefix="exists_record_",
            )
            # The dataset's dimensions and those they imply (an exposure's band), each
            # equal to the query's value, unless a dimension already matched implies it.
            match = []
            settled: list[str] = []
            for name in inner.reachable():
                if any(name in self._universe[m].implied for m in settled):
                    settled.append(name)
                    continue
                try:
                    outer = key(name)
                except LookupError:
                    continue
                match.append(inner.key(name) == outer)
                settled.append(name)
            sql = (
                sqlalchemy.select(sqlalchemy.literal(1))
                .select_from(table)
                .where(
                    table.c.dataset_type_id == info.key,
                    table.c.collection_id.in_(among),
                    *match,
                )
            )
            clauses.append(inner.apply(sql).exists())
        return sqlalchemy.or_(sqlalchemy.false(), *clauses)

    def associations(
        self, datasetTypeName: str, collections: Sequence[CollectionRecord]
    ) -> Iterator[tuple[DatasetRef, str, Timespan | None]]:
        """``(ref, collection, validity range)`` of each dataset of the type in each collection.

        ``collections`` are searched in the order given (CHAINED ones hold
        nothing themselves); in each, rows come ordered by data ID (then by
        the start of the validity range). The validity range is `None` except
        in CALIBRATION collections, where a dataset comes once per range it
        is certified over. One query per collection; rows stream.
        """
        info = self._type_info(datasetTypeName)
        group = info.group
        run = self._collections.table.alias("run")
        dataset = self._dataset
        for collection in collections:
            if collection.type is CollectionType.CHAINED:
                continue
            calibration = collection.type is CollectionType.CALIBRATION
            if calibration:
                table = (
                    self._calibs.existing_table(group) if info.datasetType.isCalibration else None
                )
                if table is None:
                    continue
                extra = [table.c.validity_begin, table.c.validity_end]
            else:
                table, extra = info.tags, []
            dims = [table.c[n] for n in group.required]
            raw_id = sqlalchemy.type_coerce(table.c.dataset_id, sqlalchemy.types.NullType())
            sql = (
                sqlalchemy.select(raw_id, run.c.name, *dims, *extra)
                .join_from(table, dataset, dataset.c.id == table.c.dataset_id)
                .join(run, run.c.collection_id == dataset.c.run_id)
                .where(
                    table.c.dataset_type_id == info.key,
                    table.c.collection_id == collection.key,
                )
                .order_by(*dims, *extra, table.c.dataset_id)
            )
            width = 2 + len(group.required)
            for rows in _batches(self._db, sql, None):
                ids = self._db.decode_ids([row[0] for row in rows])
                for row, dataset_id in zip(rows, ids, strict=True):
                    coordinate = DataCoordinate.from_required(
                        group, tuple(row[2:width]), check=False
                    )
                    ref = DatasetRef(info.datasetType, coordinate, run=row[1], id=dataset_id)
                    timespan = (
                        Timespan(from_ns(row[width]), from_ns(row[width + 1]))
                        if calibration
                        else None
                    )
                    yield ref, collection.name, timespan

    def memberships(
        self, datasetTypeName: str, ids: Iterable[uuid.UUID]
    ) -> Iterator[tuple[uuid.UUID, str, Timespan | None]]:
        """``(dataset id, collection, validity range)`` of each TAGGED membership and
        CALIBRATION certification of the datasets ``ids`` of the type (the range is `None`
        for a tag; a dataset's own RUN is left out).

        A query per batch of ids and table, through each table's index on the dataset
        id: the work grows with the datasets asked about, not with the collections'
        sizes (as `associations` of every tag and calibration collection would).
        """
        info = self._type_info(datasetTypeName)
        collections = self._collections.table
        tables = [info.tags]
        calibs = self._calibs.existing_table(info.group) if info.datasetType.isCalibration else None
        if calibs is not None:
            tables.append(calibs)
        db = self._db
        for batch in chunked(dict.fromkeys(ids), db.IN_BATCH_SIZE):
            for table in tables:
                calibration = table is calibs
                kind = CollectionType.CALIBRATION if calibration else CollectionType.TAGGED
                extra = [table.c.validity_begin, table.c.validity_end] if calibration else []
                raw_id = sqlalchemy.type_coerce(table.c.dataset_id, sqlalchemy.types.NullType())
                sql = (
                    sqlalchemy.select(raw_id, collections.c.name, *extra)
                    .join_from(
                        table, collections, collections.c.collection_id == table.c.collection_id
                    )
                    .where(
                        table.c.dataset_type_id == info.key,
                        table.c.dataset_id.in_(batch),
                        collections.c.type == kind.value,
                    )
                    .order_by(collections.c.name, *extra, table.c.dataset_id)
                )
                with db.query(sql) as result:
                    rows = result.all()
                decoded = db.decode_ids([row[0] for row in rows])
                for row, dataset_id in zip(rows, decoded, strict=True):
                    span = Timespan(from_ns(row[2]), from_ns(row[3])) if calibration else None
                    yield dataset_id, row[1], span

    def _stream_refs(
        self, info: _TypeInfo, sql: sqlalchemy.Select[Any], limit: int | None
    ) -> Iterator[DatasetRef]:
        for rows in _batches(self._db, sql, limit):
            yield from self._refs_of(info, rows)

    def _refs_of(self, info: _TypeInfo, rows: Sequence[Any]) -> Iterator[DatasetRef]:
        """The refs of a batch of query rows: ``(dataset id, run name, *required values,
        *implied values)``, read by position (columns after those are ignored)."""
        datasetType, group = info.datasetType, info.group
        width = 2 + len(group.required)
        implied = info.implied
        end = width + len(implied)
        from_required = DataCoordinate.from_required
        ids = self._db.decode_ids([row[0] for row in rows])
        for row, dataset_id in zip(rows, ids, strict=True):
            if implied:
                values = dict(zip(implied, row[width:end], strict=True))
                coordinate = trusted_full(group, tuple(row[2:width]), values)
            else:
                coordinate = from_required(group, tuple(row[2:width]), check=False)
            yield DatasetRef(datasetType, coordinate, run=row[1], id=dataset_id)

    # -- tagging and removing ------------------------------------------------

    def associate(self, collection: str, refs: Iterable[DatasetRef]) -> None:
        """Tag datasets into TAGGED collection ``collection`` (already tagged ones are skipped).

        Raises
        ------
        ConflictError
            If the collection holds another dataset of the same type and data ID.
        """
        target = self._tagged(collection)
        refs = list(refs)
        with self._db.transaction():
            for name, group in _by_type(refs).items():
                record = self._types.find(name)
                tags = self._tags(record.datasetType)
                required = self._universe.group(record.datasetType.dimensions).required
                rows = [self._tag_row(record.key, target.key, r, required) for r in group]
                try:
                    self._db.ensure(tags, *rows, primary_key_only=True)
                except ConflictError as exc:
                    raise ConflictError(
                        f"Collection {collection!r} already holds another {name!r} dataset with "
                        f"one of these data IDs; disassociate it first. ({exc})",
                        exc.orig,
                    ) from exc

    def disassociate(self, collection: str, refs: Iterable[DatasetRef]) -> None:
        """Untag datasets from TAGGED collection ``collection`` (absent ones are ignored)."""
        target = self._tagged(collection)
        refs = list(refs)
        with self._db.transaction():
            for name, group in _by_type(refs).items():
                tags = self._tags(self._types.get(name))
                self._db.delete(
                    tags,
                    ["collection_id", "dataset_id"],
                    *({"collection_id": target.key, "dataset_id": r.id} for r in group),
                )

    def _tagged(self, collection: str) -> CollectionRecord:
        record = self._collections.find(collection)
        if record.type is not CollectionType.TAGGED:
            raise CollectionError(
                "Only TAGGED collections can be (dis)associated; "
                f"{collection!r} is {record.type.name}."
            )
        return record

    def delete(self, ids: Iterable[Any]) -> int:
        """Delete datasets by id, all-or-nothing; return how many existed.

        Raises
        ------
        OrphanedRecordError
            If a datastore still holds one of them; nothing is deleted.
        """
        return delete_dataset_rows(self._db, self._dataset, ids)

    def queue_delete(self, ids: Iterable[Any]) -> Callable[[], int]:
        """`delete` as writes of the enclosing transaction (sent with its COMMIT where the
        backend pipelines); returns a function that gives how many existed."""
        return queue_dataset_row_deletes(self._db, self._dataset, ids)

    def existing_ids(self, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Those of ``ids`` that are datasets of the registry (one query per batch)."""
        db = self._db
        found: set[uuid.UUID] = set()
        table = db.quoted(self._dataset)
        for batch in chunked(ids, db.IN_BATCH_SIZE):
            keys = db.encode_ids(batch)
            back = dict(zip(keys, batch, strict=True))
            sql = f"SELECT id FROM {table} WHERE {db.sql_in_ids('id', len(back))}"
            with db.query_raw(sql, db.in_ids_params(sorted(back))) as rows:
                found.update(back[row[0]] for row in rows)
        return found

    def refs_by_id(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, DatasetRef]:
        """The datasets with these ids (full data ID, run, type); absent ids are left out.

        Per batch of ids, one query for their types, then one per type found
        for runs and data IDs from its tags table (the row tagging a dataset
        into its run).
        """
        db, dataset = self._db, self._dataset
        types, run = self._types.table, self._collections.table
        out: dict[uuid.UUID, DatasetRef] = {}
        for batch in chunked(dict.fromkeys(ids), db.IN_BATCH_SIZE):
            sql = (
                sqlalchemy.select(types.c.name)
                .distinct()
                .join_from(dataset, types, types.c.dataset_type_id == dataset.c.dataset_type_id)
                .where(dataset.c.id.in_(batch))
            )
            with db.query(sql) as result:
                names = sorted(result.scalars())
            for name in names:
                info = self._type_info(name)
                tags, group = info.tags, info.group
                raw_id = sqlalchemy.type_coerce(tags.c.dataset_id, sqlalchemy.types.NullType())
                sql = (
                    sqlalchemy.select(raw_id, run.c.name, *(tags.c[n] for n in group.required))
                    .join_from(
                        tags,
                        dataset,
                        sqlalchemy.and_(
                            dataset.c.id == tags.c.dataset_id,
                            dataset.c.run_id == tags.c.collection_id,
                        ),
                    )
                    .join(run, run.c.collection_id == dataset.c.run_id)
                    .where(tags.c.dataset_type_id == info.key, tags.c.dataset_id.in_(batch))
                )
                with db.query(sql) as result:
                    rows = result.all()
                decoded = db.decode_ids([row[0] for row in rows])
                for row, dataset_id in zip(rows, decoded, strict=True):
                    coordinate = DataCoordinate.from_required(group, tuple(row[2:]), check=False)
                    out[dataset_id] = DatasetRef(
                        info.datasetType, coordinate, run=row[1], id=dataset_id
                    )
        return out

    def run_dataset_ids(self, run: str) -> list[uuid.UUID]:
        """Ids of every dataset in RUN ``run``."""
        record = self._collections.find(run)
        sql = sqlalchemy.select(self._dataset.c.id).where(self._dataset.c.run_id == record.key)
        with self._db.query(sql) as result:
            return list(result.scalars())


@dataclass(frozen=True, slots=True)
class _TypeInfo:
    """A registered dataset type with its dimensions, tags table and prepared SQL."""

    key: int
    datasetType: DatasetType
    group: DimensionGroup
    tags: sqlalchemy.Table
    find_sql: str

    @property
    def implied(self) -> tuple[str, ...]:
        """The implied dimensions of the type (values read with its data IDs)."""
        return tuple(n for n in self.group.names if n not in self.group.required)


#: What `ByDimensionsDatasetRecordStorageManager.query` runs: a lookup by time (built), the
#: type and the statement of the others, or `None` when nothing is searched.
_Built: TypeAlias = "Iterator[DatasetRef] | tuple[_TypeInfo, sqlalchemy.Select[Any]] | None"


def _batches(
    db: Database, sql: sqlalchemy.Select[Any], limit: int | None
) -> Generator[Sequence[Any], None, None]:
    """The rows of ``sql``, a batch at a time.

    Streamed (`Database.stream_batches`), unless a ``limit`` within one batch bounds
    them: those are read in one round trip.
    """
    if limit is not None and limit <= _STREAM_BATCH:
        with db.query(sql) as result:
            rows = result.fetchall()
        yield rows
        return
    with db.stream_batches(sql, _STREAM_BATCH) as batches:
        yield from batches


def _by_type(refs: Iterable[DatasetRef]) -> dict[str, list[DatasetRef]]:
    out: dict[str, list[DatasetRef]] = {}
    for ref in refs:
        out.setdefault(ref.datasetType.name, []).append(ref)
    return out
