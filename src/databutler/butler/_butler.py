"""`Butler`: a repository — registry plus datastore — behind one small facade."""

from __future__ import annotations

import datetime
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from .._collection_type import CollectionType, Timespan
from .._dataset_ref import DatasetId, DatasetRef
from .._dataset_type import DatasetType
from .._exceptions import (
    ArgumentConflictError,
    ConfigurationError,
    DatabutlerError,
    MissingCollectionError,
    ReadOnlyDatabaseError,
    RepositoryError,
)
from .._file_dataset import FileDataset
from ..datastores import Datastore, FileDatastore, datastore_from_config
from ..datastores._file_trash import EmptyTrashResult
from ..dimensions import DataCoordinate, DimensionUniverse
from ..registry import SqlRegistry
from ..registry.bridge.monolithic import MonolithicDatastoreRegistryBridgeManager
from ..registry.collections import validate_collection_name
from ..registry.queries import check_bind, parse_where
from . import _delete, _exchange
from ._arguments import (
    require_bool,
    require_collection_types,
    require_collections,
    require_data_id,
    require_dataset,
    require_file_datasets,
    require_mapping,
    require_path,
    require_put_items,
    require_refs,
    require_str,
    require_strs,
    require_timestamp,
    require_type,
)
from ._chains import new_chain
from ._config import (
    CONFIG_NAME,
    RepositoryConfig,
    normalize_root,
)
from ._conflicts import explaining_conflicts
from ._delete import PruneResult
from ._repository import create_repository
from ._retry import retrying
from ._values import DatasetExistence, DatasetNotFoundError
from ._verify import VerifyReport, leaf_datastores, recover_moves, verify_datastore

__all__ = ["Butler", "DatasetExistence", "DatasetNotFoundError", "DeferredDatasetHandle"]


@dataclass(frozen=True)
class DeferredDatasetHandle:
    """A dataset found now and read later, with `get`."""

    butler: Butler
    ref: DatasetRef

    def get(
        self, *, component: str | None = None, parameters: Mapping[str, Any] | None = None
    ) -> Any:
        """Read the dataset (or one component, or a subset by ``parameters``)."""
        return self.butler.get(self.ref, component=component, parameters=parameters)


class Butler:
    """A data repository: put, find, get, move and delete datasets.

    Parameters
    ----------
    root : `str` or `os.PathLike`
        The repository: a directory, ``s3://bucket/prefix``, or the path of
        its ``butler.yaml``.
    run : `str`, optional
        Where `put` and `ingest` write when not told otherwise; also searched
        by default when ``collections`` is not given.
    collections : `str` or `~collections.abc.Sequence` [`str`], optional
        Collections `get` and the queries search by default, in order.
    writeable : `bool`, optional
        Open for writing; the default is read-only.

    Raises
    ------
    FileNotFoundError
        If there is no repository at ``root``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        run: str | None = None,
        collections: str | Sequence[str] | None = None,
        writeable: bool = False,
        _registry: SqlRegistry | None = None,
        _datastore: Datastore | None = None,
    ) -> None:
        require_path(root, "root")
        require_str(run, "run", optional=True)
        collections = require_collections(collections)
        require_bool(writeable, "writeable")
        self.root = normalize_root(root)
        self.config = RepositoryConfig.read(self.root)
        self.registry = _registry or SqlRegistry.open(
            self.config.db_uri, writeable=writeable, namespace=self.config.namespace
        )
        try:
            self.datastore: Datastore = _datastore or datastore_from_config(
                self.config.datastore, self.registry.datastore_bridges, root=self.root
            )
        except BaseException as exc:
            if _registry is None:
                self.registry.db.dispose()
            if isinstance(exc, ReadOnlyDatabaseError):  # it wanted tables that are not there
                raise RepositoryError(
                    f"Key 'datastore' of {self.root}/{CONFIG_NAME} names datastore tables this "
                    f"repository's registry does not have ({exc}); restore the configuration "
                    "the repository was created with."
                ) from exc
            if isinstance(exc, DatabutlerError) and not isinstance(exc, RepositoryError):
                raise RepositoryError(
                    f"Key 'datastore' of {self.root}/{CONFIG_NAME}: {exc}"
                ) from exc
            raise
        self.is_writeable = writeable
        if writeable:  # files a killed ingest(transfer="move") left go back first
            recover_moves(self.datastore)
        self.run = run
        if run is not None:
            self._use_run(run, register=writeable)
        if collections is None:
            self.collections: tuple[str, ...] = (run,) if run else ()
        else:
            self.collections = (
                (collections,) if isinstance(collections, str) else tuple(collections)
            )

    # -- repositories -----------------------------------------------------------

    @classmethod
    def create(
        cls,
        root: str | os.PathLike[str],
        *,
        db: str | None = None,
        datastore: str | Mapping[str, Any] | None = None,
        universe: DimensionUniverse | None = None,
        namespace: str | None = None,
        overwrite: bool = False,
        run: str | None = None,
    ) -> Butler:
        """Create a repository and return a writeable `Butler` for it.

        Parameters
        ----------
        root : `str` or `os.PathLike`
            A local directory or ``s3://bucket/prefix``; its ``butler.yaml`` is written there.
        db : `str`, optional
            The registry database URI (``postgresql://user@host/db``); an
            SQLite file in the root by default (local roots only).
        datastore : `str` or `~collections.abc.Mapping`, optional
            Where artifacts go: a directory or ``s3://bucket/prefix`` for a
            file datastore, or a full datastore configuration; a file
            datastore under the root by default.
        universe : `DimensionUniverse`, optional
            The dimensions; the packaged default when not given.
        namespace : `str`, optional
            PostgreSQL schema for the registry tables.
        overwrite : `bool`, optional
            Replace an existing repository at ``root``: its configuration, and
            its default SQLite registry and datastore directory.
        run : `str`, optional
            Default run of the returned butler.

        Raises
        ------
        FileExistsError
            If ``root`` holds a repository and ``overwrite`` is false.
        ConfigurationError
            For an invalid database URI or datastore configuration, or an
            S3 root without ``db``.
        """
        require_path(root, "root")
        require_str(db, "db", optional=True)
        require_type(
            datastore,
            "datastore",
            (str, Mapping, type(None)),
            "a directory, s3:// URI or datastore configuration (a mapping), or None",
        )
        require_type(
            universe, "universe", (DimensionUniverse, type(None)), "a DimensionUniverse or None"
        )
        require_str(namespace, "namespace", optional=True)
        require_bool(overwrite, "overwrite")
        require_str(run, "run", optional=True)
        if run is not None:  # before anything is made
            validate_collection_name(run)
        root_uri = normalize_root(root)
        if db is None and root_uri.startswith("s3://"):
            raise ConfigurationError(
                f"A repository in S3 ({root_uri}) needs a shared database: pass "
                "db='postgresql://user@host/dbname'."
            )
        made = None  # the outermost directory this call creates, if any
        if not root_uri.startswith("s3://"):
            for directory in [Path(root_uri), *Path(root_uri).parents]:
                if directory.exists():
                    break
                made = directory
        try:
            registry, datastore_ = create_repository(
                root_uri, db, datastore, universe, namespace, overwrite=overwrite
            )
        except BaseException:
            if made is not None:  # everything in it is this call's: leave no trace
                shutil.rmtree(made, ignore_errors=True)
            raise
        return cls(root_uri, run=run, writeable=True, _registry=registry, _datastore=datastore_)

    def _use_run(self, run: str, *, register: bool) -> None:
        """Check the default run's name; register the run (writeable butlers) if it is new.

        So a run named at creation or opening can be queried before the first put.
        """
        try:
            validate_collection_name(run, registering=False)
            if register:
                try:
                    self.registry.getCollectionType(run)
                except MissingCollectionError:
                    self.registry.registerRun(run)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the database connections."""
        self.registry.db.dispose()

    def __enter__(self) -> Butler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "writeable" if self.is_writeable else "read-only"
        return f"Butler({self.root!r}, {mode}, run={self.run!r})"

    @property
    def dimensions(self) -> DimensionUniverse:
        """The repository's dimension universe."""
        return self.registry.dimensions

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One registry transaction and one datastore transaction: an error undoes both.

        Nested blocks join the outer one. The registry commits first, inside
        the datastore block: a failed commit still undoes the datastore's
        work, and the datastore's after-commit actions (deleting a move
        journal) run only once the registry has committed.
        """
        with self.datastore.transaction(), self.registry.transaction():
            yield

    # -- registry conveniences ---------------------------------------------------------

    def register_dataset_type(
        self,
        name: str | DatasetType,
        dimensions: Iterable[str] = (),
        storage_class: str = "StructuredDataDict",
        *,
        is_calibration: bool = False,
    ) -> bool:
        """Register a dataset type (a `DatasetType` or its parts); whether it was new."""
        require_type(name, "name", (str, DatasetType), "a dataset type name or a DatasetType")
        if not isinstance(name, DatasetType):
            dimensions = require_strs(dimensions, "dimensions")
            require_str(storage_class, "storage_class")
            require_bool(is_calibration, "is_calibration")
        self._require_writeable("register a dataset type")
        dataset_type = (
            name
            if isinstance(name, DatasetType)
            else DatasetType(name, dimensions, storage_class, isCalibration=is_calibration)
        )
        return self.registry.registerDatasetType(dataset_type)

    def insert_dimension_records(
        self, element: str, *records: Mapping[str, Any], skip_existing: bool = False
    ) -> int:
        """Insert dimension records (all-or-nothing); how many were new.

        With ``skip_existing``, records identical to stored ones are skipped
        (a differing one is still an error).
        """
        require_str(element, "element")
        for record in records:
            require_mapping(record, "records", optional=False)
        require_bool(skip_existing, "skip_existing")
        self._require_writeable("insert dimension records")
        if not skip_existing:
            self.registry.insertDimensionData(element, *records)
            return len(records)
        with self.registry.transaction():
            return sum(self.registry.syncDimensionData(element, r) for r in records)

    def collection_chain(
        self, parent: str, children: Sequence[str], *, mode: str = "redefine"
    ) -> tuple[str, ...]:
        """Set a CHAINED collection's members (created if new); return the new chain.

        ``mode`` is ``redefine`` (replace), ``extend`` (append), ``prepend``,
        ``remove`` (drop the given children) or ``pop`` (drop the children at the
        given positions).
        """
        require_str(parent, "parent")
        children = require_strs(children, "children")
        require_str(mode, "mode")
        self._require_writeable("change a collection chain")
        with self.registry.transaction():
            self.registry.registerCollection(parent, CollectionType.CHAINED)
            current = self.registry.getCollectionChain(parent)
            chain = new_chain(parent, current, children, mode)
            self.registry.setCollectionChain(parent, chain)
        return chain

    def associate(self, tag: str, refs: Iterable[DatasetRef]) -> None:
        """Add datasets to TAGGED collection ``tag`` (created if new)."""
        require_str(tag, "tag")
        refs = require_refs(refs)
        self._require_writeable("tag datasets")
        with self.registry.transaction():
            self.registry.registerCollection(tag, CollectionType.TAGGED)
            self.registry.associate(tag, refs)

    def certify(
        self,
        collection: str,
        refs: Iterable[DatasetRef],
        begin: datetime.datetime | None,
        end: datetime.datetime | None,
    ) -> None:
        """Make calibrations valid over ``[begin, end)`` in CALIBRATION ``collection``.

        The collection is created if new; `None` leaves that side unbounded.
        """
        require_str(collection, "collection")
        refs = require_refs(refs)
        require_timestamp(begin, "begin")
        require_timestamp(end, "end")
        self._require_writeable("certify calibrations")
        with self.registry.transaction():
            self.registry.registerCollection(collection, CollectionType.CALIBRATION)
            self.registry.certify(collection, refs, Timespan(begin, end))

    # -- put -------------------------------------------------------------------

    def put(
        self,
        obj: Any,
        dataset: str | DatasetType | DatasetRef,
        data_id: Mapping[str, Any] | None = None,
        *,
        run: str | None = None,
        **kwargs: Any,
    ) -> DatasetRef:
        """Store ``obj`` as a new dataset and return its ref.

        Parameters
        ----------
        obj : `object`
            What to store.
        dataset : `str`, `DatasetType` or `DatasetRef`
            The dataset type (then give the data ID), or a resolved ref
            (the dataset keeps its id, e.g. to re-put a purged dataset).
        data_id : `~collections.abc.Mapping`, optional
            The data ID; keywords add to it.
        run : `str`, optional
            The RUN collection, created on first use; the butler's ``run`` by default.
        """
        require_dataset(dataset)
        require_data_id(data_id)
        (ref,) = self.put_many([(obj, dataset, dict(data_id or {}, **kwargs))], run=run)
        return ref

    def put_many(
        self,
        items: Iterable[tuple[Any, str | DatasetType | DatasetRef, Mapping[str, Any] | None]],
        *,
        run: str | None = None,
    ) -> list[DatasetRef]:
        """Store many objects at once (all-or-nothing): ``(obj, dataset type or ref, data ID)``."""
        items = require_put_items(items)
        require_str(run, "run", optional=True)
        self._require_writeable("put datasets")
        target = self.run if run is None else run  # run="" is refused, not the default
        refs: list[DatasetRef | None] = [None] * len(items)
        groups: dict[str, list[int]] = {}
        resolved: list[DatasetRef] = []
        for i, (_, dataset, _) in enumerate(items):
            if isinstance(dataset, DatasetRef):
                refs[i] = dataset
                resolved.append(dataset)
            else:
                name = dataset.name if isinstance(dataset, DatasetType) else dataset
                groups.setdefault(name, []).append(i)
        if groups and target is None:
            raise ArgumentConflictError(
                "No run to put into: pass run='name' to put(), or open the butler "
                "with Butler(root, run='name', writeable=True)."
            )
        # A run this client has seen is not looked up again (the insert's transaction
        # checks the cached one), so later puts write nothing for it; a new one is
        # registered inside the transaction, so that a failed put leaves no empty run.
        new_run = bool(groups) and not self.registry.known_collection(target)  # type: ignore[arg-type]
        inserts = {
            name: [items[i][2] or {} for i in positions] for name, positions in groups.items()
        }

        def attempt(new_run: bool) -> list[DatasetRef]:
            with explaining_conflicts(self.registry, inserts, target), self.transaction():
                if new_run:
                    self.registry.registerRun(target)  # type: ignore[arg-type]
                if resolved:
                    self._import_refs(resolved)
                for name, positions in groups.items():
                    new = self.registry.insertDatasets(name, inserts[name], target)  # type: ignore[arg-type]
                    for i, ref in zip(positions, new, strict=True):
                        refs[i] = ref
                done = [ref for ref in refs if ref is not None]
                self.datastore.put_many(
                    (obj, ref) for (obj, _, _), ref in zip(items, done, strict=True)
                )
            return done

        def put() -> list[DatasetRef]:
            try:
                return attempt(new_run)
            except MissingCollectionError:
                if new_run or not groups or self.registry.known_collection(target):  # type: ignore[arg-type]
                    raise
                return attempt(True)  # another client removed the run since this one saw it

        return retrying(self.registry.db, put, "put datasets")

    def _import_refs(self, refs: list[DatasetRef]) -> None:
        """Make sure the registry has these resolved refs (same ids), creating their runs."""
        for run in sorted({ref.run for ref in refs if ref.run}):
            self.registry.registerRun(run)
        known = self.registry.existingDatasetIds([ref.id for ref in refs])
        new = [ref for ref in refs if ref.id not in known]
        if new:
            self.registry.importDatasets(new)

    # -- get -------------------------------------------------------------------

    def find_dataset(
        self,
        dataset_type: str | DatasetType,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> DatasetRef | None:
        """The first matching dataset in the search collections, or `None`."""
        require_type(
            dataset_type, "dataset_type", (str, DatasetType), "a dataset type name or a DatasetType"
        )
        require_data_id(data_id)
        collections = require_collections(collections)
        name = dataset_type.name if isinstance(dataset_type, DatasetType) else dataset_type
        parent = name.partition(".")[0]
        return self.registry.findDataset(
            parent, data_id, collections=self._search(collections), **kwargs
        )

    def _resolve(
        self,
        dataset: str | DatasetType | DatasetRef,
        data_id: Mapping[str, Any] | None,
        collections: str | Sequence[str] | None,
        kwargs: dict[str, Any],
    ) -> tuple[DatasetRef, str | None]:
        """The ref to read and the component named in the dataset type, if any."""
        require_dataset(dataset)
        require_data_id(data_id)
        collections = require_collections(collections)
        if isinstance(dataset, DatasetRef):
            if dataset.id is None:
                raise TypeError(f"{dataset!r} has no id; pass the dataset type and data ID.")
            return dataset, None
        name = dataset.name if isinstance(dataset, DatasetType) else dataset
        parent, _, component = name.partition(".")
        search = self._search(collections)
        ref = self.registry.findDataset(parent, data_id, collections=search, **kwargs)
        if ref is None:
            shown = dict(data_id or {}, **kwargs)
            raise DatasetNotFoundError(
                f"No {parent!r} dataset with data ID {shown} in collections {list(search)}; "
                "check the data ID, or search other collections (collections=...)."
            )
        return ref, component or None

    def get(
        self,
        dataset: str | DatasetType | DatasetRef,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Read a dataset: by ref, or by dataset type and data ID (a mapping or keywords).

        ``"type.component"`` or ``component=`` reads one component;
        ``parameters`` select a subset (formatter-specific).

        Raises
        ------
        DatasetNotFoundError
            If no dataset matches.
        DatasetNotStoredError
            If the dataset exists but its datastore does not hold it.
        """
        require_str(component, "component", optional=True)
        require_mapping(parameters, "parameters")
        ref, named = self._resolve(dataset, data_id, collections, kwargs)
        return self.datastore.get(ref, component=component or named, parameters=parameters)

    def get_many(self, refs: Iterable[DatasetRef]) -> list[Any]:
        """Read many datasets by ref, in order: one records query per batch, then the artifacts.

        Raises
        ------
        DatasetNotStoredError
            If a dataset is not held by the datastore; nothing is returned.
        """
        return self.datastore.get_many(require_refs(refs))

    def get_deferred(
        self,
        dataset: str | DatasetType | DatasetRef,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> DeferredDatasetHandle:
        """Find a dataset now; read it later with the handle's ``get()``."""
        ref, _ = self._resolve(dataset, data_id, collections, kwargs)
        return DeferredDatasetHandle(self, ref)

    def exists(
        self,
        dataset: str | DatasetType | DatasetRef,
        data_id: Mapping[str, Any] | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        full_check: bool = True,
        **kwargs: Any,
    ) -> DatasetExistence:
        """What the registry and datastore know of one dataset.

        Returns
        -------
        existence : `DatasetExistence`
            True only when the dataset can be read: `DatasetExistence.VERIFIED`
            (artifact found), or `DatasetExistence.KNOWN` with
            ``full_check=False`` (recorded, artifact not looked for). A
            dataset only in the registry (`DatasetExistence.RECORDED`) is
            false; ``DatasetExistence.RECORDED in flags`` tells it apart from
            `DatasetExistence.NONE`.
        """
        require_bool(full_check, "full_check")
        try:
            ref, _ = self._resolve(dataset, data_id, collections, kwargs)
        except DatasetNotFoundError:
            return DatasetExistence.NONE
        return self._existence([ref], full_check=full_check)[ref.id]  # type: ignore[index]

    def _existence(
        self, refs: list[DatasetRef], *, full_check: bool
    ) -> dict[DatasetId, DatasetExistence]:
        answers = self.datastore.existence_many(refs, full_check=full_check)
        # The registry is asked only about datasets the datastore cannot vouch for.
        nothing = (False, False, False)
        ids = [r.id for r in refs if r.id is not None and not answers.get(r.id, nothing)[2]]
        recorded = self.registry.existingDatasetIds(ids) if ids else set()
        result = {}
        for ref in refs:
            flags = DatasetExistence.NONE
            known, present, registered = answers.get(ref.id, nothing)  # type: ignore[arg-type]
            if registered or ref.id in recorded:
                flags |= DatasetExistence.RECORDED
            if known:
                flags |= DatasetExistence.DATASTORE
            if present:
                flags |= DatasetExistence.ARTIFACT
            elif not full_check and DatasetExistence.DATASTORE in flags:
                flags |= DatasetExistence.ASSUMED
            result[ref.id] = flags
        return result  # type: ignore[return-value]

    def exists_many(
        self, refs: Iterable[DatasetRef], *, full_check: bool = True
    ) -> dict[DatasetRef, DatasetExistence]:
        """Registry and datastore state of many refs (`exists` for each), in a few queries."""
        refs = require_refs(refs)
        require_bool(full_check, "full_check")
        flags = self._existence(refs, full_check=full_check)
        return {ref: flags[ref.id] for ref in refs}  # type: ignore[index]

    def stored_many(
        self, refs: Iterable[DatasetRef], *, full_check: bool = True
    ) -> dict[DatasetRef, bool]:
        """Whether the datastore holds each ref (and, with ``full_check``, its artifact exists)."""
        refs = require_refs(refs)
        require_bool(full_check, "full_check")
        wanted = DatasetExistence.DATASTORE | (
            DatasetExistence.ARTIFACT if full_check else DatasetExistence.NONE
        )
        return {
            ref: wanted in flags
            for ref, flags in self.exists_many(refs, full_check=full_check).items()
        }

    def where(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, set[str]]:
        """Which datastores hold each dataset (every given id is a key)."""
        return self.registry.datastore_bridges.locate(require_refs(refs))

    # -- queries ---------------------------------------------------------------

    def _search(self, collections: str | Sequence[str] | None) -> tuple[str, ...]:
        collections = require_collections(collections)
        if collections is None:
            if not self.collections:
                raise ArgumentConflictError(
                    "No collections to search: pass collections=[...], or open the butler with "
                    "Butler(root, collections=[...]) or run=...."
                )
            return self.collections
        return (collections,) if isinstance(collections, str) else tuple(collections)

    def query_datasets(
        self,
        dataset_type: str | DatasetType,
        *,
        collections: str | Sequence[str] | None = None,
        where: str | None = "",
        bind: Mapping[str, Any] | None = None,
        in_datastore: str | None = None,
        not_in_datastore: str | None = None,
    ) -> Iterator[DatasetRef]:
        """Stream the datasets of one type in ``collections`` matching ``where``.

        ``dataset_type`` may be a glob (``"calexp*"``); ``collections`` too
        (``"*"`` for all). Arguments are checked at the call, not when the
        results are first read.
        """
        require_type(
            dataset_type, "dataset_type", (str, DatasetType), "a dataset type name or a DatasetType"
        )
        collections = require_collections(collections)
        _check_where(where, bind)
        require_str(in_datastore, "in_datastore", optional=True)
        require_str(not_in_datastore, "not_in_datastore", optional=True)
        return self._stream_datasets(
            dataset_type, collections, where, bind, in_datastore, not_in_datastore
        )

    def _stream_datasets(
        self,
        dataset_type: str | DatasetType,
        collections: str | Sequence[str] | None,
        where: str | None,
        bind: Mapping[str, Any] | None,
        in_datastore: str | None,
        not_in_datastore: str | None,
    ) -> Iterator[DatasetRef]:
        search = self._search_globbed(collections)
        names = self._dataset_type_names(dataset_type)
        for name in names:
            yield from self.registry.streamDatasets(
                name,
                collections=search,
                where=where,
                bind=bind,
                in_datastore=in_datastore,
                not_in_datastore=not_in_datastore,
            )

    def _dataset_type_names(self, dataset_type: str | DatasetType) -> list[str]:
        if isinstance(dataset_type, DatasetType):
            return [dataset_type.name]
        if any(c in dataset_type for c in "*?["):
            return sorted(t.name for t in self.registry.queryDatasetTypes(dataset_type))
        self.registry.getDatasetType(dataset_type)  # unknown names fail here
        return [dataset_type]

    def _search_globbed(self, collections: str | Sequence[str] | None) -> list[str]:
        search = self._search(collections)
        found: list[str] = []
        for item in search:
            if any(c in item for c in "*?["):
                found.extend(self.registry.queryCollections(item))
            else:
                found.append(item)
        return list(dict.fromkeys(found))

    def query_data_ids(
        self,
        dimensions: Iterable[str] | str,
        *,
        where: str | None = "",
        bind: Mapping[str, Any] | None = None,
    ) -> Iterator[DataCoordinate]:
        """Stream the data IDs of ``dimensions`` the dimension records allow, matching ``where``."""
        names = require_strs(dimensions, "dimensions")
        _check_where(where, bind)
        return iter(self.registry.queryDataIds(names, where=where, bind=bind))

    def query_dimension_records(
        self, element: str, *, where: str | None = "", bind: Mapping[str, Any] | None = None
    ) -> Iterator[Any]:
        """Stream the records of one dimension matching ``where``."""
        require_str(element, "element")
        _check_where(where, bind)
        return iter(self.registry.queryDimensionRecords(element, where=where, bind=bind))

    def query_collections(
        self,
        pattern: str | None = None,
        types: CollectionType | Iterable[CollectionType] | None = None,
    ) -> list[str]:
        """Collection names matching a glob and types (one `CollectionType` or several)."""
        require_str(pattern, "pattern", optional=True)
        return self.registry.queryCollections(pattern, require_collection_types(types))

    # -- deleting ------------------------------------------------------------------

    def prune(
        self,
        refs: Iterable[DatasetRef],
        *,
        tags: Iterable[str] = (),
        disassociate: bool | None = None,
        unstore: bool | None = None,
        purge: bool = False,
    ) -> PruneResult:
        """Remove datasets from TAGGED collections, from storage, or entirely.

        Parameters
        ----------
        refs : `~collections.abc.Iterable` [`DatasetRef`]
            The datasets.
        tags : `~collections.abc.Iterable` [`str`], optional
            TAGGED collections to take them out of.
        disassociate : `bool`, optional
            Implied by ``tags``; accepted for readers of the upstream API
            (``True`` without ``tags`` or ``purge`` is an error).
        unstore : `bool`, optional
            Delete their artifacts (the registry keeps the datasets).
        purge : `bool`, optional
            Delete the datasets from the registry too (implies ``unstore``,
            and takes them out of every collection).

        Raises
        ------
        TypeError
            For an illegal combination (named in the message), or no action.
        CollectionError
            If a tag is not a TAGGED collection.
        """
        refs = require_refs(refs)
        tags = require_strs(tags, "tags")
        require_bool(disassociate, "disassociate", optional=True)
        require_bool(unstore, "unstore", optional=True)
        require_bool(purge, "purge")
        return _delete.prune(
            self, refs, tags=tags, disassociate=disassociate, unstore=unstore, purge=purge
        )

    def remove_runs(self, names: Iterable[str], *, unlink_from_chains: bool = False) -> int:
        """Delete RUN collections with their datasets and artifacts; how many datasets went.

        Raises
        ------
        CollectionError
            If one is not a RUN, or is in a chain and ``unlink_from_chains``
            is false; checked before anything is deleted.
        """
        names = require_strs(names, "names")
        require_bool(unlink_from_chains, "unlink_from_chains")
        return _delete.remove_runs(self, names, unlink_from_chains=unlink_from_chains)

    def empty_trash(self, *, dry_run: bool = False) -> EmptyTrashResult:
        """Delete the artifacts of every trashed dataset; how many datasets were emptied.

        An artifact that cannot be deleted (no permission, a directory in its
        place) does not stop the others: it is logged, its datasets stay in
        the trash, and the result (an `int`) lists it in ``failures``.
        """
        require_bool(dry_run, "dry_run")
        if not dry_run:
            self._require_writeable("empty the trash")
        emptied = len(
            retrying(
                self.registry.db,
                lambda: self.datastore.emptyTrash(dry_run=dry_run),
                "empty the trash",
            )
        )
        failures = [
            failure
            for leaf in leaf_datastores(self.datastore)
            if isinstance(leaf, FileDatastore) and not dry_run
            for failure in leaf.trash_failures
        ]
        return EmptyTrashResult(emptied, tuple(failures))

    def remove_dataset_type(self, name: str) -> None:
        """Remove a dataset type that has no datasets."""
        require_str(name, "name")
        self._require_writeable("remove a dataset type")
        self.registry.removeDatasetType(name)

    # -- moving datasets in and out ------------------------------------------------

    def ingest(
        self,
        *datasets: FileDataset,
        transfer: str | None = "auto",
        run: str | None = None,
        skip_existing: bool = False,
    ) -> list[DatasetRef]:
        """Bring existing files in as datasets (all-or-nothing); return the new refs.

        Parameters
        ----------
        *datasets : `FileDataset`
            Files and the datasets they hold. Refs without an id are new
            datasets (inserted into their ``run``, else ``run``, else the
            butler's); refs with an id keep it.
        transfer : `str` or `None`, optional
            ``auto`` (the default), ``copy``, ``move``, ``link``,
            ``hardlink``, ``symlink``, ``relsymlink``, ``direct`` (use the
            file where it is, never delete it) or `None` (already inside the
            datastore root).
        run : `str`, optional
            Run for refs that name none.
        skip_existing : `bool`, optional
            Skip datasets the registry has already instead of failing.
        """
        require_file_datasets(datasets)
        require_str(transfer, "transfer", optional=True)
        require_str(run, "run", optional=True)
        require_bool(skip_existing, "skip_existing")
        self._require_writeable("ingest files")
        return _exchange.ingest(
            self, datasets, transfer=transfer, run=run, skip_existing=skip_existing
        )

    def transfer_from(
        self,
        source: Butler,
        refs: Iterable[DatasetRef],
        *,
        transfer: str = "auto",
        register_dataset_types: bool = True,
        transfer_dimensions: bool = True,
        skip_missing: bool = True,
        dry_run: bool = False,
    ) -> list[DatasetRef]:
        """Copy datasets from another repository, keeping their ids; return those copied.

        The dataset types (registered here unless told not to), the dimension
        records the data IDs need, the runs, the registry entries and the
        artifacts come across; datasets this repository has already are
        skipped. ``skip_missing`` drops datasets whose artifacts the source
        lacks; ``dry_run`` only reports what would be copied.
        """
        require_type(source, "source", Butler, "a Butler (the repository to copy from)")
        refs = require_refs(refs)
        require_str(transfer, "transfer")
        for flag, value in [
            ("register_dataset_types", register_dataset_types),
            ("transfer_dimensions", transfer_dimensions),
            ("skip_missing", skip_missing),
            ("dry_run", dry_run),
        ]:
            require_bool(value, flag)
        if not dry_run:
            self._require_writeable("transfer datasets in")
        return _exchange.transfer_from(
            self,
            source,
            refs,
            transfer=transfer,
            register_dataset_types=register_dataset_types,
            transfer_dimensions=transfer_dimensions,
            skip_missing=skip_missing,
            dry_run=dry_run,
        )

    def export(
        self,
        destination: str | os.PathLike[str],
        *,
        refs: Iterable[DatasetRef] | None = None,
        collections: Iterable[str] | None = None,
        format: str = "yaml",
        transfer: str | None = "copy",
    ) -> Path:
        """Export ``refs``, or everything stored in ``collections``, to a directory or zip.

        The destination gets a manifest (``export.yaml`` or ``export.json``)
        and the artifacts; a path ending in ``.zip`` gets one zip file.
        ``transfer=None`` writes only the manifest, pointing at the artifacts
        where they are.
        """
        require_path(destination, "destination", what="a directory or .zip path")
        if refs is not None:
            refs = require_refs(refs)
        collections = require_strs(collections, "collections", optional=True)
        require_str(format, "format")
        require_str(transfer, "transfer", optional=True)
        return _exchange.export(
            self, destination, refs=refs, collections=collections, format=format, transfer=transfer
        )

    def import_(
        self,
        source: str | os.PathLike[str],
        *,
        transfer: str | None = "auto",
        skip_dimensions: bool = False,
        skip_existing: bool = False,
    ) -> list[DatasetRef]:
        """Import an export (directory or zip), keeping dataset ids; return the refs.

        The export is treated as untrusted: a malformed manifest, or a path
        that is absolute or leaves the export (through ``..`` or a link), is
        an `ExportFormatError` before anything changes. With ``skip_existing``
        datasets the repository has already, with the same id, dataset type,
        run and data ID, are left out (and not returned) instead of failing
        the import; an id stored with another definition is still a
        `ConflictError`.
        """
        require_path(source, "source")
        require_str(transfer, "transfer", optional=True)
        require_bool(skip_dimensions, "skip_dimensions")
        require_bool(skip_existing, "skip_existing")
        self._require_writeable("import datasets")
        return _exchange.import_(
            self,
            source,
            transfer=transfer,
            skip_dimensions=skip_dimensions,
            skip_existing=skip_existing,
        )

    def retrieve_artifacts(
        self,
        refs: Iterable[DatasetRef],
        destination: str | os.PathLike[str],
        *,
        transfer: str = "copy",
        preserve_path: bool = True,
        overwrite: bool = False,
    ) -> list[Path]:
        """Copy the artifacts of ``refs`` into a local directory; return the files written."""
        refs = require_refs(refs)
        require_path(destination, "destination", what="a directory path")
        require_str(transfer, "transfer")
        require_bool(preserve_path, "preserve_path")
        require_bool(overwrite, "overwrite")
        return self.datastore.retrieve_artifacts(
            refs, destination, transfer=transfer, preserve_path=preserve_path, overwrite=overwrite
        )

    def get_uris(self, refs: Iterable[DatasetRef]) -> dict[DatasetId, str]:
        """Where the artifact of each stored dataset is."""
        return self.datastore.get_uris(require_refs(refs))

    # -- consistency -----------------------------------------------------------------

    def verify(
        self, *, repair: bool = False, delete_unknown: bool = False, checksums: bool = False
    ) -> VerifyReport:
        """Compare registry, bridge, records and storage; with ``repair``, fix what is safe.

        Parameters
        ----------
        repair : `bool`, optional
            Forget datasets whose artifacts are missing and locations without
            records, drop records of datasets neither held nor trashed, and
            empty stale trash. Size and checksum mismatches are only reported.
        delete_unknown : `bool`, optional
            Also delete artifacts that no record mentions (listed otherwise).
        checksums : `bool`, optional
            Read every artifact with a recorded checksum and compare it.

        Returns
        -------
        report : `VerifyReport`
            Every problem found (``report.ok`` when none), and the repairs made.
        """
        require_bool(repair, "repair")
        require_bool(delete_unknown, "delete_unknown")
        require_bool(checksums, "checksums")
        if repair or delete_unknown:
            self._require_writeable("repair the repository")
        bridges = cast(MonolithicDatastoreRegistryBridgeManager, self.registry.datastore_bridges)
        return verify_datastore(
            self.registry.db,
            self.datastore,
            bridges.location_table,
            bridges.trash_table,
            repair=repair,
            delete_unknown=delete_unknown,
            checksums=checksums,
        )

    # -- helpers ----------------------------------------------------------------

    def _require_writeable(self, what: str) -> None:
        if not self.is_writeable:
            raise ReadOnlyDatabaseError(
                f"Cannot {what}: this butler is read-only; open it with "
                f"Butler({self.root!r}, writeable=True)."
            )


def _check_where(where: object, bind: object) -> None:
    """Check a query's ``where`` and ``bind`` whole, before any query runs.

    Raises `~databutler.ExpressionError` (a databutler error) for a ``where``
    that is not a `str` or `None` or does not parse, or a ``bind`` that is
    not a mapping of names to supported values.
    """
    parse_where(where)
    check_bind(bind)
