"""The writing face of the `Butler`: the mixin `ButlerWrites`.

It holds what adds to a repository one call at a time: `put` and
`put_many` (registry rows and artifacts in one transaction, repeated when
it collides with another client's), the registration of dataset types
(`register_dataset_type`) and dimension records
(`insert_dimension_records`), and `_import_refs`, which makes the registry
know resolved refs with their ids (shared with import and transfer).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._dataset_ref import DatasetRef
from .._dataset_type import DatasetType
from .._exceptions import ArgumentConflictError, MissingCollectionError
from ._arguments import (
    require_bool,
    require_data_id,
    require_dataset,
    require_mapping,
    require_put_items,
    require_str,
    require_strs,
    require_type,
)
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
