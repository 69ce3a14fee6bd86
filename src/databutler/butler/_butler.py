"""`Butler`: a repository — registry plus datastore — behind one small facade.

This module holds how a `Butler` opens a repository (its constructor) and
creates one (`create`), `close` and the context manager, and the
composition of its faces, each a mixin in a module of its own: reading
(`._butler_read`), writing (`._butler_write`), queries (`._butler_query`)
and maintenance (`._butler_maintenance`), on the state and helpers they
share (`._butler_base`). `get_deferred`, whose handle keeps the
`Butler`, stays here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._arguments import (
    require_bool,
    require_collections,
    require_path,
    require_str,
    require_type,
)
from .._dataset_ref import DatasetRef
from .._dataset_type import DatasetType
from .._exceptions import (
    ConfigurationError,
    DatabutlerError,
    MissingCollectionError,
    ReadOnlyDatabaseError,
    RepositoryError,
    RepositoryNotFoundError,
)
from ..datastores import Datastore, datastore_from_config
from ..dimensions import DataIdLike, DimensionUniverse
from ..registry import SqlRegistry
from ..registry.collections import validate_collection_name
from ..registry.interfaces import Database
from ._butler_maintenance import ButlerMaintenance
from ._butler_query import ButlerQueries
from ._butler_read import ButlerReads
from ._butler_write import ButlerWrites
from ._config import (
    CONFIG_NAME,
    RepositoryConfig,
    normalize_root,
)
from ._migrate import MigrationReport, migrate
from ._repository import create_repository, creating
from ._values import DatasetExistence, DatasetNotFoundError
from ._verify import recover_moves

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


class Butler(ButlerReads, ButlerWrites, ButlerQueries, ButlerMaintenance):
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
        require_path(root, "root", holdable=False)  # normalize_root says why
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
            if isinstance(exc, ReadOnlyDatabaseError) and self.registry.db.isWriteable():
                raise  # the database refused a write (permissions): the error says so itself
            if isinstance(exc, ReadOnlyDatabaseError):
                # Opened read-only, it wanted to make tables that are not there.
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
        AlreadyExistsError
            If ``root`` holds a repository and ``overwrite`` is false, or
            another process is creating one there right now (nothing is
            changed: one creation at a time in a local root).
        ConfigurationError
            For an invalid database URI or datastore configuration, or an
            S3 root without ``db``.
        """
        require_path(root, "root", holdable=False)  # normalize_root says why
        require_str(db, "db", optional=True)
        require_type(
            datastore,
            "datastore",
            (str, Mapping, type(None)),
            "a directory, s3:// URI or datastore configuration (a mapping), or None",
        )
        if isinstance(datastore, str) and datastore:
            require_path(datastore, "datastore")  # what no file system holds
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
        # One creation at a time in a local root; a failure leaves no directory it made.
        with creating(root_uri):
            registry, datastore_ = create_repository(
                root_uri, db, datastore, universe, namespace, overwrite=overwrite
            )
        return cls(root_uri, run=run, writeable=True, _registry=registry, _datastore=datastore_)

    @staticmethod
    def migrate_from(
        source: str | os.PathLike[str],
        root: str | os.PathLike[str],
        *,
        transfer: str = "direct",
        universe: str = "source",
        db: str | None = None,
        namespace: str | None = None,
        batch_size: int = 10_000,
        skip_missing: bool = False,
        skip_unknown_fields: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> MigrationReport:
        """Migrate the daf_butler repository ``source`` into the databutler repository ``root``.

        ``root`` is created (with ``db`` and ``namespace``) unless it is a
        repository already: running the same migration again continues an
        interrupted one. See `._migrate` for what is read and carried.

        Parameters
        ----------
        source : `str` or `os.PathLike`
            The daf_butler repository's root (or its ``butler.yaml``); SQLite
            or PostgreSQL registry, file datastore. It is only read.
        root : `str` or `os.PathLike`
            The databutler repository to write.
        transfer : `str`, optional
            ``direct`` (artifacts stay where they are) or ``copy``.
        universe : `str`, optional
            The dimension universe of a new ``root``: ``source`` (the daf_butler
            repository's own, translated: data IDs and records carry over
            unchanged) or ``default`` (databutler's, records mapped onto it). An
            existing ``root`` keeps its universe.
        db, namespace : `str`, optional
            The new repository's registry database and PostgreSQL schema.
        batch_size : `int`, optional
            Datasets read and written per transaction.
        skip_missing : `bool`, optional
            Leave out datasets whose artifact is missing instead of stopping.
        skip_unknown_fields : `bool`, optional
            Leave out dimension records and fields the universe has no place for.
        progress : callable, optional
            Called with (datasets done, datasets in the source) after each batch.

        Returns
        -------
        report : `MigrationReport`
            Counts, and the destination's `verify` report.

        Raises
        ------
        RepositoryError
            For a source this migration does not read (a registry it cannot
            reach, another datastore, unknown dimensions or formatters, a
            missing artifact).
        IncompatibleVersionError
            For a registry manager, or manager version, it does not read.
        """
        require_path(source, "source")
        require_path(root, "root", holdable=False)  # normalize_root says why
        require_str(transfer, "transfer")
        require_str(universe, "universe")
        require_str(db, "db", optional=True)
        require_str(namespace, "namespace", optional=True)
        if isinstance(batch_size, bool):
            require_type(batch_size, "batch_size", (), "a positive int")
        require_type(batch_size, "batch_size", int, "a positive int")
        require_bool(skip_missing, "skip_missing")
        require_bool(skip_unknown_fields, "skip_unknown_fields")
        if progress is not None and not callable(progress):
            require_type(progress, "progress", (), "a callable (done, total) or None")

        def open_destination() -> Butler | None:
            try:
                return Butler(root, writeable=True)
            except RepositoryNotFoundError:
                return None

        def create_destination(dimensions: DimensionUniverse) -> Butler:
            with Database.created_for_bulk_loading():  # filled in large transactions
                return Butler.create(root, db=db, namespace=namespace, universe=dimensions)

        return migrate(
            source,
            root,
            open_destination=open_destination,
            create_destination=create_destination,
            transfer=transfer,
            universe=universe,
            batch_size=batch_size,
            skip_missing=skip_missing,
            skip_unknown_fields=skip_unknown_fields,
            progress=progress,
        )

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

    # -- reading later -------------------------------------------------------------

    def get_deferred(
        self,
        dataset: str | DatasetType | DatasetRef,
        data_id: DataIdLike | None = None,
        *,
        collections: str | Sequence[str] | None = None,
        **kwargs: Any,
    ) -> DeferredDatasetHandle:
        """Find a dataset now; read it later with the handle's ``get()``."""
        ref, _, _ = self._resolve(dataset, data_id, collections, kwargs, None)
        return DeferredDatasetHandle(self, ref)
