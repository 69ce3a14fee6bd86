"""Dataset types registered in a repository.

Table ``dataset_type(dataset_type_id, name, storage_class, dimensions,
is_calibration)``. Registering is idempotent for an identical definition and
refused, with the differences named, for a conflicting one. Component types
(``calexp.wcs``) are never registered: they derive from their parent.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from typing import ClassVar

import sqlalchemy

from .. import ddl
from .._dataset_type import DatasetType, validate_dataset_type_name
from .._exceptions import ArgumentTypeError, ConflictError, DatabutlerError, InvalidNameError
from ..dimensions import DimensionUniverse
from ..storage_classes import StorageClassRegistry
from ._committed_cache import CommittedCache
from .attributes import SchemaGeneration
from .interfaces import Database, StaticTablesContext, VersionedExtension, VersionTuple

__all__ = [
    "DatasetTypeConflictError",
    "DatasetTypeManager",
    "DatasetTypeRecord",
    "MissingDatasetTypeError",
]


class MissingDatasetTypeError(DatabutlerError, LookupError):
    """No dataset type has the given name."""


class DatasetTypeConflictError(ConflictError):
    """A dataset type exists with another definition, or is still in use."""


@dataclass(frozen=True, slots=True)
class DatasetTypeRecord:
    """A registered dataset type and its key in the registry."""

    key: int
    datasetType: DatasetType


class DatasetTypeManager(VersionedExtension):
    """Registers, finds, queries and removes dataset types.

    Parameters
    ----------
    db : `Database`
        The database.
    table : `sqlalchemy.Table`
        The ``dataset_type`` table.
    universe : `DimensionUniverse`
        The dimensions dataset types may use.
    registry_schema_version : `VersionTuple`, optional
        The stored schema version.
    """

    TABLE: ClassVar[str] = "dataset_type"
    _VERSION: ClassVar[VersionTuple | None] = VersionTuple(1, 0, 0)

    def __init__(
        self,
        db: Database,
        table: sqlalchemy.Table,
        universe: DimensionUniverse,
        registry_schema_version: VersionTuple | None = None,
    ) -> None:
        super().__init__(registry_schema_version=registry_schema_version)
        self._db = db
        self._table = table
        self._universe = universe
        # name -> record; this client's writes keep it current, refresh() drops it.
        self._cache: CommittedCache[str, DatasetTypeRecord] = CommittedCache(db)
        #: Bumped by every change here; set by the registry that owns this manager.
        self.generation: SchemaGeneration | None = None

    @classmethod
    def initialize(
        cls,
        db: Database,
        context: StaticTablesContext,
        *,
        universe: DimensionUniverse,
        registry_schema_version: VersionTuple | None = None,
    ) -> DatasetTypeManager:
        """Declare the ``dataset_type`` table and return a manager."""
        spec = ddl.TableSpec(
            [
                ddl.FieldSpec(
                    "dataset_type_id", sqlalchemy.BigInteger, primaryKey=True, autoincrement=True
                ),
                ddl.FieldSpec("name", sqlalchemy.String, length=128, nullable=False),
                ddl.FieldSpec("storage_class", sqlalchemy.String, length=64, nullable=False),
                ddl.FieldSpec("dimensions", sqlalchemy.Text, nullable=False),
                ddl.FieldSpec("is_calibration", sqlalchemy.Boolean, nullable=False),
            ],
            unique=[("name",)],
            doc="Every registered (parent) dataset type.",
        )
        return cls(db, context.addTable(cls.TABLE, spec), universe, registry_schema_version)

    def clone(self, db: Database) -> DatasetTypeManager:
        """A copy bound to ``db``."""
        return type(self)(db, self._table, self._universe, self._registry_schema_version)

    @property
    def table(self) -> sqlalchemy.Table:
        """The ``dataset_type`` table (for foreign keys from dataset tables)."""
        return self._table

    def _normalize(self, datasetType: DatasetType) -> DatasetType:
        """The same type with its dimensions closed and checked against the universe."""
        group = self._universe.group(datasetType.dimensions)  # raises for unknown names
        return DatasetType(
            datasetType.name,
            group.names,
            datasetType.storageClass,
            isCalibration=datasetType.isCalibration,
        )

    def _dimensions_text(self, datasetType: DatasetType) -> str:
        order = {name: i for i, name in enumerate(self._universe.names)}
        return json.dumps(sorted(datasetType.dimensions, key=order.__getitem__))

    def _records(
        self, where: sqlalchemy.ColumnElement[bool] | None = None
    ) -> list[DatasetTypeRecord]:
        c = self._table.c
        sql = sqlalchemy.select(
            c.dataset_type_id, c.name, c.storage_class, c.dimensions, c.is_calibration
        ).order_by(c.name)
        if where is not None:
            sql = sql.where(where)
        with self._db.query(sql) as result:
            rows = result.all()
        return [
            DatasetTypeRecord(
                key,
                DatasetType(name, json.loads(dims), storage, isCalibration=bool(calibration)),
            )
            for key, name, storage, dims, calibration in rows
        ]

    def register(self, datasetType: DatasetType) -> tuple[DatasetTypeRecord, bool]:
        """Make sure ``datasetType`` is registered.

        Its dimensions are closed over what they require and imply, so
        ``{visit}`` registers as ``{instrument, visit, physical_filter, ...}``.

        Returns
        -------
        record : `DatasetTypeRecord`
            The registered type.
        registered : `bool`
            Whether it was new.

        Raises
        ------
        DatasetTypeConflictError
            If a type of that name exists with another definition (named in
            the message); nothing changes. A definition that differs only by
            a storage class that converts to or from the registered one is
            not another definition: the registered type is returned, unchanged
            (``registered`` false), and its datasets can be put and read as
            either storage class.
        UnknownDimensionError
            If a dimension is not in the universe.
        InvalidNameError
            For a component dataset type (a `ValueError`).
        """
        if not isinstance(datasetType, DatasetType):
            raise ArgumentTypeError(
                f"Expected a DatasetType, got {datasetType!r}; make one with "
                "DatasetType(name, dimensions, storage_class)."
            )
        if datasetType.isComponent():
            raise InvalidNameError(
                f"Dataset type {datasetType.name!r} is a component (a '.' in its name); "
                f"register its parent {datasetType.nameAndComponent()[0]!r} instead, or a "
                "name without '.'."
            )
        wanted = self._normalize(datasetType)
        row = {
            "name": wanted.name,
            "storage_class": wanted.storageClass,
            "dimensions": self._dimensions_text(wanted),
            "is_calibration": wanted.isCalibration,
        }
        with self._db.transaction():
            inserted = self._db.ensure(self._table, row, primary_key_only=False)
            if inserted and self.generation is not None:
                self.generation.bump()
        record = self.find(wanted.name)
        if record.datasetType != wanted and not _compatible(record.datasetType, wanted):
            differences = [
                f"{what}: registered {old!r}, given {new!r}"
                for what, old, new in (
                    (
                        "dimensions",
                        sorted(record.datasetType.dimensions),
                        sorted(wanted.dimensions),
                    ),
                    ("storage class", record.datasetType.storageClass, wanted.storageClass),
                    ("isCalibration", record.datasetType.isCalibration, wanted.isCalibration),
                )
                if old != new
            ]
            raise DatasetTypeConflictError(
                f"Dataset type {wanted.name!r} is registered with another definition "
                f"({'; '.join(differences)}); use another name or remove the existing type."
            )
        return record, inserted == 1

    def find(self, name: str) -> DatasetTypeRecord:
        """The registered type ``name``.

        Raises
        ------
        MissingDatasetTypeError
            If there is none (for a component, the message says to look up the parent).
        """
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        validate_dataset_type_name(name)
        parent, _, component = name.partition(".")
        found = self._records(self._table.c.name == parent)
        if not found:
            raise MissingDatasetTypeError(
                f"No dataset type named {parent!r} is registered; register it with "
                f"registerDatasetType(DatasetType({parent!r}, dimensions, storage_class)) or "
                f"'databutler register-dataset-type REPO {parent} ...'."
            )
        if component:
            raise MissingDatasetTypeError(
                f"{name!r} is a component of {parent!r}; components are not registered — "
                f"find {parent!r} and take its component."
            )
        record = found[0]
        self._cache.keep(name, record)
        return record

    def refresh(self) -> None:
        """Forget cached dataset types, to see other clients' changes."""
        self._cache.clear()

    def get(self, name: str) -> DatasetType:
        """The registered dataset type ``name`` (see `find`)."""
        return self.find(name).datasetType

    def query(self, pattern: str | None = None) -> list[DatasetType]:
        """Registered dataset types whose names match the glob ``pattern`` (all by default)."""
        records = self._records()
        return [
            r.datasetType
            for r in records
            if pattern is None or fnmatch.fnmatchcase(r.datasetType.name, pattern)
        ]

    def remove(self, name: str) -> None:
        """Remove dataset type ``name``.

        Raises
        ------
        MissingDatasetTypeError
            If it is not registered.
        DatasetTypeConflictError
            If datasets of that type still exist; nothing changes.
        """
        record = self.find(name)
        self._cache.forget(name)
        try:
            with self._db.transaction():
                self._db.deleteWhere(self._table, self._table.c.dataset_type_id == record.key)
                if self.generation is not None:
                    self.generation.bump()
        except ConflictError as exc:
            raise DatasetTypeConflictError(
                f"Dataset type {name!r} still has datasets; remove them first ({exc})."
            ) from exc


#: The shipped storage classes, which decide what a compatible redefinition is.
_SHIPPED = StorageClassRegistry()


def _compatible(registered: DatasetType, given: DatasetType) -> bool:
    """Whether ``given`` differs from ``registered`` only by a storage class that converts.

    The shipped storage classes decide (the registry does not see a datastore's
    configuration); names they do not know are compatible only when equal.
    """
    if (registered.dimensions, registered.isCalibration) != (
        given.dimensions,
        given.isCalibration,
    ):
        return False
    old, new = _SHIPPED.get(registered.storageClass), _SHIPPED.get(given.storageClass)
    if old is None or new is None:
        return False
    return new.converts_from(old) or old.converts_from(new)
