"""`SqlRegistry`: the registry's public face over its SQL managers."""

from __future__ import annotations

import datetime
import functools
import inspect
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import islice
from typing import (
    TYPE_CHECKING,
    Any,
    ParamSpec,
    Protocol,
    TypeVar,
    cast,
    runtime_checkable,
)

from .._arguments import (
    merged_data_id,
    require_bool,
    require_collection_types,
    require_collections,
    require_data_id,
    require_data_ids,
    require_refs,
    require_str,
    require_strs,
    require_type,
)
from .._collection_type import CollectionType, Timespan
from .._dataset_id import DatasetIdGenEnum
from .._dataset_ref import DatasetRef
from .._dataset_type import DatasetType
from .._deprecation import renamed
from .._exceptions import (
    ArgumentConflictError,
    ArgumentTypeError,
    CollectionError,
    DataIdError,
    InvalidArgumentError,
    MissingCollectionError,
)
from ..dimensions import DataCoordinate, DataIdLike, DimensionUniverse
from ._expanded import BATCH as EXPANSION_BATCH
from ._expanded import expand_in_bulk, full_in_bulk
from .databases import open_database
from .datasets import ByDimensionsDatasetRecordStorageManager
from .dimension_records import Constraint, DimensionRecord
from .interfaces import (
    Database,
    DatasetRecordStorageManager,
    DatastoreRegistryBridgeManager,
    FindRider,
)
from .interfaces._bridge import validate_datastore_name
from .managers import RegistryManagerInstances, RegistryManagerTypes
from .queries import (
    ExpressionError,
    OrderTerm,
    check_bind,
    check_limit,
    parse_order_by,
    parse_where,
)

if TYPE_CHECKING:
    import sqlalchemy

    from .collections import CollectionRecord
    from .queries import DatasetAssociation, Node

__all__ = ["SqlRegistry"]

#: The managers of a full registry.
REGISTRY_MANAGERS = RegistryManagerTypes(datasets=ByDimensionsDatasetRecordStorageManager)


class _DatasetTypes(Protocol):
    """The dataset types of a `RegistryDatasets` manager, as `SqlRegistry` uses them."""

    def get(self, name: str) -> DatasetType:
        """The registered dataset type ``name``."""
        ...

    def remove(self, name: str) -> None:
        """Remove a dataset type that has no datasets."""
        ...

    def query(self, pattern: str | None = None) -> list[DatasetType]:
        """Registered dataset types, optionally those matching a glob."""
        ...


@runtime_checkable
class RegistryDatasets(Protocol):
    """What `SqlRegistry` needs of its dataset manager beyond `DatasetRecordStorageManager`.

    `DatasetRecordStorageManager` declares only what other managers need (its
    foreign keys); the registry's dataset operations are these. A dataset
    manager that implements both can serve a `SqlRegistry`
    (`~databutler.registry.datasets.ByDimensionsDatasetRecordStorageManager`
    does). Each method's contract is the `SqlRegistry` method that calls it.
    """

    @property
    def types(self) -> _DatasetTypes:
        """The dataset types."""
        ...

    def register_dataset_type(self, datasetType: DatasetType) -> bool:
        """Register ``datasetType``; whether it was new."""
        ...

    def insert(
        self,
        datasetTypeName: str,
        run: str,
        dataIds: Iterable[Mapping[str, Any] | DataCoordinate],
        idGenerationMode: DatasetIdGenEnum = ...,
    ) -> list[DatasetRef]:
        """New datasets of one type in RUN ``run``, all-or-nothing."""
        ...

    def import_(self, refs: Iterable[DatasetRef]) -> list[DatasetRef]:
        """Datasets added with the ids they have."""
        ...

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
        """The first dataset of that type and data ID in ``collections``, in order, and
        ``rider``'s rows of it (`None`: not read)."""
        ...

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
        """Datasets of a type in ``collections``, streamed (datastore filters join
        ``location``); with ``coherent``, not from caches another client made stale."""
        ...

    def associations(
        self, datasetTypeName: str, collections: Sequence[CollectionRecord]
    ) -> Iterator[tuple[DatasetRef, str, Timespan | None]]:
        """``(ref, collection, validity range)`` of the type's datasets in each collection."""
        ...

    def memberships(
        self, datasetTypeName: str, ids: Iterable[uuid.UUID]
    ) -> Iterator[tuple[uuid.UUID, str, Timespan | None]]:
        """``(dataset id, collection, validity range)`` of the TAGGED memberships and
        CALIBRATION certifications of the datasets ``ids`` of the type."""
        ...

    def exists_clause(
        self,
        datasetTypeName: str,
        collections: Sequence[str],
        key: Callable[[str], sqlalchemy.ColumnElement[Any]],
    ) -> sqlalchemy.ColumnElement[bool]:
        """SQL that holds where a dataset of the type is in one of ``collections``."""
        ...

    def refs_by_id(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, DatasetRef]:
        """The datasets with these ids; absent ids are left out."""
        ...

    def run_dataset_ids(self, run: str) -> list[uuid.UUID]:
        """Ids of every dataset in RUN ``run``."""
        ...

    def existing_ids(self, ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
        """Those of ``ids`` that are datasets of the registry."""
        ...

    def associate(self, collection: str, refs: Iterable[DatasetRef]) -> None:
        """Tag datasets into a TAGGED collection."""
        ...

    def disassociate(self, collection: str, refs: Iterable[DatasetRef]) -> None:
        """Untag datasets from a TAGGED collection."""
        ...

    def certify(self, collection: str, refs: Iterable[DatasetRef], timespan: Timespan) -> None:
        """Make datasets valid in a CALIBRATION collection over ``timespan``."""
        ...

    def decertify(
        self,
        collection: str,
        datasetTypeName: str,
        timespan: Timespan,
        dataIds: Iterable[Mapping[str, Any]] | None = None,
    ) -> int:
        """Remove validity within ``timespan`` from a CALIBRATION collection."""
        ...

    def delete(self, ids: Iterable[Any]) -> int:
        """Delete datasets by id, all-or-nothing; how many existed."""
        ...

    def queue_delete(self, ids: Iterable[Any]) -> Callable[[], int]:
        """`delete` as writes of the enclosing transaction; a function giving how many existed."""
        ...


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _listing(stream: Callable[_P, Iterator[_T]], name: str, doc: str) -> Callable[_P, list[_T]]:
    """A method that lists what ``stream`` yields: one signature for a streamed query and
    its listed twin."""

    @functools.wraps(stream)
    def listed(*args: _P.args, **kwargs: _P.kwargs) -> list[_T]:
        return list(stream(*args, **kwargs))

    listed.__name__ = name
    listed.__qualname__ = f"SqlRegistry.{name}"
    listed.__doc__ = doc
    signature = inspect.signature(stream)
    returns = str(signature.return_annotation).replace("Iterator[", "list[", 1)
    listed.__signature__ = signature.replace(return_annotation=returns)  # type: ignore[attr-defined]
    return listed


class SqlRegistry:
    """Dimensions, dataset types, collections and datasets in one SQL database.

    Make one with `create` (a new repository) or `open` (an existing one).

    Parameters
    ----------
    managers : `RegistryManagerInstances`
        The open managers.
    """

    def __init__(self, managers: RegistryManagerInstances) -> None:
        datasets, bridges = managers.datasets, managers.datastores
        if not isinstance(datasets, DatasetRecordStorageManager) or not isinstance(
            datasets, RegistryDatasets
        ):
            raise TypeError(
                f"SqlRegistry needs a dataset manager that is a DatasetRecordStorageManager and "
                f"has the registry's dataset operations (RegistryDatasets); "
                f"{type(datasets).__name__} is not."
            )
        if not isinstance(bridges, DatastoreRegistryBridgeManager):
            raise TypeError(
                f"SqlRegistry needs a DatastoreRegistryBridgeManager; "
                f"{type(bridges).__name__} is not one."
            )
        self._managers = managers
        self._datasets: RegistryDatasets = datasets
        self._bridges: DatastoreRegistryBridgeManager = bridges

    @classmethod
    def create(
        cls,
        database: Database | str,
        *,
        universe: DimensionUniverse | None = None,
        namespace: str | None = None,
    ) -> SqlRegistry:
        """Create a registry in an empty database (a `Database` or a URI)."""
        db = (
            database
            if isinstance(database, Database)
            else open_database(database, namespace=namespace)
        )
        return cls(REGISTRY_MANAGERS.makeRepo(db, universe))

    @classmethod
    def open(
        cls, database: Database | str, *, writeable: bool = True, namespace: str | None = None
    ) -> SqlRegistry:
        """Open the registry in ``database`` (checking its managers' versions first).

        A URI is opened without creating anything: a missing or damaged SQLite
        file raises `~databutler.RepositoryError`.
        """
        if isinstance(database, Database):
            return cls(REGISTRY_MANAGERS.loadRepo(database))
        db = open_database(database, namespace=namespace, writeable=writeable, create=False)
        try:
            return cls(REGISTRY_MANAGERS.loadRepo(db))
        except BaseException:
            db.dispose()
            raise

    @property
    def db(self) -> Database:
        """The database."""
        return self._managers.db

    @property
    def dimensions(self) -> DimensionUniverse:
        """The dimension universe of this repository."""
        return self._managers.universe

    @property
    def datastore_bridges(self) -> DatastoreRegistryBridgeManager:
        """What datastores use to record what they hold."""
        return self._managers.datastores

    @contextmanager
    def transaction(self, *, savepoint: bool = False) -> Iterator[None]:
        """Run the block in one database transaction: an error undoes all of it."""
        with self.db.transaction(savepoint=savepoint):
            yield

    def refresh(self) -> None:
        """Pick up changes made by other clients."""
        self._managers.refresh()

    @contextmanager
    def caches_checked_once(self) -> Iterator[None]:
        """Check the caches once for every registry call in the block (the first one that
        checks): for one operation made of several calls, such as a butler query."""
        with self._managers.generation.once():
            yield

    def _coherent(self) -> None:
        """Drop cached runs, collections and dataset types if another client changed them.

        One primary-key read of the repository's schema generation (see
        `SchemaGeneration`); every method that relies on those caches calls it
        first. Dataset inserts check it again inside their own transaction.
        """
        self._managers.generation.check()

    # -- dimensions ----------------------------------------------------------

    def insertDimensionData(self, element: str, *records: Mapping[str, Any]) -> None:
        """Insert dimension records (all-or-nothing)."""
        self._managers.dimensions.insert(element, *records)

    def syncDimensionData(self, element: str, record: Mapping[str, Any]) -> bool:
        """Insert a dimension record unless an identical one exists; whether it was inserted."""
        return self._managers.dimensions.sync(element, record)

    def queryDimensionRecords(
        self,
        element: str,
        dataIds: Iterable[DataIdLike] | None = None,
        *,
        where: str | None = "",
        bind: Mapping[str, Any] | None = None,
        order_by: str | Iterable[str] | None = None,
        limit: int | None = None,
        datasets: str | DatasetType | Iterable[str | DatasetType] | None = None,
        collections: str | Sequence[str] | None = None,
    ) -> list[DimensionRecord]:
        """Records of one dimension: for the given data IDs, or matching ``where``, or all.

        ``where`` and ``bind`` are checked whole (syntax, types, values)
        before any SQL runs; problems raise `ExpressionError`. ``order_by``,
        ``limit``, ``datasets`` and ``collections`` are as for
        `stream_dimension_records`.
        """
        require_str(element, "element")
        dataIds = require_data_ids(dataIds, optional=True)
        node = parse_where(where)
        check_bind(bind)
        terms = parse_order_by(order_by)
        count = check_limit(limit)
        exists = self._dataset_constraints(datasets, collections)
        if dataIds is not None:
            if node is not None:
                raise ArgumentConflictError("Give dataIds or where=, not both.")
            if terms or count is not None or exists:
                raise ArgumentConflictError("Give dataIds or order_by=/limit=/datasets=, not both.")
            return self._managers.dimensions.fetch(element, dataIds)
        return list(self._dimension_records(element, node, where, bind, terms, count, exists))

    def stream_dimension_records(
        self,
        element: str,
        *,
        where: str | None = "",
        bind: Mapping[str, Any] | None = None,
        order_by: str | Iterable[str] | None = None,
        limit: int | None = None,
        datasets: str | DatasetType | Iterable[str | DatasetType] | None = None,
        collections: str | Sequence[str] | None = None,
    ) -> Iterator[DimensionRecord]:
        """Records of one dimension matching ``where``, streamed.

        ``order_by`` names the element's own fields (``obs_id``), dimensions
        and record fields (``exposure.obs_id``), ``-`` in front for
        descending; ties are ordered by the record's key. ``limit`` (an
        `int` of 0 or more) is the most records returned. With ``datasets``
        (dataset type names), only records for which a dataset of each type
        exists in ``collections``, as for `stream_data_ids`. Everything is
        checked at the call; rows are read as the iterator advances.
        """
        require_str(element, "element")
        node = parse_where(where)
        check_bind(bind)
        terms = parse_order_by(order_by)
        count = check_limit(limit)
        exists = self._dataset_constraints(datasets, collections)
        return self._dimension_records(element, node, where, bind, terms, count, exists)

    def _dimension_records(
        self,
        element: str,
        node: Node | None,
        where: str | None,
        bind: Mapping[str, Any] | None,
        terms: tuple[OrderTerm, ...],
        limit: int | None,
        exists: Sequence[Constraint] = (),
    ) -> Iterator[DimensionRecord]:
        with _quoting(where):
            rows = self._managers.dimensions.stream(
                element, node, bind, order_by=terms, limit=limit, exists=exists
            )
        return _quoted(rows, where)

    def _dataset_constraints(
        self,
        datasets: str | DatasetType | Iterable[str | DatasetType] | None,
        collections: str | Sequence[str] | None,
    ) -> list[Constraint]:
        """The conditions that a dataset of each of ``datasets`` exists in ``collections``.

        Checked here, at the call: every type registered, every collection
        existing, ``collections`` given when ``datasets`` is.

        Raises
        ------
        ArgumentConflictError
            If ``datasets`` is given without ``collections``.
        MissingDatasetTypeError
            If a dataset type is not registered.
        MissingCollectionError
            If a collection does not exist.
        """
        if datasets is None:
            return []
        names = _type_names(datasets, "datasets")
        for name in names:
            self.getDatasetType(name)
        if collections is None:
            raise ArgumentConflictError(
                f"datasets={names!r} needs the collections to look for them in: pass "
                "collections=[...]."
            )
        search = [collections] if isinstance(collections, str) else list(collections)
        self._managers.collections.resolve(search)  # unknown collections fail here
        manager = self._datasets
        return [
            functools.partial(manager.exists_clause, name, search) for name in dict.fromkeys(names)
        ]

    def stream_data_ids(
        self,
        dimensions: Iterable[str],
        *,
        where: str | None = "",
        bind: Mapping[str, Any] | None = None,
        order_by: str | Iterable[str] | None = None,
        limit: int | None = None,
        datasets: str | DatasetType | Iterable[str | DatasetType] | None = None,
        collections: str | Sequence[str] | None = None,
        with_dimension_records: bool = False,
    ) -> Iterator[DataCoordinate]:
        """`queryDataIds`, streamed; ordered by ``order_by`` then by the data ID.

        ``order_by`` names dimensions and record fields (``exposure.obs_id``),
        ``-`` in front for descending; ``limit`` is the most data IDs
        returned. With ``datasets`` (a dataset type or several), only data
        IDs for which a dataset of each type exists in ``collections``
        (names; chains flattened): the dataset agrees on the dimensions it
        shares with the data ID, the others are free (``detector`` data IDs
        with ``raw`` datasets: of any exposure). Everything is checked at
        the call.
        """
        dimensions = require_strs(dimensions, "dimensions")
        node = parse_where(where)
        check_bind(bind)
        terms = parse_order_by(order_by)
        count = check_limit(limit)
        exists = self._dataset_constraints(datasets, collections)
        require_bool(with_dimension_records, "with_dimension_records")
        with _quoting(where):
            rows = self._managers.dimensions.stream_data_ids(
                dimensions, node, bind, order_by=terms, limit=count, exists=exists
            )
        return self._full_data_ids(_quoted(rows, where), with_dimension_records)

    def _full_data_ids(
        self, data_ids: Iterator[DataCoordinate], with_records: bool
    ) -> Iterator[DataCoordinate]:
        """Data IDs with their implied values (and, ``with_records``, their records),
        a batch at a time."""
        # The stream being expanded has a connection of its own (`Database.stream`), so
        # these reads cannot end the transaction that holds its server-side cursor.
        manager = self._managers.dimensions
        if with_records:
            return expand_in_bulk(manager, data_ids)
        return full_in_bulk(manager, data_ids)

    def _full_refs(self, refs: Iterator[DatasetRef], with_records: bool) -> Iterator[DatasetRef]:
        """Refs whose data IDs have their implied values (and, ``with_records``, their
        records), a batch at a time."""
        while batch := list(islice(refs, EXPANSION_BATCH)):
            if not with_records and all(r.dataId.has_full() for r in batch):  # type: ignore[union-attr]
                yield from batch
                continue
            ids = self._full_data_ids(iter([r.dataId for r in batch]), with_records)  # type: ignore[misc]
            for ref, data_id in zip(batch, ids, strict=True):
                yield DatasetRef(ref.datasetType, data_id, ref.run, ref.id)

    queryDataIds = _listing(
        stream_data_ids,
        "queryDataIds",
        """Data IDs of ``dimensions`` that the dimension records allow, matching ``where``,
        as a list; `stream_data_ids` takes the same arguments and streams them.
        """,
    )

    def expandDataId(
        self,
        dataId: DataIdLike | None = None,
        *,
        dimensions: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> DataCoordinate:
        """A checked data ID with its implied values filled in, and its dimensions' records
        (``records``).

        Raises
        ------
        DataIdError
            If the data ID is malformed, or a dimension record it names does
            not exist (the message names it and how to insert it).
        UnknownDimensionError
            If ``dimensions`` names something that is not a dimension.
        """
        dimensions = require_strs(dimensions, "dimensions", optional=True)
        coordinate = DataCoordinate.standardize(
            require_data_id(dataId, "dataId"),
            universe=self.dimensions,
            dimensions=dimensions,
            **kwargs,
        )
        # As daf_butler's: the records come along (``data_id.records["exposure"]``),
        # fetched once; a missing one is named by _require_records.
        expanded = next(expand_in_bulk(self._managers.dimensions, [coordinate]))
        if any(expanded.records[name] is None for name in expanded.mapping):
            self._require_records([expanded])
        return expanded

    def expand_data_ids(self, dataIds: Iterable[DataCoordinate]) -> list[DataCoordinate]:
        """Checked data IDs with their implied values filled in, in one query per batch.

        Every dimension record the data IDs name must exist (`DataIdError`
        otherwise, naming the first one missing).
        """
        expanded = self._managers.dimensions.fill_implied(list(dataIds))
        self._require_records(expanded)
        return expanded

    def _require_records(self, coordinates: Sequence[DataCoordinate]) -> None:
        """Raise `DataIdError` for the first dimension record the data IDs name that is missing."""
        universe = self.dimensions
        for name in universe.names:
            keys = universe.group([name]).required
            wanted: dict[tuple[Any, ...], dict[str, Any]] = {}
            for coordinate in coordinates:
                if name in coordinate.mapping:
                    key = tuple(coordinate.mapping[k] for k in keys)
                    wanted.setdefault(key, dict(zip(keys, key, strict=True)))
            if not wanted:
                continue
            found = self._managers.dimensions.fetch(name, list(wanted.values()))
            known = {tuple(record.data_id[k] for k in keys) for record in found}
            for key, values in wanted.items():
                if key not in known:
                    owners = ", ".join(f"{n} {v!r}" for n, v in values.items() if n != name)
                    of = f" of {owners}" if owners else ""
                    raise DataIdError(
                        f"No {name} record for {name} {values[name]!r}{of}; insert it first "
                        f"with registry.insertDimensionData({name!r}, {{...}}) "
                        f"(butler.insert_dimension_records, or 'databutler "
                        "insert-dimension-records')."
                    )

    # -- dataset types ---------------------------------------------------------

    def registerDatasetType(self, datasetType: DatasetType) -> bool:
        """Register a dataset type; whether it was new (identical re-registration is fine)."""
        require_type(datasetType, "datasetType", DatasetType, "a DatasetType")
        self._coherent()
        return self._datasets.register_dataset_type(datasetType)

    def getDatasetType(self, name: str) -> DatasetType:
        """The registered dataset type ``name``."""
        require_str(name, "name")
        self._coherent()
        return self._datasets.types.get(name)

    def removeDatasetType(self, name: str) -> None:
        """Remove a dataset type that has no datasets."""
        require_str(name, "name")
        self._coherent()
        self._datasets.types.remove(name)

    def queryDatasetTypes(self, pattern: str | None = None) -> list[DatasetType]:
        """Registered dataset types, optionally those matching a glob."""
        return self._datasets.types.query(require_str(pattern, "pattern", optional=True))

    # -- collections -------------------------------------------------------------

    def registerCollection(
        self, name: str, type: CollectionType = CollectionType.TAGGED, doc: str | None = None
    ) -> bool:
        """Register a collection; whether it was new."""
        require_str(name, "name")
        self._coherent()
        return self._managers.collections.register(name, _collection_type(type), doc)[1]

    def registerRun(self, name: str, doc: str | None = None) -> bool:
        """Register a RUN collection; whether it was new."""
        return self.registerCollection(name, CollectionType.RUN, doc)

    def ensure_run(self, name: str) -> bool:
        """Make sure collection ``name`` exists, registering it as a RUN if there is none;
        whether it was new. One of another type is left as it is (a dataset insert into
        it refuses it). Inside a transaction, what follows there finds it without a read."""
        require_str(name, "name")
        collections = self._managers.collections
        if collections.cached(name):
            self._coherent()  # the cached record may be stale; one not cached is read
        return collections.ensure(name, CollectionType.RUN)[1]

    def collection_cached(self, name: str) -> bool:
        """Whether this client has collection ``name`` cached (no query; see `known_collection`)."""
        return self._managers.collections.cached(name)

    def known_collection(self, name: str) -> bool:
        """Whether collection ``name`` exists, from this client's cache once it has seen it.

        A cached answer is not checked against other clients' changes: for
        callers whose write transaction checks the collection again (a dataset
        insert does) and that can handle `MissingCollectionError` there.
        """
        if self._managers.collections.cached(name):
            return True
        self._coherent()
        try:
            self._managers.collections.find(name)
        except MissingCollectionError:
            return False
        return True

    def getCollectionType(self, name: str) -> CollectionType:
        """The type of collection ``name``."""
        self._coherent()
        return self._managers.collections.find(name).type

    def setCollectionChain(self, parent: str, children: Sequence[str]) -> None:
        """Set the ordered members of a CHAINED collection (cycles are refused)."""
        self._coherent()
        self._managers.collections.set_chain(parent, children)

    def getCollectionChain(self, parent: str) -> tuple[str, ...]:
        """The ordered members of a CHAINED collection."""
        self._coherent()
        return self._managers.collections.get_chain(parent)

    def queryCollections(
        self, pattern: str | None = None, types: Iterable[CollectionType] | None = None
    ) -> list[str]:
        """Names of collections matching a glob and types."""
        pattern = require_str(pattern, "pattern", optional=True)
        types = require_collection_types(types)
        return [r.name for r in self._managers.collections.query(pattern, types)]

    def get_collection_parents(self, name: str) -> list[str]:
        """Names of the CHAINED collections that list ``name`` directly."""
        self._coherent()
        return self._managers.collections.parents(name)

    def getCollectionDocumentation(self, name: str) -> str | None:
        """The documentation string of a collection."""
        self._coherent()
        return self._managers.collections.getDocumentation(name)

    def setCollectionDocumentation(self, name: str, doc: str | None) -> None:
        """Set the documentation string of a collection."""
        self._coherent()
        self._managers.collections.setDocumentation(name, doc)

    def removeCollection(self, name: str) -> None:
        """Remove a collection; a RUN's datasets go to their datastores' trash first.

        Raises
        ------
        CollectionError
            If a chain still lists it; checked before anything changes.
        """
        self._coherent()
        collections = self._managers.collections
        record = collections.find(name)
        parents = collections.parents(name)
        if parents:
            raise CollectionError(
                f"Collection {name!r} is still in chain(s) {parents}; take it out of them first."
            )
        with self.transaction():
            if record.type is CollectionType.RUN:
                self._trash(self._datasets.run_dataset_ids(name))
            collections.remove(name)

    def _trash(self, ids: Iterable[Any]) -> None:
        """Move datasets to the trash of every datastore holding them."""
        bridges = self._bridges
        by_datastore: dict[str, list[Any]] = {}
        for dataset_id, names in bridges.locate(_FakeRefs(ids)).items():
            for name in names:
                by_datastore.setdefault(name, []).append(dataset_id)
        for name, held in sorted(by_datastore.items()):
            bridge = bridges.register(name, ephemeral=bridges.is_ephemeral(name))
            bridge.moveToTrash(_FakeRefs(held), None)

    # -- datasets --------------------------------------------------------------------

    def insertDatasets(
        self,
        datasetType: str | DatasetType,
        dataIds: Iterable[DataIdLike],
        run: str,
        idGenerationMode: DatasetIdGenEnum = DatasetIdGenEnum.UNIQUE,
    ) -> list[DatasetRef]:
        """Insert new datasets of one type into a RUN (all-or-nothing)."""
        name = _type_name(datasetType)
        data_ids = require_data_ids(dataIds)
        return self._datasets.insert(name, require_str(run, "run"), data_ids, idGenerationMode)

    def import_datasets(self, refs: Iterable[DatasetRef]) -> list[DatasetRef]:
        """Insert datasets keeping the ids they have."""
        return self._datasets.import_(require_refs(refs))

    def findDataset(
        self,
        datasetType: str | DatasetType,
        dataId: DataIdLike | None = None,
        *,
        collections: Sequence[str] | str,
        timespan: Timespan | datetime.datetime | None = None,
        **kwargs: Any,
    ) -> DatasetRef | None:
        """The first dataset of that type and data ID in ``collections``, in search order.

        CALIBRATION collections are searched when ``timespan`` (or an instant)
        is given: the calibration valid then matches.
        """
        name = _type_name(datasetType)
        data_id = merged_data_id(dataId, kwargs, "dataId")
        search = _search(collections)
        if isinstance(timespan, datetime.datetime):
            timespan = _instant(timespan)
        # The coherence check rides on the search's own query (see `_coherent`).
        return self._datasets.find_riding(name, data_id, search, timespan, coherent=True)[0]

    def find_dataset_riding(
        self,
        datasetType: str | DatasetType,
        dataId: DataIdLike | None = None,
        *,
        collections: Sequence[str] | str,
        rider: FindRider,
        **kwargs: Any,
    ) -> tuple[DatasetRef | None, list[dict[str, Any]] | None]:
        """`findDataset` (without a time), and ``rider``'s rows of the dataset found, read
        by the same statement: how a datastore reads its records with the search (see
        `FindRider`). The rows are `None` where the search could not carry them."""
        name = _type_name(datasetType)
        data_id = merged_data_id(dataId, kwargs, "dataId")
        search = _search(collections)
        return self._datasets.find_riding(name, data_id, search, coherent=True, rider=rider)

    def stream_datasets(
        self,
        datasetType: str | DatasetType,
        *,
        collections: Sequence[str] | str,
        where: str | None = "",
        bind: Mapping[str, Any] | None = None,
        in_datastore: str | None = None,
        not_in_datastore: str | None = None,
        find_first: bool = False,
        order_by: str | Iterable[str] | None = None,
        limit: int | None = None,
        with_dimension_records: bool = False,
    ) -> Iterator[DatasetRef]:
        """Datasets of one type in ``collections`` matching ``where``, streamed: rows are
        read as the iterator advances (`queryDatasets` lists them).

        ``in_datastore``/``not_in_datastore`` keep datasets a named datastore
        does (or does not) hold. With ``find_first``, each data ID gives only
        the dataset of the first collection, in search order (chains
        flattened in order), that has one. ``order_by`` names dimensions,
        record fields (``exposure.obs_id``), ``run`` and ``ingest_date``,
        ``-`` in front for descending; ties are ordered by the data ID, then
        the dataset id. ``limit`` is the most datasets returned. CALIBRATION
        collections give the datasets certified in them, each once (not
        with ``find_first``, for a calibration type: `ArgumentConflictError`).

        A datastore filter naming an ephemeral (in-memory) datastore, which
        the SQL tables do not know, is applied batch by batch to the rows
        (and ``limit`` after it).
        """
        # The coherence check rides on the query's own statement (see `_coherent`).
        node = parse_where(where)
        check_bind(bind)
        terms = parse_order_by(order_by)
        count = check_limit(limit)
        require_bool(with_dimension_records, "with_dimension_records")
        require_bool(find_first, "find_first")
        name = _type_name(datasetType)
        search = _search(collections)
        for datastore, argument in (
            (in_datastore, "in_datastore"),
            (not_in_datastore, "not_in_datastore"),
        ):
            if require_str(datastore, argument, optional=True) is not None:
                validate_datastore_name(datastore)  # what no datastore can be named is refused
        bridges = self._bridges
        location = bridges.location_table

        def in_sql(datastore: str) -> bool:
            return location is not None and not bridges.is_ephemeral(datastore)

        held_in = in_datastore if in_datastore and not in_sql(in_datastore) else None
        held_out = not_in_datastore if not_in_datastore and not in_sql(not_in_datastore) else None
        filtered = held_in is not None or held_out is not None
        with _quoting(where):
            rows = self._datasets.query(
                name,
                search,
                where=node,
                bind=bind,
                in_datastore=None if held_in else in_datastore,
                not_in_datastore=None if held_out else not_in_datastore,
                location=location,
                find_first=find_first,
                order_by=terms,
                # Rows filtered here are counted after the filter, not in SQL.
                limit=None if filtered else count,
                coherent=True,
            )
        rows = _quoted(rows, where)
        if held_in is not None:
            rows = self._filter_held(rows, held_in, keep_held=True)
        if held_out is not None:
            rows = self._filter_held(rows, held_out, keep_held=False)
        if filtered and count is not None:
            rows = islice(rows, count)
        return self._full_refs(rows, with_dimension_records)

    queryDatasets = _listing(
        stream_datasets,
        "queryDatasets",
        """Datasets of one type in ``collections`` matching ``where``, as a list.

        ``in_datastore``/``not_in_datastore`` keep datasets a named datastore
        does (or does not) hold. `stream_datasets` takes the same arguments
        and reads the rows as its iterator advances.
        """,
    )

    def _filter_held(
        self, refs: Iterator[DatasetRef], datastore: str, *, keep_held: bool
    ) -> Iterator[DatasetRef]:
        """The refs a datastore holds (or, without ``keep_held``, does not), asked of its bridge.

        For datastores whose locations are not in a table the query can join:
        ephemeral (in-memory) ones, or all of them under a bridge manager
        without a `~DatastoreRegistryBridgeManager.location_table`.
        """
        bridges = self._bridges
        bridge = bridges.register(datastore, ephemeral=bridges.is_ephemeral(datastore))
        while batch := list(islice(refs, 1_000)):
            held = bridge.check(ref.id for ref in batch)
            yield from (ref for ref in batch if (ref.id in held) == keep_held)

    def getDataset(self, id: uuid.UUID) -> DatasetRef | None:  # noqa: N802 (daf_butler's name)
        """The dataset with this id (full data ID, run, dataset type), or `None`."""
        require_type(id, "id", uuid.UUID, "a dataset id (uuid.UUID)")
        self._coherent()
        return self._datasets.refs_by_id([id]).get(id)

    def get_datasets(self, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, DatasetRef]:
        """The datasets with these ids, by id; ids of no dataset are left out.

        A few queries per batch of ids (one, then one per dataset type found).
        """
        self._coherent()
        return self._datasets.refs_by_id(ids)

    def run_dataset_ids(self, run: str) -> list[Any]:
        """The ids of every dataset in RUN collection ``run``."""
        return self._datasets.run_dataset_ids(run)

    def existing_dataset_ids(self, ids: Iterable[Any]) -> set[Any]:
        """Those of ``ids`` that are datasets of this registry."""
        return self._datasets.existing_ids(ids)

    def dataset_memberships(
        self, datasetType: str | DatasetType, ids: Iterable[Any]
    ) -> Iterator[tuple[Any, str, Timespan | None]]:
        """``(dataset id, collection, validity range)`` of each TAGGED membership and
        CALIBRATION certification of the datasets ``ids`` of ``datasetType`` (the range is
        `None` for a tag); the work grows with the datasets, not with the collections."""
        self._coherent()
        return self._datasets.memberships(_type_name(datasetType), ids)

    # Deprecated aliases of renamed methods, kept for one release.
    expandDataIds = renamed("expand_data_ids")  # noqa: N815
    importDatasets = renamed("import_datasets")  # noqa: N815
    getCollectionParents = renamed("get_collection_parents")  # noqa: N815
    streamDatasets = renamed("stream_datasets")  # noqa: N815
    runDatasetIds = renamed("run_dataset_ids")  # noqa: N815
    existingDatasetIds = renamed("existing_dataset_ids")  # noqa: N815

    def associate(self, collection: str, refs: Iterable[DatasetRef]) -> None:
        """Tag datasets into a TAGGED collection."""
        refs = require_refs(refs)
        self._coherent()
        self._datasets.associate(collection, refs)

    def disassociate(self, collection: str, refs: Iterable[DatasetRef]) -> None:
        """Untag datasets from a TAGGED collection."""
        refs = require_refs(refs)
        self._coherent()
        self._datasets.disassociate(collection, refs)

    def certify(self, collection: str, refs: Iterable[DatasetRef], timespan: Timespan) -> None:
        """Make calibration datasets valid in CALIBRATION ``collection`` over ``timespan``."""
        refs = require_refs(refs)
        require_type(timespan, "timespan", Timespan, "a Timespan")
        self._coherent()
        self._datasets.certify(collection, refs, timespan)

    def query_certifications(self, collection: str) -> list[tuple[uuid.UUID, Timespan]]:
        """``(dataset id, validity range)`` of every dataset certified in ``collection``.

        Raises
        ------
        CollectionError
            If ``collection`` is not a CALIBRATION collection.
        """
        self._coherent()
        from .datasets.calibs import CalibrationStorage

        groups = {
            self.dimensions.group(t.dimensions) for t in self.queryDatasetTypes() if t.isCalibration
        }
        storage = CalibrationStorage(self.db, self.dimensions, self._managers.collections)
        return storage.certifications(collection, sorted(groups, key=lambda g: g.required))

    def queryDatasetAssociations(  # noqa: N802 (daf_butler's name)
        self,
        datasetType: str | DatasetType,
        collections: str | Sequence[str],
        *,
        collectionTypes: Iterable[CollectionType] = tuple(CollectionType),  # noqa: N803
        flattenChains: bool = False,  # noqa: N803
    ) -> Iterator[DatasetAssociation]:
        """Each dataset of one type in each collection, with its validity range there.

        As daf_butler's method of that name: for each of ``collections``
        (names or globs, in the order given) whose type is one of
        ``collectionTypes``, a `DatasetAssociation` (ref, collection,
        timespan) per dataset it holds, ordered by data ID. In a CALIBRATION
        collection ``timespan`` is the validity range (a dataset certified
        over several ranges comes once per range); elsewhere it is `None`.
        A CHAINED collection holds nothing itself: with ``flattenChains``
        its members (recursively) are listed in its place. Streamed, one
        query per collection.

        Raises
        ------
        MissingCollectionError
            If a collection named (not a glob) does not exist.
        MissingDatasetTypeError
            If the dataset type is not registered.
        """
        from .queries import DatasetAssociation

        name = _type_name(datasetType)
        search = _search(collections)
        wanted = frozenset(require_collection_types(collectionTypes))
        require_bool(flattenChains, "flattenChains")
        self._coherent()
        self.getDatasetType(name)  # an unknown type fails here, at the call
        manager = self._managers.collections
        names: list[str] = []
        for item in search:
            if any(c in item for c in "*?["):
                names.extend(self.queryCollections(item))
            else:
                names.append(item)
        records: list[CollectionRecord] = []
        for item in dict.fromkeys(names):
            found = manager.find(item)
            records.extend(manager.resolve([item]) if flattenChains else [found])
        chosen = [r for r in dict.fromkeys(records) if r.type in wanted]
        rows = self._datasets.associations(name, chosen)
        return (DatasetAssociation(ref, collection, span) for ref, collection, span in rows)

    def decertify(
        self,
        collection: str,
        datasetType: str | DatasetType,
        timespan: Timespan,
        *,
        dataIds: Iterable[Mapping[str, Any]] | None = None,
    ) -> int:
        """Remove validity within ``timespan`` from a CALIBRATION collection."""
        name = _type_name(datasetType)
        require_type(timespan, "timespan", Timespan, "a Timespan")
        self._coherent()
        return self._datasets.decertify(collection, name, timespan, dataIds)

    def removeDatasets(self, refs: Iterable[DatasetRef]) -> int:
        """Delete datasets; refused with `OrphanedRecordError` while a datastore holds one."""
        return self._datasets.delete(r.id for r in require_refs(refs))

    def queue_dataset_removal(self, refs: Iterable[DatasetRef]) -> Callable[[], int]:
        """`removeDatasets` inside the caller's transaction, sent with its COMMIT where the
        backend pipelines (one round trip fewer); returns a function that gives how many
        existed, to call once the transaction has committed.
        """
        if not self.db.isInTransaction():
            raise RuntimeError("queue_dataset_removal runs inside a transaction.")
        return self._datasets.queue_delete(r.id for r in require_refs(refs))

    def getDatasetLocations(self, ref: DatasetRef) -> frozenset[str]:
        """Names of the datastores holding ``ref``."""
        require_type(ref, "ref", DatasetRef, "a DatasetRef (from put or a query)")
        return frozenset(self._managers.datastores.findDatastores(ref))


def _instant(when: datetime.datetime) -> Timespan:
    """The timespan of one instant: one microsecond long (open-ended at the last one a
    `datetime.datetime` holds, which the time scale refuses with its range)."""
    try:
        end: datetime.datetime | None = when + datetime.timedelta(microseconds=1)
    except OverflowError:
        end = None
    return Timespan(when, end)


def _type_name(value: object) -> str:
    """The name of dataset type ``value`` (a name or a `DatasetType`)."""
    if type(value) is str:  # the common case first: this runs once per find
        return value
    require_type(value, "datasetType", (str, DatasetType), "a dataset type name or a DatasetType")
    return value if isinstance(value, str) else cast(DatasetType, value).name


def _type_names(value: object, name: str) -> list[str]:
    """The names of one dataset type or of an iterable of them."""
    what = "a dataset type (a name or a DatasetType) or an iterable of them"
    if isinstance(value, str | DatasetType):
        return [_type_name(value)]
    if isinstance(value, bytes | Mapping) or not isinstance(value, Iterable):
        raise ArgumentTypeError(f"{name} must be {what}, got {type(value).__name__} {value!r:.60}.")
    items = list(value)
    for item in items:
        if not isinstance(item, str | DatasetType):
            raise ArgumentTypeError(
                f"{name} must be dataset types (names or DatasetType objects), got "
                f"{type(item).__name__} {item!r:.60}."
            )
    return [_type_name(item) for item in items]


def _search(collections: object) -> list[str]:
    """Collections to search, as a list of names (globs where a method takes them)."""
    if type(collections) is str:
        return [collections]
    if collections is None:
        raise ArgumentTypeError(
            "collections must be a collection name or an iterable of names, got None: the "
            "registry has no default collections to search."
        )
    checked = require_collections(collections)
    return [checked] if isinstance(checked, str) else list(checked)


def _collection_type(value: object) -> CollectionType:
    """``value`` as a `CollectionType` (a member, its name or its value)."""
    if isinstance(value, CollectionType):
        return value
    if isinstance(value, str) and value.upper() in CollectionType.__members__:
        return CollectionType[value.upper()]
    try:
        return CollectionType(cast(int, value))
    except (ValueError, TypeError):
        names = ", ".join(t.name for t in CollectionType)
        raise InvalidArgumentError(
            f"type must be a CollectionType ({names}), got {type(value).__name__} {value!r:.60}."
        ) from None


class _FakeRefs:
    """Ids as refs, lazily (what bridge methods read)."""

    def __init__(self, ids: Iterable[Any]) -> None:
        self._ids = ids

    def __iter__(self) -> Iterator[Any]:
        from .interfaces import FakeDatasetRef

        return (FakeDatasetRef(i) for i in self._ids)


@contextmanager
def _quoting(where: object) -> Iterator[None]:
    """Quote ``where`` in expression errors raised by the managers, which only see its tree."""
    try:
        yield
    except ExpressionError as exc:
        if exc.expression is None and exc.position is not None and isinstance(where, str):
            raise ExpressionError(exc.reason, where, exc.position) from exc.__cause__
        raise


def _quoted(rows: Iterator[_T], where: object) -> Iterator[_T]:
    with _quoting(where):
        yield from rows
