"""The writing face of the `Butler`: the mixin `ButlerWrites`.

It holds what adds to a repository one call at a time: `put` and
`put_many` (registry rows and artifacts in one transaction, repeated when
it collides with another client's), the registration of dataset types
(`register_dataset_type`) and dimension records
(`insert_dimension_records`), and `_import_refs`, which makes the registry
know resolved refs with their ids (shared with import and transfer).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from .._arguments import (
    require_bool,
    require_data_id,
    require_dataset,
    require_file_datasets,
    require_mapping,
    require_path,
    require_put_items,
    require_refs,
    require_str,
    require_strs,
    require_type,
)
from .._dataset_ref import DatasetRef
from .._dataset_type import DatasetType
from .._exceptions import ArgumentConflictError, MissingCollectionError
from .._file_dataset import FileDataset
from ..dimensions import DataIdLike
from . import _exchange
from ._butler_base import ButlerBase
from ._conflicts import explaining_conflicts
from ._retry import retrying

__all__ = ["ButlerWrites"]


class ButlerWrites(ButlerBase):
    """Store datasets, and register what they need.

    Not used on its own: `Butler` inherits it.
    """

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

    # -- put -------------------------------------------------------------------

    def put(
        self,
        obj: Any,
        dataset: str | DatasetType | DatasetRef,
        data_id: DataIdLike | None = None,
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
        run_name = target or ""  # used only when there are datasets to insert, and then set
        # A run this client has seen is not looked up again (the insert's transaction
        # checks the cached one), so later puts write nothing for it. Another is looked
        # up, and registered if new, inside the transaction: a failed put leaves no
        # empty run, and the insert finds the run without reading it again.
        unseen = bool(groups) and not self.registry.collection_cached(run_name)
        inserts = {
            name: [items[i][2] or {} for i in positions] for name, positions in groups.items()
        }

        def attempt(unseen: bool) -> list[DatasetRef]:
            with explaining_conflicts(self.registry, inserts, target), self.transaction():
                if unseen:
                    self.registry.ensure_run(run_name)
                if resolved:
                    self._import_refs(resolved)
                for name, positions in groups.items():
                    new = self.registry.insertDatasets(name, inserts[name], run_name)
                    for i, ref in zip(positions, new, strict=True):
                        refs[i] = ref
                done = [ref for ref in refs if ref is not None]
                self.datastore.put_many(
                    (obj, ref) for (obj, _, _), ref in zip(items, done, strict=True)
                )
            return done

        def put() -> list[DatasetRef]:
            try:
                return attempt(unseen)
            except MissingCollectionError:
                if unseen or not groups or self.registry.known_collection(run_name):
                    raise
                return attempt(True)  # another client removed the run since this one saw it

        return retrying(self.registry.db, put, "put datasets")

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
            Files and the datasets they hold. An `UnresolvedRef` is a new
            dataset (inserted with a new id into its ``run``, else ``run``,
            else the butler's); a resolved `DatasetRef` keeps its id.
        transfer : `str` or `None`, optional
            ``auto`` (the default), ``copy``, ``move``, ``link``,
            ``hardlink``, ``symlink``, ``relsymlink``, ``direct`` (use the
            file where it is, never delete it) or `None` (already inside the
            datastore root).
        run : `str`, optional
            Run for unresolved refs that name none.
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
        source: ButlerBase,
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
        require_type(source, "source", ButlerBase, "a Butler (the repository to copy from)")
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
        ``format="daf_butler"`` writes the export lsst-daf-butler's
        ``butler import`` reads (see docs/coming-from-daf-butler.md).
        ``transfer=None`` writes only the manifest, pointing at the artifacts
        where they are. A failure (a full disk: a `StorageError` naming the file
        and what to do) leaves nothing at the destination.
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
        skip_unknown_fields: bool = False,
    ) -> list[DatasetRef]:
        """Import an export (directory or zip), keeping dataset ids; return the refs.

        ``source`` is a databutler export or a daf_butler one (its directory
        or YAML file; see docs/coming-from-daf-butler.md). The export is
        treated as untrusted: a malformed manifest, or a path that is
        absolute or leaves the export (through ``..`` or a link), is an
        `ExportFormatError` before anything changes. With ``skip_existing``
        datasets the repository has already, with the same id, dataset type,
        run and data ID, are left out (and not returned) instead of failing
        the import; an id stored with another definition is still a
        `ConflictError`. With ``skip_unknown_fields`` the dimension records,
        and record fields, of a daf_butler export that this repository's
        dimension universe has no place for are left out instead of refused.
        """
        require_path(source, "source")
        require_str(transfer, "transfer", optional=True)
        require_bool(skip_dimensions, "skip_dimensions")
        require_bool(skip_existing, "skip_existing")
        require_bool(skip_unknown_fields, "skip_unknown_fields")
        self._require_writeable("import datasets")
        return _exchange.import_(
            self,
            source,
            transfer=transfer,
            skip_dimensions=skip_dimensions,
            skip_existing=skip_existing,
            skip_unknown_fields=skip_unknown_fields,
        )
