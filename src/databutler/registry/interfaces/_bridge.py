"""The registry–datastore bridge: which datastore holds which dataset.

A datastore is handed a `DatastoreRegistryBridgeManager` at construction and
reaches the registry only through it: `~DatastoreRegistryBridgeManager.register`
gives it a `DatastoreRegistryBridge`, ``.opaque`` its records tables and
``.universe`` the dimensions. Deletion runs in two phases: `moveToTrash`
inside the registry transaction that removes the datasets, then `emptyTrash`
after commit, which deletes artifacts and, on success, their rows.
"""

from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from ..._dataset_ref import DatasetId, DatasetRef, require_dataset_id
from ..._exceptions import AmbiguousDatasetError, InvalidDatasetIdError, InvalidNameError
from ._versioning import VersionedExtension, VersionTuple

if TYPE_CHECKING:
    import sqlalchemy

    from ...dimensions import DimensionUniverse
    from ...transaction import DatastoreTransaction
    from ._database import Database, StaticTablesContext
    from ._datasets import DatasetRecordStorageManager
    from ._opaque import OpaqueTableStorage, OpaqueTableStorageManager

__all__ = [
    "AmbiguousDatasetError",
    "DatasetIdRef",
    "DatastoreRegistryBridge",
    "DatastoreRegistryBridgeManager",
    "FakeDatasetRef",
    "FindRider",
    "StoredDatastoreItemInfoFactory",
    "validate_datastore_name",
]

#: Longest datastore name: the width of the ``datastore_name`` columns.
MAX_DATASTORE_NAME_LENGTH = 256

_DATASTORE_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@/:<>+=-]*")
_DATASTORE_NAME_CHAR_RE = re.compile(r"[A-Za-z0-9_.@/:<>+=-]")
_NO_ID = object()  # what FakeDatasetRef.__eq__ reads from an object without ``id``


def validate_datastore_name(name: Any) -> str:
    """Return ``name`` if it is a valid datastore name.

    A datastore name is 1–256 characters: letters, digits and ``_ . - @ / : < > + =``,
    not starting with punctuation (``FileDatastore@<butlerRoot>/datastore`` is valid).

    Raises
    ------
    InvalidNameError
        If it is not, with the reason and the rule.
    """
    rule = (
        "a datastore name is 1-256 characters from letters, digits and _ . - @ / : < > + =, "
        "starting with a letter, digit or underscore"
    )
    if not isinstance(name, str):
        raise InvalidNameError(
            f"Datastore name {name!r} is a {type(name).__name__}, not a str; {rule}."
        )
    if not name:
        raise InvalidNameError(f"Datastore name is empty; {rule}.")
    if len(name) > MAX_DATASTORE_NAME_LENGTH:
        raise InvalidNameError(
            f"Datastore name {name[:40]!r}... is {len(name)} characters long; {rule}."
        )
    if not _DATASTORE_NAME_RE.fullmatch(name):
        bad = next((c for c in name if not _DATASTORE_NAME_CHAR_RE.fullmatch(c)), None)
        problem = f"contains {bad!r}" if bad is not None else f"starts with {name[0]!r}"
        raise InvalidNameError(f"Datastore name {name!r} {problem}; {rule}.")
    return name


class FakeDatasetRef:
    """A reference that carries only a dataset id.

    Used where only the id is known, typically when deleting. It equals any
    object with the same ``.id``, but hashes like its id, unlike `DatasetRef`:
    do not mix the two as set members or dict keys.

    Parameters
    ----------
    id : `uuid.UUID`
        The dataset id.

    Raises
    ------
    InvalidDatasetIdError
        If ``id`` is not a `uuid.UUID`.
    """

    __slots__ = ("id",)

    id: DatasetId

    def __init__(self, id: DatasetId) -> None:
        if not isinstance(id, uuid.UUID):
            raise InvalidDatasetIdError(
                f"FakeDatasetRef needs a uuid.UUID, got {id!r} ({type(id).__name__}); "
                "convert it with uuid.UUID(...)."
            )
        object.__setattr__(self, "id", id)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("FakeDatasetRef is immutable.")

    def __str__(self) -> str:
        return f"dataset_id={self.id}"

    def __repr__(self) -> str:
        return f"FakeDatasetRef({self.id})"

    def __eq__(self, other: object) -> bool:
        other_id = getattr(other, "id", _NO_ID)
        if other_id is _NO_ID:
            return NotImplemented
        return bool(self.id == other_id)

    def __hash__(self) -> int:
        return hash(self.id)

    def __reduce__(self) -> tuple[Any, ...]:
        return (FakeDatasetRef, (self.id,))

    @property
    def datasetType(self) -> Any:
        """Not known for a fake reference: raises `AttributeError`."""
        raise AttributeError("A FakeDatasetRef has no dataset type; it only knows its id.")

    @property
    def _datastore_records(self) -> Any:
        raise AttributeError("A FakeDatasetRef has no datastore records; it only knows its id.")


DatasetIdRef: TypeAlias = DatasetRef | FakeDatasetRef
"""Anything bridge methods accept: they read only ``.id``."""


class StoredDatastoreItemInfoFactory(Protocol):
    """What `DatastoreRegistryBridge.emptyTrash` needs of a ``record_class``."""

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Any:
        """Build the item info from one row of the records table."""
        ...


EmptyTrashContext: TypeAlias = AbstractContextManager[
    tuple[Iterable[tuple[DatasetIdRef, Any]], set[Any] | None]
]


@dataclass(frozen=True)
class FindRider:
    """Rows another layer reads in the statement that finds a dataset by data ID.

    Beyond the upstream interface. The search adds ``join`` (``LEFT JOIN``
    clauses whose conditions name the found dataset's id as ``{dataset_id}``)
    and the ``width`` columns of ``columns``; ``params`` are the join's
    parameters. It hands back, with the ref, the rider's rows of the dataset it
    found, for ``decode`` to turn into what the rider's layer wants (and to drop
    the row of NULLs a join that matched nothing gives): a datastore reads its
    records with the find, one statement where it would take two.
    """

    join: str
    columns: str
    width: int
    params: tuple[Any, ...]
    decode: Callable[[list[tuple[Any, ...]], DatasetId], list[dict[str, Any]]]


class _NoInfo:
    """A record class for `DatastoreRegistryBridge.purge_trash`, which needs no item infos."""

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> None:
        return None


class DatastoreRegistryBridge(ABC):
    """What one datastore uses to tell the registry which datasets it holds.

    Every bulk method takes any iterable, streams it in batches and issues no
    query per dataset. A ref whose ``id`` is `None` raises
    `AmbiguousDatasetError`; an id that is not a `uuid.UUID` raises
    `InvalidDatasetIdError`; in both cases nothing is changed.

    Parameters
    ----------
    datastoreName : `str`
        Name of the datastore, as stored in registry tables.
    """

    def __init__(self, datastoreName: str) -> None:
        self.datastoreName = validate_datastore_name(datastoreName)

    @abstractmethod
    def insert(self, refs: Iterable[DatasetIdRef]) -> None:
        """Record that the datastore holds ``refs``.

        Raises
        ------
        ConflictError
            If one is recorded already (or, for a persistent bridge, is not a
            dataset of the registry); nothing is recorded.
        """
        raise NotImplementedError()

    @abstractmethod
    def ensure(self, refs: Iterable[DatasetIdRef]) -> None:
        """Like `insert`, but skip refs that are recorded already."""
        raise NotImplementedError()

    @abstractmethod
    def forget(self, refs: Iterable[DatasetIdRef]) -> None:
        """Forget ``refs`` without trashing them: their artifacts will not be deleted.

        For `Datastore.forget`, or when deleting artifacts cannot fail. Refs
        not held are ignored.
        """
        raise NotImplementedError()

    @abstractmethod
    def moveToTrash(
        self, refs: Iterable[DatasetIdRef], transaction: DatastoreTransaction | None
    ) -> None:
        """Mark ``refs`` for deletion: they are no longer held, their artifacts await `emptyTrash`.

        Refs not held are ignored; trashing a ref twice is harmless.

        Parameters
        ----------
        refs : `~collections.abc.Iterable` [`DatasetIdRef`]
            Datasets to trash.
        transaction : `DatastoreTransaction` or `None`
            Undo log for bridges whose state is not in the database; `None`
            means no undo is recorded.
        """
        raise NotImplementedError()

    @abstractmethod
    def check(self, refs: Iterable[DatasetId]) -> set[DatasetId]:
        """The subset of the given dataset ids held by this datastore (trash excluded)."""
        raise NotImplementedError()

    def held_records(
        self, records_table: OpaqueTableStorage, ids: Iterable[DatasetId]
    ) -> Iterator[dict[str, Any]]:
        """Rows of ``records_table`` for those of ``ids`` that this datastore holds.

        Beyond the upstream interface: what a datastore reads before
        returning a dataset, in one query per batch where the bridge and the
        records share a database. Trashed datasets are left out.
        """
        wanted = list(as_dataset_ids(ids))
        held = self.check(wanted)
        return records_table.fetch(dataset_id=[i for i in wanted if i in held])

    def held_records_rider(self, records_table: OpaqueTableStorage) -> FindRider | None:
        """What reads `held_records` of a dataset in the statement that finds it (rows of
        ``records_table`` decoded as `held_records` gives them); `None` where the
        bridge and the records do not share the registry's database.

        Beyond the upstream interface.
        """
        return None

    @abstractmethod
    def emptyTrash(
        self,
        records_table: OpaqueTableStorage | None = None,
        record_class: type[StoredDatastoreItemInfoFactory] | None = None,
        record_column: str | None = None,
        selected_ids: Iterable[DatasetId] | None = None,
        dry_run: bool = False,
    ) -> EmptyTrashContext:
        """Context manager over the trashed datasets whose artifacts are to be deleted.

        Yields ``(pairs, keep)``. ``pairs`` is a single-pass iterable of
        ``(ref, info)``: ``ref`` a `FakeDatasetRef`, ``info``
        ``record_class.from_record(row)`` for each records row of that
        dataset, or `None` when there is no ``records_table`` (or a trashed
        dataset has no records row). ``keep`` is the set of ``record_column``
        values that a trashed dataset shares with a dataset still held —
        artifacts that must not be deleted — or `None` when no
        ``record_column`` is given.

        When the block exits without an exception (and not ``dry_run``), the
        records rows and the trash rows of every pair the caller moved past
        are deleted together, in one transaction; otherwise nothing is.

        Parameters
        ----------
        records_table : `OpaqueTableStorage`, optional
            The datastore's records table, with a ``dataset_id`` column.
        record_class : `type`, optional
            Class with ``from_record(row)``; required with ``records_table``.
        record_column : `str`, optional
            Column of ``records_table`` naming the artifact (``"path"``).
        selected_ids : `~collections.abc.Iterable` [`DatasetId`], optional
            Restrict to these datasets; an empty collection means none.
        dry_run : `bool`, optional
            Report only: delete nothing.

        Raises
        ------
        ValueError
            If ``records_table`` is given without ``record_class``, or
            ``record_column`` without ``records_table``.
        """
        raise NotImplementedError()

    def trash_is_empty(self) -> bool:
        """Whether this datastore's trash certainly has no row (beyond the upstream
        interface): emptying it would do nothing. `False` when unknown."""
        return False

    def trash_sample(self, limit: int) -> list[DatasetId] | None:
        """Up to ``limit`` datasets of this datastore's trash, in one read (beyond the
        upstream interface): all of them when there are fewer, none for an empty trash;
        `None` when this bridge cannot tell cheaply."""
        return None

    def purge_trash(
        self, records_table: OpaqueTableStorage | None, ids: Iterable[DatasetId]
    ) -> list[DatasetId]:
        """Drop ``ids`` from this datastore's trash, once the caller has deleted their artifacts.

        The last step of emptying the trash in two passes (beyond the
        upstream interface): a dry-run `emptyTrash` says what to delete, the
        caller deletes the artifacts, and this removes the rows, in one
        transaction. A dataset's rows in ``records_table`` go with its trash
        row, except for a dataset stored again since it was trashed (its
        records describe live artifacts: only the stale trash row goes). Ids
        not in the trash are ignored.

        Returns
        -------
        purged : `list` [`DatasetId`]
            The datasets whose records went too (those a non-dry-run
            `emptyTrash` over ``ids`` would have yielded), each once.
        """
        record_class = None if records_table is None else _NoInfo
        with self.emptyTrash(records_table, record_class, selected_ids=ids) as (pairs, _):
            return list(dict.fromkeys(ref.id for ref, _ in pairs))

    # -- consistency checks (beyond the upstream interface) ------------------
    #
    # What `Butler.verify` asks of the tables the bridge and the datastore's
    # records share. Every query streams: memory does not grow with the number
    # of datasets (except where a method says otherwise). A caller that wants
    # the answers of several of these methods to agree runs them inside one
    # ``db.session()`` (persistent bridges read in its transaction).

    @abstractmethod
    def held_without_records(self, records_table: OpaqueTableStorage) -> Iterator[DatasetId]:
        """Datasets this datastore holds that have no row in ``records_table``.

        A datastore that keeps one records row (or more) per stored dataset
        has lost track of these: it says it holds them but not where.

        Parameters
        ----------
        records_table : `OpaqueTableStorage`
            The datastore's records table, with a ``dataset_id`` column.

        Returns
        -------
        ids : `~collections.abc.Iterator` [`DatasetId`]
            Each such dataset once, in no particular order, read as the
            iterator advances.
        """
        raise NotImplementedError()

    @abstractmethod
    def trashed_ids(self) -> Iterator[DatasetId]:
        """Datasets in this datastore's trash, each once, in no particular order.

        Includes trashed datasets that were stored again since (their trash
        entry is stale). A trash that `emptyTrash` has emptied is empty, so
        anything listed here is trash that was not emptied.
        """
        raise NotImplementedError()

    @abstractmethod
    def orphaned_records(
        self, records_table: OpaqueTableStorage, record_column: str
    ) -> Iterator[tuple[DatasetId, Any]]:
        """Records rows of datasets this datastore neither holds nor has in its trash.

        Nothing will ever delete such rows (`emptyTrash` deletes records of
        trashed datasets only); see `delete_orphaned_records`.

        Parameters
        ----------
        records_table : `OpaqueTableStorage`
            The datastore's records table, with a ``dataset_id`` column.
        record_column : `str`
            Column of ``records_table`` to report with each dataset
            (``"path"``).

        Returns
        -------
        rows : `~collections.abc.Iterator` [`tuple` [`DatasetId`, `typing.Any`]]
            Distinct ``(dataset_id, value of record_column)`` pairs, in no
            particular order, read as the iterator advances.

        Raises
        ------
        ValueError
            If ``records_table`` has no column ``record_column`` (checked
            before the first pair is returned).
        """
        raise NotImplementedError()

    @abstractmethod
    def delete_orphaned_records(
        self, records_table: OpaqueTableStorage, ids: Iterable[DatasetId]
    ) -> None:
        """Delete the records rows of those of ``ids`` this datastore neither holds nor trashed.

        The condition is checked again as the rows are deleted, so a dataset
        stored (or trashed) since `orphaned_records` listed it keeps its
        records. All-or-nothing; ids with no records rows are ignored.

        Parameters
        ----------
        records_table : `OpaqueTableStorage`
            The datastore's records table, with a ``dataset_id`` column.
        ids : `~collections.abc.Iterable` [`DatasetId`]
            The datasets whose orphaned records rows to delete.
        """
        raise NotImplementedError()

    @abstractmethod
    def ordered_records(
        self,
        records_table: OpaqueTableStorage,
        record_column: str,
        *,
        prefixes: Sequence[str] | None = None,
        exclude_prefixes: Sequence[str] = (),
        held_only: bool = False,
        columns: Sequence[str] | None = None,
    ) -> Iterator[tuple[dict[str, Any], bool]]:
        """Rows of ``records_table`` in ``record_column`` order, each with whether it is held.

        What a datastore merges with a sorted listing of its storage, to find
        missing, unknown and changed artifacts in one pass.

        Parameters
        ----------
        records_table : `OpaqueTableStorage`
            The datastore's records table, with a ``dataset_id`` column.
        record_column : `str`
            String column to order by (``"path"``).
        prefixes : `~collections.abc.Sequence` [`str`], optional
            Only rows whose ``record_column`` value starts with one of these
            (case-sensitive); all rows when `None`.
        exclude_prefixes : `~collections.abc.Sequence` [`str`], optional
            Leave out rows whose ``record_column`` value starts with one of
            these (case-sensitive).
        held_only : `bool`, optional
            Only rows of datasets this datastore holds.
        columns : `~collections.abc.Sequence` [`str`], optional
            Columns to read besides ``dataset_id`` and ``record_column``;
            those ``records_table`` does not have are left out of the rows.
            Every column when `None`.

        Returns
        -------
        rows : `~collections.abc.Iterator` [`tuple` [`dict`, `bool`]]
            ``(row, held)``: ``row`` maps each column read (see ``columns``)
            to its value (``dataset_id`` a `DatasetId`); ``held`` is whether
            this datastore holds that dataset (trash excluded). Ordered by
            ``record_column`` in code-point order — the order of Python's
            `str` comparison, whatever the database's collation — then by
            dataset id; read as the iterator advances.

        Raises
        ------
        ValueError
            If ``records_table`` has no column ``record_column`` (checked
            before the first row is returned).
        """
        raise NotImplementedError()


class DatastoreRegistryBridgeManager(VersionedExtension):
    """An abstract base class that defines the interface between Registry and Datastore
    when a new Datastore is constructed.

    Parameters
    ----------
    opaque : `OpaqueTableStorageManager`
        Manager object for opaque table storage in the Registry.
    universe : `~databutler.dimensions.DimensionUniverse`
        All dimensions known to the Registry.
    registry_schema_version : `VersionTuple` or `None`, optional
        Version of registry schema.

    Notes
    -----
    Datastores are passed an instance of `DatastoreRegistryBridgeManager` at
    construction, and should use it to obtain and keep any of the following:

    - a `DatastoreRegistryBridge` instance to record in the Registry what is
      present in the datastore (needed by all datastores that are not just
      forwarders);
    - one or more `OpaqueTableStorage` instance if they wish to store internal
      records in the Registry database;
    - the `DimensionUniverse`, if they need it to (e.g.) construct or validate
      filename templates.
    """

    def __init__(
        self,
        *,
        opaque: OpaqueTableStorageManager,
        universe: DimensionUniverse,
        registry_schema_version: VersionTuple | None = None,
    ) -> None:
        super().__init__(registry_schema_version=registry_schema_version)
        self.opaque = opaque
        self.universe = universe

    @abstractmethod
    def clone(
        self, *, db: Database, opaque: OpaqueTableStorageManager
    ) -> DatastoreRegistryBridgeManager:
        """Make an independent copy of this manager instance bound to new instances of
        `Database` and other managers.

        Parameters
        ----------
        db : `Database`
            New `Database` object to use when instantiating the manager.
        opaque : `OpaqueTableStorageManager`
            New `OpaqueTableStorageManager` object to use when instantiating the manager.

        Returns
        -------
        instance : `DatastoreRegistryBridgeManager`
            New manager instance with the same configuration as this instance,
            but bound to a new Database object.
        """
        raise NotImplementedError()

    @classmethod
    @abstractmethod
    def initialize(
        cls,
        db: Database,
        context: StaticTablesContext,
        *,
        opaque: OpaqueTableStorageManager,
        datasets: type[DatasetRecordStorageManager],
        universe: DimensionUniverse,
        registry_schema_version: VersionTuple | None = None,
    ) -> DatastoreRegistryBridgeManager:
        """Construct an instance of the manager.

        Parameters
        ----------
        db : `Database`
            Interface to the underlying database engine and namespace.
        context : `StaticTablesContext`
            Context object obtained from `Database.declareStaticTables`; used to
            declare any tables that should always be present in a layer
            implemented with this manager.
        opaque : `OpaqueTableStorageManager`
            Registry manager object for opaque (to Registry) tables, provided to
            allow Datastores to store their internal information inside the
            Registry database.
        datasets : subclass of `DatasetRecordStorageManager`
            Concrete class that will be used to manage the core dataset tables in
            this registry; should be used only to create foreign keys to those tables.
        universe : `DimensionUniverse`
            All dimensions known to the registry.
        registry_schema_version : `VersionTuple` or `None`
            Schema version of this extension as defined in registry.

        Returns
        -------
        manager : `DatastoreRegistryBridgeManager`
            An instance of a concrete `DatastoreRegistryBridgeManager` subclass.
        """
        raise NotImplementedError()

    @abstractmethod
    def refresh(self) -> None:
        """Ensure all other operations on this manager are aware of any collections
        that may have been registered by other clients since it was initialized or
        last refreshed.
        """
        raise NotImplementedError()

    def transaction(self) -> AbstractContextManager[None]:
        """A block whose bridge and records-table writes commit together (or not at all).

        Beyond the upstream interface: a datastore standing alone (no
        registry transaction around it) uses it to insert its records and
        bridge rows atomically. Joins an enclosing transaction.
        """
        return nullcontext()

    @abstractmethod
    def register(self, name: str, *, ephemeral: bool = False) -> DatastoreRegistryBridge:
        """Register a new Datastore associated with this Registry.

        This method should be called by all Datastore classes aside from those
        that only forward storage to other datastores.

        Parameters
        ----------
        name : `str`
            Name of the datastore, as it should appear in Registry tables.
        ephemeral : `bool`, optional
            If `True`, return a bridge object that is backed by storage that
            will not last past the end of the current process. This should be
            used whenever the same is true of the dataset's artifacts. The
            default is `False` here and in every implementation (the
            documented signature said `True` while its text said `False`;
            callers rely on `False`).

        Returns
        -------
        bridge : `DatastoreRegistryBridge`
            Object that provides the interface this Datastore should use to
            communicate with the Registry.

        Raises
        ------
        InvalidNameError
            If ``name`` is not a valid datastore name.
        """
        raise NotImplementedError()

    @abstractmethod
    def is_ephemeral(self, name: str) -> bool:
        """Whether `register` has handed out an ephemeral bridge for datastore ``name``.

        Beyond the upstream interface: the registry asks it to reach the
        bridge of a datastore it knows only by name (to trash the datasets
        of a removed RUN, or to filter a query by an in-memory datastore).
        An ephemeral bridge lives in this process (shared by clones of
        this manager), so `False` for a name no bridge was registered for.
        """
        raise NotImplementedError()

    @property
    def location_table(self) -> sqlalchemy.Table | None:
        """The table of persistent locations, for queries in the registry database; or `None`.

        Beyond the upstream interface. A manager that keeps which (persistent)
        datastore holds which dataset in a table of the registry database,
        with columns ``dataset_id`` and ``datastore_name``, returns it, so that
        a dataset query can filter by datastore in SQL. `None` (the default)
        means there is no such table: callers filter through
        `DatastoreRegistryBridge.check` instead.
        """
        return None

    @abstractmethod
    def findDatastores(self, ref: DatasetIdRef) -> Iterable[str]:
        """Retrieve datastore locations for a given dataset.

        Parameters
        ----------
        ref : `DatasetIdRef`
            A reference to the dataset for which to retrieve storage information.

        Returns
        -------
        datastores : `~collections.abc.Iterable` [ `str` ]
            All the matching datastores holding this dataset. Empty if the
            dataset does not exist anywhere. Evaluated at the call.

        Raises
        ------
        AmbiguousDatasetError
            Raised if ``ref.id`` is `None`.
        """
        raise NotImplementedError()

    @abstractmethod
    def locate(self, refs: Iterable[DatasetIdRef]) -> dict[DatasetId, set[str]]:
        """Where each of many datasets is held, in one query per batch.

        Parameters
        ----------
        refs : `~collections.abc.Iterable` [`DatasetIdRef`]
            The datasets.

        Returns
        -------
        locations : `dict` [`DatasetId`, `set` [`str`]]
            For every given dataset id, the names of the datastores (persistent
            and ephemeral) holding it; an empty set when none does.
        """
        raise NotImplementedError()


def ref_ids(refs: Iterable[Any]) -> Iterable[DatasetId]:
    """The checked ids of ``refs``, lazily (see `require_dataset_id`)."""
    return map(require_dataset_id, refs)


def as_dataset_ids(ids: Iterable[Any]) -> Iterable[DatasetId]:
    """Dataset ids given directly (or as refs), checked lazily."""
    return (i if type(i) is uuid.UUID else _one_id(i) for i in ids)


def _one_id(value: Any) -> DatasetId:
    if isinstance(value, uuid.UUID):
        return value
    if hasattr(value, "id"):
        return require_dataset_id(value)
    raise InvalidDatasetIdError(
        f"Dataset id {value!r} is a {type(value).__name__}, not a uuid.UUID; "
        "convert it with uuid.UUID(...)."
    )
