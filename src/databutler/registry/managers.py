"""Creating and opening the set of managers that make up a registry.

A repository records, at creation, each manager's class and schema version in
``butler_attributes``. Opening it checks both against the code before any
table is touched for writing, so an incompatible repository fails fast with
`IncompatibleVersionError` (or `ManagerMismatchError`, `MissingManagerError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .._exceptions import ManagerMismatchError, MissingManagerError
from ..dimensions import DimensionUniverse
from .attributes import DefaultButlerAttributeManager, SchemaGeneration
from .bridge.monolithic import MonolithicDatastoreRegistryBridgeManager
from .collections import SimpleCollectionManager
from .datasets import SimpleDatasetRecordStorageManager
from .dimension_records import StaticDimensionRecordStorageManager
from .interfaces import (
    Database,
    DatasetRecordStorageManager,
    DatastoreRegistryBridgeManager,
    OpaqueTableStorageManager,
    VersionedExtension,
    VersionTuple,
)
from .opaque import ByNameOpaqueTableStorageManager

__all__ = ["RegistryManagerInstances", "RegistryManagerTypes"]

_UNIVERSE_KEY = "config:dimensions.json"


def _config_key(kind: str) -> str:
    return f"config:registry.managers.{kind}"


def _version_key(cls: type[VersionedExtension]) -> str:
    return f"version:{cls.extensionName()}"


@dataclass(frozen=True)
class RegistryManagerTypes:
    """Which class implements each manager; initialised in field order."""

    attributes: type[DefaultButlerAttributeManager] = DefaultButlerAttributeManager
    dimensions: type[StaticDimensionRecordStorageManager] = StaticDimensionRecordStorageManager
    collections: type[SimpleCollectionManager] = SimpleCollectionManager
    datasets: type[DatasetRecordStorageManager] = SimpleDatasetRecordStorageManager
    opaque: type[OpaqueTableStorageManager] = ByNameOpaqueTableStorageManager
    datastores: type[DatastoreRegistryBridgeManager] = MonolithicDatastoreRegistryBridgeManager

    def items(self) -> list[tuple[str, type[VersionedExtension]]]:
        """``(kind, class)`` pairs in initialisation order."""
        return [(f.name, getattr(self, f.name)) for f in fields(self)]

    def makeRepo(
        self, db: Database, universe: DimensionUniverse | None = None
    ) -> RegistryManagerInstances:
        """Create every table in an empty ``db`` and record classes and versions.

        Raises
        ------
        SchemaAlreadyDefinedError
            If ``db`` already holds tables.
        ReadOnlyDatabaseError
            If ``db`` is read-only.
        """
        universe = universe if universe is not None else DimensionUniverse()
        with db.declareStaticTables(create=True) as context:
            instances = self._initialize(db, context, universe, {})

            def record(db: Database) -> None:
                attributes = [
                    (_config_key(kind), cls.extensionName()) for kind, cls in self.items()
                ]
                for _, cls in self.items():
                    version = cls.clsNewSchemaVersion(None)
                    if version is not None:
                        attributes.append((_version_key(cls), str(version)))
                attributes.append((_UNIVERSE_KEY, universe.to_json()))
                instances.attributes.set_many(attributes)

            context.addInitializer(record)
        return instances

    def loadRepo(self, db: Database) -> RegistryManagerInstances:
        """Open the repository in ``db`` after checking its managers and versions.

        Raises
        ------
        MissingManagerError
            If the repository has no record of one of the managers.
        ManagerMismatchError
            If it was made with another class for one of them.
        IncompatibleVersionError
            If a stored schema version is not supported (for writing, when
            ``db`` is writeable).
        """
        with db.declareStaticTables(create=False) as context:
            attributes = self.attributes.initialize(db, context)
        stored = attributes.items()
        versions: dict[str, VersionTuple] = {}
        for kind, cls in self.items():
            name = stored.get(_config_key(kind))
            if name is None:
                raise MissingManagerError(
                    f"Repository in {db} records no {kind!r} manager; it was not made by "
                    "databutler, or is damaged."
                )
            if name != cls.extensionName():
                raise ManagerMismatchError(
                    f"Repository in {db} uses {name} as its {kind!r} manager, but this code is "
                    f"configured with {cls.extensionName()}; configure the stored class."
                )
            text = stored.get(_version_key(cls))
            if text is not None:
                version = VersionTuple.fromString(text)
                cls.checkCompatibility(version, db.isWriteable())
                versions[kind] = version
        universe_json = stored.get(_UNIVERSE_KEY)
        universe = (
            DimensionUniverse.from_json(universe_json) if universe_json else DimensionUniverse()
        )
        with db.declareStaticTables(create=False) as context:
            return self._initialize(db, context, universe, versions)

    def _initialize(
        self,
        db: Database,
        context: Any,
        universe: DimensionUniverse,
        versions: dict[str, VersionTuple],
    ) -> RegistryManagerInstances:
        attributes = self.attributes.initialize(
            db, context, registry_schema_version=versions.get("attributes")
        )
        dimensions = self.dimensions.initialize(
            db, context, universe=universe, registry_schema_version=versions.get("dimensions")
        )
        collections = self.collections.initialize(
            db, context, registry_schema_version=versions.get("collections")
        )
        datasets = self.datasets.initialize(
            db,
            context,
            universe=universe,
            collections=collections,
            dimensions=dimensions,
            registry_schema_version=versions.get("datasets"),
        )
        opaque = self.opaque.initialize(db, context, registry_schema_version=versions.get("opaque"))
        datastores = self.datastores.initialize(
            db,
            context,
            opaque=opaque,
            datasets=self.datasets,
            universe=universe,
            registry_schema_version=versions.get("datastores"),
        )
        return RegistryManagerInstances(
            db=db,
            universe=universe,
            attributes=attributes,
            dimensions=dimensions,
            collections=collections,
            datasets=datasets,
            opaque=opaque,
            datastores=datastores,
        )


@dataclass
class RegistryManagerInstances:
    """The live managers of one open repository."""

    db: Database
    universe: DimensionUniverse
    attributes: DefaultButlerAttributeManager
    dimensions: StaticDimensionRecordStorageManager
    collections: SimpleCollectionManager
    datasets: DatasetRecordStorageManager
    opaque: OpaqueTableStorageManager
    datastores: DatastoreRegistryBridgeManager
    _extra: dict[str, Any] = field(default_factory=dict, repr=False)
    generation: SchemaGeneration = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # One token for the caches of collections and dataset types: every
        # schema-level change bumps it, and a change by another client seen
        # in it drops all of them (see `SchemaGeneration`).
        self.generation = SchemaGeneration(self.db, self.attributes.table, self.refresh)
        self.collections.generation = self.generation
        types = getattr(self.datasets, "types", None)
        if types is not None:
            types.generation = self.generation

    def clone(self, db: Database | None = None) -> RegistryManagerInstances:
        """Managers bound to ``db`` (default: a clone of this database), e.g. for another thread."""
        db = db if db is not None else self.db.clone()
        opaque = self.opaque.clone(db)
        return RegistryManagerInstances(
            db=db,
            universe=self.universe,
            attributes=self.attributes.clone(db),
            dimensions=self.dimensions.clone(db),
            collections=self.collections.clone(db),
            datasets=self.datasets.clone(db),
            opaque=opaque,
            datastores=self.datastores.clone(db=db, opaque=opaque),
        )

    def refresh(self) -> None:
        """Pick up changes made by other clients."""
        self.collections.refresh()
        refresh_datasets = getattr(self.datasets, "refresh", None)
        if refresh_datasets is not None:
            refresh_datasets()
        self.datastores.refresh()
